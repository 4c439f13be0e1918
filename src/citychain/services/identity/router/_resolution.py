"""DID Resolution (W3C DID Resolution v1.0, HTTPS binding) over the node's state.

Theory of operation
-------------------
``GET /1.0/identifiers/{did}`` is the Universal Resolver's driver interface. :class:`Resolver`
turns a DID, its resolution options (the query string) and the ``Accept`` header into one
:class:`Answer`: the HTTP status, the content type and the body. The route only renders it.

The algorithm, in order (the first failure decides; every failure answers
``didDocument: null``, ``didDocumentMetadata: {}`` and an RFC 9457 problem-details object in
``didResolutionMetadata.error`` whose ``type`` is a URL of ``https://www.w3.org/ns/did#``):

==================================================  =============================  ======
check                                               error type                     status
==================================================  =============================  ======
``Accept`` names no representation offered here     ``REPRESENTATION_NOT_SUPPORTED``  406
the DID does not match the DID syntax               ``INVALID_DID``                   400
an option is malformed (``versionTime`` not UTC     ``INVALID_OPTIONS``               400
``YYYY-MM-DDThh:mm:ssZ``, ``versionId`` not a
positive integer, both given, a non-ASCII value)
an option this resolver does not implement          ``FEATURE_NOT_SUPPORTED``         501
(``service``, ``relativeRef``, ``hl``, ...)
a method other than ``citychain`` and ``key``       ``METHOD_NOT_SUPPORTED``          501
the DID (or that version/time) is not on chain      ``NOT_FOUND``                     404
the DID is deactivated                              (no error; metadata               410
                                                    ``deactivated: true``)
==================================================  =============================  ======

``did:key`` (Ed25519) is resolved here with no chain at all; ``did:citychain`` through the
``identity`` contract's ``resolve`` query on the latest committed state. A DID's latest
resolution in the default representation is also kept rendered, per version, in the
service's off-chain index, and given from there while the DID is at that version
(:mod:`._index`).

DID URL dereferencing: ``<did:citychain>/status/<name>`` (a status list's id, what a
credential's ``statusListCredential`` and an SD-JWT VC's ``status.status_list.uri`` name)
dereferences to the list as its issuer signed and published it, byte for byte, so a verifier
outside the chain reads revocations and suspensions from any node. ``Accept`` chooses the
form (its first range offered, in the header's order): ``application/vc`` (also ``*/*``,
JSON, or no ``Accept``) for the ``BitstringStatusListCredential``,
``application/statuslist+jwt`` for the IETF Status List Token; anything else ``406``. Not
published yet in that form, or published before the list's latest change: ``404
NOT_FOUND`` saying which (a verifier must not rely on a stale list). Any other path:
``400 INVALID_DID_URL``.

Representations: ``application/did-resolution`` (the whole result; also for ``*/*``,
``application/json`` and no ``Accept``), ``application/did+ld+json`` (the document with its
``@context``) and ``application/did+json`` (the document without it). On success the
``Content-Type`` equals ``didResolutionMetadata.contentType``.

Every error body also carries citychain's own ``{"code", "message"}``, so a client of the
rest of the API reads it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from citychain import codec
from citychain.api._json import dumps
from citychain.api.service import NodeService
from citychain.errors import CitychainError, ErrorCode
from citychain.services.identity.router._index import ResolutionIndex
from citychain.services.identity.shapes import (
    METHOD,
    NAME,
    DidHead,
    DidVersion,
    citychain_id,
    did_head_key,
    did_key_document,
    did_version_key,
    split_did,
    split_status_list_id,
)
from citychain.services.identity.shapes._document import resolution
from citychain.services.identity.shapes._token_status import STATUS_LIST_JWT_MEDIA

RESOLUTION = "application/did-resolution"
#: The media type of a VC 2.0 credential (what a status list's DID URL dereferences to).
VC_MEDIA = "application/vc"
DID_LD_JSON = "application/did+ld+json"
DID_JSON = "application/did+json"
CONTEXT = "https://w3id.org/did-resolution/v1"
_ERROR_BASE = "https://www.w3.org/ns/did#"
#: DID parameters of DID URLs that this resolver does not implement.
_UNSUPPORTED = frozenset({"service", "relativeRef", "hl", "transformKeys", "versionHash"})
_VERSION_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_VERSION_ID_RE = re.compile(r"[1-9][0-9]{0,9}")
_CITYCHAIN = f"did:{METHOD}:"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the route sends: status, content type and body (JSON, or bytes sent as they are)."""

    status: int
    content_type: str
    body: dict[str, Any] | bytes


