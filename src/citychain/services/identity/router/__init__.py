"""The identity service's routes: DID resolution (``/1.0/identifiers/{did}``, the Universal
Resolver driver interface; see :mod:`._resolution` for the algorithm and its statuses), the
W3C VC-API verifier (``/credentials/verify``, ``/presentations/verify``) and the offline
proof bundle's check (``/bundles/verify``; both :mod:`._vcapi`), and
the public verification page (``/verify``; :mod:`._page`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.requests import Request
from starlette.responses import Response

from citychain.api._body import read_body
from citychain.api._hot import HotRoute
from citychain.api._json import JSONResponse
from citychain.api.routes._common import ServiceDep
from citychain.errors import ErrorCode, InvalidInput
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
from citychain.services.identity.shapes._token_status import STATUS_LIST_JWT_MEDIA

router = APIRouter(tags=["identity"])


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


class Answered:
    """Resolution answers as sent (status, content type, body), kept for the height they were
    computed at.

    A resolution is a function of the DID URL, its options, the ``Accept`` header and the
    committed state; verifiers everywhere ask the same issuers' DIDs and status lists again
    and again between two blocks. The chain's query cache already spares the contract's run,
    but each answer was still decoded, rebuilt into a resolution result and serialised again:
    ~45 % of the node's CPU for a repeated resolution (py-spy, bench_dids' hot rounds). So the
    route keeps what it sent, under the request, for the height it read *before* resolving:
    an entry is served only while the node's latest height is still that one. (A block that
    commits during the resolution can only make the kept answer newer than its height, and
    it stops being served as soon as the height moves: never an answer older than the state.)

    Only answers about DIDs and lists that exist are kept (200, 410): a stranger's made-up
    DIDs are refused quickly anyway and must not crowd the verifiers' out. Bounded by
    ``max_bytes`` (bodies and keys); when full, it starts over, as the query cache does.
    """

    __slots__ = ("_bytes", "_height", "_values", "max_bytes")

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._height = -1
        self._values: dict[tuple[str, bytes, str | None], tuple[int, str, bytes]] = {}
        self._bytes = 0

    def get(self, key: tuple[str, bytes, str | None], height: int) -> tuple[int, str, bytes] | None:
        if height != self._height:
            return None
        return self._values.get(key)

    def put(
        self, key: tuple[str, bytes, str | None], height: int, answer: tuple[int, str, bytes]
    ) -> None:
        cost = len(answer[2]) + len(key[0]) + len(key[1]) + len(key[2] or "") + 200
        if height != self._height or self._bytes + cost > self.max_bytes:
            self._values, self._bytes, self._height = {}, 0, height
        if cost <= self.max_bytes:
            self._values[key] = answer
            self._bytes += cost


def _answered(request: Request) -> Answered:
    state = request.app.state
    kept: Answered | None = getattr(state, "identity_answered", None)
    if kept is None:
        kept = state.identity_answered = Answered()
    return kept


async def _resolve(request: Request, did: str) -> Response:
    service = request.app.state.service
    accept = request.headers.get("accept")
    query = request.scope.get("query_string", b"")
    key, height, kept = (did, query, accept), service.latest_height(), _answered(request)
    hit = kept.get(key, height)
    if hit is not None:
        response = Response(hit[2], hit[0], media_type=hit[1])
        response.raw_headers.append(_ANY_ORIGIN)
        return response
    # Most resolutions carry no options: parsing an empty query string into Starlette's
    # QueryParams was ~9 % of the node's time for a resolution answered from its cache.
    options = dict(request.query_params) if query else {}
    answer = await Resolver(service).resolve(did, options, accept)
    response = _render(answer)
    if answer.status in (200, 410):
        kept.put(key, height, (answer.status, answer.content_type, bytes(response.body)))
    return response


#: Resolutions and status lists are public and read-only: any web page may read them (a
#: wallet or verifier app served from its own origin; the Token Status List draft §8.1 asks
#: for CORS). A GET with these requests' headers needs no preflight, and no credentials are
#: sent or honoured, so allowing every origin exposes nothing a plain GET does not.
_ANY_ORIGIN = (b"access-control-allow-origin", b"*")


def _render(answer: Answer) -> Response:
    response: Response
    if isinstance(answer.body, bytes):
        response = Response(answer.body, answer.status, media_type=answer.content_type)
    else:
        response = JSONResponse(answer.body, answer.status, media_type=answer.content_type)
    # Appended raw: Starlette's headers= argument re-encodes and re-scans a dict on every
    # response, measurable on the resolution path (bench_dids' node CPU).
    response.raw_headers.append(_ANY_ORIGIN)
    return response


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


#: Every verifier resolves issuers' DIDs: resolution skips FastAPI's routing.
hot_routes = (HotRoute("/1.0/identifiers/", _resolve),)


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
