"""The Ed25519 suite: signatures, batch verification, addresses, the suite registry."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.crypto import ED25519, CryptoSuite, Signer, VerifyItem, get_suite, sha256
from citychain.crypto._suite import BATCH_INLINE_BELOW
from citychain.errors import ErrorCode, InvalidInput

# RFC 8032 section 7.1, test 1.
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
L = 2**252 + 27742317777372353535851937790883648493  # order of the Ed25519 base point

seeds = st.binary(min_size=32, max_size=32)
messages = st.binary(max_size=200)


def test_rfc8032_vector() -> None:
    assert ED25519.public_key(RFC_SECRET) == RFC_PUBLIC
    assert ED25519.sign(RFC_SECRET, b"") == RFC_SIG
    assert ED25519.verify(RFC_PUBLIC, b"", RFC_SIG)


@settings(max_examples=50, deadline=None)
@given(seeds, messages)
def test_sign_then_verify(seed: bytes, msg: bytes) -> None:
    pk = ED25519.public_key(seed)
    sig = ED25519.sign(seed, msg)
    assert len(pk) == ED25519.public_key_size and len(sig) == ED25519.signature_size
    assert ED25519.verify(pk, msg, sig)


@settings(max_examples=50, deadline=None)
@given(seeds, seeds, messages, messages, st.integers(0, 63), st.integers(1, 255))
def test_wrong_key_message_or_signature_fails(
    seed: bytes, other: bytes, msg: bytes, msg2: bytes, pos: int, bit: int
) -> None:
    pk, sig = ED25519.public_key(seed), ED25519.sign(seed, msg)
    if other != seed:
        assert not ED25519.verify(ED25519.public_key(other), msg, sig)
    if msg2 != msg:
        assert not ED25519.verify(pk, msg2, sig)
    bad = bytearray(sig)
    bad[pos] ^= bit
    assert not ED25519.verify(pk, msg, bytes(bad))


@pytest.mark.parametrize(
    ("pk", "sig"),
    [
        (RFC_PUBLIC[:31], RFC_SIG),
        (RFC_PUBLIC + b"\x00", RFC_SIG),
        (b"", RFC_SIG),
        (RFC_PUBLIC, RFC_SIG[:63]),
        (RFC_PUBLIC, RFC_SIG + b"\x00"),
        (RFC_PUBLIC, b""),
        (b"\xff" * 32, RFC_SIG),  # not a curve point
        (bytes(32), RFC_SIG),  # small-order point
    ],
)
def test_malformed_inputs_return_false_without_raising(pk: bytes, sig: bytes) -> None:
    assert ED25519.verify(pk, b"", sig) is False


def test_non_canonical_signature_is_refused() -> None:
    # S + L is the same scalar mod L; accepting it would make signatures malleable.
    s = int.from_bytes(RFC_SIG[32:], "little")
    malleated = RFC_SIG[:32] + (s + L).to_bytes(32, "little")
    assert not ED25519.verify(RFC_PUBLIC, b"", malleated)


def _batch(n: int, rng: random.Random) -> list[VerifyItem]:
    signers = [Signer(ED25519, rng.randbytes(32)) for _ in range(8)]
    items = []
    for i in range(n):
        s = signers[i % len(signers)]
        msg = rng.randbytes(rng.randrange(0, 100))
        sig = s.sign(msg)
        kind = rng.randrange(6)
        if kind == 0:  # bad signature
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        elif kind == 1:  # wrong signer
            items.append(VerifyItem(signers[(i + 1) % 8].public_key, msg, sig))
            continue
        elif kind == 2:  # malformed length
            sig = sig[:-1]
        items.append(VerifyItem(s.public_key, msg, sig))
    return items


@pytest.mark.parametrize(
    "n",
    [0, 1, BATCH_INLINE_BELOW - 1, BATCH_INLINE_BELOW, BATCH_INLINE_BELOW + 1, 129, 1000],
)
def test_batch_verify_equals_one_by_one(n: int) -> None:
    items = _batch(n, random.Random(n))
    expected = [ED25519.verify(*item) for item in items]
    assert ED25519.batch_verify(items) == expected
    if n >= 10:
        assert True in expected and False in expected  # the batch really is mixed


def test_batch_verify_reports_the_exact_bad_positions() -> None:
    items = _batch(500, random.Random(7))
    items = [VerifyItem(it.public_key, it.message, Signer(ED25519, b"\x01" * 32).sign(b"x"))
             if i % 97 == 0 else it for i, it in enumerate(items)]  # fmt: skip
    result = ED25519.batch_verify(items)
    assert all(result[i] is False for i in range(0, 500, 97))


def test_address_is_20_bytes_stable_and_bound_to_the_key_and_suite() -> None:
    addr = ED25519.address(RFC_PUBLIC)
    assert len(addr) == 20
    # Pinned: changing the derivation would move every account on every chain.
    assert addr.hex() == "e23fa505a700aecf2c6a2d2de3b4a204e5f996f2"
    assert addr == hashlib.sha256(b"citychain/address/ed25519/" + RFC_PUBLIC).digest()[:20]
    assert ED25519.address(bytes(31) + b"\x01") != addr
    assert Signer(ED25519, RFC_SECRET).address == addr


def test_remembered_addresses_are_the_derived_ones_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Addresses are remembered per suite (hot path); a remembered one is the derived one,
    # for every suite, and the memory stays under its bound however many keys pass.
    monkeypatch.setattr("citychain.crypto._suite._ADDRESSES_KEPT", 8)
    sm2 = get_suite("sm2-sm3")
    for i in range(30):
        key = i.to_bytes(32, "big")
        for _ in range(2):
            assert (
                ED25519.address(key)
                == hashlib.sha256(b"citychain/address/ed25519/" + key).digest()[:20]
            )
        sm2_key = b"\x04" + key + key
        assert sm2.address(sm2_key) == sm2.hash(b"citychain/address/sm2-sm3/" + sm2_key)[:20]
        assert len(ED25519.__dict__["_addresses"]) <= 8
    assert ED25519.address(bytearray(32)) == ED25519.address(bytes(32))


def test_signer_repr_hides_the_secret() -> None:
    signer = Signer(ED25519, RFC_SECRET)
    assert RFC_SECRET.hex() not in repr(signer)
    assert RFC_PUBLIC.hex() in repr(signer)


def test_generated_signers_differ_and_work() -> None:
    a, b = Signer.generate(ED25519), Signer.generate(ED25519)
    assert a.secret != b.secret and len(a.secret) == ED25519.secret_size
    assert ED25519.verify(a.public_key, b"m", a.sign(b"m"))


def test_check_public_key() -> None:
    ED25519.check_public_key(RFC_PUBLIC)
    with pytest.raises(InvalidInput, match="public keys are 32 bytes, got 33") as info:
        ED25519.check_public_key(RFC_PUBLIC + b"\x00")
    assert info.value.code == ErrorCode.BAD_PUBLIC_KEY


def test_hash_is_sha256() -> None:
    assert ED25519.hash(b"abc") == sha256(b"abc") == hashlib.sha256(b"abc").digest()


def test_get_suite() -> None:
    suite: CryptoSuite = get_suite("ed25519")
    assert suite is ED25519
    with pytest.raises(InvalidInput, match=r"unknown crypto suite 'sm2'.*ed25519"):
        get_suite("sm2")
