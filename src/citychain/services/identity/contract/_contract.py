"""The ``identity`` contract's entry points (the theory of operation is the package's
docstring, :mod:`citychain.services.identity.contract`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from citychain import codec
from citychain.crypto import SM2_SM3
from citychain.errors import CitychainError, ConfigError, ErrorCode, InvalidInput, NotFound
from citychain.execution import Context, Contract, arg_int, method, only_args, query
from citychain.services.identity.contract import _dids as dids
from citychain.services.identity.contract import _issuers as iss
from citychain.services.identity.contract import _status as st
from citychain.services.identity.shapes import (
    ID_BYTES,
    MAX_STATUS_LIST_BITS,
    MIN_STATUS_LIST_BITS,
    NAME,
    STATUS_CHUNK_BITS,
    STATUS_PURPOSES,
    citychain_did,
    multikey_encode,
    parse_xsd_datetime,
    split_status_list_id,
    status_list_id,
    xsd_datetime,
)
from citychain.services.identity.shapes import _document as doc

#: DID document records of create transactions, by (transaction hash, SM2 chain), as
#: ``to_record`` made them at admission, for the same transaction's check in its block.
#: Never mutated (records are encoded and stored, not edited); bounded, and cleared when full
#: (a miss only recomputes). A plain dict: get and set are atomic under the GIL.
_records: dict[tuple[bytes, bool], dict[str, Any]] = {}
_RECORDS_MAX = 8192

#: Most entries one page of a history returns.
MAX_PAGE = 200
bad = dids.bad
refuse = dids.refuse


def _arg_version(args: dict[str, Any], name: str = "version_id") -> int | None:
    """An optional version number: an integer or its decimal text (as metadata writes it)."""
    if name not in args or args[name] is None:
        return None
    value = args[name]
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if type(value) is not int or not 0 < value < 2**32:
        raise bad(f"argument {name!r} must be a version number (1, 2, ...), got {value!r}")
    return value


def _arg_time(args: dict[str, Any], name: str) -> int:
    """A moment: ms since the epoch, or a dateTime text (covering its whole second)."""
    value = args[name]
    if type(value) is int and value >= 0:
        return value
    if type(value) is str:
        return parse_xsd_datetime(value)
    raise bad(f"argument {name!r} must be a dateTime such as 2026-12-03T09:14:17Z or ms")


def _page(args: dict[str, Any], default: int = 100) -> tuple[int, int]:
    after = arg_int(args, "after", max_value=2**63) if "after" in args else 0
    limit = arg_int(args, "limit", min_value=1, max_value=MAX_PAGE) if "limit" in args else default
    return after, limit


def _expect(h: dids.Head, did: str, expected: int | None) -> None:
    if expected is not None and expected != h.versions:
        raise refuse(
            ErrorCode.VERSION_CONFLICT,
            f"{did} is at version {h.versions}, not {expected}: resolve it again and redo the "
            "change on the current document",
        )


def _indexes(args: dict[str, Any], name: str, size: int) -> list[int]:
    value = args.get(name, [])
    if not isinstance(value, list):
        raise bad(f"argument {name!r} must be a list of entry indexes")
    for i in value:
        if type(i) is not int or not 0 <= i < size:
            raise bad(f"argument {name!r}: {i!r} is not an index of this list (0 to {size - 1})")
    return sorted(value)


@dataclass(frozen=True, slots=True)
class _Change:
    list_id: str
    head: dict[str, Any]
    to_set: list[int]
    to_clear: list[int]
    #: What is published with the change, if anything.
    published: _Publication | None = None


@dataclass(frozen=True, slots=True)
class _Publication:
    """A list's signed forms that one transaction publishes (a status list credential, a
    Status List Token, or both), each with the SHA-256 of the chain bits it shows, by its
    argument's name: the method compares those with the list's."""

    credential: bytes | None
    token: str | None
    hashes: tuple[tuple[str, bytes], ...]

    @staticmethod
    def of(args: dict[str, Any], head: dict[str, Any]) -> _Publication | None:
        credential, token = args.get("credential"), args.get("token")
        hashes: list[tuple[str, bytes]] = []
        if credential is not None:
            hashes.append(("credential", st.published_bits_hash(credential, head)))
        if token is not None:
            hashes.append(("token", st.published_token_bits_hash(token, head)))
        return _Publication(credential, token, tuple(hashes)) if hashes else None

    def mismatch(self, bits_hash: bytes) -> str | None:
        """The first argument whose bits are not those of ``bits_hash``, if any."""
        return next((name for name, h in self.hashes if h != bits_hash), None)


#: The field of each published form that holds the list's entries, for refusals.
_LIST_FIELD = {"credential": "encodedList", "token": "status_list.lst"}


class Identity(Contract):
    name = NAME

    # -- genesis ---------------------------------------------------------------------------
    def genesis(self, ctx: Context, params: dict[str, Any]) -> None:
        unknown = sorted(set(params) - {"trusted_issuers"})
        if unknown:
            raise ConfigError(
                f"identity genesis: unknown parameter(s) {', '.join(unknown)} "
                "(known: trusted_issuers)"
            )
        entries = params.get("trusted_issuers", [])
        if not isinstance(entries, list):
            raise ConfigError("identity genesis: 'trusted_issuers' must be a list")
        for i, raw in enumerate(entries):
            try:
                if not isinstance(raw, dict) or set(raw) != {"issuer", "type", "name"}:
                    raise bad("must be a map of issuer, type and name")
                issuer = iss.arg_issuer(ctx, raw)
                entry = iss.trust(ctx, issuer, iss.arg_type(raw), iss.arg_text(raw, "name"))
            except CitychainError as exc:
                raise ConfigError(
                    f"identity genesis: trusted_issuers[{i}]: {exc.message}"
                ) from None
            ctx.set(iss.entry_key(issuer, entry["type"]), codec.encode(entry))
            iss.record(ctx, "trust", entry)

    # -- DIDs ------------------------------------------------------------------------------
    def _check_create_did(self, ctx: Context, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        only_args(args, "document")
        if "document" not in args:
            raise bad("missing argument 'document'")
        did = citychain_did(ctx.tx_hash[:ID_BYTES])
        sm2 = ctx.suite_name == SM2_SM3.name
        # The document's record is a pure function of the transaction's arguments, which its
        # hash commits to: made once at admission, taken again in its block (a third of the
        # check's cost). The state-dependent checks below run every time.
        key = (ctx.tx_hash, sm2)
        record = _records.get(key)
        if record is None:
            record = doc.to_record(args["document"], None, sm2=sm2)
            if len(_records) >= _RECORDS_MAX:
                _records.clear()
            _records[key] = record
        if dids.head(ctx, did) is not None:  # a 128-bit hash prefix: not in practice
            raise refuse(ErrorCode.DUPLICATE, f"{did} already exists")
        self._usable(record, did)
        dids.check_controllers(ctx, record, did)
        dids.authorize(ctx, did, record)
        return did, record

    @staticmethod
    def _usable(record: dict[str, Any], did: str) -> None:
        if not doc.invocation_keys(record) and doc.controllers(record, did) == [did]:
            raise doc.bad(
                "capabilityInvocation",
                "is empty and no other controller is named, so no key could ever change the "
                "DID again; deactivate it instead",
            )

    @method(check=_check_create_did)
    def create_did(
        self, ctx: Context, args: dict[str, Any], checked: tuple[str, dict[str, Any]]
    ) -> str:
        """``document`` (without ``id``): a new DID, ``did:citychain:<base58btc of the first
        16 bytes of this transaction's hash>``, controlled by a key of its own
        ``capabilityInvocation`` that signs this transaction (or by its controllers')."""
        did, record = checked
        dids.append(ctx, did, None, record, "create")
        ctx.emit("did_created", did=did)
        return did

    def _check_update_did(
        self, ctx: Context, args: dict[str, Any]
    ) -> tuple[str, dids.Head, dict[str, Any]]:
        only_args(args, "did", "document", "version_id")
        did = dids.arg_did(args)
        if "document" not in args:
            raise bad("missing argument 'document'")
        expected = _arg_version(args)
        h, latest = dids.require(ctx, did)
        assert latest.record is not None  # require(live=True)
        dids.authorize(ctx, did, latest.record, history=h)
        _expect(h, did, expected)
        record = doc.to_record(args["document"], did, sm2=ctx.suite_name == SM2_SM3.name)
        if record == latest.record:
            raise bad(f"the document is the same as version {h.versions} of {did}: no change")
        self._usable(record, did)
        dids.check_controllers(ctx, record, did)
        return did, h, record

    @method(check=_check_update_did)
    def update_did(
        self, ctx: Context, args: dict[str, Any], checked: tuple[str, dids.Head, dict[str, Any]]
    ) -> int:
        """``did``, ``document`` (the whole new document), optional ``version_id`` (the
        version it replaces: refused with ``version_conflict`` if the DID moved on). Signed
        by a current controller key. Returns the new version's number."""
        did, h, record = checked
        n = dids.append(ctx, did, h, record, "update")
        ctx.emit("did_updated", did=did, version=n)
        return n

    def _check_deactivate_did(self, ctx: Context, args: dict[str, Any]) -> tuple[str, dids.Head]:
        only_args(args, "did", "version_id")
        did = dids.arg_did(args)
        expected = _arg_version(args)
        h, latest = dids.require(ctx, did)
        assert latest.record is not None
        dids.authorize(ctx, did, latest.record, history=h)
        _expect(h, did, expected)
        return did, h

    @method(check=_check_deactivate_did)
    def deactivate_did(
        self, ctx: Context, args: dict[str, Any], checked: tuple[str, dids.Head]
    ) -> int:
        """``did``, optional ``version_id``: the DID resolves as deactivated from now on
        (its past versions stay readable). Irreversible."""
        did, h = checked
        n = dids.append(ctx, did, h, None, "deactivate")
        ctx.emit("did_deactivated", did=did, version=n)
        return n

    # -- trusted issuers -------------------------------------------------------------------
    def _check_trust_issuer(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(args, "issuer", "type", "name")
        iss.governed(ctx, "trust_issuer")
        issuer = iss.arg_issuer(ctx, args)
        return iss.trust(ctx, issuer, iss.arg_type(args), iss.arg_text(args, "name"))

    @method(check=_check_trust_issuer)
    def trust_issuer(self, ctx: Context, args: dict[str, Any], entry: dict[str, Any]) -> int:
        """``issuer`` (a DID), ``type`` (a credential type), ``name`` (the issuer's name as
        verifiers show it). Only under a governance policy for ``identity.trust_issuer``.
        Returns the history entry's number."""
        ctx.set(iss.entry_key(entry["issuer"], entry["type"]), codec.encode(entry))
        seq = iss.record(ctx, "trust", entry)
        ctx.emit("issuer_trusted", issuer=entry["issuer"], type=entry["type"], seq=seq)
        return seq

    def _check_untrust_issuer(
        self, ctx: Context, args: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        only_args(args, "issuer", "type", "reason")
        iss.governed(ctx, "untrust_issuer")
        issuer = args.get("issuer")
        if type(issuer) is not str:
            raise bad("argument 'issuer' must be a DID")
        ctype = iss.arg_type(args)
        reason = iss.arg_text(args, "reason", 1024) if "reason" in args else ""
        entry = iss.get_entry(ctx, issuer, ctype)
        if entry is None:
            raise iss.not_trusted(issuer, ctype)
        return entry, reason

    @method(check=_check_untrust_issuer)
    def untrust_issuer(
        self, ctx: Context, args: dict[str, Any], checked: tuple[dict[str, Any], str]
    ) -> int:
        """``issuer``, ``type``, optional ``reason``: the issuer may no longer issue that
        type (credentials it issued before keep their history). Governed like
        ``trust_issuer``. Returns the history entry's number."""
        entry, reason = checked
        ctx.delete(iss.entry_key(entry["issuer"], entry["type"]))
        iss.close_period(ctx, entry)
        seq = iss.record(ctx, "untrust", entry, reason=reason, since=entry["since"])
        ctx.emit("issuer_untrusted", issuer=entry["issuer"], type=entry["type"], seq=seq)
        return seq

    # -- status lists ----------------------------------------------------------------------
    def _controlled_issuer(self, ctx: Context, issuer: str) -> None:
        h, latest = dids.require(ctx, issuer)
        assert latest.record is not None
        dids.authorize(ctx, issuer, latest.record, history=h)

    def _check_register_status_list(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(args, "issuer", "name", "purpose", "size")
        issuer = dids.arg_did(args, "issuer")
        try:
            list_id = status_list_id(issuer, args.get("name"))  # type: ignore[arg-type]
        except InvalidInput as exc:
            raise bad(f"argument 'name': {exc.message}") from None
        purpose = args.get("purpose")
        if purpose not in STATUS_PURPOSES:
            raise bad(f"argument 'purpose' must be one of {', '.join(STATUS_PURPOSES)}")
        size = args.get("size", MIN_STATUS_LIST_BITS)
        if type(size) is not int or not st.check_size(size):
            raise bad(
                f"argument 'size' must be a multiple of {STATUS_CHUNK_BITS} from "
                f"{MIN_STATUS_LIST_BITS} to {MAX_STATUS_LIST_BITS} entries, got {size!r}"
            )
        self._controlled_issuer(ctx, issuer)
        if st.get_head(ctx, list_id) is not None:
            raise refuse(ErrorCode.DUPLICATE, f"status list {list_id} already exists")
        return {
            "id": list_id,
            "issuer": issuer,
            "purpose": purpose,
            "size": size,
            "hash": st.empty_hash(size),
            "changes": 0,
            "created": ctx.time,
            "updated": ctx.time,
            "height": ctx.height,
            "tx": ctx.tx_hash,
        }

    @method(check=_check_register_status_list)
    def register_status_list(self, ctx: Context, args: dict[str, Any], head: dict[str, Any]) -> str:
        """``issuer`` (a did:citychain the signer controls), ``name``, ``purpose``
        (revocation or suspension), optional ``size`` (entries; default 131,072). Every
        entry starts cleared. Returns the list's id, ``<issuer>/status/<name>``."""
        ctx.set(st.head_key(head["id"]), codec.encode(head))
        ctx.emit("status_list_registered", id=head["id"], purpose=head["purpose"])
        return str(head["id"])

    def _list(self, ctx: Context, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        list_id = args.get("list_id")
        try:
            split_status_list_id(list_id)  # type: ignore[arg-type]
        except InvalidInput as exc:
            raise bad(f"argument 'list_id': {exc.message}") from None
        head = st.get_head(ctx, str(list_id))
        if head is None:
            raise NotFound(f"no status list {list_id}", ErrorCode.STATUS_LIST_NOT_FOUND)
        return str(list_id), head

    def _check_set_status(self, ctx: Context, args: dict[str, Any]) -> _Change:
        only_args(args, "list_id", "set", "clear", "credential", "token")
        list_id, head = self._list(ctx, args)
        size = head["size"]
        to_set, to_clear = _indexes(args, "set", size), _indexes(args, "clear", size)
        if not to_set and not to_clear:
            raise bad("give the entries to 'set' or to 'clear'")
        if len(to_set) + len(to_clear) > st.MAX_CHANGE:
            raise bad(f"one change sets and clears at most {st.MAX_CHANGE} entries")
        both = sorted({*to_set} & {*to_clear})
        if both or len(set(to_set)) != len(to_set) or len(set(to_clear)) != len(to_clear):
            raise bad(f"an entry is listed twice{f' ({both[0]})' if both else ''}")
        self._controlled_issuer(ctx, head["issuer"])
        if to_clear and head["purpose"] == "revocation":
            raise refuse(
                ErrorCode.REVOCATION_FINAL,
                f"{list_id} is a revocation list: entry {to_clear[0]} stays revoked (use a "
                "suspension list for statuses that can be lifted)",
            )
        chunks: dict[int, bytes] = {}
        for index, want in [*((i, True) for i in to_set), *((i, False) for i in to_clear)]:
            n = index // STATUS_CHUNK_BITS
            if n not in chunks:
                chunks[n] = st.chunk(ctx, list_id, n)
            if st.bit(chunks[n], index % STATUS_CHUNK_BITS) == want:
                raise bad(f"entry {index} of {list_id} is already {'set' if want else 'clear'}")
        return _Change(list_id, head, to_set, to_clear, _Publication.of(args, head))

    @method(check=_check_set_status)
    def set_status(self, ctx: Context, args: dict[str, Any], change: _Change) -> int:
        """``list_id``, ``set`` and/or ``clear`` (entry indexes), optional ``credential``
        and ``token`` (the status list credential and the Status List Token after this
        change, signed by the issuer: published with it, see
        :meth:`publish_status_credential`): one change of a status list, signed by a
        controller key of its issuer. A revocation list's entries are never cleared. Returns
        the change's number."""
        head = change.head
        new_hash = st.apply(ctx, change.list_id, head["size"], change.to_set, change.to_clear)
        seq = int(head["changes"]) + 1
        if change.published is not None:
            wrong = change.published.mismatch(new_hash)
            if wrong is not None:
                raise refuse(
                    ErrorCode.INVALID_CREDENTIAL,
                    f"argument '{wrong}': its {_LIST_FIELD[wrong]} is not the list's bits after "
                    "this change (build it from the bits before it, with these entries set and "
                    "cleared)",
                )
            self._keep_published(ctx, change.list_id, change.published, seq)
        ctx.set(
            st.change_key(change.list_id, seq),
            codec.encode(
                {
                    "seq": seq,
                    "set": change.to_set,
                    "clear": change.to_clear,
                    "hash": new_hash,
                    "time": ctx.time,
                    "height": ctx.height,
                    "tx": ctx.tx_hash,
                    "by": ctx.sender_public_key,
                }
            ),
        )
        ctx.set(
            st.head_key(change.list_id),
            codec.encode({**head, "hash": new_hash, "changes": seq, "updated": ctx.time}),
        )
        ctx.emit(
            "status_changed",
            id=change.list_id,
            seq=seq,
            set=len(change.to_set),
            clear=len(change.to_clear),
        )
        return seq

    def _keep_published(
        self, ctx: Context, list_id: str, published: _Publication, changes: int
    ) -> None:
        when = {"changes": changes, "time": ctx.time, "height": ctx.height, "tx": ctx.tx_hash}
        if published.credential is not None:
            record = {"credential": published.credential, **when}
            ctx.set(st.credential_key(list_id), codec.encode(record))
            ctx.emit("status_credential_published", id=list_id, changes=changes)
        if published.token is not None:
            ctx.set(st.token_key(list_id), codec.encode({"token": published.token, **when}))
            ctx.emit("status_token_published", id=list_id, changes=changes)

    def _check_publish(self, ctx: Context, args: dict[str, Any]) -> tuple[str, _Publication, int]:
        only_args(args, "list_id", "credential", "token")
        list_id, head = self._list(ctx, args)
        # The signer first: only a controller of the issuer makes the node inflate and
        # convert what it sends.
        self._controlled_issuer(ctx, head["issuer"])
        published = _Publication.of(args, head)
        if published is None:
            raise bad("give the list's signed 'credential', its 'token', or both")
        wrong = published.mismatch(head["hash"])
        if wrong is not None:
            raise refuse(
                ErrorCode.INVALID_CREDENTIAL,
                f"argument '{wrong}': its {_LIST_FIELD[wrong]} is not the bits {list_id} has "
                f"now (after change {head['changes']})",
            )
        return list_id, published, int(head["changes"])

    @method(check=_check_publish)
    def publish_status_credential(
        self, ctx: Context, args: dict[str, Any], checked: tuple[str, _Publication, int]
    ) -> int:
        """``list_id``, ``credential`` and/or ``token``: publish the list's
        ``BitstringStatusListCredential`` (JSON bytes) and/or its Status List Token (a
        compact JWS, for SD-JWT VC verifiers) as its issuer signed them, so that verifiers
        outside the chain can read the list (``GET /1.0/identifiers/<list id>``). Their bits
        must be the list's now; each replaces the one of its kind published before. Signed
        by a controller key of the issuer. Returns the change number they show."""
        list_id, published, changes = checked
        self._keep_published(ctx, list_id, published, changes)
        return changes

    # -- queries: DIDs ---------------------------------------------------------------------
    @query
    def resolve(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``did``, optional ``version_id`` or ``version_time`` (a dateTime such as
        ``2026-12-03T09:14:17Z``, covering that whole second, or ms since the epoch):
        ``{"didDocument", "didDocumentMetadata"}`` as DID Resolution writes them."""
        only_args(args, "did", "version_id", "version_time")
        did = dids.arg_did(args)
        number = _arg_version(args)
        when = args.get("version_time")
        if number is not None and when is not None:
            raise bad("give 'version_id' or 'version_time', not both")
        h = dids.head(ctx, did)
        if h is None:
            raise NotFound(f"{did} is not on this chain", ErrorCode.DID_NOT_FOUND)
        if number is not None and number > h.versions:
            raise NotFound(
                f"{did} has versions 1 to {h.versions}, not {number}", ErrorCode.DID_NOT_FOUND
            )
        if when is not None:
            number = dids.at_time(ctx, did, h, _arg_time(args, "version_time"))
            if number == 0:
                raise NotFound(
                    f"{did} did not exist yet at {when} (created {xsd_datetime(h.created)})",
                    ErrorCode.DID_NOT_FOUND,
                )
        v = dids.version(ctx, did, number or h.versions)
        following = dids.version(ctx, did, v.number + 1) if v.number < h.versions else None
        return doc.resolution(did, h, v, following)

    @query
    def history(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``did``, optional ``after`` (a version number), ``limit``: how each version came
        to be, oldest first (operation, time, height, transaction, signing key)."""
        only_args(args, "did", "after", "limit")
        did = dids.arg_did(args)
        after, limit = _page(args)
        h = dids.head(ctx, did)
        if h is None:
            raise NotFound(f"{did} is not on this chain", ErrorCode.DID_NOT_FOUND)
        out = []
        for n in range(after + 1, min(h.versions, after + limit) + 1):
            v = dids.version(ctx, did, n)
            out.append(
                {
                    "versionId": str(n),
                    "operation": v.op,
                    "time": xsd_datetime(v.time),
                    "time_ms": v.time,
                    "height": v.height,
                    "tx": v.tx,
                    "signer": multikey_encode(v.signer) if len(v.signer) == 32 else v.signer.hex(),
                }
            )
        return out

    # -- queries: trusted issuers ----------------------------------------------------------
    @query
    def is_trusted(self, ctx: Context, args: dict[str, Any]) -> bool:
        """``issuer``, ``type``, optional ``at`` (a dateTime or ms): whether the registry
        trusts the issuer for that type now, or did at that time (e.g. a credential's
        ``validFrom``)."""
        only_args(args, "issuer", "type", "at")
        issuer = args.get("issuer")
        if type(issuer) is not str:
            raise bad("argument 'issuer' must be a DID")
        ctype = iss.arg_type(args)
        if args.get("at") is None:
            return iss.get_entry(ctx, issuer, ctype) is not None
        return iss.trusted_at(ctx, issuer, ctype, _arg_time(args, "at"))

    @query
    def issuer(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``issuer``, ``type``: the registry's entry (with the issuer's name), or
        ``issuer_not_trusted``."""
        only_args(args, "issuer", "type")
        issuer, ctype = args.get("issuer"), iss.arg_type(args)
        if type(issuer) is not str:
            raise bad("argument 'issuer' must be a DID")
        entry = iss.get_entry(ctx, issuer, ctype)
        if entry is None:
            raise iss.not_trusted(issuer, ctype)
        return entry

    @query
    def issuers(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``type``: every issuer trusted for it, by DID."""
        only_args(args, "type")
        prefix = iss.type_prefix(iss.arg_type(args))
        return [codec.decode(v) for _, v in ctx.iter_prefix(prefix)]

    @query
    def issuer_history(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Optional ``after`` (a sequence number), ``limit``: the registry's changes, oldest
        first (who sent them, when, in which transaction)."""
        only_args(args, "after", "limit")
        after, limit = _page(args)
        return iss.history_after(ctx, after, limit)

    # -- queries: status lists -------------------------------------------------------------
    @query
    def status(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``list_id``, ``index``, optional ``at`` (a dateTime or ms): whether the entry is
        set (now, or at that time), with the list's purpose, the hash of its bitstring then
        and how many changes it had had."""
        only_args(args, "list_id", "index", "at")
        list_id, head = self._list(ctx, args)
        index = arg_int(args, "index", max_value=head["size"] - 1)
        data = st.chunk(ctx, list_id, index // STATUS_CHUNK_BITS)
        value, digest, changes = (
            st.bit(data, index % STATUS_CHUNK_BITS),
            head["hash"],
            head["changes"],
        )
        if args.get("at") is not None:
            at = _arg_time(args, "at")
            if at < head["created"]:
                raise NotFound(
                    f"status list {list_id} did not exist yet at {args['at']} (registered "
                    f"{xsd_datetime(head['created'])})",
                    ErrorCode.STATUS_LIST_NOT_FOUND,
                )
            value, digest, changes = st.as_of(ctx, list_id, head, index, value, at)
        return {
            "list_id": list_id,
            "index": index,
            "set": value,
            "purpose": head["purpose"],
            "hash": digest,
            "changes": changes,
        }

    @query
    def status_list(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``list_id``: the list's head (issuer, purpose, size, current hash, changes)."""
        only_args(args, "list_id")
        return self._list(ctx, args)[1]

    @query
    def status_bitstring(self, ctx: Context, args: dict[str, Any]) -> bytes:
        """``list_id``: the whole uncompressed bitstring (to build the status list
        credential; its SHA-256 is the list's ``hash``)."""
        only_args(args, "list_id")
        list_id, head = self._list(ctx, args)
        return st.bitstring(ctx, list_id, head["size"])

    @query
    def status_credential(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``list_id``: the list's published status list credential (``credential``: its
        JSON bytes, as the issuer signed them), the change it shows, when it was published,
        and ``current``: whether the list has changed since (a verifier must not rely on a
        credential that is not current). ``status_list_not_found`` if none was published."""
        return self._published(ctx, args, st.credential_key, "status list credential")

    @query
    def status_token(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``list_id``: the list's published Status List Token (``token``: the compact JWS as
        the issuer signed it), with the same ``changes``, time and ``current`` as
        :meth:`status_credential`. ``status_list_not_found`` if none was published."""
        return self._published(ctx, args, st.token_key, "Status List Token")

    def _published(
        self, ctx: Context, args: dict[str, Any], key: Callable[[str], bytes], what: str
    ) -> dict[str, Any]:
        only_args(args, "list_id")
        list_id, head = self._list(ctx, args)
        raw = ctx.get(key(list_id))
        if raw is None:
            raise NotFound(
                f"the issuer of {list_id} has published no {what} for it "
                "(identity.publish_status_credential)",
                ErrorCode.STATUS_LIST_NOT_FOUND,
            )
        record: dict[str, Any] = codec.decode_trusted(raw)
        return {**record, "list_id": list_id, "current": record["changes"] == head["changes"]}

    @query
    def status_history(self, ctx: Context, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``list_id``, optional ``after``, ``limit``: the list's changes, oldest first."""
        only_args(args, "list_id", "after", "limit")
        list_id, head = self._list(ctx, args)
        after, limit = _page(args)
        return st.changes_after(ctx, list_id, after, limit, head["changes"])
