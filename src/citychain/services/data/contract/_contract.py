"""The ``data`` contract's entry points (the theory of operation is the package's docstring,
:mod:`citychain.services.data.contract`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from citychain.errors import ErrorCode, InvalidInput, NotFound
from citychain.execution import Context, Contract, arg_int, method, only_args, query
from citychain.services.data import shapes as sh
from citychain.services.data.contract import _state as st
from citychain.services.data.contract._private import PrivateCollections
from citychain.services.identity.shapes import did_key

refuse = st.refuse
bad = sh.bad
GOV = "gov"


def _page(args: dict[str, Any], default: int = 50) -> tuple[int, int]:
    after = arg_int(args, "after", max_value=2**63) if "after" in args else 0
    limit = (
        arg_int(args, "limit", min_value=1, max_value=sh.MAX_PAGE) if "limit" in args else default
    )
    return after, limit


def _code(args: dict[str, Any]) -> str:
    if "code" not in args:
        raise bad("missing argument 'code'")
    return sh.check_code(args["code"])


def _member(ctx: Context, address: bytes) -> dict[str, Any] | None:
    """``address``'s member record if it is a member in good standing, else None."""
    m: dict[str, Any] | None = ctx.call(GOV, "member", {"address": address})
    return m if m is not None and m.get("standing") == "ok" else None


def _provider_member(ctx: Context, provider: str, code: str = "") -> dict[str, Any]:
    """The sender's member record; ``not_provider`` unless it is a member in good standing
    of organisation ``provider``."""
    m = _member(ctx, ctx.origin)
    if m is None or m["org"] != provider:
        what = f"resource {code}" if code else "this resource"
        raise refuse(
            ErrorCode.NOT_PROVIDER,
            f"only a member of organisation {provider!r}, the provider of {what}, may do this; "
            f"{ctx.origin.hex()} is "
            + (f"a member of {m['org']!r}" if m is not None else "no member in good standing"),
        )
    return m


def _live(ctx: Context, code: str, what: str = "") -> dict[str, Any]:
    h = st.require_head(ctx, code)
    if h["retired"]:
        raise refuse(
            ErrorCode.RESOURCE_RETIRED,
            f"resource {code} was retired{': ' + what if what else ''}",
        )
    return h


def _view(ctx: Context, h: dict[str, Any]) -> dict[str, Any]:
    rec = st.record(ctx, h)
    latest = st.version(ctx, h["code"], h["versions"]) if h["versions"] else None
    return {
        **rec,
        "revision": h["revisions"],
        "versions": h["versions"],
        "retired": h["retired"],
        "issued": h["created"],
        "modified": h["updated"],
        "latest": None if latest is None else _public_version(latest),
    }


def _public_version(v: dict[str, Any]) -> dict[str, Any]:
    """A version as the public sees it: the subject tags counted, not listed (the record
    keeps only the count; the tags are under a private key)."""
    return dict(v)


def _citizen_tag(ctx: Context) -> bytes:
    """The subject tag of the sender's own ``did:key``; ``not_subject`` if its key has none."""
    try:
        return sh.subject_tag(did_key(ctx.sender_public_key))
    except InvalidInput:
        raise refuse(
            ErrorCode.NOT_SUBJECT,
            "a citizen acts for their own records with the Ed25519 key of their did:key; "
            "this sender's key has no did:key",
        ) from None


@dataclass(frozen=True, slots=True)
class _Register:
    record: dict[str, Any]
    head: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class _Version:
    head: dict[str, Any]
    record: dict[str, Any]
    value: dict[str, Any]
    wraps: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class _Request:
    head: dict[str, Any]
    record: dict[str, Any]
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Access:
    grant: dict[str, Any]
    version: dict[str, Any]
    purpose: str


