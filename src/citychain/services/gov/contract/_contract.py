"""``gov``: organisations, members, access policies and proposals, decided on chain.

Theory of operation
-------------------
**Members.** In ``key`` mode an organisation's admin registers its members' public keys
(``register_member``) with their roles; in ``certificate`` mode an account enrols itself with a
certificate its organisation's CA issued for its key (``enroll``; the roles are the
certificate's OU values). Genesis registers each organisation's admin keys. The executor
checks every transaction against these records (:mod:`citychain.execution.access`).

**Proposals.** A change that concerns the whole chain is a proposal of one kind
(:mod:`citychain.services.gov.contract._kinds`), and each kind has a policy (``gov:<kind>``; default
``MAJORITY`` of the organisations' admins). A proposal moves through this table; nothing else
moves it, and every move is one transaction, an event and a history entry:

=============  ======================  ===========================================  ==========
state          input                   condition                                    next
=============  ======================  ===========================================  ==========
(none)         ``propose``             proposer admitted by the kind's policy;      open
                                       params pass the kind's check; the proposer's
                                       vote is recorded as yes
open           ``vote``                height <= deadline; voter admitted by the    open
                                       policy; one vote per member
open           ``execute``             height <= deadline; the yes votes of         executed
                                       members still in good standing meet the
                                       policy; the kind's check passes again
open           ``expire`` (anyone)     height > deadline                            expired
executed       ``execute``             refused: ``proposal_executed``               executed
open, past     ``execute`` / ``vote``  refused: ``proposal_expired``                open
deadline
=============  ======================  ===========================================  ==========

A proposal past its deadline is reported as ``expired`` by the queries even before someone
calls ``expire``; ``expire`` only writes it down. Deadlines are heights, not times: block
heights are the one clock every node reads identically.

**Admission.** Every method's refusals are its admission check (``_check_<method>``, declared
with ``@method(check=...)``, see :mod:`citychain.execution.contract`): who may act, the
proposal's status and deadline, whether its votes meet the policy, the kind's check of the
params. The mempool runs that check on the committed state, so a transaction the next block
would refuse never enters it, and a client hears the receipt's code and message at once; the
runtime runs the same check at execution, before the method's writes. What admission cannot
see is what changes in between: a vote or a registration still in the mempool, two
``execute`` of one proposal in one block, a certificate's start time (admission knows only a
lower bound of the block's time). Those are refused by the block, with a failed receipt.

Votes count per organisation (see :mod:`citychain.types.policy`). A vote can be yes or no; a
no vote is recorded for the trail and an organisation with only no votes does not approve.

**History.** Every governance action appends an entry ``{seq, height, time, tx, actor, action,
proposal, detail}`` to ``hist/``, which ``history`` pages through (``citychain gov history``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.x509.oid import NameOID

from citychain import codec
from citychain.crypto.member_certs import MemberCertInfo, parse_member_cert, verify_member_cert
from citychain.errors import ConfigError, ErrorCode, ExecutionFailure, InvalidInput
from citychain.execution import Context, Contract, arg_address, arg_int, method, only_args, query
from citychain.execution import access as acc
from citychain.services.gov.contract import _records as rec
from citychain.services.gov.contract._kinds import KINDS, kind_policy, policy_storage_key
from citychain.types.policy import Policy, check_name

NAME = acc.GOV
#: Most entries one page of a listing returns.
MAX_PAGE = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class _Enrolment:
    """What ``enroll``'s check found: the member record to write."""

    address: bytes
    info: MemberCertInfo
    org_id: str
    ca_fp: bytes
    roles: list[str]


def _proposal(ctx: Context, pid: Any) -> dict[str, Any]:
    if type(pid) is not int or pid < 1:
        raise rec.bad("argument 'id' must be a proposal number")
    raw = rec.get(ctx, rec.PROP + rec.u64(pid), "proposal")
    if raw is None:
        raise rec.refuse(ErrorCode.NOT_FOUND, f"no proposal {pid}")
    return raw  # type: ignore[no-any-return]


def _status(ctx: Context, p: dict[str, Any]) -> str:
    if p["status"] == "open" and ctx.height > p["deadline"]:
        return "expired"
    return str(p["status"])


def _approving(ctx: Context, p: dict[str, Any], policy: Policy, orgs: list[str]) -> list[str]:
    """Organisations with a yes vote from a member still in good standing and admitted."""
    out = []
    for address, org, approve, _height in p["votes"]:
        if not approve:
            continue
        try:
            m = acc.standing(rec.reader(ctx), address, ctx.time, "voter")
        except ExecutionFailure:  # revoked, frozen or removed since the vote: not counted
            continue
        if m.org == org and policy.admits(m.org, m.roles, orgs):
            out.append(org)
    return out


