"""The governance proposal kinds and their parameters, declared once.

Pure data shared by the ``gov`` contract (which checks a proposal's params against
:data:`KIND_PARAMS`), the SDK (which builds params from ``NAME=VALUE`` text and convenience
flags, :func:`citychain.sdk.build_params`) and the CLI (whose ``gov propose`` flags are
:data:`FLAGS`). Nothing here imports the contract, so the SDK may use it.

A kind has one or more *shapes*: the params it takes, required and optional. ``revoke`` takes
an ``address`` or an ``org`` and ``serial``; ``freeze``/``unfreeze`` an ``address`` or a
``contract``. :data:`FLAGS` is derived: a flag applies to every kind one of whose shapes
names its parameter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from citychain.crypto import HashNew
from citychain.types import Validator, ValidatorSet


@dataclass(frozen=True, slots=True)
class Shape:
    """One accepted set of params of a proposal kind."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.required + self.optional


#: Each proposal kind (in the order people are told them) and the shapes of its params.
KIND_PARAMS: dict[str, tuple[Shape, ...]] = {
    "add_org": (Shape(("id", "name", "ca_cert", "admins"), ("roles", "gm_ca_cert")),),
    "update_org": (Shape(("id",), ("name", "ca_cert", "admins", "gm_ca_cert")),),
    "remove_org": (Shape(("id",)),),
    "add_validator": (Shape(("public_key", "power", "name", "org")),),
    "remove_validator": (Shape(("public_key",)),),
    "set_validator_power": (Shape(("public_key", "power")),),
    "set_params": (Shape(("params",)),),
    "revoke": (Shape(("address",)), Shape(("org", "serial"))),
    "freeze": (Shape(("address",)), Shape(("contract",))),
    "unfreeze": (Shape(("address",)), Shape(("contract",))),
    "enable_contract": (Shape(("contract", "version")),),
    "set_policy": (Shape(("target", "policy")),),
}

#: The proposal kinds, in order.
KIND_NAMES: tuple[str, ...] = tuple(KIND_PARAMS)

#: The convenience flags of ``gov propose`` and the parameter each sets (``--admin`` and
#: ``--admin-key-file`` both add to ``admins``; list-valued flags may be repeated).
FLAG_PARAMS: dict[str, str] = {
    "--org-id": "id",
    "--name": "name",
    "--ca-cert": "ca_cert",
    "--gm-ca-cert": "gm_ca_cert",
    "--admin": "admins",
    "--admin-key-file": "admins",
    "--role": "roles",
    "--public-key": "public_key",
    "--power": "power",
    "--org": "org",
    "--address": "address",
}


def kinds_taking(param: str) -> tuple[str, ...]:
    """The kinds one of whose shapes has ``param``, in :data:`KIND_NAMES` order."""
    return tuple(k for k, shapes in KIND_PARAMS.items() if any(param in s.names for s in shapes))


#: Flag -> (the parameter it sets, the kinds it is for): derived from the two tables above.
FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    flag: (param, kinds_taking(param)) for flag, param in FLAG_PARAMS.items()
}


def check_policy_target(target: str) -> None:
    """``gov:<kind>`` of a known kind (else :class:`~citychain.errors.NotFound`), or
    ``contract.method`` / ``contract.*`` of names (else ``bad_arguments``)."""
    from citychain.errors import CitychainError, ErrorCode, InvalidInput, NotFound
    from citychain.types.policy import check_name

    if target.startswith("gov:"):
        if target[4:] not in KIND_PARAMS:
            raise NotFound(f"no proposal kind {target[4:]!r} (kinds: {', '.join(KIND_NAMES)})")
        return

    def is_name(value: str) -> bool:
        try:
            check_name(value, "name")
        except CitychainError:
            return False
        return True

    contract, _, method = target.partition(".")
    if not (is_name(contract) and (method == "*" or is_name(method))):
        raise InvalidInput(
            f"policy target {target[:80]!r} must be 'contract.method', 'contract.*' or "
            "'gov:<kind>'",
            ErrorCode.BAD_ARGUMENTS,
        )


# -- what the SDK's ``client.gov`` returns (plain frozen data from the contract's answers) --


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

    def validator_set(self, hash_new: HashNew = hashlib.sha256) -> ValidatorSet:
        """The set, hashed with the chain's hash ``hash_new`` (SHA-256 unless given)."""
        return ValidatorSet(
            (Validator(v.public_key, v.power, v.name) for v in self.validators), hash_new=hash_new
        )


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """An access policy: who may call ``target`` (``contract.method``, ``contract.*``) or
    propose, vote on and pass a proposal kind (``gov:<kind>``)."""

    target: str
    rule: str
    orgs: tuple[str, ...]
    roles: tuple[str, ...]
    describe: str
