"""The node's REST + WebSocket API: :func:`create_app` over a :class:`NodeService`.

Routes (all JSON unless noted; every error is ``{"code", "message"}``):

======  ===============================  =================================================
POST    /v1/txs                          submit a batch (CBOR array of tx bytes, or JSON)
POST    /v1/tx                           submit one tx (raw CBOR tx bytes, or JSON); 202
GET     /v1/txs/{hash}                   a transaction: pending, or committed with receipt
GET     /v1/blocks/latest                the last committed block with its commit
GET     /v1/blocks/{height}              a block by height
GET     /v1/blocks/hash/{hash}           a block by hash
GET     /v1/status                       chain, height, mempool, validators
GET     /v1/state/{key}?height=          a state value with its ICS-23 proof, header, commit
GET     /v1/query/{contract}/{method}    a read-only contract query (``?args=<JSON>``)
POST    /v1/query/{contract}/{method}    the same with ``{"args": {...}}`` in the body
GET     /v1/accounts/{address}           committed and pending nonce
GET     /v1/validators?height=           the validator set that signs a height
WS      /v1/events?contract=&type=       committed events as they happen
GET     /v1/consensus                    round, step, who voted, what the node waits for
GET     /v1/net/peers                    p2p peers with traffic and last error
GET     /v1/evidence?limit=              committed and pending evidence of misbehaviour
GET     /v1/gov/config                   identity mode and default voting period
GET     /v1/gov/orgs                     the member organisations
GET     /v1/gov/orgs/{id}                one organisation with its roles
GET     /v1/gov/orgs/{id}/members        an organisation's registered members
GET     /v1/gov/members/{address}        one member and whether it may act now
GET     /v1/gov/validators               the validator set governance last decided
GET     /v1/gov/params                   chain parameters and gas schedule
GET     /v1/gov/policies                 the configured access policies
GET     /v1/gov/policies/{target}        the policy in force for a method or proposal kind
GET     /v1/gov/proposals?status=&limit= proposals, newest first
GET     /v1/gov/proposals/{id}           one proposal: votes, approvals, what it still needs
GET     /v1/gov/history?after=&limit=&proposal=   the governance history, oldest first
GET     /health                          200 when healthy, 503 when not
GET     /metrics                         Prometheus text format
GET     /docs                            Swagger UI over /openapi.json (assets served here)
======  ===============================  =================================================

``/docs`` works without internet: Swagger UI's JS, CSS and favicon come from the installed
``fastapi-offline`` package (under ``/static-offline-docs``), not from a CDN as FastAPI's own
page loads them, and Swagger UI's online spec validator is switched off. ReDoc is not served.

The core routes are grouped by subject in :mod:`citychain.api.routes` (one ``APIRouter``
each: ``txs``, ``blocks``, ``state``, ``consensus``, ``events``, ``ops``); each platform
service brings its own (``citychain/services/gov/router.py`` serves ``/v1/gov/...``), found
through :mod:`citychain.registry`. They reach the node through the service on
``app.state`` (a FastAPI dependency), and what ``/openapi.json`` adds to FastAPI's derivation
is in :mod:`citychain.api.openapi`.

Governance (``/v1/gov/...``) reads the ``gov`` contract's records through its queries, on the
latest committed state; changes are transactions (``gov.propose``, ``gov.vote``, ...) signed by
the client and submitted like any other, never signed here.

Speed: handlers read raw requests and answer with orjson-rendered dicts; pydantic models
describe the shapes for ``/openapi.json`` (see :mod:`citychain.api.models`) but are not run
per request. Bodies are read with a size limit enforced while streaming.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from citychain import __version__, registry
from citychain.api import _gates
from citychain.api._errors import (
    CatchAll,
    on_citychain_error,
    on_http_exception,
    on_validation_error,
)
from citychain.api._hot import HotRoute, HotRoutes
from citychain.api._json import JSONResponse
from citychain.api._kept import Kept
from citychain.api.openapi import DESCRIPTION, install_openapi
from citychain.api.routes import LAST_ROUTERS, ROUTERS
from citychain.api.routes._common import Limits
from citychain.api.service import NodeService
from citychain.blobs import BlobStore
from citychain.errors import CitychainError

__all__ = ["DEFAULT_MAX_BATCH_TXS", "DEFAULT_MAX_BODY_BYTES", "create_app"]

#: Largest request body accepted (a batch of transactions is the largest legitimate one).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
#: Most transactions in one ``POST /v1/txs``.
DEFAULT_MAX_BATCH_TXS = 10_000


def create_app(
    service: NodeService,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_batch_txs: int = DEFAULT_MAX_BATCH_TXS,
    blobs: BlobStore | None = None,
) -> FastAPI:
    """The API of ``service`` as an ASGI app (serve it with uvicorn)."""
    if max_body_bytes <= 0 or max_batch_txs <= 0:
        raise ValueError("max_body_bytes and max_batch_txs must be positive")

    # FastAPI with /docs served from the package's own copy of Swagger UI (offline).
    app = FastAPIOffline(
        title="citychain node API",
        version=__version__,
        description=DESCRIPTION,
        default_response_class=JSONResponse,
        docs_url="/docs",
        redoc_url=None,
        # No badge fetched from validator.swagger.io: the page asks no host but the node.
        swagger_ui_parameters={"validatorUrl": None},
    )
    # What the routers' dependencies hand to each route (routes/_common.py).
    app.state.service = service
    app.state.limits = Limits(max_body_bytes=max_body_bytes, max_batch_txs=max_batch_txs)
    # The off-chain blob store the data service's routes keep chunks in (None: not served).
    app.state.blobs = blobs
    # The services' admission gates for submitted transactions (citychain.api._gates).
    app.state.tx_gates = _gates.collect()
    # Public answers kept until the next block, which the HTTP protocol gives again itself
    # (citychain.api._kept; the server hands the same object to its protocol).
    app.state.kept = Kept(service.latest_height)
    app.add_exception_handler(CitychainError, on_citychain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    hot: list[HotRoute] = []
    # What a service keeps doing while the node serves (a router module's ``background``:
    # coroutine functions of the service, e.g. keeping an index filled); the server runs
    # them (citychain.api.server.serve), an app under test without a server does not.
    app.state.background = []
    for router in ROUTERS:
        app.include_router(router)
    for _service, module in registry.parts("router"):  # /v1/gov/..., each service's own
        app.include_router(module.router)
        hot.extend(getattr(module, "hot_routes", ()))
        app.state.background.extend(getattr(module, "background", ()))
    for route in hot:  # answers the protocol makes itself (citychain.api._kept)
        if route.direct is not None:
            app.state.kept.add_producer(
                route.prefix.encode(), route.direct(service, app.state.kept)
            )
    # Inside CatchAll (the last added is outermost): a hot route's crash is a logged 500 too.
    app.add_middleware(HotRoutes, routes=hot)
    app.add_middleware(CatchAll)
    for router in LAST_ROUTERS:
        app.include_router(router)
    install_openapi(app)
    return app
