"""The SDK client a command uses, with the trust anchors the user has on disk.

If a genesis file is known (``--genesis``, or ``<home>/config/genesis.json`` as ``citychain
init`` writes it), its chain id and validator set are what proofs are checked against.
Otherwise the validator set is taken from the node itself on first use, which proves that
the node's answers are consistent with the set it claims, not that the set is the real one:
the commands say so when they print a verification.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from citychain.cli._output import home_dir
from citychain.crypto import CryptoSuite
from citychain.sdk import Client
from citychain.types import ValidatorSet


@dataclass(frozen=True, slots=True)
class Trust:
    chain_id: str | None
    validators: ValidatorSet | None
    #: The genesis's suite under its parameters (an SM2 chain's ID), or None to learn it.
    suite: CryptoSuite | None
    source: str  # for people: where the trusted validator set comes from


def trust_from(genesis: Path | None, home: Path | None) -> Trust:
    from citychain.types.genesis import Genesis

    path = genesis
    if path is None:
        candidate = home_dir(home) / "config" / "genesis.json"
        path = candidate if candidate.is_file() else None
    if path is None:
        return Trust(None, None, None, "the node itself (trust on first use)")
    g = Genesis.load(path)
    return Trust(g.chain_id, g.validator_set, g.suite, f"genesis {path}")


def make_client(url: str, trust: Trust | None = None, timeout: float = 10.0) -> Client:
    """A client of ``url`` trusting ``trust`` (or, without one, the node on first use)."""
    t = trust or Trust(None, None, None, "the node itself (trust on first use)")
    return Client(url, chain_id=t.chain_id, validators=t.validators, suite=t.suite, timeout=timeout)