def _view(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    policy = kind_policy(ctx, p["kind"])
    if p["status"] == "executed":
        # As it was decided: later changes (an organisation admitted, a voter revoked) do
        # not rewrite a past decision.
        approving = list(p.get("approved_by", []))
        return {
            **p,
            "policy": policy.describe(),
            "approving_orgs": approving,
            "passed": True,
            "needs": f"passed and executed at height {p['executed_height']}",
        }
    orgs = rec.org_ids(ctx)
    approving = sorted(set(_approving(ctx, p, policy, orgs)))
    return {
        **p,
        "status": _status(ctx, p),
        "policy": policy.describe(),
        "approving_orgs": approving,
        "passed": policy.met(approving, orgs),
        "needs": policy.shortfall(approving, orgs),
    }


class Gov(Contract):
    name = NAME

    # -- genesis ---------------------------------------------------------------------------
    def genesis(self, ctx: Context, params: dict[str, Any]) -> None:
        try:
            self._genesis(ctx, params)
        except InvalidInput as exc:
            raise ConfigError(f"governance genesis: {exc.message}") from None

    def _genesis(self, ctx: Context, params: dict[str, Any]) -> None:
        mode = params.get("mode", "open")
        if mode not in acc.MODES:
            raise rec.bad(f"unknown identity mode {mode!r}")
        rec.put(ctx, acc.CFG, {"mode": mode, "voting_period": params.get("voting_period", 1000)})
        for org in params.get("orgs", []):
            rec.write_org(
                ctx,
                org["id"],
                org["name"],
                org["ca_cert"],
                list(org["admins"]),
                org.get("gm_ca_cert", ""),
            )
            for role in org.get("roles", []):
                rec.define_role(ctx, org["id"], role)
            for admin in org["admins"]:
                rec.register(ctx, admin, org["id"], ["admin"])
            for public_key, roles in org.get("members", []):
                rec.register(ctx, public_key, org["id"], rec.check_roles(ctx, org["id"], roles))
        validators = [list(v) for v in params.get("validators", [])]
        rec.put(ctx, acc.VALSET, {"from": 1, "validators": sorted(validators, key=lambda v: v[0])})
        chain_params = dict(params.get("params", {}))
        gas = rec.params(ctx)["gas"]
        gas["max_gas_per_tx"] = chain_params.get("max_gas_per_tx", gas["max_gas_per_tx"])
        rec.put(ctx, acc.PARAMS, {"chain": chain_params, "gas": gas})
        for target, raw in sorted(params.get("policies", {}).items()):
            policy = Policy.from_value(raw, f"policy {target!r}")
            if target.startswith("gov:") and target[4:] not in KINDS:
                raise rec.bad(f"policy {target!r}: no proposal kind {target[4:]!r}")
            if not target.startswith("gov:"):
                contract, _, method_name = target.partition(".")
                if (
                    not method_name
                    or not ctx.contract_versions(contract)
                    or (method_name != "*" and method_name not in ctx.contract_methods(contract))
                ):
                    raise rec.bad(
                        f"policy {target!r}: the target must be 'contract.method', 'contract.*' "
                        "or 'gov:<kind>', naming a contract this chain runs and one of its "
                        "methods"
                    )
            rec.put(ctx, policy_storage_key(target), policy.to_value())

    # -- members ---------------------------------------------------------------------------
    def _admin_of(self, ctx: Context, org_id: str) -> None:
        m = acc.standing(rec.reader(ctx), ctx.caller, ctx.time, "caller")
        if m.org != org_id or "admin" not in m.roles:
            raise rec.refuse(
                ErrorCode.UNAUTHORIZED,
                f"only an admin of organisation {org_id!r} may do this; {ctx.caller.hex()} is "
                f"{'/'.join(m.roles)} of {m.org!r}",
            )

    def _mode(self, ctx: Context, want: str) -> None:
        mode = acc.mode(rec.reader(ctx))
        if mode != want:
            raise rec.refuse(
                ErrorCode.UNAUTHORIZED,
                f"this chain runs in {mode!r} identity mode; this method is for {want!r} mode",
            )

    def _check_register_member(
        self, ctx: Context, args: dict[str, Any]
    ) -> tuple[bytes, bytes, str, list[str]]:
        only_args(args, "public_key", "org", "roles")
        self._mode(ctx, "key")
        org = check_name(args.get("org"), "organisation id")
        rec.require_org(ctx, org)
        self._admin_of(ctx, org)
        roles = rec.check_roles(ctx, org, args.get("roles", []))
        public_key = args.get("public_key", b"")
        address = rec.check_register(ctx, public_key, org)
        return address, public_key, org, roles

    @method(check=_check_register_member)
    def register_member(
        self, ctx: Context, args: dict[str, Any], checked: tuple[bytes, bytes, str, list[str]]
    ) -> bytes:
        """An org admin registers a key (key mode): ``public_key``, ``org``, ``roles``."""
        address, public_key, org, roles = checked
        rec.write_member(ctx, address, public_key, org, roles)
        ctx.emit("member_registered", address=address, org=org, roles=",".join(roles))
        rec.record(ctx, "register_member", address=address.hex(), org=org, roles=roles)
        return address

    def _check_remove_member(self, ctx: Context, args: dict[str, Any]) -> tuple[bytes, acc.Member]:
        only_args(args, "address")
        address = arg_address(args, "address")
        m = acc.member(rec.reader(ctx), address)
        if m is None:
            raise rec.refuse(ErrorCode.NOT_FOUND, f"{address.hex()} is not a member")
        self._admin_of(ctx, m.org)
        if m.revoked:  # the record of a revoked key stays, so that it cannot come back
            raise rec.refuse(
                ErrorCode.REVOKED,
                f"the key of {address.hex()} was revoked by governance; its record stays",
            )
        return address, m

    @method(check=_check_remove_member)
    def remove_member(
        self, ctx: Context, args: dict[str, Any], checked: tuple[bytes, acc.Member]
    ) -> None:
        """An org admin removes one of its members: ``address``."""
        address, m = checked
        ctx.delete(acc.member_key(address))
        ctx.emit("member_removed", address=address, org=m.org)
        rec.record(ctx, "remove_member", address=address.hex(), org=m.org)

    def _check_define_role(self, ctx: Context, args: dict[str, Any]) -> tuple[str, str]:
        only_args(args, "org", "role")
        org = check_name(args.get("org"), "organisation id")
        rec.require_org(ctx, org)
        self._admin_of(ctx, org)
        return org, rec.check_new_role(args.get("role"))

    @method(check=_check_define_role)
    def define_role(self, ctx: Context, args: dict[str, Any], checked: tuple[str, str]) -> None:
        """An org admin defines a custom role of its organisation: ``org``, ``role``."""
        org, role = checked
        rec.define_role(ctx, org, role)
        ctx.emit("role_defined", org=org, role=role)
        rec.record(ctx, "define_role", org=org, role=role)

    def _check_enroll(self, ctx: Context, args: dict[str, Any]) -> _Enrolment:
        only_args(args, "cert")
        self._mode(ctx, "certificate")
        cert = args.get("cert")
        if type(cert) is not bytes or not 0 < len(cert) <= 16_384:
            raise rec.bad("argument 'cert' must be a certificate (PEM or DER bytes)")
        parsed = parse_member_cert(cert)
        orgs = parsed.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        org_id = str(orgs[0].value) if orgs else ""
        org = acc.organisation(rec.reader(ctx), org_id)
        if org is None:
            raise rec.refuse(
                ErrorCode.UNAUTHORIZED,
                f"the certificate names organisation {org_id!r}, which is not on this chain",
            )
        at = ctx.time
        if not ctx.time_exact:
            # Admission: the block's time is not known yet, only that it is at least
            # ``ctx.time``. Check at the earliest time the certificate is valid, so a
            # certificate that will be valid by then is not refused, and an expired one is.
            at = max(at, (parsed.not_valid_before_utc - _EPOCH) // _ONE_MS)
        # On an sm2-sm3 chain members are certified by the organisation's SM2 CA (an SM2
        # certificate under the TLS CA, or the reverse, is refused as wrong_suite).
        ca = org.get("gm_ca_cert") if ctx.suite_name == "sm2-sm3" else None
        info = verify_member_cert(cert, (ca or org["ca_cert"]).encode(), org_id=org_id, at_ms=at)
        if info.serial >= 2**160:  # RFC 5280 allows 20 octets; revocations key on 20 bytes
            raise rec.bad("the certificate's serial number is longer than 20 bytes (RFC 5280)")
        if info.public_key != ctx.sender_public_key:
            raise rec.refuse(
                ErrorCode.UNAUTHORIZED,
                "the certificate is for another key than the one that signed this transaction",
            )
        if ctx.get(acc.revoked_key(org_id, info.serial)) is not None:
            raise rec.refuse(
                ErrorCode.REVOKED, f"certificate serial {info.serial:x} of {org_id} is revoked"
            )
        roles = rec.check_roles(ctx, org_id, list(info.roles) or ["member"])
        address = rec.check_register(ctx, info.public_key, org_id)
        return _Enrolment(address, info, org_id, org["ca_fp"], roles)

    @method(check=_check_enroll)
    def enroll(self, ctx: Context, args: dict[str, Any], e: _Enrolment) -> bytes:
        """Certificate mode: become a member by presenting ``cert`` (PEM or DER bytes), issued
        by your organisation's CA for the key that signs this transaction."""
        rec.write_member(
            ctx,
            e.address,
            e.info.public_key,
            e.org_id,
            e.roles,
            serial=e.info.serial,
            ca_fp=e.ca_fp,
            not_after=e.info.not_after_ms,
        )
        ctx.emit("member_enrolled", address=e.address, org=e.org_id, serial=e.info.serial)
        rec.record(
            ctx,
            "enroll",
            address=e.address.hex(),
            org=e.org_id,
            serial=format(e.info.serial, "x"),
        )
        return e.address

    # -- proposals -------------------------------------------------------------------------
    def _eligible(self, ctx: Context, kind: str, what: str) -> tuple[acc.Member, Policy]:
        policy = kind_policy(ctx, kind)
        m = acc.standing(rec.reader(ctx), ctx.caller, ctx.time, "caller")
        if not policy.admits(m.org, m.roles, rec.org_ids(ctx)):
            raise rec.refuse(
                ErrorCode.POLICY_NOT_MET,
                f"policy gov:{kind} ({policy.describe()}) does not let {ctx.caller.hex()} "
                f"({'/'.join(m.roles)} of {m.org}) {what}",
            )
        return m, policy

    def _check_propose(
        self, ctx: Context, args: dict[str, Any]
    ) -> tuple[str, acc.Member, Any, int]:
        only_args(args, "kind", "params", "deadline")
        kind = args.get("kind")
        if kind not in KINDS:
            raise rec.bad(f"unknown proposal kind {kind!r} (kinds: {', '.join(KINDS)})")
        m, _policy = self._eligible(ctx, kind, "propose it")
        params = args.get("params")
        KINDS[kind].check(ctx, params)
        cfg = rec.get(ctx, acc.CFG, "configuration")
        period = int(cfg["voting_period"])
        deadline = (
            arg_int(args, "deadline", min_value=ctx.height, max_value=ctx.height + 10 * period)
            if "deadline" in args
            else ctx.height + period
        )
        return kind, m, params, deadline

    @method(check=_check_propose)
    def propose(
        self, ctx: Context, args: dict[str, Any], checked: tuple[str, acc.Member, Any, int]
    ) -> int:
        """``kind``, ``params``, optional ``deadline`` (a height); returns the proposal id."""
        kind, m, params, deadline = checked
        raw = ctx.get(rec.PROP_NEXT)
        pid = 1 if raw is None else int(codec.decode(raw))
        ctx.set(rec.PROP_NEXT, codec.encode(pid + 1))
        proposal = {
            "id": pid,
            "kind": kind,
            "params": params,
            "proposer": ctx.caller,
            "proposer_org": m.org,
            "created": ctx.height,
            "created_time": ctx.time,
            "deadline": deadline,
            "status": "open",
            "votes": [[ctx.caller, m.org, True, ctx.height]],
            "executed_height": 0,
            "result": None,
        }
        rec.put(ctx, rec.PROP + rec.u64(pid), proposal)
        ctx.emit("proposal_created", id=pid, kind=kind, proposer=ctx.caller, deadline=deadline)
        rec.record(ctx, "propose", pid, kind=kind, deadline=deadline)
        return pid

    def _check_vote(
        self, ctx: Context, args: dict[str, Any]
    ) -> tuple[dict[str, Any], bool, acc.Member]:
        only_args(args, "id", "approve")
        p = _proposal(ctx, args.get("id"))
        approve = args.get("approve", True)
        if type(approve) is not bool:
            raise rec.bad("argument 'approve' must be true or false")
        self._open(ctx, p, "vote on")
        m, _ = self._eligible(ctx, p["kind"], "vote on it")
        if any(v[0] == ctx.caller for v in p["votes"]):
            raise rec.refuse(
                ErrorCode.DUPLICATE, f"{ctx.caller.hex()} already voted on proposal {p['id']}"
            )
        return p, approve, m

    @method(check=_check_vote)
    def vote(
        self,
        ctx: Context,
        args: dict[str, Any],
        checked: tuple[dict[str, Any], bool, acc.Member],
    ) -> None:
        """``id``, optional ``approve`` (default true)."""
        p, approve, m = checked
        p["votes"].append([ctx.caller, m.org, approve, ctx.height])
        rec.put(ctx, rec.PROP + rec.u64(p["id"]), p)
        ctx.emit("vote", id=p["id"], voter=ctx.caller, org=m.org, approve=approve)
        rec.record(ctx, "vote", p["id"], org=m.org, approve=approve)

    def _open(self, ctx: Context, p: dict[str, Any], what: str) -> None:
        if p["status"] == "executed":
            raise rec.refuse(
                ErrorCode.PROPOSAL_EXECUTED,
                f"proposal {p['id']} was already executed at height {p['executed_height']}",
            )
        if _status(ctx, p) == "expired":
            raise rec.refuse(
                ErrorCode.PROPOSAL_EXPIRED,
                f"proposal {p['id']} expired after height {p['deadline']}; cannot {what} it",
            )

    def _check_execute(
        self, ctx: Context, args: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        only_args(args, "id")
        p = _proposal(ctx, args.get("id"))
        self._open(ctx, p, "execute")
        policy = kind_policy(ctx, p["kind"])
        orgs = rec.org_ids(ctx)
        approving = _approving(ctx, p, policy, orgs)
        if not policy.met(approving, orgs):
            raise rec.refuse(
                ErrorCode.PROPOSAL_NOT_PASSED,
                f"proposal {p['id']} has not passed: policy gov:{p['kind']} "
                f"({policy.describe()}) {policy.shortfall(approving, orgs)}",
            )
        KINDS[p["kind"]].check(ctx, p["params"])
        return p, approving

    @method(check=_check_execute)
    def execute(
        self, ctx: Context, args: dict[str, Any], checked: tuple[dict[str, Any], list[str]]
    ) -> dict[str, Any]:
        """``id``: apply a proposal whose votes meet its kind's policy. Once."""
        p, approving = checked
        detail = KINDS[p["kind"]].apply(ctx, p["params"])
        p["status"] = "executed"
        p["executed_height"] = ctx.height
        p["approved_by"] = sorted(set(approving))
        p["result"] = detail
        rec.put(ctx, rec.PROP + rec.u64(p["id"]), p)
        ctx.emit("proposal_executed", id=p["id"], kind=p["kind"])
        rec.record(ctx, "execute", p["id"], kind=p["kind"], **detail)
        return detail

    def _check_expire(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(args, "id")
        p = _proposal(ctx, args.get("id"))
        if p["status"] != "open":
            code = (
                ErrorCode.PROPOSAL_EXPIRED
                if p["status"] == "expired"
                else ErrorCode.PROPOSAL_EXECUTED
            )
            raise rec.refuse(code, f"proposal {p['id']} is {p['status']}")
        if ctx.height <= p["deadline"]:
            raise rec.bad(
                f"proposal {p['id']} is open until height {p['deadline']}; this is {ctx.height}"
            )
        return p

    @method(check=_check_expire)
    def expire(self, ctx: Context, args: dict[str, Any], p: dict[str, Any]) -> None:
        """``id``: write down that an open proposal passed its deadline (changes nothing else)."""
        p["status"] = "expired"
        rec.put(ctx, rec.PROP + rec.u64(p["id"]), p)
        ctx.emit("proposal_expired", id=p["id"], kind=p["kind"])
        rec.record(ctx, "expire", p["id"], kind=p["kind"])

    # -- queries ---------------------------------------------------------------------------
    @query
    def config(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(args)
        cfg: dict[str, Any] = rec.get(ctx, acc.CFG, "configuration") or {"mode": "open"}
        return cfg

    @query
    def orgs(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        only_args(args)
        return [codec.decode(v) for _, v in ctx.iter_prefix(acc.ORG)]

    @query
    def org(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(args, "id")
        org = rec.require_org(ctx, check_name(args.get("id"), "organisation id"))
        roles = [
            k.split(b"/")[-1].decode()
            for k, _ in ctx.iter_prefix(acc.ROLE + org["id"].encode() + b"/")
        ]
        return {**org, "roles": [*acc.BUILTIN_ROLES, *roles]}

    @query
    def member(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any] | None:
        only_args(args, "address")
        address = arg_address(args, "address")
        m = acc.member(rec.reader(ctx), address)
        if m is None:
            return None
        try:
            acc.standing(rec.reader(ctx), address, ctx.time, "account")
            standing = "ok"
        except ExecutionFailure as exc:  # the refusal's words are the answer
            standing = exc.message
        return {**m.to_value(), "address": address, "standing": standing}

    @query
    def members(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        only_args(args, "org")
        org = check_name(args.get("org"), "organisation id")
        out = []
        for k, v in ctx.iter_prefix(acc.MEM):
            m = acc.Member.from_value(codec.decode(v))
            if m.org == org:
                out.append({**m.to_value(), "address": k[len(acc.MEM) :]})
        return out

    @query
    def frozen(self, ctx: Context, args: dict[str, Any]) -> bool:
        only_args(args, "address")
        return ctx.get(acc.frozen_key(arg_address(args, "address"))) is not None

    @query
    def validators(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(args)
        return rec.validator_set(ctx)

    @query
    def params(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(args)
        return rec.params(ctx)

    @query
    def policy(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``target``: ``contract.method`` or ``gov:<kind>``; the policy in force."""
        only_args(args, "target")
        target = args.get("target")
        if type(target) is not str:
            raise rec.bad("argument 'target' must be 'contract.method' or 'gov:<kind>'")
        if target.startswith("gov:"):
            pol = kind_policy(ctx, target[4:])
            return {"target": target, **pol.to_value(), "describe": pol.describe()}
        contract, _, method_name = target.partition(".")
        name, pol = acc.method_policy(rec.reader(ctx), contract, method_name)
        return {"target": name, **pol.to_value(), "describe": pol.describe()}

    @query
    def policies(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        only_args(args)
        out = []
        for prefix, tag in ((acc.POL, ""), (acc.KPOL, "gov:")):
            for k, v in ctx.iter_prefix(prefix):
                pol = Policy.from_value(codec.decode(v))
                target = tag + k[len(prefix) :].decode()
                out.append({"target": target, **pol.to_value(), "describe": pol.describe()})
        return out

    @query
    def proposal(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(args, "id")
        return _view(ctx, _proposal(ctx, args.get("id")))

    @query
    def proposals(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Newest first; optional ``status`` (open, executed, expired), ``limit``."""
        only_args(args, "status", "limit")
        status = args.get("status")
        limit = arg_int(args, "limit", min_value=1, max_value=MAX_PAGE) if "limit" in args else 50
        raw = ctx.get(rec.PROP_NEXT)
        last = 0 if raw is None else int(codec.decode(raw)) - 1
        out: list[dict[str, Any]] = []
        for pid in range(last, 0, -1):
            p = _view(ctx, _proposal(ctx, pid))
            if status is None or p["status"] == status:
                out.append(p)
                if len(out) >= limit:
                    break
        return out

    @query
    def history(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Entries from ``after`` (a sequence number, default 0), oldest first; optional
        ``proposal`` to follow one proposal, ``limit``."""
        only_args(args, "after", "limit", "proposal")
        after = arg_int(args, "after", max_value=2**63) if "after" in args else 0
        limit = arg_int(args, "limit", min_value=1, max_value=MAX_PAGE) if "limit" in args else 100
        proposal = arg_int(args, "proposal", max_value=2**63) if "proposal" in args else 0
        out: list[dict[str, Any]] = []
        if proposal:  # through the per-proposal index, from a seek to ``after``: the page only
            prefix = rec.HIST_BY_PROPOSAL + rec.u64(proposal) + b"/"
            seqs: list[int] = []
            for k, _ in ctx.iter_prefix(prefix, after=rec.u64(after)):
                seqs.append(int.from_bytes(k[len(prefix) :], "big"))
                if len(seqs) >= limit:
                    break
        else:  # sequence numbers are dense: read the page directly, not the log before it
            raw = ctx.get(rec.HIST_NEXT)
            end = 1 if raw is None else int(codec.decode(raw))
            seqs = list(range(after + 1, min(end, after + 1 + limit)))
        for seq in seqs:  # at most ``limit``, all above ``after``
            entry = rec.get(ctx, rec.HIST + rec.u64(seq), "history entry")
            if entry is None:
                raise rec.refuse(ErrorCode.INTERNAL, f"history entry {seq} is missing")
            out.append(entry)
        return out
