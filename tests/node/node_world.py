"""Shared by the node tests: a one-validator token chain."""

from __future__ import annotations

from pathlib import Path

from citychain.crypto import ED25519, Signer
from citychain.types import Validator
from citychain.types.genesis import ChainParams, Genesis


def token_genesis(home: Path, params: ChainParams | None = None) -> tuple[Signer, Signer]:
    """A one-validator genesis in ``home`` where alice holds 100 tokens: (validator, alice)."""
    val, alice = Signer(ED25519, b"\x01" * 32), Signer(ED25519, b"\x02" * 32)
    (home / "config").mkdir()
    Genesis(
        "svc",
        1,
        "ed25519",
        (Validator(val.public_key, 1, "v"),),
        contracts={"token": {"balances": {alice.address.hex(): 100}}},
        params=params or ChainParams(),
    ).save(home / "config" / "genesis.json")
    return val, alice
