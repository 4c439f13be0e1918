"""Envelope encryption for the data directory: chunked, streamed, content-addressed ciphertext
and data keys wrapped for each reader.

Theory of operation
-------------------
*One data key per dataset version.* :func:`new_data_key` draws a fresh random key for every
version; it is never reused, which is what makes the counter nonces below safe. The data is
sealed once under it and the key itself is *wrapped* for each grantee (:func:`wrap_key`). A
grant wraps the same key again for one more reader; a revocation leaves the reader out of the
next version's wraps (data already read cannot be unread).

*Ciphers follow the chain's suite* (:func:`cipher_for_suite`): ``aes-256-gcm`` with SHA-256 on
an Ed25519 chain, ``sm4-gcm`` (GB/T 32907 in GCM, RFC 8998) with SM3 on a GM chain. The hash
names every chunk and manifest and hashes the plaintext and ciphertext the chain records.

*Chunks as a STREAM* (Hoang, Reyhanitabar, Rogaway, Vizár, "Online authenticated-encryption
and its nonce-reuse misuse-resistance", 2015). The plaintext is cut into ``chunk_size`` pieces
(the last one shorter, possibly empty: an empty file is one empty final chunk). Piece ``i`` is
sealed with nonce ``00 00 00 || i (8 bytes, big-endian) || final`` (``final`` is 1 on the last
piece, else 0: the STREAM construction, so no two pieces ever share a nonce) and with AAD
binding a domain tag, the caller's *context* (e.g. the dataset's resource code and version),
``i`` and the final flag. Moving a chunk to another place, dropping the end (a non-final chunk
cannot pass as final), appending after the end, or replaying a chunk of another version (other
key, other context) all fail authentication, reported as ``chunk_tampered`` naming the index.

*Content addressing.* A chunk's id is the hash of its ciphertext; the :class:`Manifest` lists
the ids in order with the sizes, the cipher, the hash of the whole plaintext (``plain_hash``)
and of the concatenated ciphertext (``cipher_hash``). Its id is the hash of its canonical CBOR.
The chain records the manifest id and the two hashes, so a receiver can prove what it got; the
blob store (:mod:`citychain.blobs`) holds only ciphertext and manifests, never a key.
:func:`open_stream` checks each chunk's id before decrypting it and both whole hashes at the end.

*Bounded memory.* :func:`seal_stream` reads one chunk ahead (it must know which chunk is the
last) and :func:`open_stream` holds one chunk: a few chunks whatever the file's size.

*Key wrapping* (:func:`wrap_key`): an ephemeral X25519 key agrees a secret with the reader's
X25519 key; HKDF (SHA-256, or SM3 for ``sm4-gcm``) over it, salted with both public keys and
bound to the cipher and context, gives a one-time wrapping key, and the cipher's AEAD seals
the data key under it (a zero nonce is safe: the wrapping key is used once). Accounts sign with
Ed25519, so a reader needs no second key: :func:`x25519_public_from_ed25519` and
:func:`x25519_private_from_ed25519` map an account key to its X25519 twin with libsodium's
birational map (``crypto_sign_ed25519_pk_to_curve25519``), as age and libsodium's
``crypto_box_seal`` users do. Using one key for signing and key agreement this way is the
standard, analysed practice (Thormarker, "On using the same key pair for Ed25519 and an X25519
based KEM", 2021). SM2 accounts (GM suite) have no such twin: their readers pass an X25519 key
explicitly (SM2 public-key encryption is a follow-up).

``cryptography`` and PyNaCl are imported inside the functions that use them, so importing this
module (e.g. from an SDK module) loads neither.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final, Literal, Protocol

from citychain import codec
from citychain.errors import DecodeError, ErrorCode, InvalidInput, NotFound

__all__ = [
    "CIPHERS",
    "DEFAULT_CHUNK_SIZE",
    "FORMAT_VERSION",
    "MAX_CHUNKS",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "TAG_SIZE",
    "Cipher",
    "Hasher",
    "Manifest",
    "SealedStream",
    "chunk_count",
    "cipher_for_suite",
    "hasher",
    "key_size",
    "new_data_key",
    "open_stream",
    "parse_id",
    "seal_stream",
    "unwrap_key",
    "wrap_key",
    "wrapped_size",
    "x25519_keypair",
    "x25519_private_from_ed25519",
    "x25519_public_from_ed25519",
]

Cipher = Literal["aes-256-gcm", "sm4-gcm"]

#: cipher -> (data key size in bytes, hash name). The hash names chunks and manifests.
CIPHERS: Final[dict[str, tuple[int, str]]] = {
    "aes-256-gcm": (32, "sha256"),
    "sm4-gcm": (16, "sm3"),
}
_SUITE_CIPHER: Final[dict[str, Cipher]] = {"ed25519": "aes-256-gcm", "sm2-sm3": "sm4-gcm"}

FORMAT_VERSION: Final = 1
#: 4 MiB: every chunk is one signed HTTP request and one fsync'd file on the node, and those
#: fixed costs held 1 MiB-chunk uploads to 115-126 MiB/s where 4 MiB chunks made 148-159
#: through the same SDK and node (client and node on two cores; bench/RESULTS.md). 8 MiB
#: gained no more.
DEFAULT_CHUNK_SIZE: Final = 1 << 22
MIN_CHUNK_SIZE: Final = 1 << 10
MAX_CHUNK_SIZE: Final = 1 << 26
#: Chunks one manifest lists at most: 4 TiB at the default chunk size, 64 TiB at the largest.
#: A larger dataset is cut into several versions or parts (manifests of manifests: follow-up).
MAX_CHUNKS: Final = 1 << 20
#: Decrypted chunks :func:`open_stream` holds for its writer thread at most.
SINK_DEPTH: Final = 4
TAG_SIZE: Final = 16
_NONCE_SIZE = 12
_ID_SIZE = 32
_X25519_SIZE = 32
_WRAP_VERSION = b"\x01"
_CHUNK_TAG = b"citychain/blob-chunk/v1"
_WRAP_TAG = b"citychain/data-key-wrap/v1/"


class Hasher(Protocol):
    """An incremental hash (hashlib's interface)."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


def _as_cipher(name: object) -> Cipher | None:
    if name == "aes-256-gcm":
        return "aes-256-gcm"
    if name == "sm4-gcm":
        return "sm4-gcm"
    return None


def _check_cipher(cipher: str) -> None:
    if cipher not in CIPHERS:
        raise InvalidInput(
            f"unknown cipher {cipher!r} (known: {', '.join(sorted(CIPHERS))})",
            ErrorCode.BAD_ARGUMENTS,
        )


def cipher_for_suite(suite_name: str) -> Cipher:
    """The cipher a chain of suite ``suite_name`` uses: ``aes-256-gcm`` for ``ed25519``,
    ``sm4-gcm`` for ``sm2-sm3``."""
    try:
        return _SUITE_CIPHER[suite_name]
    except KeyError:
        raise InvalidInput(
            f"no data cipher for crypto suite {suite_name!r}", ErrorCode.BAD_ARGUMENTS
        ) from None


def key_size(cipher: str) -> int:
    """The data key size of ``cipher`` (32 for AES-256-GCM, 16 for SM4-GCM)."""
    _check_cipher(cipher)
    return CIPHERS[cipher][0]


def new_data_key(cipher: str) -> bytes:
    """A fresh random data key for one dataset version. Never seal two versions under one key."""
    return os.urandom(key_size(cipher))


class _CryptographySm3:
    """SM3 through ``cryptography``, for a Python whose hashlib (OpenSSL) lacks it."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import hashes

        self._h = hashes.Hash(hashes.SM3())

    def update(self, data: bytes, /) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.copy().finalize()


def hasher(cipher: str) -> Hasher:
    """A fresh incremental hash of ``cipher``'s family: SHA-256, or SM3 for ``sm4-gcm``."""
    _check_cipher(cipher)
    if CIPHERS[cipher][1] == "sha256":
        return hashlib.sha256()
    try:
        return hashlib.new("sm3")
    except ValueError:  # pragma: no cover - an OpenSSL without SM3
        return _CryptographySm3()


def _hash(cipher: str, data: bytes) -> bytes:
    h = hasher(cipher)
    h.update(data)
    return h.digest()


def _check_key(cipher: str, key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != key_size(cipher):
        raise InvalidInput(
            f"a {cipher} data key is {key_size(cipher)} bytes", ErrorCode.BAD_ARGUMENTS
        )


def _check_context(context: bytes) -> None:
    if not isinstance(context, bytes):
        raise InvalidInput("the context must be bytes", ErrorCode.BAD_ARGUMENTS)


def _check_chunk_size(chunk_size: int) -> None:
    if (
        not isinstance(chunk_size, int)
        or isinstance(chunk_size, bool)
        or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE
    ):
        raise InvalidInput(
            f"chunk_size must be {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE} bytes, got {chunk_size!r}",
            ErrorCode.BAD_ARGUMENTS,
        )


def chunk_count(plain_size: int, chunk_size: int) -> int:
    """How many chunks ``plain_size`` bytes make: at least one (an empty final chunk)."""
    return max(1, -(-plain_size // chunk_size))


# -- the AEADs -----------------------------------------------------------------------------------


class _Aead:
    """Seal and open under one key with the cipher's AEAD (``cryptography``; loaded lazily)."""

    def __init__(self, cipher: str, key: bytes) -> None:
        self.cipher = cipher
        self.key = key
        if cipher == "aes-256-gcm":
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aes: Any = AESGCM(key)

    def seal(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        if self.cipher == "aes-256-gcm":
            return bytes(self._aes.encrypt(nonce, data, aad))
        from citychain.crypto import sm4

        body, tag = sm4.encrypt(self.key, nonce, data, aad)
        return body + tag

    def open(self, nonce: bytes, sealed: bytes, aad: bytes) -> bytes | None:
        """The plaintext, or None if it does not authenticate."""
        if len(sealed) < TAG_SIZE:
            return None
        if self.cipher == "aes-256-gcm":
            from cryptography.exceptions import InvalidTag

            try:
                return bytes(self._aes.decrypt(nonce, sealed, aad))
            except InvalidTag:
                return None
        from citychain.crypto import sm4

        try:
            return sm4.decrypt(self.key, nonce, sealed[:-TAG_SIZE], sealed[-TAG_SIZE:], aad)
        except InvalidInput:
            return None


def _nonce(index: int, final: bool) -> bytes:
    return b"\x00\x00\x00" + struct.pack(">QB", index, 1 if final else 0)


def _aad(context: bytes, index: int, final: bool) -> bytes:
    return (
        _CHUNK_TAG
        + struct.pack(">Q", len(context))
        + context
        + struct.pack(">QB", index, 1 if final else 0)
    )


# -- the manifest --------------------------------------------------------------------------------


def _hex(b: bytes) -> str:
    return b.hex()


def parse_id(text: str) -> bytes:
    """A chunk or manifest id from its text form (64 lowercase hex digits); ``malformed``
    naming the text otherwise. ``id.hex()`` is the text form."""
    if (
        not isinstance(text, str)
        or len(text) != 2 * _ID_SIZE
        or text.lower() != text
        or any(c not in "0123456789abcdef" for c in text)
    ):
        raise DecodeError(
            f"an id is {2 * _ID_SIZE} lowercase hex digits, got {str(text)[:80]!r}",
            ErrorCode.MALFORMED,
        )
    return bytes.fromhex(text)


@dataclass(frozen=True, slots=True)
class Manifest:
    """What one sealed dataset version is: its chunks in order and the hashes the chain records.

    Stored as a blob too (under :attr:`id`), so the chain records only the manifest id, the
    two hashes and the sizes. Its canonical bytes are a CBOR map (:meth:`encode`).
    """

    cipher: Cipher
    chunk_size: int
    plain_size: int
    #: The hash of the whole plaintext (SHA-256 or SM3, by cipher).
    plain_hash: bytes
    #: The hash of the ciphertext chunks concatenated in order.
    cipher_hash: bytes
    #: Each chunk's id (the hash of its ciphertext), in order.
    chunks: tuple[bytes, ...]
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        def bad(why: str) -> DecodeError:
            return DecodeError(f"manifest: {why}", ErrorCode.MALFORMED)

        if self.version != FORMAT_VERSION:
            raise bad(f"format version {self.version!r} is not {FORMAT_VERSION}")
        if self.cipher not in CIPHERS:
            raise bad(f"unknown cipher {self.cipher!r} (known: {', '.join(sorted(CIPHERS))})")
        for name in ("chunk_size", "plain_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise bad(f"{name} must be a whole number, 0 or more, got {v!r}")
        if not MIN_CHUNK_SIZE <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise bad(f"chunk_size {self.chunk_size} is outside {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}")
        for name in ("plain_hash", "cipher_hash"):
            v = getattr(self, name)
            if not isinstance(v, bytes) or len(v) != _ID_SIZE:
                raise bad(f"{name} must be {_ID_SIZE} bytes")
        if not isinstance(self.chunks, tuple):
            raise bad("chunks must be a tuple of chunk ids")
        want = chunk_count(self.plain_size, self.chunk_size)
        if want > MAX_CHUNKS:
            raise bad(f"{want} chunks exceed the limit of {MAX_CHUNKS} per manifest")
        if len(self.chunks) != want:
            raise bad(
                f"{self.plain_size} bytes in chunks of {self.chunk_size} make {want} chunks, "
                f"the manifest lists {len(self.chunks)}"
            )
        for i, c in enumerate(self.chunks):
            if not isinstance(c, bytes) or len(c) != _ID_SIZE:
                raise bad(f"chunk {i}'s id must be {_ID_SIZE} bytes")

    @property
    def cipher_size(self) -> int:
        """Bytes of ciphertext in all: the plaintext and one tag per chunk."""
        return self.plain_size + TAG_SIZE * len(self.chunks)

    def chunk_plain_size(self, index: int) -> int:
        """Plaintext bytes in chunk ``index`` (the last one holds the remainder)."""
        if index < len(self.chunks) - 1:
            return self.chunk_size
        return self.plain_size - self.chunk_size * (len(self.chunks) - 1)

    def to_value(self) -> dict[str, codec.Value]:
        return {
            "v": self.version,
            "cipher": self.cipher,
            "chunk_size": self.chunk_size,
            "plain_size": self.plain_size,
            "plain_hash": self.plain_hash,
            "cipher_hash": self.cipher_hash,
            "chunks": list(self.chunks),
        }

    def encode(self) -> bytes:
        """The canonical CBOR bytes: what is stored, and what :attr:`id` hashes."""
        return codec.encode(self.to_value())

    @property
    def id(self) -> bytes:
        """The manifest id: the hash (the cipher's) of :meth:`encode`."""
        return _hash(self.cipher, self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """The manifest of canonical bytes; :class:`DecodeError` naming what is wrong."""
        raw = codec.decode(data, max_items=MAX_CHUNKS + 64)
        keys = {"v", "cipher", "chunk_size", "plain_size", "plain_hash", "cipher_hash", "chunks"}
        if not isinstance(raw, dict):
            raise DecodeError("manifest: not a CBOR map", ErrorCode.MALFORMED)
        if set(raw) != keys:
            missing, extra = sorted(keys - set(raw)), sorted(set(raw) - keys)
            raise DecodeError(
                f"manifest: fields missing {missing}, unknown {extra}", ErrorCode.MALFORMED
            )
        cipher = _as_cipher(raw["cipher"])
        if cipher is None:
            raise DecodeError(
                f"manifest: unknown cipher {raw['cipher']!r} (known: {', '.join(sorted(CIPHERS))})",
                ErrorCode.MALFORMED,
            )
        if not isinstance(raw["chunks"], list):
            raise DecodeError("manifest: chunks must be an array of ids", ErrorCode.MALFORMED)
        return cls(
            cipher=cipher,
            chunk_size=raw["chunk_size"],
            plain_size=raw["plain_size"],
            plain_hash=raw["plain_hash"],
            cipher_hash=raw["cipher_hash"],
            chunks=tuple(raw["chunks"]),
            version=raw["v"],
        )

    def to_json(self) -> dict[str, Any]:
        """Hex for bytes, for the API and the CLI."""
        return {
            "id": self.id.hex(),
            "version": self.version,
            "cipher": self.cipher,
            "chunk_size": self.chunk_size,
            "plain_size": self.plain_size,
            "cipher_size": self.cipher_size,
            "plain_hash": self.plain_hash.hex(),
            "cipher_hash": self.cipher_hash.hex(),
            "chunks": [_hex(c) for c in self.chunks],
        }


# -- sealing and opening streams -----------------------------------------------------------------


def _read_full(reader: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of the stream (short reads are retried)."""
    first = reader.read(n)
    if first is None:
        raise InvalidInput("the reader is non-blocking and had no data", ErrorCode.BAD_ARGUMENTS)
    if len(first) == n or not first:
        return bytes(first)
    parts = [first]
    got = len(first)
    while got < n:
        more = reader.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class SealedStream:
    """The sealed chunks of one plaintext stream, as ``(chunk_id, ciphertext)`` in order.

    Iterate it once; then :attr:`manifest` describes what was sealed. Reading the source is
    lazy: one chunk ahead of the one being yielded.

    The two running hashes (plaintext, ciphertext) are fed by a thread each, in order, at
    most :data:`SINK_DEPTH` chunks behind, while this thread reads, seals and names the next
    chunk: hashlib releases the GIL and AES-GCM does not, so on two cores the three hash
    passes no longer wait for one another (py-spy of an upload: they were three fifths of
    the client's time).
    """

    def __init__(
        self,
        reader: IO[bytes],
        key: bytes,
        context: bytes,
        cipher: Cipher,
        chunk_size: int,
    ) -> None:
        _check_cipher(cipher)
        _check_key(cipher, key)
        _check_chunk_size(chunk_size)
        _check_context(context)
        self._reader = reader
        self._aead = _Aead(cipher, key)
        self._context = context
        self._cipher: Cipher = cipher
        self._chunk_size = chunk_size
        self._manifest: Manifest | None = None
        self._started = False

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        if self._started:
            raise InvalidInput("a sealed stream is read once", ErrorCode.BAD_ARGUMENTS)
        self._started = True
        return self._run()

    def _run(self) -> Iterator[tuple[bytes, bytes]]:
        from concurrent.futures import Future, ThreadPoolExecutor

        cipher: Cipher = self._cipher
        size = self._chunk_size
        plain_h, cipher_h = hasher(cipher), hasher(cipher)
        ids: list[bytes] = []
        plain_size = 0
        behind: deque[Future[None]] = deque()
        # One thread per running hash: each sees its chunks in order.
        plain_t = ThreadPoolExecutor(1, thread_name_prefix="seal-plain-hash")
        cipher_t = ThreadPoolExecutor(1, thread_name_prefix="seal-cipher-hash")
        try:
            current = _read_full(self._reader, size)
            index = 0
            while True:
                nxt = _read_full(self._reader, size) if len(current) == size else b""
                final = not nxt
                if index >= MAX_CHUNKS:
                    raise InvalidInput(
                        f"more than {MAX_CHUNKS} chunks of {size} bytes: use larger chunks",
                        ErrorCode.TOO_LARGE,
                    )
                behind.append(plain_t.submit(plain_h.update, current))
                plain_size += len(current)
                sealed = self._aead.seal(
                    _nonce(index, final), current, _aad(self._context, index, final)
                )
                behind.append(cipher_t.submit(cipher_h.update, sealed))
                chunk_id = _hash(cipher, sealed)
                ids.append(chunk_id)
                while len(behind) > 2 * SINK_DEPTH:
                    behind.popleft().result()
                yield chunk_id, sealed
                if final:
                    break
                current, index = nxt, index + 1
            while behind:
                behind.popleft().result()
        finally:
            plain_t.shutdown(cancel_futures=True)
            cipher_t.shutdown(cancel_futures=True)
        self._manifest = Manifest(
            cipher=cipher,
            chunk_size=size,
            plain_size=plain_size,
            plain_hash=plain_h.digest(),
            cipher_hash=cipher_h.digest(),
            chunks=tuple(ids),
        )

    @property
    def manifest(self) -> Manifest:
        """The manifest of what was sealed (only once every chunk has been read)."""
        if self._manifest is None:
            raise InvalidInput(
                "the manifest is known once every chunk has been sealed", ErrorCode.BAD_ARGUMENTS
            )
        return self._manifest


def seal_stream(
    reader: IO[bytes],
    key: bytes,
    context: bytes,
    cipher: Cipher = "aes-256-gcm",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SealedStream:
    """Seal what ``reader`` (a binary file-like object) holds, chunk by chunk, under ``key``.

    ``context`` binds the ciphertext to its place (e.g. ``b"<resource code>/<version>"``): the
    same context must be given to open it. ``key`` must be fresh (:func:`new_data_key`).
    Iterate the result for ``(chunk_id, ciphertext)``; then read its ``manifest``.
    """
    return SealedStream(reader, key, context, cipher, chunk_size)


def open_stream(
    manifest: Manifest,
    fetch: Callable[[bytes], bytes],
    key: bytes,
    context: bytes,
    writer: IO[bytes],
    *,
    fetch_verifies: bool = False,
    check_cipher_hash: bool = True,
) -> int:
    """Fetch, check and decrypt each chunk of ``manifest`` in order, writing the plaintext.

    Each chunk must hash to its id (else ``chunk_tampered``, naming its index) and
    authenticate under ``key``, ``context`` and its place (else ``chunk_tampered``); a chunk
    ``fetch`` cannot find is ``chunk_missing`` naming its index and id. At the end the
    plaintext and the ciphertext must hash to the manifest's hashes (else ``hash_mismatch``).
    Each chunk's plaintext is written once it has authenticated; on an error, discard what
    was written. Returns the number of bytes written.

    ``fetch_verifies=True`` skips the id check, for a ``fetch`` that makes it itself (a
    :class:`citychain.blobs.BlobStore`'s ``get`` does, and reports ``chunk_corrupt``): a
    chunk is then hashed once, not twice. Authentication and the whole hashes still hold.

    ``check_cipher_hash=False`` skips the whole-ciphertext hash, for a reader whose proof is
    the plaintext hash: a chunk's nonce and AAD are fixed by its place, so under one key the
    ciphertext is a function of the plaintext, and every chunk authenticated plus the
    plaintext hash matching leaves no other ciphertext it could have been.

    The plaintext is hashed and written by a thread of its own (:class:`_Sink`), a few chunks
    behind the decryption: hashlib and file writes release the GIL and AES-GCM does not, so
    the three overlap on two cores instead of taking turns (py-spy of a download: hashing
    and writing were two thirds of the client's time).
    """
    cipher = manifest.cipher
    _check_key(cipher, key)
    _check_context(context)
    aead = _Aead(cipher, key)
    plain_h, cipher_h = hasher(cipher), hasher(cipher)
    with _Sink(plain_h, writer) as sink:
        written = _open_chunks(
            manifest, fetch, aead, context, sink, cipher_h if check_cipher_hash else None,
            fetch_verifies,
        )  # fmt: skip
    if check_cipher_hash and cipher_h.digest() != manifest.cipher_hash:
        raise InvalidInput(
            "the ciphertext does not hash to the manifest's cipher_hash", ErrorCode.HASH_MISMATCH
        )
    if plain_h.digest() != manifest.plain_hash:
        raise InvalidInput(
            "the plaintext does not hash to the manifest's plain_hash", ErrorCode.HASH_MISMATCH
        )
    return written


def _open_chunks(
    manifest: Manifest,
    fetch: Callable[[bytes], bytes],
    aead: _Aead,
    context: bytes,
    sink: _Sink,
    cipher_h: Any,
    fetch_verifies: bool,
) -> int:
    cipher = manifest.cipher
    n = len(manifest.chunks)
    written = 0
    for index, chunk_id in enumerate(manifest.chunks):
        where = f"chunk {index} of {n} ({chunk_id.hex()})"
        try:
            sealed = fetch(chunk_id)
        except NotFound as exc:
            if exc.code is ErrorCode.CHUNK_MISSING:
                raise NotFound(f"{where} is missing from the store", exc.code) from None
            raise
        if not fetch_verifies and _hash(cipher, sealed) != chunk_id:
            raise InvalidInput(
                f"{where} does not hash to its id: altered in storage or in transit",
                ErrorCode.CHUNK_TAMPERED,
            )
        final = index == n - 1
        plain = aead.open(_nonce(index, final), sealed, _aad(context, index, final))
        if plain is None:
            raise InvalidInput(
                f"{where} does not authenticate: the ciphertext was altered, moved, dropped "
                "or cut short, or the key or context is not the one it was sealed with",
                ErrorCode.CHUNK_TAMPERED,
            )
        if len(plain) != manifest.chunk_plain_size(index):
            raise InvalidInput(
                f"{where} holds {len(plain)} bytes, the manifest says "
                f"{manifest.chunk_plain_size(index)}",
                ErrorCode.CHUNK_TAMPERED,
            )
        if cipher_h is not None:
            cipher_h.update(sealed)
        sink.put(plain)
        written += len(plain)
    return written


class _Sink:
    """The plaintext's hash and its writer, fed in order by a thread of their own, at most
    :data:`SINK_DEPTH` chunks behind. A failure of the writer is raised by the next
    :meth:`put` or by the exit of the ``with`` block; leaving the block with an error stops
    the thread without writing what is queued."""

    def __init__(self, h: Any, writer: IO[bytes]) -> None:
        import queue
        import threading

        self._h, self._writer = h, writer
        self._q: queue.Queue[bytes | None] = queue.Queue(SINK_DEPTH)
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="envelope-sink", daemon=True)

    def __enter__(self) -> _Sink:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while (plain := self._q.get()) is not None:
                if self._stop:
                    continue  # drain, so a blocked put() returns
                self._h.update(plain)
                self._writer.write(plain)
        except BaseException as exc:  # raised in the caller's thread
            self._error = exc
            while self._q.get() is not None:
                pass

    def put(self, plain: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(plain)

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if exc is not None:
            self._stop = True
        self._q.put(None)
        self._thread.join()
        if exc is None and self._error is not None:
            raise self._error


# -- wrapping data keys --------------------------------------------------------------------------


def _kdf(cipher: str, shared: bytes, eph_pub: bytes, recipient_pub: bytes, context: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    algorithm: hashes.HashAlgorithm = (
        hashes.SHA256() if CIPHERS[cipher][1] == "sha256" else hashes.SM3()
    )
    info = _WRAP_TAG + cipher.encode() + b"/" + context
    return HKDF(algorithm, key_size(cipher), eph_pub + recipient_pub, info).derive(shared)


def _check_x25519(key: bytes, what: str) -> None:
    if not isinstance(key, bytes) or len(key) != _X25519_SIZE:
        raise InvalidInput(f"an X25519 {what} key is 32 bytes", ErrorCode.BAD_PUBLIC_KEY)


def wrapped_size(cipher: str) -> int:
    """Bytes of a wrapped data key: version, ephemeral public key, sealed key and tag."""
    return 1 + _X25519_SIZE + key_size(cipher) + TAG_SIZE


def wrap_key(
    data_key: bytes,
    recipient_public: bytes,
    cipher: Cipher = "aes-256-gcm",
    context: bytes = b"",
) -> bytes:
    """``data_key`` sealed so only the holder of ``recipient_public``'s X25519 private key can
    open it: ``0x01 || ephemeral X25519 public (32) || AEAD(data key) || tag (16)``.

    ``context`` must be given again to :func:`unwrap_key` (bind it to the dataset version).
    """
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )

    _check_key(cipher, data_key)
    _check_context(context)
    _check_x25519(recipient_public, "public")
    try:
        recipient = X25519PublicKey.from_public_bytes(recipient_public)
    except ValueError:
        raise InvalidInput("not an X25519 public key", ErrorCode.BAD_PUBLIC_KEY) from None
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes_raw()
    try:
        shared = eph.exchange(recipient)
    except ValueError:  # an all-zero shared secret: a low-order point
        raise InvalidInput("a low-order X25519 public key", ErrorCode.BAD_PUBLIC_KEY) from None
    kek = _kdf(cipher, shared, eph_pub, recipient_public, context)
    sealed = _Aead(cipher, kek).seal(bytes(_NONCE_SIZE), data_key, context)
    return _WRAP_VERSION + eph_pub + sealed


def unwrap_key(
    wrapped: bytes,
    recipient_private: bytes,
    cipher: Cipher = "aes-256-gcm",
    context: bytes = b"",
) -> bytes:
    """The data key in ``wrapped``, opened with the recipient's 32-byte X25519 private key.

    ``key_unwrap_failed`` when this key cannot open it (it was wrapped for another key, for
    another context or cipher, or altered); ``malformed`` when it is not a wrapped key at all.
    """
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    _check_cipher(cipher)
    _check_context(context)
    if not isinstance(wrapped, bytes) or len(wrapped) != wrapped_size(cipher):
        raise DecodeError(
            f"a wrapped {cipher} data key is {wrapped_size(cipher)} bytes", ErrorCode.MALFORMED
        )
    if wrapped[:1] != _WRAP_VERSION:
        raise DecodeError(f"unknown wrapped-key version {wrapped[0]}", ErrorCode.MALFORMED)
    _check_x25519(recipient_private, "private")
    private = X25519PrivateKey.from_private_bytes(recipient_private)
    eph_pub = wrapped[1 : 1 + _X25519_SIZE]
    refused = InvalidInput(
        "this key cannot open the data key: it was wrapped for another key (or another "
        "dataset version), or altered",
        ErrorCode.KEY_UNWRAP_FAILED,
    )
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    except ValueError:  # a low-order ephemeral key: all-zero secret
        raise refused from None
    recipient_pub = private.public_key().public_bytes_raw()
    kek = _kdf(cipher, shared, eph_pub, recipient_pub, context)
    key = _Aead(cipher, kek).open(bytes(_NONCE_SIZE), wrapped[1 + _X25519_SIZE :], context)
    if key is None:
        raise refused
    return key


def x25519_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair ``(private, public)``, 32 bytes each, for a reader with no
    Ed25519 account key (e.g. an SM2 account on a GM chain)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


def x25519_public_from_ed25519(public_key: bytes) -> bytes:
    """The X25519 public key of an Ed25519 account key (libsodium's birational map)."""
    from nacl import bindings
    from nacl.exceptions import RuntimeError as NaclRuntimeError

    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise InvalidInput("an Ed25519 public key is 32 bytes", ErrorCode.BAD_PUBLIC_KEY)
    try:
        return bytes(bindings.crypto_sign_ed25519_pk_to_curve25519(public_key))
    except NaclRuntimeError:
        raise InvalidInput(
            "not an Ed25519 public key with an X25519 twin", ErrorCode.BAD_PUBLIC_KEY
        ) from None


def x25519_private_from_ed25519(secret: bytes) -> bytes:
    """The X25519 private key of an Ed25519 account secret (the 32-byte seed citychain keeps,
    or libsodium's 64-byte seed||public form)."""
    from nacl import bindings

    if not isinstance(secret, bytes) or len(secret) not in (32, 64):
        raise InvalidInput(
            "an Ed25519 secret is a 32-byte seed (or 64 bytes seed||public)",
            ErrorCode.BAD_ARGUMENTS,
        )
    if len(secret) == 32:
        _, secret = bindings.crypto_sign_seed_keypair(secret)
    return bytes(bindings.crypto_sign_ed25519_sk_to_curve25519(secret))
