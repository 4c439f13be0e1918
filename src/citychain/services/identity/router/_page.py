"""The public verification page: ``GET /verify`` and its script and style sheet.

A person with a phone and no terminal checks a certificate here: by scanning its QR code (the
camera app opens ``/verify#vc=...``, see :mod:`citychain.services.identity.sdk._qr`), by pasting
it, or by choosing its file. The page is static: its script asks ``POST /credentials/verify``
of the same node and puts the answer in words (valid, revoked, suspended, expired, not issued
by a trusted issuer, with the issuer's name). It loads nothing from any other host, and its
Content-Security-Policy lets it load and call nothing else, run no inline script and be framed
by no one (a page that says "valid" must not be dressed up by another site).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from citychain.api._pages import page_asset

router = APIRouter(tags=["identity"])


def _serve(name: str) -> Response:
    return page_asset(__name__.rpartition(".")[0], name)


@router.get(
    "/verify",
    summary="The public page that checks a certificate (HTML, for people)",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}, "description": "the page"}},
)
async def verify_page() -> Response:
    return _serve("verify.html")


@router.get("/verify/page.js", include_in_schema=False)
async def verify_script() -> Response:
    return _serve("verify.js")


@router.get("/verify/page.css", include_in_schema=False)
async def verify_style() -> Response:
    return _serve("verify.css")
