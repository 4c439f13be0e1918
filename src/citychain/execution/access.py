"""Who may send what: the identity registry and access policies, as the executor reads them.

Theory of operation
-------------------
The governance contract (:mod:`citychain.services.gov.contract`) owns these records; they
live in its namespace ``c/gov/`` so they are part of the state root and every answer
about them can carry a proof. This module is the one place that knows their layout, so the
executor (which checks every transaction) and the contract (which changes them) cannot
disagree::

    cfg                      {"mode": "open" | "key" | "certificate", "voting_period": int}
    org/<org id>             {"id", "name", "ca_cert" (PEM), "ca_fp" (sha256 of DER), "admins"}
    mem/<address 20 bytes>   {"org", "roles", "public_key", "serial" (cert mode, else 0),
                              "ca_fp", "not_after" (ms, cert mode, else 0), "revoked"}
    frz/<address 20 bytes>   true: the account (or contract address) is frozen
    rev/<org id>/<serial>    {"height"}: a revoked certificate (serial: 20 bytes big-endian)
    pol/<contract>.<method>  a Policy map: who may call that method
    kpol/<proposal kind>     a Policy map: who may propose, vote on and pass that kind
    role/<org id>/<role>     true: a role the organisation defined
    sysver/<contract>        the enabled version of a system contract (CBOR uint)

Identity modes (``cfg.mode``, fixed in genesis):

* ``open``: no registry; any valid signature may call any method (development chains).
* ``key``: registered keys. An account is a member once an admin of its organisation
  registered its public key (genesis lists each organisation's admin keys).
* ``certificate``: X.509. An account enrols by presenting a certificate issued by its
  organisation's CA for its own key (``gov.enroll``, a method non-members may call);
  the certificate's serial, CA fingerprint and expiry are kept in the member record, and each
  transaction is refused once the serial is revoked on chain, the certificate has expired at
  the block's time, or the organisation's CA was replaced.

:func:`check_access` runs for every transaction after the signature, nonce and gas checks.
Each signer (the sender, then its endorsers) must be a member in good standing (except a
lone non-member sender of one of :data:`NON_MEMBER_METHODS`, a citizen, whom the called
contract checks instead): its
organisation still on the chain, its key or certificate not revoked, its account not frozen.
The called contract must not be frozen. Then the method's policy (``pol/<contract>.<method>``,
else the contract's default ``pol/<contract>.*``, else "ANY member") is evaluated over the
organisations of the signers it admits (see :mod:`citychain.types.policy`). A refusal names
the policy and what it lacked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from citychain import codec
from citychain.errors import DecodeError, ErrorCode, ExecutionFailure, InternalError
from citychain.execution.keys import contract_key
from citychain.types.policy import Policy

GOV = "gov"
MODES = ("open", "key", "certificate")
BUILTIN_ROLES = ("admin", "auditor", "member", "validator")
#: The methods a non-member may call in certificate mode (to become a member).
PUBLIC_METHODS = frozenset({(GOV, "enroll")})
#: The methods an account that is no member may call too: a citizen's own key (its did:key)
#: asks for, and records downloads of, records about the citizen; the ``data`` contract checks
#: that they are. A member who calls them is checked as for any other method.
NON_MEMBER_METHODS = frozenset({("data", "request_access"), ("data", "record_access")})
#: The policy of a method nobody configured: any member of any organisation.
DEFAULT_POLICY = Policy("ANY")

CFG = b"cfg"
ORG = b"org/"
MEM = b"mem/"
FRZ = b"frz/"
REV = b"rev/"
POL = b"pol/"
KPOL = b"kpol/"
ROLE = b"role/"
SYSVER = b"sysver/"
VALSET = b"val"
PARAMS = b"params"

#: Full state keys the chain watches in a block's writes.
VALSET_KEY = contract_key(GOV, VALSET)
PARAMS_KEY = contract_key(GOV, PARAMS)
ORG_PREFIX = contract_key(GOV, ORG)
SYSVER_PREFIX = contract_key(GOV, SYSVER)


def org_key(org_id: str) -> bytes:
    return ORG + org_id.encode()


def member_key(address: bytes) -> bytes:
    return MEM + address


def frozen_key(address: bytes) -> bytes:
    return FRZ + address


def revoked_key(org_id: str, serial: int) -> bytes:
    return REV + org_id.encode() + b"/" + serial.to_bytes(20, "big")


def policy_key(contract: str, method: str) -> bytes:
    return POL + f"{contract}.{method}".encode()


def kind_policy_key(kind: str) -> bytes:
    return KPOL + kind.encode()


def role_key(org_id: str, role: str) -> bytes:
    return ROLE + org_id.encode() + b"/" + role.encode()


def sysver_key(contract: str) -> bytes:
    return SYSVER + contract.encode()


def load(raw: bytes | None, what: str) -> Any:
    """Decode a governance record; a malformed one is the node's fault, not the caller's."""
    if raw is None:
        return None
    try:
        return codec.decode_trusted(raw)  # our own records: written canonical by this code
    except DecodeError:
        raise InternalError(f"governance state holds a malformed {what}: {raw.hex()}") from None


@dataclass(frozen=True, slots=True)
class Member:
    """A registered account: its organisation, roles and credential."""

    org: str
    roles: tuple[str, ...]
    public_key: bytes
    serial: int = 0
    ca_fp: bytes = b""
    not_after: int = 0
    revoked: bool = False

    def to_value(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "roles": list(self.roles),
            "public_key": self.public_key,
            "serial": self.serial,
            "ca_fp": self.ca_fp,
            "not_after": self.not_after,
            "revoked": self.revoked,
        }

    @classmethod
    def from_value(cls, raw: Any) -> Member:
        try:
            return cls(
                raw["org"],
                tuple(raw["roles"]),
                raw["public_key"],
                raw["serial"],
                raw["ca_fp"],
                raw["not_after"],
                raw["revoked"],
            )
        except (KeyError, TypeError):
            raise InternalError("governance state holds a malformed member record") from None


#: ``get(key_inside_gov_namespace) -> value or None``: how the checks read state.
Reader = Callable[[bytes], bytes | None]
_MISSING: Any = object()
#: "Holds at any block time."
FOREVER = 2**63 - 1


class GovCache:
    """Governance records of the *committed* state, memoised between the blocks that change
    them (every transaction's access checks read the same few records).

    The chain invalidates it after committing a block that wrote under ``c/gov/``, and only
    after the write is visible. A value read before an invalidation is not kept: each read
    notes the generation it started in and stores its value only if no invalidation happened
    meanwhile, so a stale record can never be cached (the mempool reads on the event loop
    while blocks commit on the execution thread). Bounded: it starts over when full.
    """

    __slots__ = ("_gen", "_lock", "_values", "max_entries")

    def __init__(self, max_entries: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._gen = 0
        self._values: dict[bytes, Any] = {}
        self.max_entries = max_entries

    def read(self, key: bytes, load_value: Callable[[], Any]) -> Any:
        value = self._values.get(key, _MISSING)
        if value is not _MISSING:
            return value
        gen = self._gen
        value = load_value()
        with self._lock:
            if self._gen == gen:
                if len(self._values) >= self.max_entries:
                    self._values = {}
                self._values[key] = value
        return value

    @property
    def generation(self) -> int:
        """Changes at every invalidation; take it before reading the records a value is
        computed from, and give it to :meth:`remember`."""
        return self._gen

    def recall(self, key: Any) -> Any:
        """A value stored with :meth:`remember`, or None."""
        return self._values.get(key)

    def remember(self, key: Any, value: Any, generation: int) -> None:
        """Store ``value`` unless an invalidation happened since ``generation``."""
        with self._lock:
            if self._gen == generation:
                if len(self._values) >= self.max_entries:
                    self._values = {}
                self._values[key] = value

    def invalidate(self) -> None:
        with self._lock:
            self._gen += 1
            self._values = {}


def mode(get: Reader) -> str:
    cfg = load(get(CFG), "configuration")
    return "open" if cfg is None else str(cfg["mode"])


def member(get: Reader, address: bytes) -> Member | None:
    raw = load(get(member_key(address)), "member record")
    return None if raw is None else Member.from_value(raw)


def organisation(get: Reader, org_id: str) -> dict[str, Any] | None:
    raw: dict[str, Any] | None = load(get(org_key(org_id)), "organisation")
    return raw


def method_policy(get: Reader, contract: str, method: str) -> tuple[str, Policy]:
    """The policy of ``contract.method`` and the name it goes by."""
    for name in (f"{contract}.{method}", f"{contract}.*"):
        raw = load(get(POL + name.encode()), "policy")
        if raw is not None:
            return name, Policy.from_value(raw)
    return f"{contract}.{method} (default)", DEFAULT_POLICY


def _refuse(code: ErrorCode, message: str) -> ExecutionFailure:
    return ExecutionFailure(message, code)


def standing(get: Reader, address: bytes, block_time: int, who: str) -> Member:
    """``address``'s member record if it may act now; otherwise the refusal saying why."""
    m = member(get, address)
    if m is None:
        raise _refuse(
            ErrorCode.NOT_MEMBER,
            f"{who} {address.hex()} is not a registered member of any organisation",
        )
    org = organisation(get, m.org)
    if org is None:
        raise _refuse(
            ErrorCode.NOT_MEMBER,
            f"{who} {address.hex()} belongs to organisation {m.org!r}, which was removed from "
            "the chain",
        )
    if m.revoked:
        raise _refuse(ErrorCode.REVOKED, f"the key of {who} {address.hex()} was revoked")
    if m.serial:
        if get(revoked_key(m.org, m.serial)) is not None:
            raise _refuse(
                ErrorCode.REVOKED,
                f"the certificate of {who} {address.hex()} (organisation {m.org}, serial "
                f"{m.serial:x}) was revoked",
            )
        if m.ca_fp != org["ca_fp"]:
            raise _refuse(
                ErrorCode.REVOKED,
                f"the certificate of {who} {address.hex()} was issued by a CA that organisation "
                f"{m.org} no longer uses; enrol again with a certificate from its current CA",
            )
        if block_time > m.not_after:
            raise _refuse(
                ErrorCode.REVOKED,
                f"the certificate of {who} {address.hex()} has expired; enrol again with a "
                "renewed certificate",
            )
    if get(frozen_key(address)) is not None:
        raise _refuse(ErrorCode.FROZEN, f"account {address.hex()} is frozen by governance")
    return m


def check_access(
    get: Reader,
    list_orgs: Callable[[], list[str]],
    *,
    contract: str,
    method: str,
    contract_address: bytes,
    signers: Iterable[bytes],
    block_time: int,
) -> int:
    """Raise the refusal for a transaction calling ``contract.method`` signed by the
    accounts ``signers`` (sender first), or return if it may run. See the module docstring.

    Returns the last block time at which the same answer holds on the same records (the
    earliest expiry of the signers' certificates; ``FOREVER`` without certificates), so the
    answer can be remembered until governance changes a record (:class:`GovCache`)."""
    if mode(get) == "open":
        return FOREVER
    if get(frozen_key(contract_address)) is not None:
        raise _refuse(ErrorCode.FROZEN, f"contract {contract!r} is frozen by governance")
    signer_list = list(signers)
    if (contract, method) in PUBLIC_METHODS:
        if get(frozen_key(signer_list[0])) is not None:
            raise _refuse(ErrorCode.FROZEN, f"account {signer_list[0].hex()} is frozen")
        return FOREVER
    if (
        (contract, method) in NON_MEMBER_METHODS
        and len(signer_list) == 1
        and member(get, signer_list[0]) is None
    ):
        if get(frozen_key(signer_list[0])) is not None:
            raise _refuse(ErrorCode.FROZEN, f"account {signer_list[0].hex()} is frozen")
        return FOREVER
    members = [
        standing(get, a, block_time, "sender" if i == 0 else "endorser")
        for i, a in enumerate(signer_list)
    ]
    name, policy = method_policy(get, contract, method)
    orgs = list_orgs()
    approving = [m.org for m in members if policy.admits(m.org, m.roles, orgs)]
    if not policy.met(approving, orgs):
        raise _refuse(
            ErrorCode.POLICY_NOT_MET,
            f"policy {name} ({policy.describe()}) is not met: {policy.shortfall(approving, orgs)}",
        )
    return min((m.not_after for m in members if m.serial), default=FOREVER)
