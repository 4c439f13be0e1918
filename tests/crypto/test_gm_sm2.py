"""The sm2-sm3 suite: interop with GmSSL (gmssl-pyx) both ways, round trips, refusals by code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.crypto import SM2_SM3, Signer, VerifyItem, get_suite
from citychain.crypto.sm2 import DEFAULT_DISTID, N, Sm2Suite, check_signature
from citychain.errors import ConfigError, ErrorCode, InvalidInput

gmssl = pytest.importorskip("gmssl_pyx")

SECRET = bytes.fromhex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")
PUBLIC = SM2_SM3.public_key(SECRET)


def _der_to_raw(der: bytes) -> bytes:
    assert der[0] == 0x30 and der[2] == 0x02
    rlen = der[3]
    r = int.from_bytes(der[4 : 4 + rlen], "big")
    slen = der[5 + rlen]
    s = int.from_bytes(der[6 + rlen : 6 + rlen + slen], "big")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _raw_to_der(raw: bytes) -> bytes:
    def one(v: int) -> bytes:
        b = v.to_bytes((v.bit_length() + 8) // 8, "big")
        return b"\x02" + bytes([len(b)]) + b

    body = one(int.from_bytes(raw[:32], "big")) + one(int.from_bytes(raw[32:], "big"))
    return b"\x30" + bytes([len(body)]) + body


def test_registered_by_name_with_the_default_id() -> None:
    suite = get_suite("sm2-sm3")
    assert suite is SM2_SM3 and isinstance(suite, Sm2Suite)
    assert SM2_SM3.params == {"distid": "1234567812345678"}
    assert Sm2Suite.from_params(SM2_SM3.params).distid == DEFAULT_DISTID
    assert gmssl.SM2_DEFAULT_SIGNER_ID == DEFAULT_DISTID


@pytest.mark.parametrize("params", [{}, {"distid": ""}, {"distid": 5}, {"distid": "身份"}])
def test_a_bad_genesis_id_is_refused_by_code(params: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as err:
        Sm2Suite.from_params(params)
    assert err.value.code is ErrorCode.BAD_DISTID


@pytest.mark.parametrize("msg", [b"", b"m", b"x" * 1000])
def test_ours_verify_in_gmssl(msg: bytes) -> None:
    sig = SM2_SM3.sign(SECRET, msg)
    assert gmssl.sm2_verify(PUBLIC[1:], msg, _raw_to_der(sig), DEFAULT_DISTID)
    assert not gmssl.sm2_verify(PUBLIC[1:], msg + b"!", _raw_to_der(sig), DEFAULT_DISTID)


def test_ours_under_another_id_verify_in_gmssl_only_under_that_id() -> None:
    alice = Sm2Suite(b"ALICE123@YAHOO.COM")
    sig = alice.sign(SECRET, b"hello")
    assert gmssl.sm2_verify(PUBLIC[1:], b"hello", _raw_to_der(sig), b"ALICE123@YAHOO.COM")
    assert not gmssl.sm2_verify(PUBLIC[1:], b"hello", _raw_to_der(sig), DEFAULT_DISTID)
    assert alice.verify(PUBLIC, b"hello", sig) and not SM2_SM3.verify(PUBLIC, b"hello", sig)


@pytest.mark.parametrize("msg", [b"", b"m", b"y" * 1000])
def test_gmssl_signatures_verify_here(msg: bytes) -> None:
    pub, priv = gmssl.sm2_key_generate()
    der = gmssl.sm2_sign(priv, pub, msg, DEFAULT_DISTID)
    public = b"\x04" + pub
    assert SM2_SM3.public_key(priv) == public
    assert SM2_SM3.verify(public, msg, _der_to_raw(der))
    assert not SM2_SM3.verify(public, msg + b"!", _der_to_raw(der))


def test_batch_verify_on_the_pool_keeps_order() -> None:
    signers = [Signer.generate(SM2_SM3) for _ in range(4)]
    items = []
    for i in range(100):
        s = signers[i % 4]
        msg = i.to_bytes(4, "big")
        sig = s.sign(msg)
        if i % 7 == 0:
            msg += b"!"
        items.append(VerifyItem(s.public_key, msg, sig))
    assert SM2_SM3.batch_verify(items) == [i % 7 != 0 for i in range(100)]


@settings(max_examples=25, deadline=None)
@given(msg=st.binary(max_size=300), bit=st.integers(min_value=0))
def test_round_trip_and_any_flipped_bit_is_refused(msg: bytes, bit: int) -> None:
    sig = SM2_SM3.sign(SECRET, msg)
    assert len(sig) == 64 and SM2_SM3.verify(PUBLIC, msg, sig)
    blob = bytearray(msg + sig + PUBLIC)
    at = bit % (len(blob) * 8)
    blob[at // 8] ^= 1 << (at % 8)
    m, s, p = bytes(blob[: len(msg)]), bytes(blob[len(msg) : len(msg) + 64]), bytes(blob[-65:])
    assert not SM2_SM3.verify(p, m, s)


def test_der_is_refused_by_code() -> None:
    der = _raw_to_der(SM2_SM3.sign(SECRET, b"m"))
    assert not SM2_SM3.verify(PUBLIC, b"m", der)
    with pytest.raises(InvalidInput) as err:
        check_signature(der)
    assert err.value.code is ErrorCode.SIGNATURE_NOT_RAW


@pytest.mark.parametrize(
    ("r", "s"), [(0, 1), (1, 0), (N, 1), (1, N), (2**256 - 1, 1), (1, N - 1), (N - 5, 5)]
)
def test_out_of_range_or_non_canonical_r_s_are_refused_by_code(r: int, s: int) -> None:
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert not SM2_SM3.verify(PUBLIC, b"m", sig)
    with pytest.raises(InvalidInput) as err:
        check_signature(sig)
    assert err.value.code is ErrorCode.SIGNATURE_OUT_OF_RANGE


def test_r_or_s_plus_n_is_refused() -> None:
    sig = SM2_SM3.sign(SECRET, b"m")
    r = int.from_bytes(sig[:32], "big")
    if r + N < 2**256:
        alias = (r + N).to_bytes(32, "big") + sig[32:]
        assert not SM2_SM3.verify(PUBLIC, b"m", alias)


@pytest.mark.parametrize(
    "key",
    [
        PUBLIC[:-1] + bytes([PUBLIC[-1] ^ 1]),  # off the curve
        b"\x02" + PUBLIC[1:33] + bytes(32),  # compressed tag
        b"\x04" + bytes(64),  # (0, 0)
        b"\x04" + (2**256 - 1).to_bytes(32, "big") * 2,  # coordinates >= p
    ],
)
def test_points_not_on_the_curve_are_refused_by_code(key: bytes) -> None:
    assert not SM2_SM3.verify(key, b"m", SM2_SM3.sign(SECRET, b"m"))
    with pytest.raises(InvalidInput) as err:
        SM2_SM3.check_public_key(key)
    assert err.value.code is ErrorCode.POINT_NOT_ON_CURVE


def test_wrong_lengths_never_raise_in_verify() -> None:
    for key, sig in [
        (b"", b""),
        (PUBLIC[:33], bytes(64)),
        (PUBLIC, bytes(63)),
        (PUBLIC, b"0" * 72),
    ]:
        assert SM2_SM3.verify(key, b"m", sig) is False
    with pytest.raises(InvalidInput) as err:
        SM2_SM3.check_public_key(PUBLIC[:33])
    assert err.value.code is ErrorCode.BAD_PUBLIC_KEY


@pytest.mark.parametrize("secret", [bytes(32), (N - 1).to_bytes(32, "big"), b"\xff" * 32, b"1"])
def test_bad_secrets_are_refused(secret: bytes) -> None:
    with pytest.raises(InvalidInput) as err:
        SM2_SM3.sign(secret, b"m")
    assert err.value.code is ErrorCode.BAD_ARGUMENTS


def test_hash_and_address_use_sm3() -> None:
    sm3_abc = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert SM2_SM3.hash(b"abc").hex() == sm3_abc
    assert SM2_SM3.address(PUBLIC) == SM2_SM3.hash(b"citychain/address/sm2-sm3/" + PUBLIC)[:20]
    assert len(SM2_SM3.address(PUBLIC)) == 20


def test_signer_generates_valid_keys() -> None:
    s = Signer.generate(SM2_SM3)
    SM2_SM3.check_public_key(s.public_key)
    assert SM2_SM3.verify(s.public_key, b"m", s.sign(b"m"))
    assert s.secret.hex() not in repr(s)