class _Refusal(Exception):
    def __init__(self, status: int, kind: str, detail: str, code: ErrorCode) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.code = status, kind, detail, code


def _error_answer(r: _Refusal) -> Answer:
    return Answer(
        r.status,
        RESOLUTION,
        {
            "@context": CONTEXT,
            "didDocument": None,
            "didDocumentMetadata": {},
            "didResolutionMetadata": {
                "error": {
                    "type": _ERROR_BASE + r.kind,
                    "title": r.kind.replace("_", " ").lower(),
                    "detail": r.detail,
                }
            },
            "code": r.code.value,
            "message": r.detail,
        },
    )


def _negotiate(accept: str | None, offers: dict[str, str], default: str, offered: str) -> str:
    """What to answer for an ``Accept`` header: the representation ``offers`` gives its first
    range found there, in the header's order (q-values are not weighed); ``default`` when
    there is no header; ``REPRESENTATION_NOT_SUPPORTED`` saying what is ``offered`` when no
    range is."""
    if not accept:
        return default
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in offers:
            return offers[media]
    raise _Refusal(
        406,
        "REPRESENTATION_NOT_SUPPORTED",
        f"cannot answer {accept[:120]!r}: {offered}",
        ErrorCode.BAD_ARGUMENTS,
    )


_ANY = ("*/*", "application/*", "application/json")
_DID_OFFERS = {
    **dict.fromkeys((*_ANY, RESOLUTION), RESOLUTION),
    **dict.fromkeys((DID_LD_JSON, "application/ld+json"), DID_LD_JSON),
    DID_JSON: DID_JSON,
}


_DID_OFFERED = f"this resolver offers {RESOLUTION}, {DID_LD_JSON} and {DID_JSON}"


def representation(accept: str | None) -> str:
    """The content type to answer a DID's resolution with, for an ``Accept`` header."""
    return _negotiate(accept, _DID_OFFERS, RESOLUTION, _DID_OFFERED)


#: A status list's published forms, by media type.
_FORMS = {VC_MEDIA: "status list credential", STATUS_LIST_JWT_MEDIA: "Status List Token"}
_LIST_OFFERS = {
    **dict.fromkeys((*_ANY, VC_MEDIA, "application/vc+ld+json", "application/ld+json"), VC_MEDIA),
    STATUS_LIST_JWT_MEDIA: STATUS_LIST_JWT_MEDIA,
}


_LIST_OFFERED = f"a status list is offered as {VC_MEDIA} and {STATUS_LIST_JWT_MEDIA}"


def _list_representation(accept: str | None) -> str:
    """The form of a status list to answer with, for an ``Accept`` header."""
    return _negotiate(accept, _LIST_OFFERS, VC_MEDIA, _LIST_OFFERED)


def _options(options: dict[str, str]) -> dict[str, Any]:
    """The ``resolve`` query's arguments from the resolution options, checked."""
    for name, value in options.items():
        if not value.isascii():
            raise _Refusal(
                400, "INVALID_OPTIONS", f"option {name!r} is not ASCII", ErrorCode.BAD_ARGUMENTS
            )
    unsupported = sorted(set(options) & _UNSUPPORTED)
    if unsupported:
        raise _Refusal(
            501,
            "FEATURE_NOT_SUPPORTED",
            f"this resolver does not implement the DID parameter(s) {', '.join(unsupported)}",
            ErrorCode.BAD_ARGUMENTS,
        )
    unknown = sorted(set(options) - {"versionId", "versionTime"})
    if unknown:
        raise _Refusal(
            400,
            "INVALID_OPTIONS",
            f"unknown resolution option(s) {', '.join(unknown)} (known: versionId, versionTime)",
            ErrorCode.BAD_ARGUMENTS,
        )
    args: dict[str, Any] = {}
    if "versionId" in options and "versionTime" in options:
        raise _Refusal(
            400,
            "INVALID_OPTIONS",
            "give versionId or versionTime, not both",
            ErrorCode.BAD_ARGUMENTS,
        )
    if "versionId" in options:
        if not _VERSION_ID_RE.fullmatch(options["versionId"]):
            raise _Refusal(
                400,
                "INVALID_OPTIONS",
                f"versionId must be a positive whole number, got {options['versionId']!r}",
                ErrorCode.BAD_ARGUMENTS,
            )
        args["version_id"] = int(options["versionId"])
    if "versionTime" in options:
        if not _VERSION_TIME_RE.fullmatch(options["versionTime"]):
            raise _Refusal(
                400,
                "INVALID_OPTIONS",
                "versionTime must be UTC without fractions, YYYY-MM-DDThh:mm:ssZ, got "
                f"{options['versionTime']!r}",
                ErrorCode.BAD_ARGUMENTS,
            )
        args["version_time"] = options["versionTime"]
    return args


