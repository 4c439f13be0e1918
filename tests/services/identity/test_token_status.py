"""Status List Tokens (IETF Token Status List): the draft's published vectors decode in
citychain, a chain list maps onto the token layout and back, what citychain signs verifies
with an independent JOSE library (jwcrypto) and the draft's decoding written here, and each
refusal of the verifier."""

from __future__ import annotations

import base64
import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_vc_sd_jwt import ISSUER, ISSUER_KEY, KID, NOW, OTHER_KEY, RESOLVER  # type: ignore[import-not-found]

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity import sdk
from citychain.services.identity.sdk import StatusList
from citychain.services.identity.shapes import status_bit
from citychain.services.identity.shapes._token_status import (
    token_list_bytes,
    token_status_array,
    token_status_bitstring,
    token_status_value,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "token-status-list"
FILES = (
    "status_list_encoding_json.md",
    "status_list_encoding2_json.md",
    "status_list_encoding1_long_json.md",
    "status_list_encoding2_long_json.md",
)
LIST = f"{ISSUER}/status/licences"
SIZE = 131_072


def _vectors() -> list[tuple[dict[str, Any], dict[int, int]]]:
    """Each vector file's ``{bits, lst}`` with the statuses the draft lists for it (see
    tests/vectors/token-status-list/SOURCE.md): every entry not listed is 0."""
    text = (VECTORS / "draft-sections.md").read_text("utf-8")
    blocks: list[dict[int, int]] = []
    previous = False
    for line in text.splitlines():
        m = re.fullmatch(r"status\[(\d+)\]\s*=\s*0b([01]+)", line.strip())
        if m and not previous:
            blocks.append({})
        if m:
            blocks[-1][int(m[1])] = int(m[2], 2)
        previous = bool(m)
    assert len(blocks) == len(FILES)
    out = []
    for name, statuses in zip(FILES, blocks, strict=True):
        raw = (VECTORS / name).read_text("utf-8")
        body = json.loads(re.sub(r'"\s+', '"', re.sub(r"\n\s*", "", raw.split("encoded:")[-1])))
        out.append((body, statuses))
    return out


@pytest.mark.parametrize("n", range(len(FILES)), ids=FILES)
def test_the_drafts_vectors_decode(n: int) -> None:
    body, statuses = _vectors()[n]
    bits = body["bits"]
    array = token_list_bytes(body["lst"], 2**20)
    entries = len(array) * 8 // bits
    assert entries >= max(statuses) + 1
    found = {i: v for i in range(entries) if (v := token_status_value(array, bits, i))}
    want = {i: v for i, v in statuses.items() if v}
    assert found == want


def test_the_short_vectors_are_the_byte_arrays_the_draft_draws() -> None:
    assert token_list_bytes(_vectors()[0][0]["lst"], 2) == bytes([0xB9, 0xA3])
    assert token_list_bytes(_vectors()[1][0]["lst"], 3) == bytes([0xC9, 0x44, 0xF9])


def test_the_1_bit_vector_is_a_revocation_list_of_2_20_entries() -> None:
    """The draft's 1-bit list of 2^20 entries, read as a citychain revocation list: the same
    entries revoked, and mapped back, the same bytes."""
    body, statuses = _vectors()[2]
    array = token_list_bytes(body["lst"], 2**17)
    chain = token_status_bitstring(array, "revocation")
    assert len(chain) * 8 == 2**20
    revoked = [i for i in range(2**20) if status_bit(chain, i)]
    assert revoked == sorted(statuses)
    assert token_status_array(chain, "revocation") == array


def test_a_value_a_suspension_list_cannot_hold_is_refused_by_entry() -> None:
    body, _ = _vectors()[3]  # 2 bits: 0b01 (INVALID) at entry 0, 0b11 at 159495
    array = token_list_bytes(body["lst"], 2**18)
    with pytest.raises(ValueError, match=r"entry 0 holds status 0x01 \(INVALID\)"):
        token_status_bitstring(array, "suspension")
    with pytest.raises(ValueError, match="entry 4 holds status 0x03"):
        token_status_bitstring(bytes([0, 0b11]), "suspension")
    last = bytearray(2**18)
    last[-1] = 0b0100_0000  # the last of 2^20 entries: found without a walk over the others
    with pytest.raises(ValueError, match="entry 1048575 holds status 0x01"):
        token_status_bitstring(bytes(last), "suspension")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=256), st.sampled_from(["revocation", "suspension"]))
