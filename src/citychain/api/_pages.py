"""The node's pages for people (a service's ``router/page/`` folder): served locked down.

A page a person trusts to say "valid", or to hold their key while it signs a request, must
load and call nothing but this node and be framed by no one, so every page and its assets go
out with :data:`CSP`: no inline script, no other host, no framing, no form posted away. Pages
are static files in the package; their scripts ask the node's own API.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

#: Nothing but this node: no inline script, no other host, no framing, no forms posted away.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@cache
def _asset(package: str, name: str) -> bytes:
    return resources.files(package).joinpath("page", name).read_bytes()


def page_asset(package: str, name: str) -> Response:
    """The file ``page/<name>`` of ``package`` (a service's router), with the page headers."""
    media_type = _TYPES["." + name.rsplit(".", 1)[-1]]
    return Response(_asset(package, name), media_type=media_type, headers=_HEADERS)


def add_page(router: APIRouter, path: str, package: str, stem: str, summary: str) -> None:
    """Serve ``page/<stem>.html`` of ``package`` at ``GET {path}`` (in the OpenAPI, with
    ``summary``), and its script and style sheet at ``{path}/page.js`` and ``{path}/page.css``
    (which the page names so)."""

    async def page() -> Response:
        return page_asset(package, f"{stem}.html")

    async def script() -> Response:
        return page_asset(package, f"{stem}.js")

    async def style() -> Response:
        return page_asset(package, f"{stem}.css")

    page.__name__ = f"{stem}_page"  # the operation's id in /openapi.json
    router.add_api_route(
        path,
        page,
        methods=["GET"],
        summary=summary,
        response_class=Response,
        responses={200: {"content": {"text/html": {}}, "description": "the page"}},
    )
    router.add_api_route(f"{path}/page.js", script, methods=["GET"], include_in_schema=False)
    router.add_api_route(f"{path}/page.css", style, methods=["GET"], include_in_schema=False)
