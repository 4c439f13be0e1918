"""The identity service's routes: DID resolution (``/1.0/identifiers/{did}``, the Universal
Resolver driver interface; see :mod:`._resolution` for the algorithm and its statuses)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.requests import Request
from starlette.responses import Response

from citychain.api._json import JSONResponse
from citychain.api.routes._common import ServiceDep
from citychain.services.identity.router._resolution import (
    DID_JSON,
    DID_LD_JSON,
    RESOLUTION,
    Resolver,
)

router = APIRouter(tags=["identity"])


def _resolver(service: ServiceDep) -> Resolver:
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
    resolver: ResolverDep,
    did: Annotated[
        str, Path(description="the DID, e.g. did:citychain:4Kb... (may be URL-encoded)")
    ],
) -> Response:
    answer = await resolver.resolve(did, dict(request.query_params), request.headers.get("accept"))
    return JSONResponse(answer.body, answer.status, media_type=answer.content_type)


@router.get("/1.0/identifiers/", include_in_schema=False)
async def resolve_nothing(request: Request, resolver: ResolverDep) -> Response:
    answer = await resolver.resolve("", {}, request.headers.get("accept"))
    return JSONResponse(answer.body, answer.status, media_type=answer.content_type)


# The public verification page (GET /verify), for people with a phone.
from citychain.services.identity.router._page import router as _page_router  # noqa: E402

router.include_router(_page_router)