def test_a_chain_list_maps_onto_the_token_layout_and_back(chain: bytes, purpose: str) -> None:
    array = token_status_array(chain, purpose)
    bits = {"revocation": 1, "suspension": 2}[purpose]
    assert len(array) == len(chain) * bits
    assert token_status_bitstring(array, purpose) == chain
    value = {"revocation": 0x01, "suspension": 0x02}[purpose]
    for i in range(len(chain) * 8):
        assert token_status_value(array, bits, i) == (value if status_bit(chain, i) else 0)


@pytest.mark.parametrize(
    ("lst", "words"),
    [
        ("eNrbuRgAAhcBXQ==", "base64url without padding"),
        ("eNrbuRgAAhcBXQ\n", "base64url"),
        (base64.urlsafe_b64encode(b"junk").decode().rstrip("="), "not ZLIB data"),
        (base64.urlsafe_b64encode(zlib.compress(bytes(3))).decode(), "without padding"),
        (
            base64.urlsafe_b64encode(zlib.compress(bytes(3)) + b"xyz").decode().rstrip("="),
            "not one whole ZLIB stream",
        ),
        (base64.urlsafe_b64encode(zlib.compress(bytes(3))[:-3]).decode().rstrip("="), "whole"),
        (base64.urlsafe_b64encode(zlib.compress(bytes(5))).decode().rstrip("="), "longer than 4"),
        (17, "not base64url"),
    ],
)
def test_a_malformed_lst_is_refused(lst: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        token_list_bytes(lst, 4)


def _token(purpose: str = "revocation", **kw: Any) -> tuple[str, StatusList]:
    status = StatusList(SIZE)
    for i in (3, 42, 131_071):
        status.set(i)
    kw.setdefault("iat", NOW - 60)
    return sdk.status_list_token(LIST, status, purpose, ISSUER_KEY, KID, **kw), status


def test_jwcrypto_and_the_drafts_decoding_read_what_citychain_signs() -> None:
    """An independent verifier: jwcrypto checks the EdDSA signature with the issuer's key as a
    JWK; the list is inflated and read per the draft (§4.1) in a few lines written here."""
    from jwcrypto.jwk import JWK
    from jwcrypto.jws import JWS

    for purpose, value in (("revocation", 1), ("suspension", 2)):
        token, status = _token(purpose, exp=NOW + 3600)
        jws = JWS()
        jws.deserialize(token)
        jws.verify(JWK.from_json(json.dumps(sdk.public_jwk(ISSUER_KEY.public_key))), "EdDSA")
        header = jws.jose_header
        assert (header["typ"], header["alg"], header["kid"]) == ("statuslist+jwt", "EdDSA", KID)
        claims = json.loads(jws.payload)
        assert (claims["iss"], claims["sub"], claims["iat"]) == (ISSUER, LIST, NOW - 60)
        assert (claims["exp"], claims["ttl"]) == (NOW + 3600, 300)
        bits, lst = claims["status_list"]["bits"], claims["status_list"]["lst"]
        assert bits == value  # 1 for revocation, 2 for SUSPENDED (0x02)
        raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
        assert len(raw) == SIZE * bits // 8

        def status_of(i: int) -> int:
            per = 8 // bits  # noqa: B023
            return (raw[i // per] >> (i % per) * bits) & ((1 << bits) - 1)  # noqa: B023

        assert [status_of(i) for i in (0, 3, 4, 42, 131_071)] == [0, value, 0, value, value]
        assert sum(status_of(i) != 0 for i in range(SIZE)) == 3
        assert all(status.get(i) == bool(status_of(i)) for i in range(0, SIZE, 997))


def test_citychain_verifies_and_reads_a_token() -> None:
    token, _ = _token("suspension")
    read = sdk.verify_status_list_token(token, uri=LIST, now=NOW, resolver=RESOLVER)
    assert (read.status(42), read.status_name(42), read.status_name(43)) == (
        2,
        "SUSPENDED",
        "VALID",
    )
    key = sdk.verify_status_list_token(token, uri=LIST, now=NOW, issuer_key=ISSUER_KEY.public_key)
    assert key.claims == read.claims


def _code(token: str, **kw: Any) -> tuple[ErrorCode, str]:
    args: dict[str, Any] = {"uri": LIST, "now": NOW, "resolver": RESOLVER, **kw}
    with pytest.raises(InvalidInput) as info:
        sdk.verify_status_list_token(token, **args)
    return info.value.code, info.value.message


def resigned(token: str, header: dict[str, Any], claims: dict[str, Any], key: Any) -> str:
    def b64(v: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(v).encode()).decode().rstrip("=")

    head, body, _ = token.split(".")
    old_h = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    old_c = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    signing = f"{b64({**old_h, **header})}.{b64({**old_c, **claims})}"
    sig = base64.urlsafe_b64encode(key.sign(signing.encode())).decode().rstrip("=")
    return f"{signing}.{sig}"


def test_a_token_is_refused_with_its_code() -> None:
    token, _ = _token()
    head, _, sig = token.split(".")
    other = sdk.status_list_token(
        LIST, StatusList(SIZE), "revocation", ISSUER_KEY, KID, iat=NOW
    ).split(".")[1]
    cases: list[tuple[str, dict[str, Any], ErrorCode, str]] = [
        (f"{head}.{other}.{sig}", {}, ErrorCode.TAMPERED, "does not verify"),
        (resigned(token, {}, {}, OTHER_KEY), {}, ErrorCode.TAMPERED, "does not verify"),
        (
            resigned(token, {"kid": f"{ISSUER}#key-2"}, {}, OTHER_KEY),
            {},
            ErrorCode.KEY_NOT_AUTHORIZED,
            "assertionMethod",
        ),
        (token, {"uri": f"{ISSUER}/status/other"}, ErrorCode.INVALID_CREDENTIAL, "sub"),
        (_token(exp=NOW)[0], {}, ErrorCode.CREDENTIAL_EXPIRED, "expired"),
        (resigned(token, {"typ": "JWT"}, {}, ISSUER_KEY), {}, ErrorCode.INVALID_CREDENTIAL, "typ"),
        (
            resigned(token, {}, {"status_list": {"bits": 3, "lst": "eA"}}, ISSUER_KEY),
            {},
            ErrorCode.INVALID_CREDENTIAL,
            "not 1, 2, 4 or 8",
        ),
        (
            resigned(token, {}, {"status_list": {"bits": 1, "lst": "eA"}}, ISSUER_KEY),
            {},
            ErrorCode.INVALID_CREDENTIAL,
            "status_list.lst",
        ),
        ("a.b", {}, ErrorCode.INVALID_CREDENTIAL, "not a compact JWS"),
    ]
    for bad, kw, code, words in cases:
        got = _code(bad, **kw)
        assert got[0] is code and words in got[1], (words, got)
    read = sdk.verify_status_list_token(token, uri=LIST, now=NOW, resolver=RESOLVER)
    with pytest.raises(InvalidInput, match="outside the status list"):
        read.status(SIZE)


def test_a_token_signed_by_anyone_but_the_lists_issuer_speaks_for_nothing() -> None:
    """A token for the bureau's list, signed by another DID with its own valid key, would
    say VALID for a revoked credential: refused, whoever serves it."""
    from vc_fixtures import DictResolver, did_document  # type: ignore[import-not-found]

    other = "did:citychain:8pYzD2kqjT1nRsQ7oWd4Xb"
    others = did_document(other, {"key-1": OTHER_KEY}, {"assertionMethod": ["key-1"]})
    both = DictResolver(RESOLVER.docs[ISSUER], others)
    forged = resigned(_token()[0], {"kid": f"{other}#key-1"}, {"iss": other}, OTHER_KEY)
    with pytest.raises(InvalidInput, match="the list's issuer is") as err:
        sdk.verify_status_list_token(forged, uri=LIST, now=NOW, resolver=both)
    assert err.value.code is ErrorCode.WRONG_KEY
    # A list at another URI names its issuer; the same rule holds.
    uri = "https://registry.example/lists/7"
    token = sdk.status_list_token(LIST, StatusList(SIZE), "revocation", ISSUER_KEY, KID, iat=NOW)
    token = resigned(token, {}, {"sub": uri}, ISSUER_KEY)
    read = sdk.verify_status_list_token(token, uri=uri, now=NOW, resolver=both, issuer=ISSUER)
    assert read.status(3) == 0
    with pytest.raises(InvalidInput, match="the list's issuer is"):
        sdk.verify_status_list_token(token, uri=uri, now=NOW, resolver=both, issuer=other)
