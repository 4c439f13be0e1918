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

from citychain.api._pages import add_page

router = APIRouter(tags=["identity"])
add_page(
    router,
    "/verify",
    __name__.rpartition(".")[0],
    "verify",
    "The public page that checks a certificate (HTML, for people)",
)