class Data(PrivateCollections, Contract):
    """The data contract; its private data collections are :mod:`._private`'s."""

    name = sh.NAME
    #: State under these prefixes is not public: the node serves no raw read or proof of it
    #: (grants, requests, audit trails, wrapped keys, which resources list which subject).
    private_prefixes = (
        sh.REQUEST, sh.GRANT, sh.RESOURCE_REQUESTS, sh.RESOURCE_GRANTS,
        sh.RESOURCE_GRANT_IDS, sh.AUDIT, sh.RESOURCE_AUDIT, sh.SUBJECT_AUDIT, sh.WRAP,
        sh.SUBJECT_RESOURCES, sh.VERSION_SUBJECTS,
    )  # fmt: skip
    #: Calls whose transactions the API withholds from anyone but their signers and members
    #: in good standing: the same facts as the private state above, as the blocks carry them
    #: (who asked for which resource, about whom and why; the subjects of a version; keys
    #: wrapped for whom; who downloaded what).
    private_methods = frozenset(
        {"request_access", "decide", "revoke", "record_access", "add_version", "wrap_key"}
    )

    # -- the catalogue ---------------------------------------------------------------------
    def _approvers_are_staff(self, ctx: Context, rec: dict[str, Any]) -> None:
        for a in rec["approvers"]:
            m = _member(ctx, a)
            if m is None or m["org"] != rec["provider"]:
                raise bad(
                    f"approver {a.hex()} is not a member in good standing of organisation "
                    f"{rec['provider']!r}, the provider"
                )

    def _check_register_resource(self, ctx: Context, args: dict[str, Any]) -> _Register:
        rec = sh.resource_record(args)
        _provider_member(ctx, rec["provider"], rec["code"])
        if st.head(ctx, rec["code"]) is not None:
            raise refuse(ErrorCode.DUPLICATE, f"resource {rec['code']} is already registered")
        self._approvers_are_staff(ctx, rec)
        return _Register(rec, None)

    def _write_revision(
        self, ctx: Context, rec: dict[str, Any], h: dict[str, Any], op: str, reason: str = ""
    ) -> None:
        entry = {
            "revision": h["revisions"],
            "op": op,
            "record": rec,
            "time": ctx.time,
            "height": ctx.height,
            "tx": ctx.tx_hash,
            "by": ctx.origin,
        }
        if reason:
            entry["reason"] = reason
        st.put(ctx, sh.revision_key(rec["code"], h["revisions"]), entry)
        st.put(ctx, sh.head_key(rec["code"]), h)

    @method(check=_check_register_resource)
    def register_resource(self, ctx: Context, args: dict[str, Any], r: _Register) -> str:
        """The resource's fields (:data:`~citychain.services.data.shapes.RESOURCE_FIELDS`),
        sent by a member of its ``provider`` organisation. Returns the code."""
        rec = r.record
        h = {
            "code": rec["code"],
            "provider": rec["provider"],
            "revisions": 1,
            "versions": 0,
            "retired": False,
            "created": ctx.time,
            "updated": ctx.time,
        }
        self._write_revision(ctx, rec, h, "register")
        for key in st.index_keys(rec):
            ctx.set(key, b"\x01")
        ctx.emit("register", code=rec["code"], provider=rec["provider"], sharing=rec["sharing"])
        return str(rec["code"])

    def _check_update_resource(self, ctx: Context, args: dict[str, Any]) -> _Register:
        rec = sh.resource_record(args)
        h = _live(ctx, rec["code"], "it changes no more")
        if rec["provider"] != h["provider"]:
            raise bad(
                f"the provider of resource {rec['code']} is {h['provider']!r}; a resource does not "
                "change provider (retire it and register it anew)"
            )
        _provider_member(ctx, h["provider"], rec["code"])
        if rec == st.record(ctx, h):
            raise bad(f"the record is the same as revision {h['revisions']}: no change")
        self._approvers_are_staff(ctx, rec)
        return _Register(rec, h)

    @method(check=_check_update_resource)
    def update_resource(self, ctx: Context, args: dict[str, Any], r: _Register) -> int:
        """The whole new record (same fields as ``register_resource``; ``code`` and
        ``provider`` unchanged), by a member of the provider. Returns the revision number."""
        assert r.head is not None
        old = st.record(ctx, r.head)
        new_keys = set(st.index_keys(r.record))
        for key in st.index_keys(old):
            if key not in new_keys:
                ctx.delete(key)
        for key in sorted(new_keys):
            ctx.set(key, b"\x01")
        h = {**r.head, "revisions": r.head["revisions"] + 1, "updated": ctx.time}
        self._write_revision(ctx, r.record, h, "update")
        ctx.emit("update", code=r.record["code"], revision=h["revisions"])
        return int(h["revisions"])

    def _check_retire_resource(
        self, ctx: Context, args: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        only_args(args, "code", "reason")
        code = _code(args)
        h = _live(ctx, code, "already")
        _provider_member(ctx, h["provider"], code)
        reason = sh.check_text(args.get("reason", ""), "reason", required=False)
        return h, reason

    @method(check=_check_retire_resource)
    def retire_resource(
        self, ctx: Context, args: dict[str, Any], checked: tuple[dict[str, Any], str]
    ) -> int:
        """``code``, optional ``reason``: the resource leaves the search indexes and takes no
        new versions, requests or wraps; its history, versions and grants stay readable
        (grants already given still allow downloads until they expire or are revoked). Its
        pending requests are refused (``why`` = ``retired``, audited), since no approver may
        decide them any more. Returns the revision number."""
        h0, reason = checked
        rec = st.record(ctx, h0)
        for key in st.index_keys(rec):
            ctx.delete(key)
        h = {**h0, "revisions": h0["revisions"] + 1, "updated": ctx.time, "retired": True}
        self._write_revision(ctx, rec, h, "retire", reason)
        ctx.emit("retire", code=rec["code"], revision=h["revisions"])
        why = f"resource {rec['code']} was retired" + (f": {reason}" if reason else "")
        prefix = sh.RESOURCE_REQUESTS + rec["code"].encode() + b"\0"
        for key, _ in list(ctx.iter_prefix(prefix)):  # in id order: deterministic
            req = st.request(ctx, int.from_bytes(key[len(prefix) :], "big"))
            if req is not None and req["state"] == "pending":
                self._decide(ctx, req, False, why, "retired")
        return int(h["revisions"])

    # -- versions and keys -----------------------------------------------------------------
    def _may_wrap(self, ctx: Context, code: str, provider: str, grantee: bytes) -> None:
        """Refuse a data key wrapped for ``grantee`` unless it holds a live grant on ``code``
        or is a member of the provider: ``grant_revoked`` if its grant was revoked (it gets no
        key to later versions), ``no_grant`` otherwise."""
        grants = st.grants_of(ctx, code, grantee)
        if any(st.grant_state(g, ctx.time) == "active" for g in grants):
            return
        if any(g["state"] == "revoked" for g in grants):
            raise refuse(
                ErrorCode.GRANT_REVOKED,
                f"the grant of {grantee.hex()} on resource {code} was revoked: it gets no key to "
                "this version",
            )
        m = _member(ctx, grantee)
        if m is not None and m["org"] == provider:
            return
        raise refuse(
            ErrorCode.NO_GRANT,
            f"{grantee.hex()} holds no live grant on resource {code} and is no member of its "
            "provider: no key is wrapped for it",
        )

    def _wraps(self, ctx: Context, raw: Any, code: str, provider: str) -> list[tuple[bytes, bytes]]:
        if not isinstance(raw, list) or len(raw) > sh.MAX_WRAPS:
            raise bad(
                f"argument 'wraps' must be a list of at most {sh.MAX_WRAPS} maps "
                "{grantee: address, wrapped: wrapped data key}"
            )
        out: dict[bytes, bytes] = {}
        for item in raw:
            if not isinstance(item, dict) or set(item) != {"grantee", "wrapped"}:
                raise bad("argument 'wraps': each item is a map of grantee and wrapped")
            grantee = sh.check_address(item["grantee"], "wraps")
            wrapped = item["wrapped"]
            if type(wrapped) is not bytes or not 0 < len(wrapped) <= sh.MAX_WRAPPED:
                raise bad(f"argument 'wraps': a wrapped key is 1 to {sh.MAX_WRAPPED} bytes")
            if grantee in out:
                raise bad(f"argument 'wraps' names {grantee.hex()} twice")
            self._may_wrap(ctx, code, provider, grantee)
            out[grantee] = wrapped
        return sorted(out.items())

    def _check_add_version(self, ctx: Context, args: dict[str, Any]) -> _Version:
        only_args(
            args,
            "code",
            "manifest_id",
            "plain_hash",
            "cipher_hash",
            "plain_size",
            "cipher_size",
            "cipher",
            "subjects",
            "wraps",
        )
        code = _code(args)
        h = _live(ctx, code, "it takes no new versions")
        _provider_member(ctx, h["provider"], code)
        for name in ("manifest_id", "plain_hash", "cipher_hash", "plain_size", "cipher_size"):
            if name not in args:
                raise bad(f"missing argument {name!r}")
        subjects = args.get("subjects", [])
        if not isinstance(subjects, list) or len(subjects) > sh.MAX_SUBJECTS:
            raise bad(f"argument 'subjects' must be a list of at most {sh.MAX_SUBJECTS} tags")
        for t in subjects:
            sh.check_tag(t, "subjects")
        if len(set(subjects)) != len(subjects):
            raise bad("argument 'subjects' lists a tag twice")
        value = {
            "version": h["versions"] + 1,
            "manifest_id": sh.check_hash(args["manifest_id"], "manifest_id"),
            "plain_hash": sh.check_hash(args["plain_hash"], "plain_hash"),
            "cipher_hash": sh.check_hash(args["cipher_hash"], "cipher_hash"),
            "plain_size": arg_int(args, "plain_size", max_value=2**63 - 1),
            "cipher_size": arg_int(args, "cipher_size", max_value=2**63 - 1),
            "cipher": sh.check_cipher(args.get("cipher")),
            "subjects": sorted(subjects),
            "time": ctx.time,
            "height": ctx.height,
            "tx": ctx.tx_hash,
            "by": ctx.origin,
        }
        if value["cipher_size"] < value["plain_size"]:
            raise bad("argument 'cipher_size' is smaller than 'plain_size': not a sealed stream")
        wraps = self._wraps(ctx, args.get("wraps", []), code, h["provider"])
        return _Version(h, st.record(ctx, h), value, wraps)

    @method(check=_check_add_version)
    def add_version(self, ctx: Context, args: dict[str, Any], v: _Version) -> int:
        """``code``, ``manifest_id``, ``plain_hash``, ``cipher_hash`` (32 bytes each),
        ``plain_size``, ``cipher_size``, ``cipher``; optional ``subjects`` (subject tags of
        the people its records are about), ``wraps`` (``[{grantee, wrapped}]``: the data key
        wrapped for each reader).
        By a member of the provider; the API sends it only once every chunk is stored.
        Returns the version number (1, 2, ...)."""
        code, n = v.head["code"], v.value["version"]
        # The version record is public (and proven by `data verify`): it counts its subjects;
        # the tags themselves are kept under a private key (PRIVATE_PREFIXES), so nobody can
        # test whether a known DID's records are in a resource.
        tags = v.value["subjects"]
        st.put(ctx, sh.version_key(code, n), {**v.value, "subjects": len(tags)})
        st.put(ctx, sh.version_subjects_key(code, n), tags)
        for grantee, wrapped in v.wraps:
            ctx.set(sh.wrap_key(code, n, grantee), wrapped)
        for tag in tags:
            ctx.set(sh.SUBJECT_RESOURCES + tag + code.encode(), b"\x01")
        ctx.set(sh.hash_key(v.value["plain_hash"], code, n), b"\x01")
        st.put(ctx, sh.head_key(code), {**v.head, "versions": n, "updated": ctx.time})
        ctx.emit(
            "version",
            code=code,
            version=n,
            manifest_id=v.value["manifest_id"],
            plain_hash=v.value["plain_hash"],
            cipher_hash=v.value["cipher_hash"],
        )
        return int(n)

    def _check_wrap_key(self, ctx: Context, args: dict[str, Any]) -> tuple[str, int, bytes, bytes]:
        only_args(args, "code", "version", "grantee", "wrapped")
        code = _code(args)
        # A retired resource too: its grants still allow downloads (retire_resource), so the
        # holder of one given before the retirement still needs its key.
        h = st.require_head(ctx, code)
        _provider_member(ctx, h["provider"], code)
        n = arg_int(args, "version", min_value=1, max_value=2**32 - 1)
        if n > h["versions"]:
            raise NotFound(
                f"resource {code} has {h['versions']} version(s), not {n}",
                ErrorCode.RESOURCE_NOT_FOUND,
            )
        grantee = sh.check_address(args.get("grantee"), "grantee")
        wrapped = args.get("wrapped")
        if type(wrapped) is not bytes or not 0 < len(wrapped) <= sh.MAX_WRAPPED:
            raise bad(f"argument 'wrapped' must be a wrapped key of 1 to {sh.MAX_WRAPPED} bytes")
        self._may_wrap(ctx, code, h["provider"], grantee)
        return code, n, grantee, wrapped

    @method(check=_check_wrap_key)
    def wrap_key(
        self, ctx: Context, args: dict[str, Any], checked: tuple[str, int, bytes, bytes]
    ) -> None:
        """``code``, ``version``, ``grantee``, ``wrapped``: the version's data key wrapped for
        one more reader (after a grant), by a member of the provider, also once the resource
        is retired (a grant given before still opens it). Refused for a grantee whose grant
        was revoked (``grant_revoked``) or who has none (``no_grant``)."""
        code, n, grantee, wrapped = checked
        ctx.set(sh.wrap_key(code, n, grantee), wrapped)
        ctx.emit("wrap", code=code, version=n, grantee=grantee)

    # -- requests and grants ---------------------------------------------------------------
    def _until(self, ctx: Context, args: dict[str, Any]) -> int:
        if ("until" in args) == ("period" in args):
            raise bad("give the access period as 'until' (block time, ms) or 'period' (ms)")
        if "period" in args:
            return ctx.time + arg_int(args, "period", min_value=1, max_value=sh.MAX_GRANT_MS)
        until = arg_int(args, "until", max_value=2**63 - 1)
        if until <= ctx.time:
            raise bad("argument 'until' is not after this block's time: the period has passed")
        # At admission ctx.time is only a lower bound: the longest period is checked in the block.
        if ctx.time_exact and until - ctx.time > sh.MAX_GRANT_MS:
            raise bad(f"an access period is at most {sh.MAX_GRANT_MS} ms (ten years)")
        return until

    def _check_request_access(self, ctx: Context, args: dict[str, Any]) -> _Request:
        only_args(args, "code", "purpose", "until", "period", "legal_basis", "subject", "enc_key")
        enc_key = args.get("enc_key", b"")
        if type(enc_key) is not bytes or len(enc_key) not in (0, 32):
            raise bad("argument 'enc_key' must be an X25519 public key (32 bytes)")
        code = _code(args)
        h = _live(ctx, code, "it takes no new requests")
        purpose = sh.check_text(args.get("purpose"), "purpose")
        legal_basis = sh.check_text(args.get("legal_basis", ""), "legal_basis", required=False)
        subject = sh.check_tag(args["subject"]) if args.get("subject") is not None else b""
        until = self._until(ctx, args)
        m = _member(ctx, ctx.origin)
        if m is None:
            # Not a member: a citizen, for records about themselves only.
            own = _citizen_tag(ctx)
            if not subject:
                raise refuse(
                    ErrorCode.NOT_SUBJECT,
                    "an account that is no member of an organisation asks only for records "
                    "about itself: give 'subject' = subject_tag(your did:key)",
                )
            if subject != own:
                raise refuse(
                    ErrorCode.NOT_SUBJECT,
                    "'subject' is not the tag of the sender's own did:key: a citizen asks only "
                    "for records about themselves",
                )
            if ctx.get(sh.SUBJECT_RESOURCES + subject + code.encode()) is None:
                raise refuse(
                    ErrorCode.NOT_SUBJECT,
                    f"no version of resource {code} lists records about this subject",
                )
        value = {
            "code": code,
            "requester": ctx.origin,
            # The requester's public key, and the X25519 key to wrap data keys for if it gave
            # one (an SM2 account must; an Ed25519 key converts): what a grant wraps for.
            "key": ctx.sender_public_key,
            "enc_key": enc_key,
            "org": "" if m is None else m["org"],
            "subject": subject,
            "purpose": purpose,
            "legal_basis": legal_basis,
            "until": until,
            "state": "pending",
            "reason": "",
            "grant": 0,
            "time": ctx.time,
            "height": ctx.height,
            "tx": ctx.tx_hash,
        }
        return _Request(h, st.record(ctx, h), value)

    def _grant(self, ctx: Context, req: dict[str, Any]) -> int:
        gid = st.next_id(ctx, b"gr")
        g = {
            "id": gid,
            "code": req["code"],
            "request": req["id"],
            "grantee": req["requester"],
            "key": req["key"],
            "enc_key": req["enc_key"],
            "org": req["org"],
            "subject": req["subject"],
            "purpose": req["purpose"],
            "from": ctx.time,
            "until": req["until"],
            "state": "active",
            "reason": "",
            "time": ctx.time,
            "height": ctx.height,
            "tx": ctx.tx_hash,
        }
        st.put(ctx, sh.grant_key(gid), g)
        ctx.set(
            sh.RESOURCE_GRANTS + req["code"].encode() + b"\0" + req["requester"] + sh.u64(gid),
            b"\x01",
        )
        ctx.set(sh.RESOURCE_GRANT_IDS + req["code"].encode() + b"\0" + sh.u64(gid), b"\x01")
        return gid

    def _decide(
        self, ctx: Context, req: dict[str, Any], approve: bool, reason: str, why: str
    ) -> dict[str, Any]:
        """Write the decision on ``req`` (granted or refused), its audit entry and event."""
        subjects = [req["subject"]] if req["subject"] else []
        if approve:
            gid = self._grant(ctx, req)
            req = {**req, "state": "granted", "grant": gid, "decided": ctx.time}
            st.audit(
                ctx,
                {"action": "granted", "code": req["code"], "request": req["id"], "grant": gid,
                 "grantee": req["requester"], "org": req["org"], "subject": req["subject"],
                 "purpose": req["purpose"], "until": req["until"]},
                subjects,
            )  # fmt: skip
            ctx.emit(
                "granted",
                code=req["code"],
                request=req["id"],
                grant=gid,
                grantee=req["requester"],
                until=req["until"],
            )
        else:
            req = {**req, "state": "refused", "reason": reason, "decided": ctx.time}
            st.audit(
                ctx,
                {"action": "refused", "code": req["code"], "request": req["id"],
                 "grantee": req["requester"], "org": req["org"], "subject": req["subject"],
                 "purpose": req["purpose"], "reason": reason},
                subjects,
            )  # fmt: skip
            ctx.emit("refused", code=req["code"], request=req["id"], why=why)
        st.put(ctx, sh.request_key(req["id"]), req)
        return {"request": req["id"], "state": req["state"], "grant": req["grant"]}

    @method(check=_check_request_access)
    def request_access(self, ctx: Context, args: dict[str, Any], r: _Request) -> dict[str, Any]:
        """``code``, ``purpose``, ``until`` (block time, ms) or ``period`` (ms), optional
        ``legal_basis``, ``subject`` (a subject tag; required of a citizen, whose own tag it
        must be). Decided by the resource's sharing class at once (unconditional: granted;
        none: refused, and the refusal recorded) or left pending for a named approver
        (conditional; and a citizen's request about itself under none, PIPL art. 45). Returns
        ``{"request", "state", "grant"}`` (grant 0 if none)."""
        rid = st.next_id(ctx, b"req")
        req = {"id": rid, **r.value}
        subjects = [req["subject"]] if req["subject"] else []
        st.put(ctx, sh.request_key(rid), req)
        ctx.set(sh.RESOURCE_REQUESTS + req["code"].encode() + b"\0" + sh.u64(rid), b"\x01")
        st.audit(
            ctx,
            {"action": "request", "code": req["code"], "request": rid,
             "grantee": req["requester"], "org": req["org"], "subject": req["subject"],
             "purpose": req["purpose"], "legal_basis": req["legal_basis"],
             "until": req["until"]},
            subjects,
        )  # fmt: skip
        ctx.emit(
            "request",
            code=req["code"],
            request=rid,
            requester=req["requester"],
            org=req["org"],
            subject=req["subject"],
        )
        sharing = r.record["sharing"]
        if sharing == "unconditional":
            return self._decide(ctx, req, True, "", "")
        # "Not shared" (不予共享) closes a resource to other departments; it does not take away
        # a person's right to consult their own records (PIPL art. 45), so a citizen's request
        # about itself waits for a named approver, where the resource names any.
        citizen = req["org"] == "" and bool(req["subject"])
        if sharing == "none" and not (citizen and r.record["approvers"]):
            reason = f"resource {req['code']} is not shared (不予共享)"
            if citizen:
                reason += "; it names no approver for a person's requests about themselves"
            return self._decide(ctx, req, False, reason, "not_shared")
        ctx.emit("pending", code=req["code"], request=rid)
        return {"request": rid, "state": "pending", "grant": 0}

    def _check_decide(self, ctx: Context, args: dict[str, Any]) -> tuple[dict[str, Any], bool, str]:
        only_args(args, "request", "approve", "reason")
        rid = arg_int(args, "request", min_value=1, max_value=2**63)
        approve = args.get("approve")
        if type(approve) is not bool:
            raise bad("argument 'approve' must be true or false")
        reason = sh.check_text(args.get("reason", ""), "reason", required=not approve)
        req = st.request(ctx, rid)
        if req is None:
            raise NotFound(f"no access request {rid}", ErrorCode.REQUEST_NOT_FOUND)
        if req["state"] != "pending":
            raise refuse(ErrorCode.REQUEST_DECIDED, f"request {rid} was already {req['state']}")
        h = _live(ctx, req["code"], "its requests are no longer decided")
        rec = st.record(ctx, h)
        approver = _member(ctx, ctx.origin)
        if (
            ctx.origin not in rec["approvers"]
            or approver is None
            or approver["org"] != rec["provider"]
        ):
            raise refuse(
                ErrorCode.NOT_APPROVER,
                f"{ctx.origin.hex()} is not a named approver (in good standing) of resource "
                f"{req['code']}",
            )
        if approve and req["until"] <= ctx.time:
            raise refuse(
                ErrorCode.GRANT_EXPIRED,
                f"request {rid} asked for access until {req['until']}, which has passed",
            )
        return req, approve, reason

    @method(check=_check_decide)
    def decide(
        self, ctx: Context, args: dict[str, Any], checked: tuple[dict[str, Any], bool, str]
    ) -> dict[str, Any]:
        """``request``, ``approve`` (bool), ``reason`` (required to refuse): a named approver
        of the resource decides a pending request. Returns ``{"request", "state", "grant"}``."""
        req, approve, reason = checked
        return self._decide(ctx, req, approve, reason, "" if approve else "approver")

    def _check_revoke(self, ctx: Context, args: dict[str, Any]) -> tuple[dict[str, Any], str]:
        only_args(args, "grant", "reason")
        gid = arg_int(args, "grant", min_value=1, max_value=2**63)
        reason = sh.check_text(args.get("reason"), "reason")
        g = st.grant(ctx, gid)
        if g is None:
            raise refuse(ErrorCode.NO_GRANT, f"no grant {gid}")
        h = st.require_head(ctx, g["code"])
        _provider_member(ctx, h["provider"], g["code"])
        if g["state"] == "revoked":
            raise refuse(ErrorCode.GRANT_REVOKED, f"grant {gid} was already revoked")
        return g, reason

    @method(check=_check_revoke)
    def revoke(
        self, ctx: Context, args: dict[str, Any], checked: tuple[dict[str, Any], str]
    ) -> None:
        """``grant``, ``reason``: the provider ends a grant now (an expired grant may be
        revoked too, so its holder gets no key to later versions)."""
        g, reason = checked
        g = {
            **g,
            "state": "revoked",
            "reason": reason,
            "revoked": ctx.time,
            "revoked_by": ctx.origin,
        }
        st.put(ctx, sh.grant_key(g["id"]), g)
        st.audit(
            ctx,
            {"action": "revoked", "code": g["code"], "request": g["request"], "grant": g["id"],
             "grantee": g["grantee"], "org": g["org"], "subject": g["subject"],
             "reason": reason},
            [g["subject"]] if g["subject"] else [],
        )  # fmt: skip
        ctx.emit("revoked", code=g["code"], grant=g["id"], grantee=g["grantee"])

    def _check_record_access(self, ctx: Context, args: dict[str, Any]) -> _Access:
        only_args(args, "grant", "version", "purpose")
        gid = arg_int(args, "grant", min_value=1, max_value=2**63)
        n = arg_int(args, "version", min_value=1, max_value=2**32 - 1)
        g = st.grant(ctx, gid)
        if g is None:
            raise refuse(ErrorCode.NO_GRANT, f"no grant {gid}")
        if g["grantee"] != ctx.origin:
            raise refuse(
                ErrorCode.WRONG_GRANTEE,
                f"grant {gid} is held by {g['grantee'].hex()}, not by {ctx.origin.hex()}",
            )
        state = st.grant_state(g, ctx.time)
        if state == "revoked":
            raise refuse(ErrorCode.GRANT_REVOKED, f"grant {gid} was revoked: {g['reason']}")
        if state == "expired":
            raise refuse(
                ErrorCode.GRANT_EXPIRED,
                f"grant {gid} expired at block time {g['until']} (ms)",
            )
        if g["org"]:  # a department's grant holds while its holder is still a member
            m = _member(ctx, ctx.origin)
            if m is None or m["org"] != g["org"]:
                raise refuse(
                    ErrorCode.WRONG_GRANTEE,
                    f"grant {gid} was given to a member of {g['org']!r}; {ctx.origin.hex()} is "
                    "no longer one in good standing",
                )
        v = st.version(ctx, g["code"], n)
        if v is None:
            raise NotFound(f"resource {g['code']} has no version {n}", ErrorCode.RESOURCE_NOT_FOUND)
        purpose = sh.check_text(args["purpose"], "purpose") if "purpose" in args else g["purpose"]
        return _Access(g, v, purpose)

    @method(check=_check_record_access)
    def record_access(self, ctx: Context, args: dict[str, Any], a: _Access) -> int:
        """``grant``, ``version``, optional ``purpose`` (default: the grant's): the grantee
        records a download before the API streams it; the chain checks the grant (exists,
        is theirs, not revoked, not expired at this block's time) and the version. The entry
        is listed under the resource and under every subject the version's records are about.
        Returns the access id (the audit entry's sequence number)."""
        g, v = a.grant, a.version
        listed: list[bytes] = (
            st.get(ctx, sh.version_subjects_key(g["code"], v["version"]), "subjects") or []
        )
        subjects = sorted({*listed, *([g["subject"]] if g["subject"] else [])})
        seq = st.audit(
            ctx,
            {"action": "download", "code": g["code"], "request": g["request"], "grant": g["id"],
             "grantee": g["grantee"], "org": g["org"], "subject": g["subject"],
             "version": v["version"], "purpose": a.purpose},
            subjects,
        )  # fmt: skip
        ctx.emit(
            "download",
            code=g["code"],
            version=v["version"],
            grant=g["id"],
            grantee=g["grantee"],
            access=seq,
        )
        return seq

    # -- public queries --------------------------------------------------------------------
    @query
    def resource(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``code``: the current record with its revision, version count, whether retired,
        first and last change (ms) and its latest version (subjects counted, not listed)."""
        only_args(args, "code")
        return _view(ctx, st.require_head(ctx, _code(args)))

    @query
    def history(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``code``, optional ``after`` (a revision), ``limit``: every revision of the record,
        oldest first (``op`` register/update/retire, record, time, height, tx, by)."""
        only_args(args, "code", "after", "limit")
        code = _code(args)
        h = st.require_head(ctx, code)
        after, limit = _page(args)
        last = min(h["revisions"], after + limit)
        return [st.revision(ctx, code, n) for n in range(after + 1, last + 1)]

    @query
    def versions(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``code``, optional ``after``, ``limit``: its versions, oldest first."""
        only_args(args, "code", "after", "limit")
        code = _code(args)
        h = st.require_head(ctx, code)
        after, limit = _page(args)
        out = []
        for n in range(after + 1, min(h["versions"], after + limit) + 1):
            v = st.version(ctx, code, n)
            assert v is not None
            out.append(_public_version(v))
        return out

    @query
    def search(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """Optional ``provider``, ``theme``, ``keyword``, ``sharing`` (all given must match),
        ``after`` (a code: the page starts after it), ``limit``: live resources in code
        order, ``{"resources": [...], "next": <code to pass as after> or None}``.
        ``retired: true`` (with no filter: a retired resource is in no index) lists the
        retired ones too, each with ``retired: true`` (their versions stay referenced)."""
        only_args(args, "provider", "theme", "keyword", "sharing", "after", "limit", "retired")
        retired = args.get("retired", False)
        if type(retired) is not bool:
            raise bad("argument 'retired' must be true or false")
        filters: dict[str, str] = {}
        for kind in ("provider", "theme", "keyword", "sharing"):
            if args.get(kind) is not None:
                value = args[kind]
                if type(value) is not str or not 0 < len(value) <= sh.MAX_TERM or "\0" in value:
                    raise bad(f"argument {kind!r} must be a term of 1 to {sh.MAX_TERM} characters")
                filters[kind] = value
        after = sh.check_code(args["after"], "after") if args.get("after") is not None else ""
        limit = (
            arg_int(args, "limit", min_value=1, max_value=sh.MAX_PAGE) if "limit" in args else 50
        )
        if retired and filters:
            raise bad(
                "'retired' lists every resource: a retired one is in no search index, so "
                "it takes no provider, theme, keyword or sharing filter"
            )
        if filters:
            first = next(iter(filters))
            prefix = sh.index_prefix(first, filters[first])
        else:
            prefix = sh.HEAD
        found: list[dict[str, Any]] = []
        more = False
        # Codes are ASCII, so code order is key order: the page starts with a seek to the
        # first code above ``after``, and costs what it reads, however deep it starts.
        for k, _ in ctx.iter_prefix(prefix, after=after.encode() if after else None):
            code = k[len(prefix) :].decode()
            h = st.head(ctx, code)
            if h is None or (h["retired"] and not retired):
                continue
            view = _view(ctx, h)
            if not all(_matches(view, kind, value) for kind, value in filters.items()):
                continue
            if len(found) == limit:
                more = True
                break
            found.append(view)
        return {"resources": found, "next": found[-1]["code"] if more else None}

    @query
    def by_hash(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``plain_hash``: every version whose plaintext has this hash (what ``data verify``
        looks for), each with its resource ``code``, oldest anchoring first per resource."""
        only_args(args, "plain_hash")
        digest = sh.check_hash(args.get("plain_hash"), "plain_hash")
        out = []
        prefix = sh.PLAIN_HASHES + digest
        for key, _ in ctx.iter_prefix(prefix):
            rest = key[len(prefix) :]  # <code>\0<version, 4 B BE>
            code, number = rest[:-5].decode(), int.from_bytes(rest[-4:], "big")
            v = st.version(ctx, code, number)
            if v is not None:
                out.append({"code": code, **_public_version(v)})
            if len(out) >= sh.MAX_PAGE:
                break
        return out

    @query
    def can_read(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``reader`` (the public key that signed the request), ``query`` (one of
        :data:`PRIVATE_QUERIES`), ``args`` (its arguments): ``{"allowed": bool, "why": text}``.
        The API asks this before it runs a private query for a signed reader:

        * ``grants``, ``requests``, ``audit`` (of a resource): a member of its provider, or an
          ``auditor`` of any organisation;
        * ``grant``, ``request``, ``access``: also the grantee, requester or accessor itself;
        * ``accesses``, ``records`` (of a subject tag): the citizen whose did:key has that tag,
          or an auditor;
        * ``wrapped_key``: only the grantee the key is wrapped for."""
        only_args(args, "reader", "query", "args")
        reader = args.get("reader")
        if type(reader) is not bytes:
            raise bad("argument 'reader' must be the reader's public key")
        name = args.get("query")
        if name not in PRIVATE_QUERIES:
            raise bad(f"argument 'query' must be one of {', '.join(sorted(PRIVATE_QUERIES))}")
        qargs = args.get("args")
        if not isinstance(qargs, dict):
            raise bad("argument 'args' must be the query's argument map")
        address = ctx.account_address(reader)
        m = _member(ctx, address)
        auditor = m is not None and "auditor" in m["roles"]

        def answer(allowed: bool, why: str) -> dict[str, Any]:
            return {"allowed": allowed, "why": why}

        def provider_of(code: Any) -> str | None:
            try:
                h = st.head(ctx, sh.check_code(code))
            except InvalidInput:
                return None
            return None if h is None else str(h["provider"])

        def staff(code: Any) -> bool:
            p = provider_of(code)
            return m is not None and p is not None and m["org"] == p

        if name == "wrapped_key":
            ok = qargs.get("grantee") == address
            return answer(ok, "the grantee itself" if ok else "only the grantee reads its key")
        if name in ("accesses", "records"):
            try:
                own = sh.subject_tag(did_key(reader))
            except InvalidInput:
                own = b""
            if own and qargs.get("subject") == own:
                return answer(True, "the subject's own did:key")
            return answer(auditor, "an auditor" if auditor else "only the subject or an auditor")
        if auditor:
            return answer(True, "an auditor")
        if name in ("grants", "requests", "audit"):
            ok = staff(qargs.get("code"))
            return answer(
                ok, "a member of the provider" if ok else "only the provider or an auditor"
            )
        ident = qargs.get("id")
        if type(ident) is not int or ident < 1:
            return answer(False, "no such record")
        record: dict[str, Any] | None
        if name == "grant":
            record, holder = st.grant(ctx, ident), "grantee"
        elif name == "request":
            record, holder = st.request(ctx, ident), "requester"
        else:
            record, holder = st.audit_entry(ctx, ident), "by"
        if record is None:
            return answer(False, "no such record")
        if record.get(holder) == address:
            return answer(True, f"the {holder} itself")
        ok = staff(record["code"])
        return answer(ok, "a member of the provider" if ok else "only the provider or an auditor")

    # -- private queries (PRIVATE_QUERIES: the API serves them to signed, allowed readers) ---
    @query(private=True)
    def grant(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``id``: the grant with its state now (``active``, ``expired`` or ``revoked``)."""
        only_args(args, "id")
        gid = arg_int(args, "id", min_value=1, max_value=2**63)
        g = st.grant(ctx, gid)
        if g is None:
            raise refuse(ErrorCode.NO_GRANT, f"no grant {gid}")
        return {**g, "state": st.grant_state(g, ctx.time)}

    @query(private=True)
    def grants(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``code``, optional ``grantee``, ``after`` (a grant id), ``limit``: its grants,
        with their state now, by id."""
        only_args(args, "code", "grantee", "after", "limit")
        code = _code(args)
        st.require_head(ctx, code)
        after, limit = _page(args)
        # Either index is keyed by id under its prefix: a page starts with a seek to ``after``
        # and reads its own grants only, however many the resource has.
        if args.get("grantee") is not None:
            grantee = sh.check_address(args["grantee"], "grantee")
            prefix = sh.RESOURCE_GRANTS + code.encode() + b"\0" + grantee
        else:
            prefix = sh.RESOURCE_GRANT_IDS + code.encode() + b"\0"
        out = []
        for gid in st.ids_under(ctx, prefix, after, limit):
            g = st.grant(ctx, gid)
            assert g is not None
            out.append({**g, "state": st.grant_state(g, ctx.time)})
        return out

    @query(private=True)
    def request(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``id``: the access request (``pending``, ``granted`` or ``refused``)."""
        only_args(args, "id")
        rid = arg_int(args, "id", min_value=1, max_value=2**63)
        r = st.request(ctx, rid)
        if r is None:
            raise NotFound(f"no access request {rid}", ErrorCode.REQUEST_NOT_FOUND)
        return r

    @query(private=True)
    def requests(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``code``, optional ``after`` (a request id), ``limit``: its requests by id."""
        only_args(args, "code", "after", "limit")
        code = _code(args)
        st.require_head(ctx, code)
        after, limit = _page(args)
        prefix = sh.RESOURCE_REQUESTS + code.encode() + b"\0"
        return [st.request(ctx, rid) for rid in st.ids_under(ctx, prefix, after, limit)]  # type: ignore[misc]

    @query(private=True)
    def audit(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``code``, optional ``after`` (a sequence number), ``limit``: the audit trail of a
        resource, oldest first (request, granted, refused, revoked, download)."""
        only_args(args, "code", "after", "limit")
        code = _code(args)
        st.require_head(ctx, code)
        after, limit = _page(args)
        prefix = sh.RESOURCE_AUDIT + code.encode() + b"\0"
        return [st.audit_entry(ctx, s) for s in st.ids_under(ctx, prefix, after, limit)]  # type: ignore[misc]

    @query(private=True)
    def access(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``id``: one audit entry (what ``record_access`` returned): the API reads it to
        check a download was recorded, recently, by the same signer."""
        only_args(args, "id")
        seq = arg_int(args, "id", min_value=1, max_value=2**63)
        e = st.audit_entry(ctx, seq)
        if e is None:
            raise NotFound(f"no access {seq}", ErrorCode.NOT_FOUND)
        return e

    @query(private=True)
    def accesses(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``subject`` (a subject tag), optional ``after``, ``limit``: the citizen's view,
        every audit entry about records about them, oldest first: which department
        (``org``; empty for a citizen) did what (``action``: download, request, granted,
        refused, revoked) to which resource (``code``, ``title``) and version, when
        (``time``) and for what stated ``purpose``."""
        only_args(args, "subject", "after", "limit")
        tag = sh.check_tag(args.get("subject"))
        after, limit = _page(args)
        out = []
        for seq in st.ids_under(ctx, sh.SUBJECT_AUDIT + tag, after, limit):
            e = st.audit_entry(ctx, seq)
            assert e is not None
            h = st.head(ctx, e["code"])
            title = st.record(ctx, h)["title"] if h is not None else ""
            out.append({**e, "title": title})
        return out

    @query(private=True)
    def records(self, ctx: Context, args: dict[str, Any]) -> list[str]:
        """``subject``: the codes of the resources some version of which lists records about
        that subject (what a citizen may request)."""
        only_args(args, "subject")
        prefix = sh.SUBJECT_RESOURCES + sh.check_tag(args.get("subject"))
        return [k[len(prefix) :].decode() for k, _ in ctx.iter_prefix(prefix)]

    @query(private=True)
    def wrapped_key(self, ctx: Context, args: dict[str, Any]) -> bytes:
        """``code``, ``version``, ``grantee``: the version's data key wrapped for the grantee
        (``no_grant`` if none was)."""
        only_args(args, "code", "version", "grantee")
        code = _code(args)
        n = arg_int(args, "version", min_value=1, max_value=2**32 - 1)
        grantee = sh.check_address(args.get("grantee"), "grantee")
        raw = ctx.get(sh.wrap_key(code, n, grantee))
        if raw is None:
            raise refuse(
                ErrorCode.NO_GRANT,
                f"no data key of resource {code} version {n} is wrapped for {grantee.hex()}",
            )
        return raw


def _matches(view: dict[str, Any], kind: str, value: str) -> bool:
    if kind == "provider":
        return bool(view["provider"] == value)
    if kind == "sharing":
        return bool(view["sharing"] == value)
    return value in view["themes" if kind == "theme" else "keywords"]


#: The queries whose answers are not public (``@query(private=True)``): the generic query
#: routes refuse them; the API answers them only to a reader its signed request proves, after
#: asking :meth:`Data.can_read` whether that reader may see the answer.
PRIVATE_QUERIES = frozenset(name for name, spec in Data.entries.items() if spec.private)

__all__ = ["PRIVATE_QUERIES", "Data"]
