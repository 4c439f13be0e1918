"""A credential as a link to the verification page, and that link as a QR code.

The QR code is read back by an independent decoder (zxing-cpp, C++), not by segno, which drew
it: a phone's camera app must find in it exactly the link that was meant.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from vc_fixtures import (  # type: ignore[import-not-found]
    NOW,
    VALID_FROM,
    VALID_UNTIL,
    key_did,
    licence_subject,
    signer,
)

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity.sdk import (
    EDDSA_JCS_2022,
    credential_from_link,
    credential_from_template,
    issue_credential,
    qr_png,
    qr_svg,
    verify_credential,
    verify_link,
)
from citychain.services.identity.sdk._qr import MAX_LINK_BYTES

PAGE = "https://node.example.gov/verify"


def licence() -> dict[str, Any]:
    issuer = signer(7)
    did, vm = key_did(issuer)
    vc = credential_from_template(
        "business-licence",
        issuer=did,
        subject=licence_subject(),
        valid_from=VALID_FROM,
        valid_until=VALID_UNTIL,
    )
    return issue_credential(vc, issuer, vm, cryptosuite=EDDSA_JCS_2022)


def read_qr(png: bytes) -> list[str]:
    # QR codes only: a linear-barcode reader may find a phantom EAN-13 among the modules.
    image = Image.open(io.BytesIO(png))
    return [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def test_a_signed_licence_survives_link_and_qr_code_and_still_verifies() -> None:
    vc = licence()
    link = verify_link(vc, PAGE)
    assert link.startswith(PAGE + "#vc=") and len(link) < 1_500
    assert read_qr(qr_png(link)) == [link]
    back = credential_from_link(link)
    assert back == vc
    assert isinstance(back, dict)
    verify_credential(back, now=NOW)
    svg = qr_svg(link)
    assert svg.lstrip().startswith("<svg") and "</svg>" in svg


def test_an_sd_jwt_goes_as_it_is() -> None:
    sd = "eyJhbGciOiJFZERTQSJ9.eyJfc2QiOltdfQ.c2ln~WyJzYWx0IiwiYWdlIiwyMV0~"
    link = verify_link(sd, PAGE)
    assert link == PAGE + "#sd=" + sd
    assert credential_from_link(link) == sd


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_any_json_credential_comes_back_equal(value: dict[str, Any]) -> None:
    assert credential_from_link(verify_link(value, PAGE)) == value


@pytest.mark.parametrize(
    ("link", "words"),
    [
        (PAGE, "no #vc= or #sd="),
        (PAGE + "#vc=!!!!", "damaged"),
        (PAGE + "#vc=eJzLSM3JyQcABiwCFQ", "damaged"),  # zlib of "hello", not JSON
        (PAGE + "#vc=eJyLjgUAARUAuQ", "not a JSON object"),  # zlib of "[]"
        (PAGE + "#vc=eJzLSM3JyQc", "cut short"),  # zlib stream cut off
    ],
)
def test_a_damaged_link_is_refused_in_words(link: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as err:
        credential_from_link(link)
    assert err.value.code == ErrorCode.BAD_ARGUMENTS


def test_a_zlib_bomb_in_a_link_stops_at_the_size_limit() -> None:
    import base64
    import zlib

    bomb = zlib.compress(b"[" + b" " * 50_000_000 + b"]", 9)
    link = PAGE + "#vc=" + base64.urlsafe_b64encode(bomb).rstrip(b"=").decode()
    with pytest.raises(InvalidInput, match="too large"):
        credential_from_link(link)


def test_what_a_qr_code_cannot_hold_is_refused_before_drawing() -> None:
    import os

    big = {"blob": os.urandom(MAX_LINK_BYTES).hex()}
    with pytest.raises(InvalidInput, match="more than a QR code a phone reads"):
        verify_link(big, PAGE)
    with pytest.raises(InvalidInput, match="JSON numbers"):
        verify_link({"n": 2**53}, PAGE)
    with pytest.raises(InvalidInput, match="http"):
        verify_link({}, "file:///etc/passwd")
    with pytest.raises(InvalidInput, match="SD-JWT"):
        verify_link("not an sd jwt", PAGE)
