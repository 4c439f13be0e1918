"""A node's home directory: creating it (`citychain init`), and knowing whether a node runs on it.

A home in use
-------------
Two node processes must never run on one home: RocksDB's lock on ``data/LOCK`` already
refuses the second one, but only with RocksDB's words. So a node writes its pid to
``<home>/node.pid`` once it holds that lock and deletes the file when it stops cleanly (a
file left by a ``kill -9`` names a process that is gone). Before opening anything, a node
asks :func:`running_pid`: a pid whose process is alive (and, where ``/proc`` says, is a
citychain program, so a pid reused after a reboot is not believed) refuses the start with
``home_in_use`` and that pid. When RocksDB's lock is held and no live pid is recorded (a
node of an older release, a tool holding the database), :func:`is_lock_error` recognises
the refusal and the node says in words that another process holds the home.
``citychain node replay`` opens the database read-only, which takes no lock, so it runs
beside a live node.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from citychain.crypto import ED25519, CryptoSuite, Signer
from citychain.crypto.keystore import save_key, save_plaintext_key
from citychain.crypto.passphrase import TEST_NETWORK_PHRASE, write_note
from citychain.crypto.pkcs8 import cipher_for_suite
from citychain.errors import ConfigError, ErrorCode, Unavailable
from citychain.node.config import KeysSettings, NodeConfig, NodeSettings, P2PSettings
from citychain.p2p.certs import encrypt_key_pem, generate_org_ca
from citychain.types import Validator
from citychain.types.genesis import ChainParams, Genesis, Governance, Member, Organisation

log = logging.getLogger(__name__)

#: Tokens minted at genesis to each demo account.
DEMO_BALANCE = 10**12
#: The one organisation of a chain made by ``citychain init``.
ORG_ID = "org1"
ORG_NAME = "Organisation 1"
#: Demo chains govern the identity service's trusted-issuer registry by a majority of the
#: organisations' admins (with one organisation: its admin), so the demo admin can try it.
DEMO_POLICIES: dict[str, Any] = {
    f"identity.{m}": {"rule": "MAJORITY", "roles": ["admin"]}
    for m in ("trust_issuer", "untrust_issuer")
}


@dataclass(frozen=True, slots=True)
class InitResult:
    config: NodeConfig
    genesis: Genesis
    validator: Signer
    accounts: dict[str, Signer]
    passphrase_file: Path | None


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def init_home(
    home: Path,
    *,
    chain_id: str = "citychain-demo",
    passphrase: str | None = None,
    plaintext_key: bool = False,
    accounts: tuple[str, ...] = ("alice", "bob"),
    params: ChainParams | None = None,
    api_port: int = 26657,
    kdf_level: str | None = None,
    genesis_time: int | None = None,
    validator: Signer | None = None,
    keys: KeysSettings | None = None,
    suite: CryptoSuite = ED25519,
) -> InitResult:
    """Create ``home`` with a validator key, demo accounts, genesis and config.

    Keys are encrypted with ``passphrase``, which is then written nowhere: the node is given
    it at start (see :mod:`citychain.crypto.passphrase`). If none is given this is a demo or
    test home: a random one is generated and written in plain text to ``config/passphrase``
    (mode 0600, with ``passphrase.README`` saying "test network only") so the node starts
    unattended, and node.toml says ``[keys] allow_plaintext_passphrase = "this is a test
    network"``. With ``plaintext_key`` (dev only) the validator key is stored unencrypted and
    the config says so; the node logs a warning at every start.

    ``validator`` is a validator key held elsewhere (a :class:`~citychain.crypto.pkcs11.
    Pkcs11Signer`): genesis names it and no key file is written; ``keys`` is then the
    ``[keys]`` section that finds it again.

    ``kdf_level`` is argon2id's cost for the key files: by default ``moderate`` under a given
    passphrase (a person's words, which the cost protects) and ``interactive`` under a
    generated one: 192 random bits need no slow derivation, and the file holding them lies
    beside the keys anyway (the moderate cost took ~0.7 s of CPU and 256 MiB per key, at
    ``init`` and at every start).

    ``suite`` is the chain's crypto suite, written in genesis: every key made here is of it,
    and it decides every hash of the chain (``sm2-sm3``: SM2 signatures, SM3 hashes).
    """
    if validator is not None and validator.suite.name != suite.name:
        raise ConfigError(
            f"the validator key is {validator.suite.name}, the chain's suite {suite.name}"
        )
    config_dir = home / "config"
    if (config_dir / "genesis.json").exists():
        raise ConfigError(f"{home} is already initialised (found config/genesis.json)")
    config_dir.mkdir(parents=True, exist_ok=True)
    pass_file: Path | None = None
    if passphrase is None and not plaintext_key:
        passphrase = secrets.token_urlsafe(24)
        pass_file = config_dir / "passphrase"
        _write_secret(pass_file, passphrase)
        write_note(pass_file)
        keys = replace(keys or KeysSettings(), allow_plaintext_passphrase=TEST_NETWORK_PHRASE)
    if kdf_level is None:
        kdf_level = "interactive" if pass_file is not None else "moderate"

    key_path = config_dir / "node_key.json"
    if validator is None:
        validator = Signer.generate(suite)
        if plaintext_key:
            save_plaintext_key(key_path, validator)
        else:
            assert passphrase is not None
            save_key(key_path, validator, passphrase, kdf_level=kdf_level)

    keys_dir = home / "keys"
    keys_dir.mkdir(exist_ok=True)
    signers: dict[str, Signer] = {}

    def save(name: str, s: Signer) -> None:
        if plaintext_key:
            save_plaintext_key(keys_dir / f"{name}.json", s)
        else:
            assert passphrase is not None
            save_key(keys_dir / f"{name}.json", s, passphrase, kdf_level=kdf_level)

    for name in accounts:
        s = Signer.generate(suite)
        signers[name] = s
        save(name, s)
    # One organisation governs a single-node chain: its admin key registers members and
    # passes proposals; the demo accounts are its members (key identity mode).
    admin = Signer.generate(suite)
    save(f"{ORG_ID}-admin", admin)
    ca_cert, ca_key = generate_org_ca(ORG_ID, ORG_NAME)
    org_dir = home / "orgs" / ORG_ID
    org_dir.mkdir(parents=True, exist_ok=True)
    (org_dir / "ca_cert.pem").write_bytes(ca_cert)
    # The CA key issues member certificates (certificate identity mode) and node
    # certificates; encrypted like every other key unless the home is a plaintext dev home (SM4
    # on an sm2-sm3 chain, as its SM2 CA's key below).
    _write_secret(
        org_dir / "ca_key.pem",
        (
            ca_key
            if plaintext_key
            else encrypt_key_pem(ca_key, passphrase or "", cipher=cipher_for_suite(suite.name))
        )
        .decode()
        .strip(),
    )

    gm_ca_cert = b""
    if suite.name == "sm2-sm3":
        # The organisation's SM2 CA (GM certificate) and the node's SM2 certificate for its
        # validator key: on an sm2-sm3 chain peers authenticate nodes by these, and members
        # in certificate identity mode are certified by this CA.
        from citychain.crypto.sm2_certs import (
            issue_sm2_ca,
            issue_sm2_node_cert,
            sm2_private_key_pem,
        )

        gm_ca_key = Signer.generate(suite)
        gm_ca_cert = issue_sm2_ca(ORG_ID, ORG_NAME, gm_ca_key.secret)
        (org_dir / "gm_ca_cert.pem").write_bytes(gm_ca_cert)
        _write_secret(
            org_dir / "gm_ca_key.pem",
            sm2_private_key_pem(
                gm_ca_key.secret, None if plaintext_key else passphrase, cipher="sm4-cbc"
            )
            .decode()
            .strip(),
        )
        (home / P2PSettings().gm_cert_file).write_bytes(
            issue_sm2_node_cert(
                gm_ca_cert,
                gm_ca_key.secret,
                validator.public_key,
                node_name=NodeSettings().name,
                chain_id=chain_id,
                org_id=ORG_ID,
            )
        )

    token: dict[str, Any] = {
        "issuers": [{"hex": s.address.hex()} for s in signers.values()][:1],
        "balances": {s.address.hex(): DEMO_BALANCE for s in signers.values()},
    }
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=genesis_time if genesis_time is not None else time.time_ns() // 1_000_000,
        crypto_suite=suite.name,
        crypto_params=suite.params,
        validators=(Validator(validator.public_key, 10, "node0"),),
        params=params or ChainParams(),
        contracts={"token": token},
        organisations=(
            Organisation(
                ORG_ID,
                ORG_NAME,
                ca_cert.decode(),
                admins=(admin.public_key,),
                members=tuple(Member(s.public_key, ("member",)) for s in signers.values()),
                gm_ca_cert=gm_ca_cert.decode(),
            ),
        ),
        governance=Governance("key", policies=dict(DEMO_POLICIES)),
        validator_orgs=((validator.public_key, ORG_ID),),
    )
    genesis.save(config_dir / "genesis.json")
    config = NodeConfig(
        home=home,
        node=NodeSettings(allow_plaintext_key=plaintext_key),
    )
    config = NodeConfig(
        home=home,
        node=config.node,
        api=type(config.api)(port=api_port),
        keys=keys or KeysSettings(),
    )
    config.save()
    return InitResult(config, genesis, validator, signers, pass_file)


# -- a home in use --------------------------------------------------------------------------

#: Where a running node records its pid, relative to its home.
PID_FILE = "node.pid"


def pid_file(home: Path) -> Path:
    return home / PID_FILE


def _is_live_citychain(pid: int) -> bool:
    """Whether ``pid`` is a live process that (where ``/proc`` can tell) runs citychain."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's: the lock, not this check, settles whether it is a node
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():
        return True  # no /proc (macOS): the pid file is all there is
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[:1]
        args = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return state != ["Z"] and b"citychain" in args


def running_pid(home: Path) -> int | None:
    """The pid of the node running on ``home`` per its pid file, if that process lives."""
    try:
        text = pid_file(home).read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    if pid <= 1 or pid == os.getpid() or not _is_live_citychain(pid):
        return None
    return pid


def home_in_use(home: Path, pid: int | None) -> Unavailable:
    """The refusal to start a second node on ``home``."""
    where = home.resolve()
    if pid is not None:
        return Unavailable(
            f"a node is already running on this home (pid {pid}): {where}; stop it first "
            f"(Ctrl-C where it runs, or kill {pid}), or start this one with another --home",
            ErrorCode.HOME_IN_USE,
        )
    return Unavailable(
        f"another process holds this home's database ({where / 'data' / 'LOCK'} is locked): "
        "a node is probably already running on this home; stop it first, or start this one "
        "with another --home",
        ErrorCode.HOME_IN_USE,
    )


def check_home_free(home: Path) -> None:
    """Refuse (``home_in_use``) when a live node is recorded on ``home``; opens nothing."""
    pid = running_pid(home)
    if pid is not None:
        raise home_in_use(home, pid)


def is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is RocksDB refusing a database whose lock is held.

    rocksdict raises a plain ``Exception`` carrying RocksDB's status text ("IO error: While
    lock file: <dir>/LOCK: Resource temporarily unavailable", or "lock hold by current
    process" within one process): its words are the only sign of the lock there is."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "LOCK:" in text and ("While lock file" in text or "lock hold" in text):
            return True
        seen = seen.__cause__
    return False


def write_pid_file(home: Path) -> None:
    """Record this process as the node running on ``home`` (call once it holds the lock)."""
    path = pid_file(home)
    tmp = path.with_name(f".{PID_FILE}.tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, path)


def remove_pid_file(home: Path) -> None:
    """Delete the pid file if it still names this process (a clean stop)."""
    path = pid_file(home)
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass
