"""The identity service's routes: DID resolution (``/1.0/identifiers/{did}``, the Universal
Resolver driver interface; see :mod:`._resolution` for the algorithm and its statuses), the
W3C VC-API verifier (``/credentials/verify``, ``/presentations/verify``) and the offline
proof bundle's check (``/bundles/verify``; both :mod:`._vcapi`), and
the public verification page (``/verify``; :mod:`._page`)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Path
from starlette.requests import Request
from starlette.responses import Response

from citychain.api._body import read_body
from citychain.api._hot import HotRoute
from citychain.api._json import JSONResponse, dumps
from citychain.api._kept import Kept, KeptAnswer, Key, Produce, answer_of, request_key
from citychain.api.routes._common import ServiceDep
from citychain.api.service import EventStream, NodeService
from citychain.errors import CitychainError, ErrorCode, InvalidInput
from citychain.services.identity.router._index import ResolutionIndex
from citychain.services.identity.router._index import counters as index_counters
from citychain.services.identity.router._page import router as _page_router
from citychain.services.identity.router._resolution import (
    DID_JSON,
    DID_LD_JSON,
    RESOLUTION,
    VC_MEDIA,
    Answer,
    Resolver,
)
from citychain.services.identity.router._vcapi import Verifier
from citychain.services.identity.shapes import NAME
from citychain.services.identity.shapes._token_status import STATUS_LIST_JWT_MEDIA

router = APIRouter(tags=["identity"])
log = logging.getLogger(__name__)


async def _resolver(service: ServiceDep) -> Resolver:
    return Resolver(service)


ResolverDep = Annotated[Resolver, Depends(_resolver)]
DidParam = Annotated[str, Path(description="the DID, e.g. did:key:z6Mk... (URL-encoded or not)")]

_RESULT = {"description": "a DID resolution result, or the document alone (by Accept)"}
_FAILURE = {"description": "a DID resolution result with didResolutionMetadata.error"}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        **_RESULT,
        "content": {RESOLUTION: {}, DID_LD_JSON: {}, DID_JSON: {}},
    },
    400: {**_FAILURE, "content": {RESOLUTION: {}}},
    404: {**_FAILURE, "content": {RESOLUTION: {}}},
    406: {**_FAILURE, "content": {RESOLUTION: {}}},
    410: {"description": "the DID is deactivated: its last document, metadata deactivated"},
    501: {**_FAILURE, "content": {RESOLUTION: {}}},
}


@router.get(
    "/1.0/identifiers/{did}",
    summary="Resolve a DID (did:citychain, did:key)",
    description=(
        "DID Resolution's HTTPS binding (the Universal Resolver driver interface). Options in "
        "the query string: versionId, versionTime (UTC, YYYY-MM-DDThh:mm:ssZ). Accept: "
        f"{RESOLUTION} (default), {DID_LD_JSON} or {DID_JSON}."
    ),
    responses=_RESPONSES,
    response_class=Response,
)
async def resolve_did(
    request: Request,
    did: Annotated[
        str, Path(description="the DID, e.g. did:citychain:4Kb... (may be URL-encoded)")
    ],
) -> Response:
    # Answered by the hot route below before FastAPI routes it (citychain.api._hot); this
    # declaration documents it in /openapi.json and answers the same way.
    return await _resolve(request, did)


async def _resolve(request: Request, did: str) -> Response:
    service = request.app.state.service
    kept: Kept = request.app.state.kept
    scope = request.scope
    query = scope.get("query_string", b"")
    accept_raw = next((v for k, v in scope["headers"] if k == b"accept"), None)
    # Kept answers (citychain.api._kept): a resolution is a function of the request and the
    # committed state, and verifiers ask the same ones again and again between two blocks.
    # The HTTP protocol gives most repeats before they reach here; this gives the rest.
    key = request_key(scope["raw_path"], query, accept_raw)
    hit = kept.get(key)
    if hit is not None:
        return _response(hit)
    height = service.latest_height()  # before resolving: see citychain.api._kept
    accept = accept_raw.decode("latin-1") if accept_raw is not None else None
    # Most resolutions carry no options: parsing an empty query string into Starlette's
    # QueryParams was ~9 % of the node's time for a resolution answered from its cache.
    options = dict(request.query_params) if query else {}
    answer = await Resolver(service).resolve(did, options, accept)
    return _response(_keep(kept, key, height, answer))


def _keep(kept: Kept, key: Key, height: int, answer: Answer) -> KeptAnswer:
    """``answer`` as the route sends it and as the protocol writes it, kept (for
    ``height``, read before resolving) when it is about a DID or a list that exists (200,
    410): a made-up DID is asked each time."""
    made = _made(answer)
    if answer.status in (200, 410):
        kept.keep(key, height, made)
    return made


#: Resolutions and status lists are public and read-only: any web page may read them (a
#: wallet or verifier app served from its own origin; the Token Status List draft §8.1 asks
#: for CORS). A GET with these requests' headers needs no preflight, and no credentials are
#: sent or honoured, so allowing every origin exposes nothing a plain GET does not.
_ANY_ORIGIN = (b"access-control-allow-origin", b"*")


def _made(answer: Answer) -> KeptAnswer:
    """``answer`` as sent: the body (JSON with sorted keys, so that the same resolution has the
    same bytes whichever way it was made: see ._index; or bytes as they are) and
    the headers Starlette's ``Response`` gives it, then CORS's. One rendering for the route
    and for the protocol's own answers, built directly: a ``Response`` object and its header
    handling were ~10 % of the node's time for a resolution given from the index."""
    body = answer.body if isinstance(answer.body, bytes) else dumps(answer.body, sort_keys=True)
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", answer.content_type.encode("latin-1")),
        _ANY_ORIGIN,
    ]
    return answer_of(answer.status, headers, body)


