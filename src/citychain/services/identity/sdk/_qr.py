"""A credential as a link to a verification page, and that link as a QR code.

Theory of operation
-------------------
A citizen shows a certificate to someone with a phone. The phone's camera app reads a QR code
and opens the link in it, so the QR code holds a *link* to the node's public verification page
(``GET /verify``, :mod:`citychain.services.identity.router._page`) with the credential itself
in the URL's fragment::

    https://node.example.gov/verify#vc=<base64url(zlib(JCS(credential)))>
    https://node.example.gov/verify#sd=<the SD-JWT, as it is>

The fragment never leaves the phone (browsers do not send it to the server in the request for
the page), so the node learns nothing from the scan itself; the page's script reads it and
asks the node's ``POST /credentials/verify`` to check the credential, as a pasted or uploaded
one. A JSON credential is written in its RFC 8785 (JCS) form and compressed with zlib (what
the browser's ``DecompressionStream("deflate")`` reads), then base64url without padding: a
typical licence with its Data Integrity proof (~1.5 KB of JSON) becomes ~1 KB of link, a QR
code of version 25-30 at error correction M, which phone cameras read from paper. An SD-JWT is
already URL-safe (base64url parts joined by ``.`` and ``~``) and goes as it is.

The QR code is drawn by ``segno`` (ISO/IEC 18004, pure Python) rather than by hand; the tests
read it back from a browser's screenshot with an independent decoder (zxing-cpp).
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import rfc8785

from citychain.errors import ErrorCode, InvalidInput

if TYPE_CHECKING:
    import segno

#: The largest credential a link carries (compressed bytes); beyond it a QR code is unreadable.
MAX_LINK_BYTES = 2_000
#: The largest credential the page accepts once decompressed.
MAX_CREDENTIAL_BYTES = 256 * 1024


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def verify_link(credential: Mapping[str, Any] | str, page_url: str) -> str:
    """The link that opens ``page_url`` (a node's ``.../verify``) checking ``credential``: a
    VC 2.0 JSON credential (a mapping) or an SD-JWT (a string)."""
    parts = urlsplit(page_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _bad(f"the verification page must be an http(s) URL, not {page_url[:80]!r}")
    if isinstance(credential, str):
        if not credential or any(not (c.isalnum() or c in "-_.~=") for c in credential):
            raise _bad("an SD-JWT is base64url parts joined by '.' and '~'")
        fragment, size = "sd=" + credential, len(credential)
    else:
        try:
            packed = zlib.compress(rfc8785.dumps(dict(credential)), 9)
        except rfc8785.CanonicalizationError as exc:
            raise _bad(f"the credential is not plain JSON numbers and text ({exc})") from None
        fragment = "vc=" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()
        size = len(packed)
    if size > MAX_LINK_BYTES:
        raise _bad(
            f"the credential is {size} bytes in a link, more than a QR code a phone reads "
            f"({MAX_LINK_BYTES}); give the verifier the file instead"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", fragment))


def credential_from_link(link: str) -> dict[str, Any] | str:
    """What :func:`verify_link` put in ``link``: the JSON credential, or the SD-JWT."""
    fragment = urlsplit(link).fragment
    if fragment.startswith("sd="):
        return fragment[3:]
    if not fragment.startswith("vc="):
        raise _bad("the link carries no credential (no #vc= or #sd= part)")
    data = fragment[3:]
    try:
        packed = base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_", validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_CREDENTIAL_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            raise _bad("the credential in the link is cut short or too large")
        value = json.loads(raw)
    except (ValueError, zlib.error) as exc:
        raise _bad(f"the credential in the link is damaged ({exc})") from None
    if not isinstance(value, dict):
        raise _bad("the link's credential is not a JSON object")
    return value


def qr_code(link: str) -> segno.QRCode:
    """The QR code of ``link`` (error correction M at least; segno raises it when it fits)."""
    import segno  # here: every CLI command imports this module, few draw a QR code (~15 ms)

    return segno.make_qr(link, error="m", boost_error=True)


def qr_svg(link: str, *, scale: int = 4) -> str:
    """The QR code of ``link`` as an SVG document (black on white, with its quiet zone)."""
    out = io.BytesIO()
    qr_code(link).save(out, kind="svg", scale=scale, border=4, xmldecl=False)
    return out.getvalue().decode()


def qr_png(link: str, *, scale: int = 6) -> bytes:
    """The QR code of ``link`` as a PNG image."""
    out = io.BytesIO()
    qr_code(link).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