def _document_for(result: dict[str, Any], content_type: str) -> dict[str, Any]:
    doc = dict(result["didDocument"])
    if content_type == DID_JSON:
        doc.pop("@context", None)
    return doc


def _form(content_type: str) -> str:
    """A representation's part of its index entry's key (``._index.key``): none for the
    resolution result, the media type for the document alone (either form)."""
    return "" if content_type == RESOLUTION else content_type


@dataclass(frozen=True, slots=True)
class _Ask:
    """A resolution that waits for one ``identity`` query: the query, what its result makes,
    and what a refusal of it makes (anything that is not one is raised again)."""

    method: str
    args: dict[str, Any]
    finish: Callable[[Any], Answer]
    fail: Callable[[CitychainError], Answer]


class Resolver:
    """Resolves DIDs for the route, against ``service`` (the node): :meth:`resolve` on the
    route's way; :meth:`resolve_inline` for the HTTP protocol's own answers, the same answer
    with the query run on the loop within its budget (``NodeService.query_inline``)."""

    def __init__(self, service: NodeService, index: ResolutionIndex | None = None) -> None:
        self._service = service
        self._index = index if index is not None else ResolutionIndex(service)

    async def resolve(self, did: str, options: dict[str, str], accept: str | None) -> Answer:
        plan = self._plan(did, options, accept)
        if isinstance(plan, Answer):
            return plan
        try:
            found = await self._service.query(NAME, plan.method, plan.args)
        except CitychainError as exc:
            return plan.fail(exc)
        return plan.finish(found)

    def resolve_inline(self, did: str, options: dict[str, str], accept: str | None) -> Answer:
        """:meth:`resolve`, now; raises the query's ``CitychainError`` that is not a
        resolution's answer (``OUT_OF_GAS`` at the loop's budget among them)."""
        plan = self._plan(did, options, accept)
        if isinstance(plan, Answer):
            return plan
        try:
            found = self._service.query_inline(NAME, plan.method, plan.args)
        except CitychainError as exc:
            return plan.fail(exc)
        return plan.finish(found)

    def _plan(self, did: str, options: dict[str, str], accept: str | None) -> Answer | _Ask:
        if "/" in did:
            return self._dereference(did, accept)
        try:
            content_type = representation(accept)
            if not options and did.startswith(_CITYCHAIN):
                # Made by an earlier resolution or the server's job: see ._index.
                kept = self._index.get(did, _form(content_type))
                if kept is not None:
                    return Answer(kept[0], content_type, kept[1])
            try:
                method, _ = split_did(did)
            except CitychainError as exc:
                raise _Refusal(400, "INVALID_DID", exc.message, ErrorCode.BAD_ARGUMENTS) from None
            args = _options(options) if options else {}
            if method == "key":
                return _did_answer(self._did_key(did, args), content_type)
            if method != METHOD:
                raise _Refusal(
                    501,
                    "METHOD_NOT_SUPPORTED",
                    f"this resolver resolves did:{METHOD} and did:key, not did:{method}",
                    ErrorCode.BAD_ARGUMENTS,
                )
        except _Refusal as r:
            return _error_answer(r)
        ident = _ident(did) if not args else None
        if ident is not None:  # the latest resolution: kept (._index)
            made = lambda result: self._latest(did, ident, result, content_type)  # noqa: E731
            return _Ask("resolve", {"did": did}, made, _resolve_failed)
        return _Ask(
            "resolve",
            {"did": did, **args},
            lambda result: _did_answer(result, content_type),
            _resolve_failed,
        )

    def _latest(
        self, did: str, ident: bytes, result: dict[str, Any], content_type: str = RESOLUTION
    ) -> Answer:
        """The latest resolution's answer in ``content_type`` from ``result``
        (``{"didDocument", "didDocumentMetadata"}``), rendered as the route sends it, and
        kept in the index for the version it shows."""
        answer = _did_answer(result, content_type)
        assert isinstance(answer.body, dict)
        body = dumps(answer.body, sort_keys=True)
        version = int(result["didDocumentMetadata"]["versionId"])
        self._index.put(did, ident, version, answer.status, body, _form(content_type))
        return Answer(answer.status, content_type, body)

    def prefill(self, did: str) -> None:
        """Make the index's entry of ``did``'s latest resolution from the latest committed
        state, its records read directly (two point reads) and the result built by the same
        function the contract's ``resolve`` answers with (``shapes._document.resolution``),
        without the query's canonical copies of its arguments and result: ~4x cheaper, which
        is what the background job spends on each DID a block writes. Nothing for a DID not
        on chain (or a state read refused)."""
        ident = _ident(did)
        if ident is None:
            return
        try:
            raw = self._service.state_value(did_head_key(did))
            if raw is None:
                return
            head = DidHead.from_value(codec.decode_trusted(raw))
            raw = self._service.state_value(did_version_key(did, head.versions))
            if raw is None:
                return
            version = DidVersion.from_value(head.versions, codec.decode_trusted(raw))
        except CitychainError:
            return
        self._latest(did, ident, resolution(did, head, version))

    def _dereference(self, did_url: str, accept: str | None) -> Answer | _Ask:
        """A status list's DID URL: its published credential or token (see the module)."""
        try:
            media = _list_representation(accept)
            try:
                split_status_list_id(did_url)
            except CitychainError:
                raise _Refusal(
                    400,
                    "INVALID_DID_URL",
                    f"{did_url[:160]!r}: the only DID URLs dereferenced here are status lists, "
                    "<did:citychain:...>/status/<name>",
                    ErrorCode.BAD_ARGUMENTS,
                ) from None
        except _Refusal as r:
            return _error_answer(r)
        query = "status_token" if media == STATUS_LIST_JWT_MEDIA else "status_credential"
        return _Ask(
            query,
            {"list_id": did_url},
            lambda found: _list_answer(found, did_url, media),
            _dereference_failed,
        )

    @staticmethod
    def _did_key(did: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            doc = did_key_document(did)
        except CitychainError as exc:
            raise _Refusal(400, "INVALID_DID", exc.message, ErrorCode.BAD_ARGUMENTS) from None
        if args.get("version_id", 1) != 1:
            raise _Refusal(
                404,
                "NOT_FOUND",
                f"a did:key has one version, not {args['version_id']}",
                ErrorCode.DID_NOT_FOUND,
            )
        return {"didDocument": doc, "didDocumentMetadata": {}}


def _ident(did: str) -> bytes | None:
    """The identifier bytes of a ``did:citychain``; None if it is not one (the query says
    why, in its own words)."""
    try:
        return citychain_id(did)
    except CitychainError:
        return None


def _did_answer(result: dict[str, Any], content_type: str) -> Answer:
    meta = result["didDocumentMetadata"]
    status = 410 if meta.get("deactivated") else 200
    if content_type != RESOLUTION:
        return Answer(status, content_type, _document_for(result, content_type))
    body = {
        "@context": CONTEXT,
        "didDocument": result["didDocument"],
        "didDocumentMetadata": meta,
        "didResolutionMetadata": {"contentType": DID_LD_JSON},
    }
    return Answer(status, RESOLUTION, body)


def _resolve_failed(exc: CitychainError) -> Answer:
    if exc.code in (ErrorCode.DID_NOT_FOUND, ErrorCode.NOT_FOUND):
        return _error_answer(_Refusal(404, "NOT_FOUND", exc.message, exc.code))
    if exc.code == ErrorCode.BAD_ARGUMENTS:
        kind = "INVALID_DID" if "version" not in exc.message else "INVALID_OPTIONS"
        return _error_answer(_Refusal(400, kind, exc.message, exc.code))
    raise exc


def _list_answer(found: dict[str, Any], did_url: str, media: str) -> Answer:
    if not found["current"]:
        return _error_answer(
            _Refusal(
                404,
                "NOT_FOUND",
                f"the {_FORMS[media]} of {did_url} published by its issuer shows change "
                f"{found['changes']}, and the list has changed since: the issuer must "
                "publish it again (a stale list is never served)",
                ErrorCode.STATUS_LIST_NOT_FOUND,
            )
        )
    if media == STATUS_LIST_JWT_MEDIA:
        return Answer(200, media, str(found["token"]).encode("ascii"))
    return Answer(200, media, bytes(found["credential"]))


def _dereference_failed(exc: CitychainError) -> Answer:
    if exc.code not in (ErrorCode.STATUS_LIST_NOT_FOUND, ErrorCode.DID_NOT_FOUND):
        raise exc
    return _error_answer(_Refusal(404, "NOT_FOUND", exc.message, exc.code))