def _response(made: KeptAnswer) -> Response:
    response = Response(made.body, made.status)
    response.raw_headers = list(made.headers)
    return response


def _render(answer: Answer) -> Response:
    return _response(_made(answer))


@router.get(
    "/1.0/identifiers/{did}/{path:path}",
    summary="Dereference a DID URL: a status list's published credential",
    description=(
        "DID URL dereferencing: <did:citychain>/status/<name> (a credential's "
        "statusListCredential, an SD-JWT VC's status_list.uri) answers the list as its issuer "
        "signed and published it: the BitstringStatusListCredential (application/vc, the "
        "default) or, for Accept: application/statuslist+jwt, the IETF Status List Token; "
        "404 if none was published in that form or the list has changed since; 406 for "
        "another Accept; 400 INVALID_DID_URL for any other path."
    ),
    responses={
        200: {
            "description": "the status list credential, or its Status List Token",
            "content": {VC_MEDIA: {}, STATUS_LIST_JWT_MEDIA: {}},
        },
        400: {**_FAILURE, "content": {RESOLUTION: {}}},
        404: {**_FAILURE, "content": {RESOLUTION: {}}},
        406: {**_FAILURE, "content": {RESOLUTION: {}}},
    },
    response_class=Response,
)
async def dereference_did_url(request: Request, did: str, path: str) -> Response:
    return await _resolve(request, f"{did}/{path}")


_PREFIX = "/1.0/identifiers/"


def _direct(service: NodeService, kept: Kept) -> Produce:
    """Resolutions and status lists answered by the HTTP protocol itself
    (:mod:`citychain.api._kept`): the same :class:`Resolver`, its query run on the loop as
    the route runs it, the same rendering, kept the same way. A target with a query string
    (resolution options) or anything the route's path matching would read otherwise is left
    to the route, and so is a query past the loop's gas budget."""
    resolver = Resolver(service)
    skip = len(_PREFIX)

    def produce(key: Key) -> KeptAnswer | None:
        target, accept_raw = key
        if b"?" in target or b"#" in target:
            return None
        try:
            # As uvicorn makes the path the route's parameters are read from.
            did = unquote(target[skip:].decode("ascii"))
        except UnicodeDecodeError:
            return None
        if not did or did.startswith("/"):  # no route's parameters match: the app's 404
            return None
        height = service.latest_height()  # before resolving: see citychain.api._kept
        accept = accept_raw.decode("latin-1") if accept_raw is not None else None
        try:
            answer = resolver.resolve_inline(did, {}, accept)
        except CitychainError:
            return None
        return _keep(kept, key, height, answer)

    return produce


#: Every verifier resolves issuers' DIDs: resolution skips FastAPI's routing, and most
#: resolutions skip ASGI too.
hot_routes = (HotRoute(_PREFIX, _resolve, _direct),)

#: The contract's events that write a DID (a new version).
_DID_EVENTS = frozenset({"did_created", "did_updated", "did_deactivated"})
#: DIDs resolved in a row before the job lets the event loop serve others.
_SLICE = 32
#: Seconds between two notes of how far the job got (``ResolutionIndex.keep_position``).
_SAVE_EVERY = 5.0


