"""base58btc through ``based58`` gives exactly what the pure-Python ``base58`` library (the
oracle, which citychain used before) gives: state holds these strings, so every node, and a
node replaying blocks made with the old library, must make the same ones."""

from __future__ import annotations

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from citychain.services.identity.shapes import citychain_did, multikey_decode, multikey_encode
from citychain.services.identity.shapes._base58 import b58decode, b58encode

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@given(st.binary(max_size=128) | st.binary(max_size=8).map(lambda b: b"\0" * 3 + b))
def test_encoding_equals_the_oracle_and_reads_back(data: bytes) -> None:
    text = b58encode(data)
    assert text == base58.b58encode(data).decode()
    assert b58decode(text) == data == base58.b58decode(text)


@given(
    st.text(ALPHABET, max_size=90),
    st.sampled_from(["", " ", "\n", "\t ", "\u3000"]),
)
def test_decoding_any_text_of_the_alphabet_equals_the_oracle(text: str, tail: str) -> None:
    assert b58decode(text + tail) == base58.b58decode(text + tail)


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "abc+", "ab c", "é1", "1\x00"])
def test_a_character_outside_the_alphabet_is_a_value_error_for_both(bad: str) -> None:
    with pytest.raises(ValueError):
        base58.b58decode(bad)
    with pytest.raises(ValueError):
        b58decode(bad)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=32, max_size=32))
def test_identifiers_and_keys_are_the_oracles(ident: bytes, key: bytes) -> None:
    assert citychain_did(ident) == "did:citychain:" + base58.b58encode(ident).decode()
    mk = multikey_encode(key)
    assert mk == "z" + base58.b58encode(b"\xed\x01" + key).decode()
    assert multikey_decode(mk) == key
