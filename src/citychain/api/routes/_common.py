"""What every router shares: how a route reaches the node's service and the app's limits
(FastAPI dependencies over ``app.state``, set by :func:`citychain.api.app.create_app`), and
the path and query parameters several routers declare alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Path, Query
from starlette.requests import HTTPConnection

from citychain.api._json import JSONResponse
from citychain.api.service import NodeService

__all__ = [
    "MAX_HEIGHT",
    "HashParam",
    "HeightPath",
    "HeightQuery",
    "Limits",
    "LimitsDep",
    "ServiceDep",
    "json",
]

MAX_HEIGHT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """The app's request limits (``create_app``'s keyword arguments)."""

    max_body_bytes: int
    max_batch_txs: int


# Dependencies are ``async def``, here and in every service's router: FastAPI runs a plain
# ``def`` dependency in its thread pool, so each request paid a thread hop per dependency
# (two for a DID resolution) to read an attribute; py-spy of GET /v1/status under load
# showed the hand-offs (Condition.notify/wait) above the route's own work.
async def _service(conn: HTTPConnection) -> NodeService:
    # HTTPConnection, not Request: the same dependency serves the WebSocket route.
    return cast(NodeService, conn.app.state.service)


async def _limits(conn: HTTPConnection) -> Limits:
    return cast(Limits, conn.app.state.limits)


ServiceDep = Annotated[NodeService, Depends(_service)]
LimitsDep = Annotated[Limits, Depends(_limits)]


def json(content: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(content, status)


HashParam = Annotated[
    str,
    Path(
        description="32-byte hash, 64 hex digits",
        json_schema_extra={"pattern": "^(0x)?[0-9a-fA-F]{64}$"},
    ),
]
HeightPath = Annotated[int, Path(ge=1, le=MAX_HEIGHT, description="block height (from 1)")]
HeightQuery = Annotated[
    int | None, Query(ge=1, le=MAX_HEIGHT, description="block height; latest if omitted")
]
AddressParam = Annotated[str, Path(description="a 20-byte account address in hex")]