async def keep_filled(service: NodeService) -> None:
    """The node server's background job (``background`` below): each DID a block writes is
    resolved once, right after the block, so that its rendered answer is in the resolution
    index (:mod:`._index`) before anyone asks.

    It follows the DID events from the height after the one it had reached when the node
    last stopped (its stream's ``position``, kept in the index beside the entries, written
    after them), or from the first block when it never ran on this node (a node upgraded on
    a running chain, an index removed): the blocks committed since, by block sync or while
    it was stopped, are read back and none of their DIDs is missed. If it falls behind (the
    node closes its stream), it subscribes again from the same position."""
    index = ResolutionIndex(service, batched=True)
    resolver = Resolver(service, index)
    behind = index_counters(service.metrics_registry)["job_behind"]
    loop = asyncio.get_running_loop()
    flushing = False
    noted = index.position()
    keeping: asyncio.TimerHandle | None = None  # the next note of how far the job got

    def flush() -> None:  # when the job waits or yields: one write for the entries made
        nonlocal flushing
        flushing = False
        index.flush()

    def note(stream: EventStream) -> None:
        """Write the entries made, then how far the job got: called only between two events
        (from a callback, or once the stream is done), when what it gave was handled."""
        nonlocal noted
        index.flush()
        if stream.position != noted:
            noted = stream.position
            index.keep_position(noted)

    def keep(stream: EventStream) -> None:  # every few seconds
        nonlocal keeping
        note(stream)
        keeping = loop.call_later(_SAVE_EVERY, keep, stream)

    while True:
        resume = noted + 1 if noted is not None else 1
        try:
            stream = service.subscribe(NAME, None, None, resume)
        except CitychainError as exc:  # too many subscribers, or a height not there
            log.warning("resolution index: cannot follow DID events (%s)", exc.message)
            if exc.code == ErrorCode.HEIGHT_NOT_COMMITTED:
                noted = None  # a noted height beyond this chain's: read it all again
            await asyncio.sleep(5)
            continue
        keeping = loop.call_later(_SAVE_EVERY, keep, stream)
        made = 0
        try:
            async for item in stream:
                if item.event.type not in _DID_EVENTS:
                    continue
                did = item.event.attributes.get("did")
                if type(did) is not str:
                    continue
                resolver.prefill(did)
                if index.pending and not flushing:
                    flushing = True
                    loop.call_soon(flush)
                made += 1
                if made % _SLICE == 0:
                    await asyncio.sleep(0)
        finally:
            keeping.cancel()
            note(stream)
        behind.inc()
        log.warning(
            "resolution index: the DID events stream closed (%s); following again from height %s",
            stream.closed_reason,
            stream.position + 1,
        )
        await asyncio.sleep(1)


#: What the node's server runs beside the routes (citychain.api.app).
background = (keep_filled,)


@router.get("/1.0/identifiers/", include_in_schema=False)
async def resolve_nothing(request: Request, resolver: ResolverDep) -> Response:
    return _render(await resolver.resolve("", {}, request.headers.get("accept")))


# -- the W3C VC-API verifier endpoints (see ._vcapi for the checks and their statuses) -------
async def _verifier(service: ServiceDep) -> Verifier:
    return Verifier(service)


VerifierDep = Annotated[Verifier, Depends(_verifier)]
_VERIFY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "verified: the checks made, the issuer and its registered name"},
    400: {"description": "not verified: code and message say why (tampered, revoked, ...)"},
    403: {"description": "not verified: the issuer is not trusted for the credential's type"},
}


@router.post(
    "/credentials/verify",
    summary="Verify a credential against this chain (W3C VC-API)",
    description=(
        'Body: {"verifiableCredential": <VC 2.0 with a Data Integrity proof, or an SD-JWT VC '
        'string>, "options": {}}. Checks the proof with the issuer\'s key as this chain has '
        "it, the validity dates, the schema, the trusted-issuer registry and the status list "
        "on chain. A failed verification is a 4xx with the reason, never 200."
    ),
    responses=_VERIFY_RESPONSES,
    response_class=Response,
)
async def verify_credential_route(request: Request, verifier: VerifierDep) -> Response:
    answer = await verifier.credential(await _json_body(request))
    return JSONResponse(answer.body, answer.status)


@router.post(
    "/presentations/verify",
    summary="Verify a presentation and its credentials (W3C VC-API)",
    description=(
        'Body: {"verifiablePresentation": <VP>, "options": {"challenge": ..., "domain": ...}}. '
        "The holder's proof must carry that challenge and domain; each credential is "
        "checked as by /credentials/verify."
    ),
    responses=_VERIFY_RESPONSES,
    response_class=Response,
)
async def verify_presentation_route(request: Request, verifier: VerifierDep) -> Response:
    answer = await verifier.presentation(await _json_body(request))
    return JSONResponse(answer.body, answer.status)


@router.post(
    "/bundles/verify",
    summary="Check an offline proof bundle against this chain's genesis",
    description=(
        "Body: the bundle file's exact bytes (what `citychain vc bundle` writes). Checked as "
        "`citychain vc verify --offline` checks it, anchored at this chain's genesis validator "
        "set, id and crypto suite: 200 with the issuer, its registered name, the type and the "
        "height and time the bundle proves it valid as of; else a 4xx with the code "
        "(tampered, bad_proof, credential_revoked as of that height, ...). Whether it is "
        "still valid now is /credentials/verify's question."
    ),
    responses={
        200: {"description": "the bundle holds: who issued what, valid as of which block"},
        400: {"description": "the bundle does not hold: code and message say why"},
        403: {"description": "it proves no trust of the issuer for the credential's type"},
        413: {"description": "a bundle is at most 4 MiB"},
    },
    response_class=Response,
)
async def verify_bundle_route(request: Request, verifier: VerifierDep) -> Response:
    answer = await verifier.bundle(
        await read_body(request, request.app.state.limits.max_body_bytes)
    )
    return JSONResponse(answer.body, answer.status)


async def _json_body(request: Request) -> Any:
    # Read against the node's body limit as it streams in: a public route must not buffer
    # whatever a client sends before looking at it.
    raw = await read_body(request, request.app.state.limits.max_body_bytes)
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidInput("the body is not JSON", ErrorCode.MALFORMED) from None


# The public verification page (GET /verify), for people with a phone.
router.include_router(_page_router)
