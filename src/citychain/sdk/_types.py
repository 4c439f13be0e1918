"""What the SDK returns: plain frozen data built from the node's JSON answers.

The node's answers (status, blocks, transactions, accounts, evidence, submissions) are the
node's own classes from :mod:`citychain.types.answers`, re-exported here: one definition, which
the node builds, the API renders and :mod:`citychain.sdk._parse` rebuilds from the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citychain import codec
from citychain.types import CommittedEvent as CommittedEvent  # one type, shared with the node
from citychain.types import Header
from citychain.types.answers import AccountInfo as AccountInfo
from citychain.types.answers import BlockInfo as BlockInfo
from citychain.types.answers import EvidenceInfo as EvidenceInfo
from citychain.types.answers import NodeStatus as NodeStatus
from citychain.types.answers import StateProof as StateProof
from citychain.types.answers import SubmitResult as SubmitResult
from citychain.types.answers import TxInfo as TxInfo
from citychain.types.answers import TxStatus as TxStatus
from citychain.types.answers import WithheldTx as WithheldTx


@dataclass(frozen=True, slots=True)
class VerifiedValue:
    """A state value (or its absence) at ``height``.

    When ``verified`` is true the SDK checked, in this order: the commit finalises ``header``
    (signatures by distinct members of the trusted validator set holding more than 2/3 of
    its power, and the header names that set), and the ICS-23 proof shows ``key = value``
    (or that ``key`` is absent) under ``header.state_root``. ``signed_power`` of
    ``total_power`` is how much of the set signed.
    """

    key: bytes
    value: bytes | None
    height: int
    header: Header
    verified: bool
    signed_power: int = 0
    total_power: int = 0
    signers: int = 0
    validators: int = 0

    @property
    def exists(self) -> bool:
        return self.value is not None

    def decode(self) -> Any:
        """The value as a canonical CBOR value (None when absent)."""
        return codec.decode(self.value) if self.value is not None else None


# -- governance (the ``gov`` contract's query answers) ----------------------------------------
