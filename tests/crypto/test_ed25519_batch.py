"""The Ed25519 suite's batch path: the loop in C (``crypto/_ed25519_batch.c``) accepts exactly
what one-by-one :meth:`Ed25519Suite.verify` accepts, and refuses inconsistent input in words.

Where the install built the extension (CI's machine has a compiler: ``tests/test_compiled.py``
checks that the suite really uses it), every batch of the rest of the suite runs it too; these
tests draw the cases a node must get right: valid signatures, altered messages, signatures and
keys, non-canonical S (S + L, the malleability libsodium refuses), small-order keys, keys and
signatures of the wrong size, empty and long messages, in any mix and order.
"""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.crypto import ED25519, Signer, VerifyItem
from citychain.crypto._suite import BATCH_INLINE_BELOW
from citychain.crypto.ed25519 import Ed25519Suite
from citychain.types.tx import Transaction, batch_verify_txs

native = pytest.mark.skipif(not ED25519.native_batch, reason="no C extension built here")

L = 2**252 + 27742317777372353535851937790883648493  # order of the Ed25519 base point
#: The identity point (order 1) and a point of order 2, encoded: small-order keys.
SMALL_ORDER_KEYS = (
    bytes([1]) + bytes(31),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
)
SIGNERS = [Signer(ED25519, bytes([i]) * 32) for i in range(1, 5)]

KINDS = (
    "valid",
    "message",
    "signature",
    "key",
    "non-canonical",
    "small-order",
    "short-signature",
    "long-key",
)


def _item(kind: str, signer: int, message: bytes) -> VerifyItem:
    s = SIGNERS[signer]
    sig = s.sign(message)
    if kind == "message":
        return VerifyItem(s.public_key, message + b"\x00", sig)
    if kind == "signature":
        return VerifyItem(s.public_key, message, sig[:40] + bytes([sig[40] ^ 1]) + sig[41:])
    if kind == "key":
        return VerifyItem(SIGNERS[(signer + 1) % len(SIGNERS)].public_key, message, sig)
    if kind == "non-canonical":  # the same point R, S + L: valid arithmetic, refused
        s_plus_l = int.from_bytes(sig[32:], "little") + L
        return VerifyItem(s.public_key, message, sig[:32] + s_plus_l.to_bytes(32, "little"))
    if kind == "small-order":
        return VerifyItem(SMALL_ORDER_KEYS[signer % 2], message, sig)
    if kind == "short-signature":
        return VerifyItem(s.public_key, message, sig[:-1])
    if kind == "long-key":
        return VerifyItem(s.public_key + b"\x00", message, sig)
    return VerifyItem(s.public_key, message, sig)


items = st.lists(
    st.builds(
        _item,
        st.sampled_from(KINDS),
        st.integers(0, len(SIGNERS) - 1),
        st.binary(max_size=300),
    ),
    max_size=2 * BATCH_INLINE_BELOW + 3,
)


@settings(max_examples=60, deadline=None)
@given(items)
def test_a_batch_accepts_exactly_what_one_by_one_accepts(batch: list[VerifyItem]) -> None:
    expected = [ED25519.verify(*item) for item in batch]
    assert ED25519.batch_verify(batch) == expected
    assert ED25519._verify_many(batch) == expected  # one share, as each pool thread runs it


def test_each_refused_kind_is_refused_and_a_valid_one_among_them_accepted() -> None:
    """Not left to chance: every kind once, with a valid item after each."""
    batch = []
    for kind in KINDS:
        batch += [_item(kind, 1, b"citychain"), _item("valid", 2, kind.encode())]
    batch *= 5  # past the inline size: the thread pool's shares
    assert len(batch) > BATCH_INLINE_BELOW
    verdicts = ED25519.batch_verify(batch)
    assert verdicts == [ED25519.verify(*item) for item in batch]
    assert verdicts[0::2] == [kind == "valid" for kind in KINDS] * 5
    assert all(verdicts[1::2])


def test_items_that_are_not_bytes_get_the_answer_verify_gives_them() -> None:
    """A memoryview, a bytearray or a str where bytes belong (never from a decoded
    transaction) gets what :meth:`Ed25519Suite.verify` says of it; the plain items beside it
    are checked as ever."""
    s = SIGNERS[0]
    sig = s.sign(b"m")
    batch = [
        VerifyItem(s.public_key, b"m", sig),
        VerifyItem(memoryview(s.public_key), b"m", sig),  # type: ignore[arg-type]
        VerifyItem(s.public_key, b"m", bytearray(sig)),  # type: ignore[arg-type]
        VerifyItem(s.public_key, "m", sig),  # type: ignore[arg-type]
    ] * BATCH_INLINE_BELOW
    verdicts = ED25519.batch_verify(batch)
    assert verdicts == [ED25519.verify(*item) for item in batch]
    assert verdicts[0::4] == [True] * BATCH_INLINE_BELOW


@native
def test_decoded_transactions_take_the_loop_not_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a node verifies (transactions off the wire, decoded) is all bytes of the right
    sizes, so none of it falls back to one call a signature."""
    txs = [
        Transaction.decode(
            Transaction.create(
                SIGNERS[i % 4], chain_id="c", nonce=i, contract="token", method="transfer"
            ).encode()
        )
        for i in range(3 * BATCH_INLINE_BELOW)
    ]
    tampered = Transaction.decode(txs[5].with_signature(SIGNERS[0].sign(b"other")).encode())
    txs[5] = tampered

    def one_by_one(*args: object) -> bool:
        raise AssertionError("a decoded transaction was verified one by one")

    monkeypatch.setattr(Ed25519Suite, "verify", one_by_one)
    verdicts = batch_verify_txs(ED25519, txs)
    assert verdicts == [i != 5 for i in range(len(txs))]


@native
def test_the_loop_refuses_inconsistent_buffers_in_words() -> None:
    from citychain.crypto import _ed25519_batch

    s = SIGNERS[0]
    sig = s.sign(b"abc")
    one = array("Q", [3])
    assert _ed25519_batch.verify(s.public_key, sig, b"abc", one) == b"\x01"
    assert _ed25519_batch.verify(b"", b"", b"", array("Q")) == b""
    bad = [
        (s.public_key[:31], sig, b"abc", one, "inconsistent buffers"),  # not whole keys
        (s.public_key, sig + sig, b"abc", one, "inconsistent buffers"),  # 2 signatures, 1 key
        (s.public_key, sig, b"abc", array("Q", [3, 3]), "inconsistent buffers"),
        (s.public_key, sig, b"abc", array("Q", [4]), "message end 0"),  # past the messages
        (s.public_key * 2, sig * 2, b"abc", array("Q", [3, 2]), "message end 1"),  # backwards
    ]
    for pks, sigs, msgs, ends, words in bad:
        with pytest.raises(ValueError, match=words):
            _ed25519_batch.verify(pks, sigs, msgs, ends)
    with pytest.raises(TypeError):
        _ed25519_batch.verify("not bytes", sig, b"abc", one)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="null address"):
        _ed25519_batch.bind(0)
