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
from citychain.types import Header, Validator, ValidatorSet
from citychain.types.answers import AccountInfo as AccountInfo
from citychain.types.answers import BlockInfo as BlockInfo
from citychain.types.answers import EvidenceInfo as EvidenceInfo
from citychain.types.answers import NodeStatus as NodeStatus
from citychain.types.answers import StateProof as StateProof
from citychain.types.answers import SubmitResult as SubmitResult
from citychain.types.answers import TxInfo as TxInfo
from citychain.types.answers import TxStatus as TxStatus


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


@dataclass(frozen=True, slots=True)
class OrgInfo:
    """A member organisation: its CA (PEM and sha256 fingerprint of the DER form) and admin
    keys; ``roles`` (built-in and custom) only from :meth:`Gov.org`, empty in listings."""

    id: str
    name: str
    ca_cert: str
    ca_fp: bytes
    admins: tuple[bytes, ...]
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A registered account. ``standing`` is ``"ok"`` or the reason its transactions would be
    refused (revoked, frozen, expired certificate, ...); None in :meth:`Gov.members` listings,
    which do not evaluate it."""

    address: bytes
    org: str
    roles: tuple[str, ...]
    public_key: bytes
    serial: int
    ca_fp: bytes
    not_after: int
    revoked: bool
    standing: str | None = None

    @property
    def in_good_standing(self) -> bool:
        return self.standing == "ok"


@dataclass(frozen=True, slots=True)
class ProposalVote:
    voter: bytes
    org: str
    approve: bool
    height: int


@dataclass(frozen=True, slots=True)
class ProposalInfo:
    """A governance proposal as the chain sees it now. ``status`` is ``open``, ``executed`` or
    ``expired`` (past its deadline, even before someone calls ``expire``); ``passed`` says
    whether the yes votes meet the kind's ``policy`` now, ``needs`` what is missing, in words;
    ``result`` is what execution changed (e.g. ``from_height`` of a validator change)."""

    id: int
    kind: str
    params: Any
    proposer: bytes
    proposer_org: str
    created: int
    created_time: int
    deadline: int
    status: str
    votes: tuple[ProposalVote, ...]
    executed_height: int
    result: Any
    policy: str
    approving_orgs: tuple[str, ...]
    passed: bool
    needs: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One governance action: ``action`` (propose, vote, execute, expire, register_member,
    ...) by ``actor`` (an address) in transaction ``tx`` at ``height``; ``proposal`` is 0 for
    actions outside proposals."""

    seq: int
    height: int
    time: int
    tx: bytes
    actor: bytes
    action: str
    proposal: int
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GovValidator:
    public_key: bytes
    power: int
    name: str
    org: str


@dataclass(frozen=True, slots=True)
class GovValidators:
    """The validator set governance last decided, in force from ``from_height`` (two heights
    after the proposal that changed it executed; 1 for the genesis set). Not proven: compare
    :meth:`validator_set` ``.hash`` with a verified header's ``validators_hash``."""

    from_height: int
    validators: tuple[GovValidator, ...]

    def validator_set(self) -> ValidatorSet:
        return ValidatorSet(Validator(v.public_key, v.power, v.name) for v in self.validators)


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """An access policy: who may call ``target`` (``contract.method``, ``contract.*``) or
    propose, vote on and pass a proposal kind (``gov:<kind>``)."""

    target: str
    rule: str
    orgs: tuple[str, ...]
    roles: tuple[str, ...]
    describe: str
