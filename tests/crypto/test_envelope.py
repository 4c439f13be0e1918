"""Envelope encryption: chunked sealing round-trips at every size around the chunk boundaries,
and every alteration (a flipped bit, chunks swapped, dropped or cut off, another key or
context, a forged hash or manifest) is refused with its own code, naming the chunk."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.crypto import envelope as env
from citychain.crypto import get_suite
from citychain.crypto.envelope import Manifest
from citychain.errors import DecodeError, ErrorCode, InvalidInput, NotFound

CIPHERS = ("aes-256-gcm", "sm4-gcm")
CHUNK = env.MIN_CHUNK_SIZE
CTX = b"dataset:traffic-counts/v3"
examples = settings(max_examples=25, deadline=None)


def seal(data: bytes, key: bytes, cipher: env.Cipher = "aes-256-gcm", context: bytes = CTX):
    sealed = env.seal_stream(io.BytesIO(data), key, context, cipher, CHUNK)
    chunks = list(sealed)
    return sealed.manifest, chunks


def open_(manifest: Manifest, chunks: dict[bytes, bytes], key: bytes, context: bytes = CTX):
    out = io.BytesIO()
    env.open_stream(manifest, chunks.__getitem__, key, context, out)
    return out.getvalue()


def refused(code: ErrorCode, fn, *args):  # type: ignore[no-untyped-def]
    with pytest.raises((InvalidInput, NotFound)) as caught:
        fn(*args)
    assert caught.value.code is code, caught.value
    return caught.value.message


sizes = st.sampled_from([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK - 1]) | (
    st.integers(0, 4 * CHUNK + 3)
)


@examples
@given(size=sizes, cipher=st.sampled_from(CIPHERS), seed=st.binary(min_size=1, max_size=8))
def test_what_is_sealed_opens_to_the_same_bytes(size: int, cipher: env.Cipher, seed: bytes) -> None:
    data = (seed * (size // len(seed) + 1))[:size]
    key = env.new_data_key(cipher)
    manifest, chunks = seal(data, key, cipher)
    assert len(manifest.chunks) == env.chunk_count(size, CHUNK) == max(1, -(-size // CHUNK))
    assert [c for c, _ in chunks] == list(manifest.chunks)
    assert all(env._hash(cipher, ct) == cid for cid, ct in chunks)  # content addressed
    assert manifest.plain_size == size and manifest.cipher_size == sum(len(c) for _, c in chunks)
    assert manifest.plain_hash == env._hash(cipher, data)
    assert manifest.cipher_hash == env._hash(cipher, b"".join(c for _, c in chunks))
    assert Manifest.decode(manifest.encode()) == manifest
    assert open_(manifest, dict(chunks), key) == data


@examples
@given(
    size=st.integers(1, 4 * CHUNK),
    where=st.integers(0, 10**6),
    bit=st.integers(0, 7),
    cipher=st.sampled_from(CIPHERS),
)
def test_a_flipped_bit_is_refused_naming_the_chunk(
    size: int, where: int, bit: int, cipher: env.Cipher
) -> None:
    key = env.new_data_key(cipher)
    manifest, chunks = seal(bytes(size), key, cipher)
    index = where % len(chunks)
    cid, ct = chunks[index]
    pos = where % len(ct)
    bad = ct[:pos] + bytes([ct[pos] ^ (1 << bit)]) + ct[pos + 1 :]
    # Served under its old id: the id check catches it before decryption.
    message = refused(ErrorCode.CHUNK_TAMPERED, open_, manifest, {**dict(chunks), cid: bad}, key)
    assert f"chunk {index} of {len(chunks)}" in message and "does not hash to its id" in message
    # With a manifest rewritten to the altered chunk's id: authentication catches it.
    new_id = env._hash(cipher, bad)
    forged = replace(
        manifest, chunks=(*manifest.chunks[:index], new_id, *manifest.chunks[index + 1 :])
    )
    message = refused(ErrorCode.CHUNK_TAMPERED, open_, forged, {**dict(chunks), new_id: bad}, key)
    assert f"chunk {index} of" in message and "does not authenticate" in message


@examples
@given(n=st.integers(2, 5), i=st.integers(0, 4), j=st.integers(0, 4))
def test_swapped_chunks_are_refused(n: int, i: int, j: int) -> None:
    i, j = i % n, j % n
    if i == j:
        j = (i + 1) % n
    key = env.new_data_key("aes-256-gcm")
    manifest, chunks = seal(bytes(range(256)) * (n * CHUNK // 256), key)
    order = list(manifest.chunks)
    order[i], order[j] = order[j], order[i]
    message = refused(
        ErrorCode.CHUNK_TAMPERED, open_, replace(manifest, chunks=tuple(order)), dict(chunks), key
    )
    assert f"chunk {min(i, j)} of {n}" in message


@pytest.mark.parametrize("cipher", CIPHERS)
def test_a_stream_cut_short_or_extended_is_refused(cipher: env.Cipher) -> None:
    key = env.new_data_key(cipher)
    data = b"x" * (3 * CHUNK)
    manifest, chunks = seal(data, key, cipher)
    # Drop the last chunk and claim the file was 2 chunks long: chunk 1 was not sealed final.
    cut = replace(manifest, plain_size=2 * CHUNK, chunks=manifest.chunks[:2])
    assert "chunk 1 of 2" in refused(ErrorCode.CHUNK_TAMPERED, open_, cut, dict(chunks), key)
    # Append a chunk from another stream under the same key: the old final chunk is refused.
    other_manifest, other = seal(b"y" * CHUNK, key, cipher)
    longer = replace(manifest, plain_size=4 * CHUNK, chunks=manifest.chunks + other_manifest.chunks)
    message = refused(ErrorCode.CHUNK_TAMPERED, open_, longer, dict(chunks + other), key)
    assert "chunk 2 of 4" in message


@pytest.mark.parametrize("cipher", CIPHERS)
def test_another_key_or_context_cannot_open_it(cipher: env.Cipher) -> None:
    key = env.new_data_key(cipher)
    manifest, chunks = seal(b"census" * 500, key, cipher)
    assert "chunk 0 of" in refused(
        ErrorCode.CHUNK_TAMPERED, open_, manifest, dict(chunks), env.new_data_key(cipher)
    )
    refused(ErrorCode.CHUNK_TAMPERED, open_, manifest, dict(chunks), key, b"dataset:x/v3")
    refused(ErrorCode.BAD_ARGUMENTS, open_, manifest, dict(chunks), key[:-1])


def test_forged_whole_hashes_are_refused() -> None:
    key = env.new_data_key("aes-256-gcm")
    manifest, chunks = seal(b"a" * 3000, key)
    wrong = bytes(32)
    message = refused(
        ErrorCode.HASH_MISMATCH, open_, replace(manifest, plain_hash=wrong), dict(chunks), key
    )
    assert "plain_hash" in message
    message = refused(
        ErrorCode.HASH_MISMATCH, open_, replace(manifest, cipher_hash=wrong), dict(chunks), key
    )
    assert "cipher_hash" in message


@examples
@given(size=st.integers(1, 4 * CHUNK), where=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_without_the_id_and_ciphertext_passes_every_change_is_still_refused(
    size: int, where: int, bit: int
) -> None:
    """The SDK's download skips the chunk ids and the whole-ciphertext hash (the node checks
    the ids; the ciphertext is a function of the plaintext under one key): a changed byte
    is still refused by authentication, a forged plaintext hash by the final check."""
    key = env.new_data_key("aes-256-gcm")
    manifest, chunks = seal(bytes(size), key)
    index = where % len(chunks)
    cid, ct = chunks[index]
    pos = where % len(ct)
    bad = {**dict(chunks), cid: ct[:pos] + bytes([ct[pos] ^ (1 << bit)]) + ct[pos + 1 :]}

    def lean(m: Manifest, served: dict[bytes, bytes]) -> bytes:
        out = io.BytesIO()
        env.open_stream(
            m, served.__getitem__, key, CTX, out, fetch_verifies=True, check_cipher_hash=False
        )
        return out.getvalue()

    assert lean(manifest, dict(chunks)) == bytes(size)
    message = refused(ErrorCode.CHUNK_TAMPERED, lean, manifest, bad)
    assert f"chunk {index} of" in message and "does not authenticate" in message
    forged = replace(manifest, plain_hash=bytes(32))
    assert "plain_hash" in refused(ErrorCode.HASH_MISMATCH, lean, forged, dict(chunks))


def test_a_failing_writer_or_a_bad_chunk_stops_the_open_with_its_own_error() -> None:
    """The plaintext is written by a thread of its own: a writer's failure (a full disk) is
    raised to the caller as it was, and after a refused chunk nothing later is written."""
    key = env.new_data_key("aes-256-gcm")
    manifest, chunks = seal(bytes(range(256)) * 40, key)  # 10 chunks

    class Full(io.BytesIO):
        def write(self, b: object) -> int:
            if self.tell() >= 2 * CHUNK:
                raise OSError(28, "No space left on device")
            return super().write(b)  # type: ignore[arg-type]

    with pytest.raises(OSError, match="No space left"):
        env.open_stream(manifest, dict(chunks).__getitem__, key, CTX, Full())
    cid, ct = chunks[3]
    served = {**dict(chunks), cid: ct[:-1] + bytes([ct[-1] ^ 1])}
    out = io.BytesIO()
    refused(
        ErrorCode.CHUNK_TAMPERED,
        env.open_stream,
        manifest,
        served.__getitem__,
        key,
        CTX,
        out,
    )
    assert len(out.getvalue()) <= 3 * CHUNK  # the chunks before it at most


def test_a_missing_chunk_is_named_by_index() -> None:
    key = env.new_data_key("aes-256-gcm")
    manifest, chunks = seal(b"m" * 3000, key)

    def fetch(chunk_id: bytes) -> bytes:
        if chunk_id == manifest.chunks[2]:
            raise NotFound("gone", ErrorCode.CHUNK_MISSING)
        return dict(chunks)[chunk_id]

    with pytest.raises(NotFound) as caught:
        env.open_stream(manifest, fetch, key, CTX, io.BytesIO())
    assert caught.value.code is ErrorCode.CHUNK_MISSING
    assert f"chunk 2 of 3 ({manifest.chunks[2].hex()}) is missing" in caught.value.message


def test_the_cipher_follows_the_suite_and_sets_the_hash() -> None:
    assert env.cipher_for_suite("ed25519") == "aes-256-gcm"
    assert env.cipher_for_suite("sm2-sm3") == "sm4-gcm"
    assert env.key_size("aes-256-gcm") == 32 and env.key_size("sm4-gcm") == 16
    data = b"abc" * 400
    for cipher in CIPHERS:
        manifest, _ = seal(data, env.new_data_key(cipher), cipher)
        suite = get_suite("ed25519" if cipher == "aes-256-gcm" else "sm2-sm3")
        assert manifest.plain_hash == suite.hash(data)
        assert manifest.id == suite.hash(manifest.encode())
    refused(ErrorCode.BAD_ARGUMENTS, env.cipher_for_suite, "rsa")


@pytest.mark.parametrize("size", [0, env.MIN_CHUNK_SIZE - 1, env.MAX_CHUNK_SIZE + 1])
def test_chunk_sizes_outside_the_bounds_are_refused(size: int) -> None:
    key = env.new_data_key("aes-256-gcm")
    message = refused(
        ErrorCode.BAD_ARGUMENTS, env.seal_stream, io.BytesIO(b""), key, CTX, "aes-256-gcm", size
    )
    assert "chunk_size must be" in message


def test_short_reads_make_the_same_chunks() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            k = min(7, n)
            piece, self.data = self.data[:k], self.data[k:]
            return piece

    key = env.new_data_key("aes-256-gcm")
    data = bytes(range(256)) * 10
    sealed = env.seal_stream(Trickle(data), key, CTX, "aes-256-gcm", CHUNK)
    assert [c for c, _ in sealed] == list(seal(data, key)[0].chunks)


# -- the manifest's canonical form ---------------------------------------------------------------


def _good() -> dict[str, object]:
    manifest, _ = seal(b"z" * 2500, env.new_data_key("aes-256-gcm"))
    return dict(manifest.to_value())


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"v": 2}, "format version 2 is not 1"),
        ({"cipher": "rot13"}, "unknown cipher 'rot13'"),
        ({"chunk_size": 10}, "chunk_size 10 is outside"),
        ({"plain_size": -1}, "plain_size must be a whole number"),
        ({"plain_hash": b"short"}, "plain_hash must be 32 bytes"),
        ({"plain_size": 99_999}, "make 98 chunks, the manifest lists 3"),
        ({"chunks": "nope"}, "chunks must be an array"),
        ({"extra": 1}, "unknown ['extra']"),
    ],
)
def test_a_bad_manifest_is_refused_precisely(change: dict[str, object], words: str) -> None:
    value = {**_good(), **change}
    with pytest.raises(DecodeError) as caught:
        Manifest.decode(codec.encode(value))
    assert caught.value.code is ErrorCode.MALFORMED and words in caught.value.message


def test_a_manifest_missing_a_field_or_not_canonical_is_refused() -> None:
    value = _good()
    del value["cipher_hash"]
    with pytest.raises(DecodeError, match=r"fields missing \['cipher_hash'\]"):
        Manifest.decode(codec.encode(value))
    good = codec.encode(_good())
    with pytest.raises(DecodeError) as caught:
        Manifest.decode(good + b"\x00")
    assert caught.value.code is ErrorCode.NON_CANONICAL


# -- wrapping the data key -----------------------------------------------------------------------


@pytest.mark.parametrize("cipher", CIPHERS)
def test_a_wrapped_key_opens_only_for_its_reader_and_context(cipher: env.Cipher) -> None:
    key = env.new_data_key(cipher)
    private, public = env.x25519_keypair()
    wrapped = env.wrap_key(key, public, cipher, CTX)
    assert len(wrapped) == env.wrapped_size(cipher)
    assert env.unwrap_key(wrapped, private, cipher, CTX) == key
    assert env.wrap_key(key, public, cipher, CTX) != wrapped  # a fresh ephemeral key each time
    other, _ = env.x25519_keypair()
    message = refused(ErrorCode.KEY_UNWRAP_FAILED, env.unwrap_key, wrapped, other, cipher, CTX)
    assert "this key cannot open the data key" in message
    refused(ErrorCode.KEY_UNWRAP_FAILED, env.unwrap_key, wrapped, private, cipher, b"other")
    for pos in (0 + 1, 20, len(wrapped) - 1):
        bad = wrapped[:pos] + bytes([wrapped[pos] ^ 1]) + wrapped[pos + 1 :]
        refused(ErrorCode.KEY_UNWRAP_FAILED, env.unwrap_key, bad, private, cipher, CTX)
    refused(ErrorCode.MALFORMED, env.unwrap_key, wrapped[:-1], private, cipher, CTX)
    refused(ErrorCode.MALFORMED, env.unwrap_key, b"\x02" + wrapped[1:], private, cipher, CTX)


def test_an_ed25519_account_key_receives_a_data_key() -> None:
    suite = get_suite("ed25519")
    secret = suite.generate_secret()
    public = env.x25519_public_from_ed25519(suite.public_key(secret))
    key = env.new_data_key("aes-256-gcm")
    wrapped = env.wrap_key(key, public, "aes-256-gcm", CTX)
    assert (
        env.unwrap_key(wrapped, env.x25519_private_from_ed25519(secret), "aes-256-gcm", CTX) == key
    )
    refused(ErrorCode.BAD_PUBLIC_KEY, env.x25519_public_from_ed25519, b"\x01" * 31)
    refused(ErrorCode.BAD_PUBLIC_KEY, env.wrap_key, key, bytes(32), "aes-256-gcm", CTX)


def test_importing_the_envelope_loads_no_cryptography() -> None:
    """The SDK imports it at module level without the node's extras being loaded."""
    code = (
        "import sys, citychain.crypto.envelope;"
        "sys.exit(1 if {'cryptography'} & {m.split('.')[0] for m in sys.modules} else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_ids_have_one_text_form() -> None:
    manifest, _ = seal(b"t" * 10, env.new_data_key("aes-256-gcm"))
    assert env.parse_id(manifest.id.hex()) == manifest.id
    assert manifest.to_json()["id"] == manifest.id.hex()
    for bad in ("", "ab", manifest.id.hex().upper(), manifest.id.hex()[:-1] + "g", "0x" + "0" * 62):
        refused(ErrorCode.MALFORMED, env.parse_id, bad)
