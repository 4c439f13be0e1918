"""A local network of several validators on one machine (``citychain net``, e2e tests).

Theory of operation
-------------------
:func:`generate_network` writes everything a local BFT network needs under one directory::

    out/network.json               the layout (:class:`NetworkLayout`); paths relative to out/
    out/passphrase                 the one passphrase of this local network (mode 0600), in
                                   plain text: TEST NETWORKS ONLY (passphrase.README beside it
                                   says so; a real deployment never writes it, README: Keys)
    out/config/genesis.json        the genesis every node has, and
    out/keys/<account>.json        the demo account keys (encrypted): with these two,
                                   ``CITYCHAIN_HOME=out`` gives the client commands the
                                   trusted validator set and the keys
    out/keys/<org>-admin.json      each organisation's admin key (encrypted): it votes on
                                   governance proposals and registers the org's members
    out/orgs/<org>/ca_cert.pem     each organisation's CA certificate (also in genesis)
    out/orgs/<org>/ca_key.pem      its key, encrypted with the passphrase (mode 0600; AES,
                                   SM4 on an sm2-sm3 network, as every PEM key here)
    out/node<i>/config/node.toml   one node home per validator, as NodeConfig expects:
                  genesis.json     identical bytes in every node
                  node_key.json    Ed25519 validator key, encrypted (keystore)
                  passphrase       the passphrase again (0600), so the node starts unattended,
                                   with passphrase.README; node.toml's [keys]
                                   allow_plaintext_passphrase = "this is a test network" is
                                   what lets a node read it (else it refuses to start)
                  node_cert.pem    CN=node<i>, O=<org id>, bound to the chain id, from the org CA
                  node_tls_key.pem its TLS key, encrypted PKCS#8 (0600)
    out/node<i>/node.log           the node's stdout and stderr, appended at every start
    out/pids.json                  the processes started by whoever started them

Validators are assigned to organisations round-robin (node0 to org1, node1 to org2, ...), and
so are the demo accounts, registered as members of their organisation. The chain runs in
``key`` identity mode (registered keys; see :mod:`citychain.execution.access`) unless asked
otherwise; the first demo account may mint tokens.

:func:`prepare_joining_org` adds a node of an organisation that is not on the chain yet (its
CA, admin key and node home, trusting its own CA until governance admits it): the path an
operator follows to bring a neighbouring department onto a running network.
Node *i* listens for peers on ``base_port + 10*i`` and serves its API on ``base_port + 10*i
+ 1``, both on 127.0.0.1; its ``persistent_peers`` name every other node. Where node *i*
dials node *j* can be redirected (``peer_address``), which is how tests put a fault-injecting
proxy on every link.

Why not ``init_home`` per node: it makes a single-validator chain with its own genesis; a
network needs one genesis naming every validator and organisation before any home exists.

The tree is built in a hidden sibling directory and renamed into place at the end, so ``out``
holds either a complete network or nothing new: a failure half-way leaves no half network
that a later command would mistake for a real one. Only paths relative to ``out`` are
written, so the directory can be moved.

Processes of a generated network are started, watched and stopped by
:mod:`citychain.node.processes`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from citychain.crypto import ED25519, SM2_SM3, CryptoSuite, Signer
from citychain.crypto.keystore import KDF_LEVELS, save_key
from citychain.crypto.passphrase import TEST_NETWORK_PHRASE, write_note
from citychain.crypto.pkcs8 import cipher_for_suite
from citychain.errors import ConfigError, InvalidInput
from citychain.node.config import (
    ApiConfig,
    ConsensusSettings,
    KeysSettings,
    NodeConfig,
    NodeSettings,
    P2PSettings,
)
from citychain.node.home import DEMO_BALANCE, DEMO_POLICIES
from citychain.p2p.certs import NodeKey, encrypt_key_pem, generate_org_ca, issue_node_cert
from citychain.types import Validator
from citychain.types.genesis import ChainParams, Genesis, Governance, Member, Organisation
from citychain.types.policy import check_name

__all__ = [
    "LAYOUT_FILE",
    "PIDS_FILE",
    "NetNode",
    "NetOrg",
    "NetworkLayout",
    "generate_network",
    "prepare_joining_org",
    "write_atomic",
]

LAYOUT_FILE = "network.json"
PIDS_FILE = "pids.json"
LAYOUT_VERSION = 1
#: Ports of node i are base_port + PORT_STRIDE * i (p2p) and that + 1 (API).
PORT_STRIDE = 10
#: Validator power of every generated validator.
POWER = 10
#: More validators than this on one machine is not what a local network is for.
MAX_VALIDATORS = 100
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Environment a node process must not inherit: the passphrase would override the node's own
#: passphrase file, and the home variable is replaced by --home anyway.

PeerAddress = Callable[[int, int], tuple[str, int]]


# -- the layout ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NetNode:
    """One validator node of a local network."""

    index: int
    name: str
    home: Path
    org: str
    api_url: str
    api_port: int
    p2p_port: int
    #: The validator's Ed25519 public key, hex.
    validator_public_key: str

    @property
    def log_file(self) -> Path:
        return self.home / "node.log"


@dataclass(frozen=True, slots=True)
class NetOrg:
    """One organisation: its CA and the nodes it runs."""

    id: str
    name: str
    ca_cert_file: Path
    #: The CA key, encrypted with the network passphrase.
    ca_key_file: Path
    nodes: tuple[str, ...]
    #: The organisation's admin key (encrypted with the network passphrase).
    admin_key_file: Path

    @property
    def gm_ca_cert_file(self) -> Path:
        """Its SM2 CA on an ``sm2-sm3`` network (beside ``ca_cert_file``; absent elsewhere)."""
        return self.ca_cert_file.with_name("gm_ca_cert.pem")


@dataclass(frozen=True, slots=True)
class NetworkLayout:
    """What :func:`generate_network` made; saved as ``<root>/network.json``."""

    root: Path
    chain_id: str
    nodes: tuple[NetNode, ...]
    orgs: tuple[NetOrg, ...]
    passphrase_file: Path
    keys_dir: Path
    accounts: tuple[str, ...]

    @property
    def genesis_file(self) -> Path:
        return self.root / "config" / "genesis.json"

    @property
    def pids_file(self) -> Path:
        return self.root / PIDS_FILE

    @property
    def passphrase(self) -> str:
        return self.passphrase_file.read_text().strip()

    def node(self, which: int | str) -> NetNode:
        """A node by index or by name."""
        for n in self.nodes:
            if which in (n.index, n.name):
                return n
        raise ConfigError(f"the network in {self.root} has no node {which!r}")

    def to_json(self) -> dict[str, Any]:
        def rel(p: Path) -> str:
            return str(p.relative_to(self.root))

        return {
            "version": LAYOUT_VERSION,
            "chain_id": self.chain_id,
            "passphrase_file": rel(self.passphrase_file),
            "keys_dir": rel(self.keys_dir),
            "accounts": list(self.accounts),
            "orgs": [
                {
                    "id": o.id,
                    "name": o.name,
                    "ca_cert_file": rel(o.ca_cert_file),
                    "ca_key_file": rel(o.ca_key_file),
                    "nodes": list(o.nodes),
                    "admin_key_file": rel(o.admin_key_file),
                }
                for o in self.orgs
            ],
            "nodes": [
                {
                    "index": n.index,
                    "name": n.name,
                    "home": rel(n.home),
                    "org": n.org,
                    "api_url": n.api_url,
                    "api_port": n.api_port,
                    "p2p_port": n.p2p_port,
                    "validator_public_key": n.validator_public_key,
                }
                for n in self.nodes
            ],
        }

    def save(self) -> None:
        write_atomic(self.root / LAYOUT_FILE, json.dumps(self.to_json(), indent=2) + "\n")

    @staticmethod
    def exists(root: Path) -> bool:
        return (root / LAYOUT_FILE).is_file()

    @classmethod
    def load(cls, root: Path) -> NetworkLayout:
        """Read ``<root>/network.json``; :class:`ConfigError` if there is none or it is bad."""
        root = root.expanduser().resolve()
        path = root / LAYOUT_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"no network in {root} (no {LAYOUT_FILE}); create one with `citychain net up`"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot be read as JSON ({exc})") from None
        r = _Fields(path)
        r.obj(raw, "the document")
        if raw.get("version") != LAYOUT_VERSION:
            raise ConfigError(
                f"{path}: unknown layout version {raw.get('version')!r} (this release reads "
                f"{LAYOUT_VERSION})"
            )
        orgs = []
        for o in r.items(raw, "orgs"):
            r.obj(o, "an organisation")
            orgs.append(
                NetOrg(
                    id=r.text(o, "id"),
                    name=r.text(o, "name"),
                    ca_cert_file=root / r.text(o, "ca_cert_file"),
                    ca_key_file=root / r.text(o, "ca_key_file"),
                    nodes=tuple(str(x) for x in r.items(o, "nodes")),
                    admin_key_file=root / r.text(o, "admin_key_file"),
                )
            )
        nodes = []
        for n in r.items(raw, "nodes"):
            r.obj(n, "a node")
            nodes.append(
                NetNode(
                    index=r.integer(n, "index"),
                    name=r.text(n, "name"),
                    home=root / r.text(n, "home"),
                    org=r.text(n, "org"),
                    api_url=r.text(n, "api_url"),
                    api_port=r.integer(n, "api_port"),
                    p2p_port=r.integer(n, "p2p_port"),
                    validator_public_key=r.text(n, "validator_public_key"),
                )
            )
        if not nodes:
            raise ConfigError(f"{path}: the network lists no nodes")
        return cls(
            root=root,
            chain_id=r.text(raw, "chain_id"),
            nodes=tuple(nodes),
            orgs=tuple(orgs),
            passphrase_file=root / r.text(raw, "passphrase_file"),
            keys_dir=root / r.text(raw, "keys_dir"),
            accounts=tuple(str(a) for a in r.items(raw, "accounts")),
        )


class _Fields:
    """Typed reads from network.json with errors that name the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def obj(self, value: Any, what: str) -> None:
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: {what} must be a JSON object")

    def _get(self, obj: dict[str, Any], key: str, kind: type, kind_name: str) -> Any:
        value = obj.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(f"{self.path}: field {key!r} must be {kind_name}, got {value!r:.60}")
        return value

    def text(self, obj: dict[str, Any], key: str) -> str:
        value: str = self._get(obj, key, str, "a text")
        return value

    def integer(self, obj: dict[str, Any], key: str) -> int:
        value: int = self._get(obj, key, int, "an integer")
        return value

    def items(self, obj: dict[str, Any], key: str) -> list[Any]:
        value: list[Any] = self._get(obj, key, list, "a list")
        return value


