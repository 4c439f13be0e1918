"""Hot routes: a few GET routes answered ahead of FastAPI's routing.

Theory of operation
-------------------
Routing a request through FastAPI costs ~150 µs of CPU before the handler runs: Starlette
tries every route's pattern in order (more than a hundred, the services' last), then FastAPI
solves the route's dependencies and parameters. For most routes that is small beside their
work. A DID resolution is different: every verifier anywhere resolves issuers' DIDs, the work
itself is two point reads, and the routing was half of the node's time per resolution
(measured: 1,850 → 2,750 resolutions/s once it is skipped; ``bench/RESULTS.md``).

A service's router module may therefore list :class:`HotRoute` s in ``hot_routes``.
:class:`HotRoutes` sits between ``CatchAll`` and the app's exception handling; for a ``GET``
whose path is a route's ``prefix`` followed by one non-empty segment (no ``/``: what the
route's ``{param}`` matches) it calls the route's ``answer`` with the request and that
segment, and sends the response. Anything else, including ``HEAD``, other methods and deeper
paths, goes on to the app unchanged, so FastAPI answers it exactly as before (405, 404).

The same path is still declared as an ordinary FastAPI route calling the same ``answer``:
that declaration is what ``/openapi.json`` documents. Both must give the same answer for the
same request; ``tests/services/identity/test_resolver.py`` compares them.

A hot route may also name ``direct``: made once with the node's service and the app's
:class:`~citychain.api._kept.Kept`, it gives the producer by which the HTTP protocol answers
the route's requests itself, before any ASGI task (see :mod:`citychain.api._kept`).

A ``CitychainError`` raised by ``answer`` becomes the same ``{"code", "message"}`` response
the app's exception handler gives; anything else reaches ``CatchAll`` (a logged 500).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from citychain.api._errors import on_citychain_error
from citychain.api._kept import Kept, Produce
from citychain.api.service import NodeService
from citychain.errors import CitychainError

__all__ = ["HotRoute", "HotRoutes"]


@dataclass(frozen=True, slots=True)
class HotRoute:
    """``GET {prefix}{segment}`` answered by ``answer(request, segment)``."""

    prefix: str
    answer: Callable[[Request, str], Awaitable[Response]]
    #: the producer the protocol answers ``GET {prefix}...`` with (see the module doc)
    direct: Callable[[NodeService, Kept], Produce] | None = None

    def __post_init__(self) -> None:
        if not (self.prefix.startswith("/") and self.prefix.endswith("/")):
            raise ValueError(f"a hot route's prefix starts and ends with '/': {self.prefix!r}")


class HotRoutes:
    """ASGI middleware answering ``routes`` before the app's routing (see the module doc)."""

    def __init__(self, app: ASGIApp, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            for route in self.routes:
                if path.startswith(route.prefix):
                    segment = path[len(route.prefix) :]
                    if segment and "/" not in segment:
                        request = Request(scope, receive)
                        try:
                            response = await route.answer(request, segment)
                        except CitychainError as exc:
                            response = await on_citychain_error(request, exc)
                        await response(scope, receive, send)
                        return
        await self.app(scope, receive, send)
