"""Creating a node's home directory: keys, genesis and config (`citychain init`)."""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citychain.crypto import ED25519, Signer
from citychain.crypto.keystore import save_key, save_plaintext_key
from citychain.errors import ConfigError
from citychain.node.config import NodeConfig, NodeSettings
from citychain.p2p.certs import encrypt_key_pem, generate_org_ca
from citychain.types import Validator
from citychain.types.genesis import ChainParams, Genesis, Governance, Member, Organisation

log = logging.getLogger(__name__)

#: Tokens minted at genesis to each demo account.
DEMO_BALANCE = 10**12
#: The one organisation of a chain made by ``citychain init``.
ORG_ID = "org1"
ORG_NAME = "Organisation 1"


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
    kdf_level: str = "moderate",
    genesis_time: int | None = None,
) -> InitResult:
    """Create ``home`` with a validator key, demo accounts, genesis and config.

    Keys are encrypted with ``passphrase``; if none is given a random one is generated and
    written to ``config/passphrase`` (mode 0600) so the node can start unattended. With
    ``plaintext_key`` (dev only) the validator key is stored unencrypted and the config says
    so; the node logs a warning at every start.
    """
    config_dir = home / "config"
    if (config_dir / "genesis.json").exists():
        raise ConfigError(f"{home} is already initialised (found config/genesis.json)")
    config_dir.mkdir(parents=True, exist_ok=True)
    pass_file: Path | None = None
    if passphrase is None and not plaintext_key:
        passphrase = secrets.token_urlsafe(24)
        pass_file = config_dir / "passphrase"
        _write_secret(pass_file, passphrase)

    validator = Signer.generate(ED25519)
    key_path = config_dir / "node_key.json"
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
        s = Signer.generate(ED25519)
        signers[name] = s
        save(name, s)
    # One organisation governs a single-node chain: its admin key registers members and
    # passes proposals; the demo accounts are its members (key identity mode).
    admin = Signer.generate(ED25519)
    save(f"{ORG_ID}-admin", admin)
    ca_cert, ca_key = generate_org_ca(ORG_ID, ORG_NAME)
    org_dir = home / "orgs" / ORG_ID
    org_dir.mkdir(parents=True, exist_ok=True)
    (org_dir / "ca_cert.pem").write_bytes(ca_cert)
    # The CA key issues member certificates (certificate identity mode) and node
    # certificates; encrypted like every other key unless the home is a plaintext dev home.
    _write_secret(
        org_dir / "ca_key.pem",
        (ca_key if plaintext_key else encrypt_key_pem(ca_key, passphrase or "")).decode().strip(),
    )

    token: dict[str, Any] = {
        "issuers": [{"hex": s.address.hex()} for s in signers.values()][:1],
        "balances": {s.address.hex(): DEMO_BALANCE for s in signers.values()},
    }
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=genesis_time if genesis_time is not None else time.time_ns() // 1_000_000,
        crypto_suite=ED25519.name,
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
            ),
        ),
        governance=Governance("key"),
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
    )
    config.save()
    return InitResult(config, genesis, validator, signers, pass_file)