# -- generating ---------------------------------------------------------------------------------
def generate_network(
    out: Path,
    *,
    validators: int = 4,
    orgs: int = 2,
    chain_id: str = "citychain-local",
    base_port: int = 27000,
    accounts: tuple[str, ...] = ("alice", "bob"),
    params: ChainParams | None = None,
    passphrase: str | None = None,
    kdf_level: str = "interactive",
    peer_address: PeerAddress | None = None,
    identity_mode: str = "key",
    policies: dict[str, Any] | None = None,
    voting_period: int = 1000,
    consensus: ConsensusSettings | None = None,
    suite: CryptoSuite = ED25519,
) -> NetworkLayout:
    """Write a local network of ``validators`` nodes run by ``orgs`` organisations to ``out``.

    ``suite`` is the chain's crypto suite, named in genesis: every key of the network is made
    with it (validators, accounts, admins), and it decides every hash of the chain.

    ``out`` must not exist or be an empty directory. One passphrase encrypts every key of the
    network (random unless given) and is written, mode 0600, to ``out/passphrase`` and to
    every node's ``config/passphrase`` so the nodes start unattended: this is a development
    network. ``peer_address(i, j)`` says where node ``i`` dials node ``j`` (default: ``j``'s
    own p2p port on 127.0.0.1). ``consensus`` is every node's ``[consensus]`` section of
    node.toml (default: the defaults, e.g. one empty block per 10 s while idle). Raises
    :class:`ConfigError` for bad arguments or an occupied ``out``.
    """
    _check_arguments(validators, orgs, chain_id, base_port, accounts, passphrase, kdf_level)
    out = out.expanduser().resolve()
    _check_target(out)
    if passphrase is None:
        passphrase = secrets.token_urlsafe(24)

    staging = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    try:
        staging.mkdir(parents=True)
        _write_network(
            staging,
            validators=validators,
            orgs=orgs,
            chain_id=chain_id,
            base_port=base_port,
            accounts=accounts,
            params=params or ChainParams(),
            passphrase=passphrase,
            kdf_level=kdf_level,
            peer_address=peer_address,
            governance=Governance(
                identity_mode, voting_period, {**DEMO_POLICIES, **(policies or {})}
            ),
            consensus=consensus or ConsensusSettings(),
            suite=suite,
        )
        if out.exists():
            out.rmdir()  # empty (checked above); rename needs it gone on every platform
        staging.rename(out)
    except OSError as exc:
        raise ConfigError(f"cannot write the network to {out}: {exc}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return NetworkLayout.load(out)


def _check_arguments(
    validators: int,
    orgs: int,
    chain_id: str,
    base_port: int,
    accounts: tuple[str, ...],
    passphrase: str | None,
    kdf_level: str,
) -> None:
    if validators < 1:
        raise ConfigError(f"a network needs at least one validator (asked for {validators})")
    if validators > MAX_VALIDATORS:
        raise ConfigError(
            f"at most {MAX_VALIDATORS} validators fit a local network on one machine "
            f"(asked for {validators})"
        )
    if orgs < 1:
        raise ConfigError(f"a network needs at least one organisation (asked for {orgs})")
    if orgs > validators:
        raise ConfigError(
            f"every organisation needs at least one validator: {orgs} organisations but only "
            f"{validators} validator{'s' if validators != 1 else ''}"
        )
    if not 0 < len(chain_id) <= 64 or not chain_id.isprintable():
        raise ConfigError(f"the chain id must be 1 to 64 printable characters, got {chain_id!r}")
    top = base_port + PORT_STRIDE * (validators - 1) + 1
    if base_port < 1024 or top > 65535:
        raise ConfigError(
            f"ports {base_port}..{top} are out of range: {validators} validators need ports "
            f"from the base port up to base + {PORT_STRIDE * (validators - 1) + 1}, all within "
            "1024..65535 (below 1024 needs root)"
        )
    for name in accounts:
        if not _ACCOUNT.fullmatch(name):
            raise ConfigError(
                f"account name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
    if len(set(accounts)) != len(accounts):
        raise ConfigError(f"account names must be different from each other: {list(accounts)}")
    if passphrase is not None and not passphrase:
        raise ConfigError("the passphrase must not be empty (leave it out for a random one)")
    if kdf_level not in KDF_LEVELS:
        raise ConfigError(f"unknown kdf_level {kdf_level!r}; use one of {', '.join(KDF_LEVELS)}")


def _check_target(out: Path) -> None:
    if (out / LAYOUT_FILE).exists():
        raise ConfigError(
            f"{out} already holds a network ({LAYOUT_FILE}); start it as it is, or delete "
            "the directory to generate a new one"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(
            f"{out} is not empty and holds no network; choose a new or empty directory"
        )


def _write_network(
    root: Path,
    *,
    validators: int,
    orgs: int,
    chain_id: str,
    base_port: int,
    accounts: tuple[str, ...],
    params: ChainParams,
    passphrase: str,
    kdf_level: str,
    peer_address: PeerAddress | None,
    governance: Governance,
    consensus: ConsensusSettings,
    suite: CryptoSuite,
) -> None:
    _write_test_passphrase(root / "passphrase", passphrase)
    cipher = cipher_for_suite(suite.name)  # of every PEM key: SM4 on an sm2-sm3 network

    # Organisations and their CAs.
    org_ids = [f"org{k + 1}" for k in range(orgs)]
    org_names = {oid: f"Organisation {k + 1}" for k, oid in enumerate(org_ids)}
    cas: dict[str, tuple[bytes, bytes]] = {}
    gm_cas: dict[str, tuple[bytes, Signer]] = {}
    for oid in org_ids:
        ca_cert, ca_key = generate_org_ca(oid, org_names[oid])
        cas[oid] = (ca_cert, ca_key)
        org_dir = root / "orgs" / oid
        org_dir.mkdir(parents=True)
        (org_dir / "ca_cert.pem").write_bytes(ca_cert)
        _write_private(org_dir / "ca_key.pem", encrypt_key_pem(ca_key, passphrase, cipher=cipher))
        if suite.name == "sm2-sm3":
            gm_cas[oid] = write_gm_ca(org_dir, oid, org_names[oid], passphrase)

    # Validator keys and ports.
    signers = [Signer.generate(suite) for _ in range(validators)]
    org_of = [org_ids[i % orgs] for i in range(validators)]

    def p2p_port(i: int) -> int:
        return base_port + PORT_STRIDE * i

    def dial(i: int, j: int) -> tuple[str, int]:
        if peer_address is None:
            return "127.0.0.1", p2p_port(j)
        host, port = peer_address(i, j)
        if not host or any(c in host for c in "@,: ") or not 0 < port <= 65535:
            raise ConfigError(f"peer_address({i}, {j}) gave an unusable address {host}:{port}")
        return host, port

    # Demo accounts, organisation admins and genesis.
    keys_dir = root / "keys"
    keys_dir.mkdir()
    account_signers: dict[str, Signer] = {}
    for name in accounts:
        s = Signer.generate(suite)
        account_signers[name] = s
        save_key(keys_dir / f"{name}.json", s, passphrase, kdf_level=kdf_level)
    admins: dict[str, Signer] = {}
    for oid in org_ids:
        admins[oid] = Signer.generate(suite)
        save_key(keys_dir / f"{oid}-admin.json", admins[oid], passphrase, kdf_level=kdf_level)
    members_of: dict[str, list[Member]] = {oid: [] for oid in org_ids}
    for k, s in enumerate(account_signers.values()):
        members_of[org_ids[k % orgs]].append(Member(s.public_key, ("member",)))
    token: dict[str, Any] = {
        "issuers": [{"hex": s.address.hex()} for s in account_signers.values()][:1],
        "balances": {s.address.hex(): DEMO_BALANCE for s in account_signers.values()},
    }
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=time.time_ns() // 1_000_000,
        crypto_suite=suite.name,
        crypto_params=suite.params,
        validators=tuple(Validator(s.public_key, POWER, f"node{i}") for i, s in enumerate(signers)),
        params=params,
        contracts={"token": token},
        organisations=tuple(
            Organisation(
                oid,
                org_names[oid],
                cas[oid][0].decode(),
                admins=(admins[oid].public_key,),
                members=tuple(members_of[oid]),
                gm_ca_cert=gm_cas[oid][0].decode() if oid in gm_cas else "",
            )
            for oid in org_ids
        ),
        governance=governance,
        validator_orgs=tuple((s.public_key, org_of[i]) for i, s in enumerate(signers)),
    )
    (root / "config").mkdir()
    genesis.save(root / "config" / "genesis.json")
    # Check what we wrote the way a node will read it: a bad --chain-id or parameter fails
    # here, with the genesis validator's words, not at the first node start.
    Genesis.load(root / "config" / "genesis.json")
    genesis_bytes = (root / "config" / "genesis.json").read_bytes()

    # Node homes.
    nodes: list[NetNode] = []
    for i, signer in enumerate(signers):
        name, oid = f"node{i}", org_of[i]
        home = root / name
        config_dir = home / "config"
        config_dir.mkdir(parents=True)
        (config_dir / "genesis.json").write_bytes(genesis_bytes)
        _write_test_passphrase(config_dir / "passphrase", passphrase)
        save_key(config_dir / "node_key.json", signer, passphrase, kdf_level=kdf_level)
        cert, tls_key = issue_node_cert(
            cas[oid][0], cas[oid][1], name, chain_id, oid, node_key=node_key_of(signer)
        )
        p2p = P2PSettings(
            listen_host="127.0.0.1",
            listen_port=p2p_port(i),
            persistent_peers=",".join(
                "node{}@{}:{}".format(j, *dial(i, j)) for j in range(validators) if j != i
            ),
            org_id=oid,
        )
        (home / p2p.cert_file).write_bytes(cert)
        _write_private(home / p2p.tls_key_file, encrypt_key_pem(tls_key, passphrase, cipher=cipher))
        if oid in gm_cas:
            write_gm_node_cert(home / p2p.gm_cert_file, gm_cas[oid], signer, name, chain_id, oid)
        api_port = p2p_port(i) + 1
        config = NodeConfig(
            home=home,
            node=NodeSettings(name=name),
            api=ApiConfig(host="127.0.0.1", port=api_port),
            p2p=p2p,
            consensus=consensus,
            keys=TEST_NETWORK_KEYS,
        )
        config.save()
        NodeConfig.load(home)  # what we wrote is what a node accepts
        nodes.append(
            NetNode(
                index=i,
                name=name,
                home=home,
                org=oid,
                api_url=f"http://127.0.0.1:{api_port}",
                api_port=api_port,
                p2p_port=p2p_port(i),
                validator_public_key=signer.public_key.hex(),
            )
        )

    layout = NetworkLayout(
        root=root,
        chain_id=chain_id,
        nodes=tuple(nodes),
        orgs=tuple(
            NetOrg(
                id=oid,
                name=org_names[oid],
                ca_cert_file=root / "orgs" / oid / "ca_cert.pem",
                ca_key_file=root / "orgs" / oid / "ca_key.pem",
                nodes=tuple(n.name for n in nodes if n.org == oid),
                admin_key_file=keys_dir / f"{oid}-admin.json",
            )
            for oid in org_ids
        ),
        passphrase_file=root / "passphrase",
        keys_dir=keys_dir,
        accounts=accounts,
    )
    layout.save()  # last: a directory with network.json holds a complete network


#: What a test network's node.toml says about its keys: the passphrase may sit in plain text
#: beside them, because this is a test network (see :mod:`citychain.crypto.passphrase`).
TEST_NETWORK_KEYS = KeysSettings(allow_plaintext_passphrase=TEST_NETWORK_PHRASE)


def write_gm_ca(org_dir: Path, org_id: str, org_name: str, passphrase: str) -> tuple[bytes, Signer]:
    """An organisation's SM2 CA for an ``sm2-sm3`` network: ``gm_ca_cert.pem`` and its key,
    ``gm_ca_key.pem`` (PKCS#8, encrypted with SM4-CBC under the network passphrase, as
    ``ca_key.pem``; OpenSSL reads it). (PEM, key.)"""
    from citychain.crypto.sm2_certs import issue_sm2_ca, sm2_private_key_pem

    key = Signer.generate(SM2_SM3)
    pem = issue_sm2_ca(org_id, org_name, key.secret)
    (org_dir / "gm_ca_cert.pem").write_bytes(pem)
    key_pem = sm2_private_key_pem(key.secret, passphrase, cipher="sm4-cbc")
    _write_private(org_dir / "gm_ca_key.pem", key_pem)
    return pem, key


def write_gm_node_cert(
    path: Path, ca: tuple[bytes, Signer], signer: Signer, name: str, chain_id: str, org_id: str
) -> None:
    """The node's SM2 certificate (``[p2p] gm_cert_file``) for its node key ``signer``."""
    from citychain.crypto.sm2_certs import issue_sm2_node_cert

    pem = issue_sm2_node_cert(
        ca[0], ca[1].secret, signer.public_key, node_name=name, chain_id=chain_id, org_id=org_id
    )
    path.write_bytes(pem)


def node_key_of(signer: Signer) -> NodeKey:
    """The node key a node certificate names for ``signer`` (its validator key): peers then
    require every connection to be signed by it (:mod:`citychain.p2p.nodekey`)."""
    return NodeKey(signer.suite.name, signer.public_key)


def _write_test_passphrase(path: Path, passphrase: str) -> None:
    """The network's passphrase in plain text (mode 0600), and next to it the note that says
    this is for a test network only (``passphrase.README``)."""
    _write_private(path, (passphrase + "\n").encode())
    write_note(path)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- a new organisation joining -----------------------------------------------------------------
def prepare_joining_org(
    layout: NetworkLayout,
    org_id: str,
    org_name: str | None = None,
    *,
    kdf_level: str = "interactive",
    validator: Signer | None = None,
    keys: KeysSettings | None = None,
) -> tuple[NetworkLayout, NetOrg, NetNode]:
    """Add organisation ``org_id`` (not on the chain yet) with one node to ``layout``.

    Writes its CA (``orgs/<org>/``), its admin key (``keys/<org>-admin.json``) and a node home
    whose ``[p2p] ca_cert_file`` trusts the organisation's own CA until governance admits it;
    the node dials every existing node. Returns the saved layout, the organisation and the
    node. The chain learns nothing here: admit the organisation with an ``add_org`` proposal
    and its node with ``add_validator`` (``citychain gov propose``).

    ``validator`` is a validator key held elsewhere (a key in a PKCS#11 module) and ``keys``
    the ``[keys]`` settings that find it again: no key file is written, and the node's
    certificate names that key, so peers require the module's signature on every connection.
    """
    try:
        check_name(org_id, "organisation id")
    except InvalidInput as exc:
        raise ConfigError(exc.message) from None
    if any(o.id == org_id for o in layout.orgs):
        raise ConfigError(f"the network in {layout.root} already has organisation {org_id!r}")
    root = layout.root
    passphrase = layout.passphrase
    name = org_name or f"Organisation {org_id}"
    ca_cert, ca_key = generate_org_ca(org_id, name)
    org_dir = root / "orgs" / org_id
    org_dir.mkdir(parents=True)
    (org_dir / "ca_cert.pem").write_bytes(ca_cert)
    suite = Genesis.load(layout.genesis_file).suite  # the network's: keys of its suite only
    cipher = cipher_for_suite(suite.name)  # of every PEM key: SM4 on an sm2-sm3 network
    _write_private(org_dir / "ca_key.pem", encrypt_key_pem(ca_key, passphrase, cipher=cipher))
    if validator is not None and validator.suite.name != suite.name:
        raise ConfigError(
            f"the validator key is {validator.suite.name}, the network's suite {suite.name}"
        )
    admin = Signer.generate(suite)
    save_key(layout.keys_dir / f"{org_id}-admin.json", admin, passphrase, kdf_level=kdf_level)

    index = max(n.index for n in layout.nodes) + 1
    node_name = f"node{index}"
    base = layout.nodes[0].p2p_port - PORT_STRIDE * layout.nodes[0].index
    port = base + PORT_STRIDE * index
    if port + 1 > 65535:
        raise ConfigError(f"no free port range for a node {index} above base port {base}")
    home = root / node_name
    config_dir = home / "config"
    config_dir.mkdir(parents=True)
    shutil.copyfile(layout.genesis_file, config_dir / "genesis.json")
    _write_test_passphrase(config_dir / "passphrase", passphrase)
    if validator is None:
        signer = Signer.generate(suite)
        save_key(config_dir / "node_key.json", signer, passphrase, kdf_level=kdf_level)
    else:
        signer = validator
    (config_dir / "org_ca_cert.pem").write_bytes(ca_cert)
    cert, tls_key = issue_node_cert(
        ca_cert, ca_key, node_name, layout.chain_id, org_id, node_key=node_key_of(signer)
    )
    gm = suite.name == "sm2-sm3"
    p2p = P2PSettings(
        listen_host="127.0.0.1",
        listen_port=port,
        persistent_peers=",".join(f"{n.name}@127.0.0.1:{n.p2p_port}" for n in layout.nodes),
        org_id=org_id,
        ca_cert_file="config/org_ca_cert.pem",
        gm_ca_cert_file="config/org_gm_ca_cert.pem" if gm else "",
    )
    (home / p2p.cert_file).write_bytes(cert)
    _write_private(home / p2p.tls_key_file, encrypt_key_pem(tls_key, passphrase, cipher=cipher))
    if gm:
        gm_ca = write_gm_ca(org_dir, org_id, name, passphrase)
        (config_dir / "org_gm_ca_cert.pem").write_bytes(gm_ca[0])
        write_gm_node_cert(
            home / p2p.gm_cert_file, gm_ca, signer, node_name, layout.chain_id, org_id
        )
    # Consensus settings as the network's first node has them (empty blocks, sync window).
    consensus = NodeConfig.load(layout.nodes[0].home).consensus
    config = NodeConfig(
        home=home,
        node=NodeSettings(name=node_name),
        api=ApiConfig(host="127.0.0.1", port=port + 1),
        p2p=p2p,
        consensus=consensus,
        keys=TEST_NETWORK_KEYS
        if keys is None
        else replace(keys, allow_plaintext_passphrase=TEST_NETWORK_PHRASE),
    )
    config.save()
    NodeConfig.load(home)
    node = NetNode(
        index=index,
        name=node_name,
        home=home,
        org=org_id,
        api_url=f"http://127.0.0.1:{port + 1}",
        api_port=port + 1,
        p2p_port=port,
        validator_public_key=signer.public_key.hex(),
    )
    org = NetOrg(
        id=org_id,
        name=name,
        ca_cert_file=org_dir / "ca_cert.pem",
        ca_key_file=org_dir / "ca_key.pem",
        nodes=(node_name,),
        admin_key_file=layout.keys_dir / f"{org_id}-admin.json",
    )
    new = NetworkLayout(
        root=root,
        chain_id=layout.chain_id,
        nodes=(*layout.nodes, node),
        orgs=(*layout.orgs, org),
        passphrase_file=layout.passphrase_file,
        keys_dir=layout.keys_dir,
        accounts=layout.accounts,
    )
    new.save()
    return new, org, node
