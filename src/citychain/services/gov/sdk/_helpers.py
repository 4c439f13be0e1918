"""``client.gov``: the governance contract from the SDK (organisations, members, proposals).

Reads go through the generic contract query (``POST /v1/query/gov/<query>``), so they work
against any node that runs the ``gov`` contract; they are *not* proven (use
:meth:`Client.get_state` for proven state). Writes are ``gov`` transactions sent with
:meth:`Client.send`: each waits for its commit and raises :class:`ExecutionFailure` with the
receipt's code (e.g. ``policy_not_met``, ``proposal_not_passed``, ``duplicate``) when the
contract refused it, so a helper that returns has taken effect. A refusal at admission (e.g.
``not_member``) raises as :meth:`Client.submit` does.

A proposal's life (see :mod:`citychain.services.gov.contract`): ``propose`` (the proposer's vote
counts as yes) -> ``vote`` by members of other organisations until the kind's policy is met
(``proposal(id).passed``) -> ``execute`` (anyone) before the deadline; or ``expire`` after
it. A validator change is in force from ``execute(...)["from_height"]``.

Addresses (``member``, ``remove_member``, the ``address`` of a ``revoke``/``freeze``/``unfreeze``
proposal) are bytes or 40 hex digits; anything else is refused with ``bad_arguments`` before
anything is signed (:mod:`citychain.types.address`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from citychain.crypto import Signer
from citychain.sdk import _parse
from citychain.sdk._services import AsyncServiceClient, ServiceClient
from citychain.sdk._services import committed as committed_call
from citychain.services.gov.shapes import (
    GovValidator,
    GovValidators,
    HistoryEntry,
    MemberInfo,
    OrgInfo,
    PolicyInfo,
    ProposalInfo,
    ProposalVote,
    check_policy_target,
)
from citychain.types import Receipt
from citychain.types.address import to_address

_SyncNode = ServiceClient
_AsyncNode = AsyncServiceClient

GOV = "gov"
T = TypeVar("T")
#: Gas for a governance transaction unless told otherwise (proposals carry certificates).
GOV_GAS_LIMIT = 2_000_000

# -- checking the contract's answers ---------------------------------------------------------


def _b(v: Any) -> bytes:
    if type(v) is not bytes:
        raise TypeError(f"expected bytes, got {type(v).__name__}")
    return v


def _s(v: Any) -> str:
    return _parse.text(v)


def _i(v: Any) -> int:
    return _parse.integer(v)


def _flag(v: Any) -> bool:
    if type(v) is not bool:
        raise TypeError(f"expected true or false, got {type(v).__name__}")
    return v


def _seq(v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise TypeError(f"expected a list, got {type(v).__name__}")
    return v


def _texts(v: Any) -> tuple[str, ...]:
    return tuple(_s(x) for x in _seq(v))


def parse_org(raw: Any) -> OrgInfo:
    d = _parse.obj(raw)
    return OrgInfo(
        id=_s(d["id"]),
        name=_s(d["name"]),
        ca_cert=_s(d["ca_cert"]),
        ca_fp=_b(d["ca_fp"]),
        admins=tuple(_b(a) for a in _seq(d["admins"])),
        roles=_texts(d.get("roles", [])),
    )


def parse_member(raw: Any) -> MemberInfo:
    d = _parse.obj(raw)
    standing = d.get("standing")
    return MemberInfo(
        address=_b(d["address"]),
        org=_s(d["org"]),
        roles=_texts(d["roles"]),
        public_key=_b(d["public_key"]),
        serial=_i(d["serial"]),
        ca_fp=_b(d["ca_fp"]),
        not_after=_i(d["not_after"]),
        revoked=_flag(d["revoked"]),
        standing=None if standing is None else _s(standing),
    )


def parse_proposal(raw: Any) -> ProposalInfo:
    d = _parse.obj(raw)
    votes = []
    for v in _seq(d["votes"]):
        voter, org_id, approve, height = _seq(v)
        votes.append(ProposalVote(_b(voter), _s(org_id), _flag(approve), _i(height)))
    return ProposalInfo(
        id=_i(d["id"]),
        kind=_s(d["kind"]),
        params=d["params"],
        proposer=_b(d["proposer"]),
        proposer_org=_s(d["proposer_org"]),
        created=_i(d["created"]),
        created_time=_i(d["created_time"]),
        deadline=_i(d["deadline"]),
        status=_s(d["status"]),
        votes=tuple(votes),
        executed_height=_i(d["executed_height"]),
        result=d["result"],
        policy=_s(d["policy"]),
        approving_orgs=_texts(d["approving_orgs"]),
        passed=_flag(d["passed"]),
        needs=_s(d["needs"]),
    )


def parse_history_entry(raw: Any) -> HistoryEntry:
    d = _parse.obj(raw)
    return HistoryEntry(
        seq=_i(d["seq"]),
        height=_i(d["height"]),
        time=_i(d["time"]),
        tx=_b(d["tx"]),
        actor=_b(d["actor"]),
        action=_s(d["action"]),
        proposal=_i(d["proposal"]),
        detail=_parse.obj(d["detail"]),
    )


def parse_validators(raw: Any) -> GovValidators:
    d = _parse.obj(raw)
    vals = []
    for v in _seq(d["validators"]):
        public_key, power, name, org_id = _seq(v)
        vals.append(GovValidator(_b(public_key), _i(power), _s(name), _s(org_id)))
    return GovValidators(_i(d["from"]), tuple(vals))


def parse_policy(raw: Any) -> PolicyInfo:
    d = _parse.obj(raw)
    rule = d["rule"]
    return PolicyInfo(
        target=_s(d["target"]),
        rule=str(rule) if type(rule) is int else _s(rule),
        orgs=_texts(d.get("orgs", [])),
        roles=_texts(d.get("roles", [])),
        describe=_s(d["describe"]),
    )


def source_of(target: str, in_force: PolicyInfo, configured: Sequence[PolicyInfo]) -> str | None:
    """The explicitly set policy that decides ``target`` (None: the built-in default)."""
    if target.startswith("gov:"):
        return target if any(p.target == target for p in configured) else None
    # for a method the contract names the policy that applies, "(default)" when none does
    return None if in_force.target.endswith(" (default)") else in_force.target


def many(what: str, raw: Any, one: Callable[[Any], T]) -> list[T]:
    return _parse.parsed(what, lambda: [one(x) for x in _seq(raw)])


def committed(method: str, receipt: Receipt) -> Receipt:
    """``receipt`` if ``gov.<method>`` succeeded, else :class:`ExecutionFailure` with its code."""
    return committed_call(GOV, method, receipt)


def proposal_id(receipt: Receipt) -> int:
    return _parse.parsed("gov.propose result", lambda: _i(receipt.result))


def result_address(receipt: Receipt, method: str) -> bytes:
    return _parse.parsed(f"gov.{method} result", lambda: _b(receipt.result))


def detail(receipt: Receipt) -> dict[str, Any]:
    return _parse.parsed("gov.execute result", lambda: _parse.obj(receipt.result))


# -- request arguments -------------------------------------------------------------------------


def propose_args(kind: str, params: Any, deadline: int | None) -> dict[str, Any]:
    args: dict[str, Any] = {"kind": kind, "params": params}
    if deadline is not None:
        args["deadline"] = deadline
    return args


def proposals_args(status: str | None, limit: int | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if status is not None:
        args["status"] = status
    if limit is not None:
        args["limit"] = limit
    return args


def history_args(after: int, limit: int, proposal: int | None) -> dict[str, Any]:
    args: dict[str, Any] = {"after": after, "limit": limit}
    if proposal is not None:
        args["proposal"] = proposal
    return args


def register_args(public_key: bytes, org_id: str, roles: Sequence[str]) -> dict[str, Any]:
    return {"public_key": bytes(public_key), "org": org_id, "roles": list(roles)}


class Gov:
    """``client.gov``: governance reads and writes through a blocking :class:`Client`.

    Every write takes ``endorsers`` (co-signers, for methods whose policy needs several
    organisations), ``timeout`` (how long to wait for the commit) and ``gas_limit``.
    """

    def __init__(self, client: _SyncNode) -> None:
        self._client = client

    def _q(self, method: str, **args: Any) -> Any:
        return self._client.query(GOV, method, **args)

    def _send(
        self,
        signer: Signer,
        method: str,
        args: Mapping[str, Any],
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt:
        receipt = self._client._send_committed(
            signer, GOV, method, args, endorsers=endorsers, timeout=timeout, gas_limit=gas_limit
        )
        return committed(method, receipt)

    # -- reads -------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """``{"mode": "open" | "key" | "certificate", "voting_period": blocks}``."""
        raw = self._q("config")
        return _parse.parsed("gov.config", lambda: _parse.obj(raw))

    def orgs(self) -> list[OrgInfo]:
        return many("gov.orgs", self._q("orgs"), parse_org)

    def org(self, id: str) -> OrgInfo:
        """One organisation with its roles; :class:`NotFound` if there is none."""
        raw = self._q("org", id=id)
        return _parse.parsed("gov.org", lambda: parse_org(raw))

    def member(self, address: bytes | str) -> MemberInfo | None:
        """The member record of an account (None if it is not a member), with its standing.
        ``address`` is bytes or 40 hex digits."""
        raw = self._q("member", address=to_address(address))
        return None if raw is None else _parse.parsed("gov.member", lambda: parse_member(raw))

    def members(self, org: str) -> list[MemberInfo]:
        return many("gov.members", self._q("members", org=org), parse_member)

    def validators(self) -> GovValidators:
        """The validator set governance last decided (see :class:`GovValidators`)."""
        raw = self._q("validators")
        return _parse.parsed("gov.validators", lambda: parse_validators(raw))

    def params(self) -> dict[str, Any]:
        """Chain parameters and gas costs in force: ``{"chain": {...}, "gas": {...}}``."""
        raw = self._q("params")
        return _parse.parsed("gov.params", lambda: _parse.obj(raw))

    def policy(self, target: str) -> PolicyInfo:
        """The policy in force for ``contract.method`` or ``gov:<kind>``: :class:`NotFound`
        for an unknown kind, ``bad_arguments`` for a target that is neither."""
        check_policy_target(target)
        raw = self._q("policy", target=target)
        return _parse.parsed("gov.policy", lambda: parse_policy(raw))

    def policy_source(self, target: str) -> str | None:
        """Which explicitly set policy decides ``target``: ``target`` itself, or for a method
        ``contract.*`` when that is set; None when the built-in default applies (a method open
        to any member, a kind needing a MAJORITY of the organisations' admins)."""
        in_force = self.policy(target)
        configured = self.policies() if target.startswith("gov:") else []
        return source_of(target, in_force, configured)

    def policies(self) -> list[PolicyInfo]:
        """Every policy set explicitly (methods without one admit any member)."""
        return many("gov.policies", self._q("policies"), parse_policy)

    def proposal(self, id: int) -> ProposalInfo:
        """One proposal; :class:`NotFound` if there is none."""
        raw = self._q("proposal", id=id)
        return _parse.parsed("gov.proposal", lambda: parse_proposal(raw))

    def proposals(self, status: str | None = None, limit: int | None = None) -> list[ProposalInfo]:
        """Newest first; ``status`` filters (open, executed, expired)."""
        raw = self._q("proposals", **proposals_args(status, limit))
        return many("gov.proposals", raw, parse_proposal)

    def history(
        self, after: int = 0, limit: int = 100, proposal: int | None = None
    ) -> list[HistoryEntry]:
        """Governance actions with a sequence number above ``after``, oldest first; only
        those of one ``proposal`` if given. Page on with ``after=entries[-1].seq``."""
        raw = self._q("history", **history_args(after, limit, proposal))
        return many("gov.history", raw, parse_history_entry)

    # -- writes ------------------------------------------------------------------------------
    def propose(
        self,
        signer: Signer,
        kind: str,
        params: Any,
        deadline: int | None = None,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> int:
        """Propose a change of ``kind`` (add_validator, set_params, add_org, ...; see
        :data:`citychain.services.gov.shapes.KIND_PARAMS` for each kind's params, and
        :func:`citychain.sdk.build_params` to build them from text); the proposal id. The
        proposer's vote counts as yes. ``deadline`` is a height (default: the chain's voting
        period from now)."""
        args = propose_args(kind, params, deadline)
        return proposal_id(self._send(signer, "propose", args, endorsers, timeout, gas_limit))

    def vote(
        self,
        signer: Signer,
        id: int,
        approve: bool = True,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> Receipt:
        args = {"id": id, "approve": approve}
        return self._send(signer, "vote", args, endorsers, timeout, gas_limit)

    def execute(
        self,
        signer: Signer,
        id: int,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> dict[str, Any]:
        """Apply a proposal that passed; what it changed (e.g. ``from_height``)."""
        return detail(self._send(signer, "execute", {"id": id}, endorsers, timeout, gas_limit))

    def expire(
        self,
        signer: Signer,
        id: int,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> Receipt:
        return self._send(signer, "expire", {"id": id}, endorsers, timeout, gas_limit)

    def register_member(
        self,
        signer: Signer,
        public_key: bytes,
        org: str,
        roles: Sequence[str] = ("member",),
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> bytes:
        """An admin of ``org`` registers a key (``key`` identity mode); its address."""
        args = register_args(public_key, org, roles)
        receipt = self._send(signer, "register_member", args, endorsers, timeout, gas_limit)
        return result_address(receipt, "register_member")

    def remove_member(
        self,
        signer: Signer,
        address: bytes | str,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> Receipt:
        args = {"address": to_address(address)}
        return self._send(signer, "remove_member", args, endorsers, timeout, gas_limit)

    def define_role(
        self,
        signer: Signer,
        org: str,
        role: str,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> Receipt:
        args = {"org": org, "role": role}
        return self._send(signer, "define_role", args, endorsers, timeout, gas_limit)

    def enroll(
        self,
        signer: Signer,
        cert: bytes,
        *,
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> bytes:
        """Certificate mode: become a member with a certificate (PEM or DER) your
        organisation's CA issued for ``signer``'s key; your address."""
        receipt = self._send(signer, "enroll", {"cert": bytes(cert)}, (), timeout, gas_limit)
        return result_address(receipt, "enroll")


class AsyncGov:
    """``async_client.gov``: the asyncio twin of :class:`Gov` (the same methods, awaited)."""

    def __init__(self, client: _AsyncNode) -> None:
        self._client = client

    async def _q(self, method: str, **args: Any) -> Any:
        return await self._client.query(GOV, method, **args)

    async def _send(
        self,
        signer: Signer,
        method: str,
        args: Mapping[str, Any],
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt:
        receipt = await self._client._send_committed(
            signer, GOV, method, args, endorsers=endorsers, timeout=timeout, gas_limit=gas_limit
        )
        return committed(method, receipt)

    async def config(self) -> dict[str, Any]:
        raw = await self._q("config")
        return _parse.parsed("gov.config", lambda: _parse.obj(raw))

    async def orgs(self) -> list[OrgInfo]:
        return many("gov.orgs", await self._q("orgs"), parse_org)

    async def org(self, id: str) -> OrgInfo:
        raw = await self._q("org", id=id)
        return _parse.parsed("gov.org", lambda: parse_org(raw))

    async def member(self, address: bytes | str) -> MemberInfo | None:
        raw = await self._q("member", address=to_address(address))
        return None if raw is None else _parse.parsed("gov.member", lambda: parse_member(raw))

    async def members(self, org: str) -> list[MemberInfo]:
        return many("gov.members", await self._q("members", org=org), parse_member)

    async def validators(self) -> GovValidators:
        raw = await self._q("validators")
        return _parse.parsed("gov.validators", lambda: parse_validators(raw))

    async def params(self) -> dict[str, Any]:
        raw = await self._q("params")
        return _parse.parsed("gov.params", lambda: _parse.obj(raw))

    async def policy(self, target: str) -> PolicyInfo:
        check_policy_target(target)
        raw = await self._q("policy", target=target)
        return _parse.parsed("gov.policy", lambda: parse_policy(raw))

    async def policy_source(self, target: str) -> str | None:
        in_force = await self.policy(target)
        configured = await self.policies() if target.startswith("gov:") else []
        return source_of(target, in_force, configured)

    async def policies(self) -> list[PolicyInfo]:
        return many("gov.policies", await self._q("policies"), parse_policy)

    async def proposal(self, id: int) -> ProposalInfo:
        raw = await self._q("proposal", id=id)
        return _parse.parsed("gov.proposal", lambda: parse_proposal(raw))

    async def proposals(
        self, status: str | None = None, limit: int | None = None
    ) -> list[ProposalInfo]:
        raw = await self._q("proposals", **proposals_args(status, limit))
        return many("gov.proposals", raw, parse_proposal)

    async def history(
        self, after: int = 0, limit: int = 100, proposal: int | None = None
    ) -> list[HistoryEntry]:
        raw = await self._q("history", **history_args(after, limit, proposal))
        return many("gov.history", raw, parse_history_entry)

    async def propose(
        self,
        signer: Signer,
        kind: str,
        params: Any,
        deadline: int | None = None,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> int:
        args = propose_args(kind, params, deadline)
        receipt = await self._send(signer, "propose", args, endorsers, timeout, gas_limit)
        return proposal_id(receipt)

    async def vote(
        self,
        signer: Signer,
        id: int,
        approve: bool = True,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> Receipt:
        args = {"id": id, "approve": approve}
        return await self._send(signer, "vote", args, endorsers, timeout, gas_limit)

    async def execute(
        self,
        signer: Signer,
        id: int,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> dict[str, Any]:
        receipt = await self._send(signer, "execute", {"id": id}, endorsers, timeout, gas_limit)
        return detail(receipt)

    async def expire(
        self,
        signer: Signer,
        id: int,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> Receipt:
        return await self._send(signer, "expire", {"id": id}, endorsers, timeout, gas_limit)

    async def register_member(
        self,
        signer: Signer,
        public_key: bytes,
        org: str,
        roles: Sequence[str] = ("member",),
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> bytes:
        args = register_args(public_key, org, roles)
        receipt = await self._send(signer, "register_member", args, endorsers, timeout, gas_limit)
        return result_address(receipt, "register_member")

    async def remove_member(
        self,
        signer: Signer,
        address: bytes | str,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> Receipt:
        args = {"address": to_address(address)}
        return await self._send(signer, "remove_member", args, endorsers, timeout, gas_limit)

    async def define_role(
        self,
        signer: Signer,
        org: str,
        role: str,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> Receipt:
        args = {"org": org, "role": role}
        return await self._send(signer, "define_role", args, endorsers, timeout, gas_limit)

    async def enroll(
        self,
        signer: Signer,
        cert: bytes,
        *,
        timeout: float | None = None,
        gas_limit: int = GOV_GAS_LIMIT,
    ) -> bytes:
        receipt = await self._send(signer, "enroll", {"cert": bytes(cert)}, (), timeout, gas_limit)
        return result_address(receipt, "enroll")
