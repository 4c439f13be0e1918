"""Data in and out, and what proves it: seal a file here, upload its ciphertext, anchor the
version; record an access, stream the ciphertext back, open it here; verify any file against
the chain. Also the signed reads (grants, audit trails, the citizen's view).

Theory of operation
-------------------
Plaintext never leaves the client. :meth:`Transfers.upload`:

1. makes a fresh data key for the version (AES-256-GCM, or SM4-GCM on a GM chain) and seals
   the file chunk by chunk (:func:`citychain.crypto.envelope.seal_stream`, one chunk read
   ahead): memory is bounded by a batch of chunks whatever the file's size;
2. uploads the chunks a batch (:data:`BATCH_BYTES`) at a time. An upload of a path cut
   halfway resumes where it stopped: the data key is kept beside the file, wrapped for the
   uploader (:class:`_Resume`), so the rerun seals the same chunks, asks the node which of
   each batch it lacks (``POST /v1/data/blobs/missing``, which also renews the age of those it
   has, for GC's grace) and skips the rest. A fresh key's chunks are all new: none is asked
   about;
3. uploads the manifest (the node refuses it until every chunk is stored);
4. wraps the data key for the uploader and for each reader named (X25519 from their Ed25519
   account keys) and sends ``add_version``, which the node admits only once the manifest and
   its chunks are stored (:mod:`citychain.api._gates`).

:meth:`Transfers.download` reads the data key wrapped for the signer (none: ``no_grant``,
and nothing is recorded), asks the node whether it holds every chunk of the version (blobs
are not copied between nodes: ``chunk_missing``, and nothing is recorded), records the access
on chain (``record_access``: the chain checks the
grant, and the download enters the audit trail before a byte is sent), reads the manifest,
then streams the ciphertext and opens it chunk by chunk: each chunk must authenticate under
the key at its place (the node checks its id as it reads it), and at the end the plaintext
must hash to the manifest's ``plain_hash``, which the chain anchors. A
destination path is written beside itself and renamed only when complete and verified: a
failed download leaves nothing under its name. Its bytes are synced to the disk as they come,
every :data:`SYNC_EVERY`, and their pages dropped from the page cache (:class:`_WriteBehind`).

:meth:`Transfers.grant_keys` is the provider's half of a grant: for each active grant on a
resource it unwraps the version's key (wrapped for the provider at upload) and wraps it for
the grantee's key (which the request recorded). It reads every page of grants, and wraps
again for a grantee that has a key already (a wrap it cannot read may be wrong: sending it
again costs one transaction and repairs it). A revoked grantee gets no key to a later
version: the contract refuses that wrap.

The data key's AEAD context binds the ciphertext to its chain and resource:
``b"citychain/data\\0" + chain id + b"\\0" + code`` (:func:`context_of`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from citychain.crypto import Signer
from citychain.errors import CitychainError, ErrorCode, InvalidInput, NotFound, Unavailable
from citychain.sdk._services import ServiceClient
from citychain.services.data.shapes import (
    MAX_PAGE,
    NAME,
    check_code,
    check_tag,
    state_key,
    subject_tag,
    version_key,
)
from citychain.services.identity.shapes import did_key
from citychain.types.tx import json_to_codec

if TYPE_CHECKING:
    from citychain.crypto.envelope import Manifest

#: Bytes of sealed chunks uploaded per round trip that asks which of them the node lacks; an
#: upload holds about two batches: one being sealed, at most one in sends under way...
BATCH_BYTES = 16 << 20
#: ... and at most this many chunks (small chunks: the ask names each id).
BATCH_CHUNKS = 256
#: Chunk uploads in flight at once (hashing, AES, fsync and the network overlap).
IN_FLIGHT = 4
#: A download into a path syncs what it wrote and drops its pages this often.
SYNC_EVERY = 32 << 20
#: ``progress(done_bytes, total_bytes)``, after each batch or chunk (total 0: unknown).
Progress = Callable[[int, int], None]


def context_of(chain_id: str, code: str) -> bytes:
    """The AEAD context of every version of ``code`` on ``chain_id``."""
    return b"citychain/data\0" + chain_id.encode() + b"\0" + check_code(code).encode()


def resource_path(code: str) -> str:
    """``/v1/data/resources/<class>/<sequence>`` (the code holds its ``/``)."""
    return "/v1/data/resources/" + check_code(code)


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A version as anchored."""

    code: str
    version: int
    manifest_id: bytes
    plain_hash: bytes
    cipher_hash: bytes
    plain_size: int
    cipher_size: int


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the chain anchors a file: the version whose plaintext hash it has, the block
    that anchored it (height, time) and the proof that the record is in the chain's state."""

    code: str
    version: int
    plain_hash: bytes
    plain_size: int
    anchored_height: int
    anchored_time: int
    provider_tx: bytes
    #: The proof: the state height it was checked at, and whether the SDK verified it
    #: (commit signatures of the trusted validators, then the ICS-23 proof).
    proof_height: int
    verified: bool
    signed_power: int
    total_power: int


def encryption_keypair(signer: Signer) -> tuple[bytes, bytes]:
    """The X25519 key pair an account's data keys are wrapped for: ``(private, public)``.

    An Ed25519 account's is its own key converted (libsodium's birational map, as age and
    minisign do), so anyone can wrap for it from its public key alone. An SM2 account's (GM
    chains) cannot be computed from its public key: it is derived from the account's secret
    with HKDF-SM3 (info ``citychain/data/x25519``), and the account hands its public half over
    when it asks for access (``request_access``'s ``enc_key``), which the grant records."""
    from citychain.crypto.envelope import (
        x25519_private_from_ed25519,
        x25519_public_from_ed25519,
    )

    if signer.suite.name == "ed25519":
        return x25519_private_from_ed25519(signer.secret), x25519_public_from_ed25519(
            signer.public_key
        )
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    seed = HKDF(hashes.SM3(), 32, salt=None, info=b"citychain/data/x25519").derive(signer.secret)
    private = X25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return seed, public


def _grantee_key(grant: Mapping[str, Any]) -> bytes:
    """The X25519 key a grant's data keys are wrapped for."""
    if grant.get("enc_key"):
        return bytes(grant["enc_key"])
    if len(grant["key"]) != 32:  # not an Ed25519 key, and no X25519 key was given
        raise InvalidInput(
            f"grant {grant['id']}'s holder gave no X25519 key (enc_key) and its account key is "
            "not Ed25519: it must ask again with one (the SDK adds it for SM2 accounts)",
            ErrorCode.BAD_ARGUMENTS,
        )
    return _x25519_of(bytes(grant["key"]))


def _x25519_of(public_key: bytes) -> bytes:
    from citychain.crypto.envelope import x25519_public_from_ed25519

    return x25519_public_from_ed25519(public_key)


def _open(source: str | Path | IO[bytes]) -> tuple[IO[bytes], bool, int]:
    if isinstance(source, (str, Path)):
        try:
            f = open(source, "rb")  # noqa: SIM115 (closed by the caller)
        except OSError as exc:
            raise InvalidInput(
                f"cannot read {source}: {exc.strerror}", ErrorCode.BAD_ARGUMENTS
            ) from None
        return f, True, os.fstat(f.fileno()).st_size
    try:
        size = os.fstat(source.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        size = 0
    return source, False, size


def _rechunk(stream: Iterator[bytes], manifest: Manifest) -> Iterator[bytes]:
    """The ciphertext stream cut back into the manifest's chunks (each chunk's bytes copied
    once: the pieces are joined, only a piece across a boundary is split)."""
    from citychain.crypto.envelope import TAG_SIZE

    carry = b""
    for i in range(len(manifest.chunks)):
        need = manifest.chunk_plain_size(i) + TAG_SIZE
        parts, have = [carry], len(carry)
        while have < need:
            more = next(stream, None)
            if more is None:
                raise NotFound(
                    f"the node's stream ended inside chunk {i} of {len(manifest.chunks)}",
                    ErrorCode.CHUNK_MISSING,
                )
            parts.append(more)
            have += len(more)
        over = have - need
        if over:
            last = parts[-1]
            parts[-1], carry = last[: len(last) - over], last[len(last) - over :]
        else:
            carry = b""
        yield parts[0] if len(parts) == 1 else b"".join(parts)
    if carry or next(stream, None):
        raise InvalidInput(
            "the node sent more bytes than the manifest's chunks", ErrorCode.CHUNK_TAMPERED
        )


class _Resume:
    """What lets an upload of a file that was cut halfway resume: the version's data key,
    *wrapped for the uploader's own key* (so it is never on disk in the clear), kept beside
    the file (``.<name>.citychain-upload``) until the version is anchored. With the same key,
    the file seals to the same chunks, and the node's answer to "which do you lack" skips the
    ones already stored. A changed file (size or modification time) starts afresh."""

    def __init__(self, path: Path, stamp: str) -> None:
        self.path, self.stamp = path, stamp

    @classmethod
    def of(cls, source: object, code: str, chain_id: str) -> _Resume | None:
        if not isinstance(source, (str, Path)):
            return None
        src = Path(source)
        try:
            st = src.stat()
        except OSError:
            return None
        stamp = f"{chain_id}\n{code}\n{st.st_size}\n{st.st_mtime_ns}\n"
        return cls(src.with_name(f".{src.name}.citychain-upload"), stamp)

    def key(self, signer: Signer, cipher: Any, context: bytes) -> bytes | None:
        from citychain.crypto.envelope import unwrap_key

        try:
            text = self.path.read_text()
        except OSError:
            return None
        head, _, wrapped = text.rpartition("\n")
        if head + "\n" != self.stamp:
            return None
        try:
            return unwrap_key(
                bytes.fromhex(wrapped), encryption_keypair(signer)[0], cipher, context
            )
        except (CitychainError, ValueError):
            return None  # another account's, or damaged: start afresh

    def save(self, signer: Signer, key: bytes, cipher: Any, context: bytes) -> None:
        from citychain.crypto.envelope import wrap_key

        wrapped = wrap_key(key, encryption_keypair(signer)[1], cipher, context)
        # A read-only folder: the upload works, it just cannot resume.
        with contextlib.suppress(OSError):
            self.path.write_text(self.stamp + wrapped.hex())

    def done(self) -> None:
        self.path.unlink(missing_ok=True)


#: How far (bytes) a download's network reads run ahead of its decryption: 64 of httpcore's
#: 64 KiB reads, as before the transport's reads grew to 1 MiB (``citychain.sdk._transport``).
READ_AHEAD = 4 << 20


def _read_ahead(pieces: Iterator[bytes], budget: int = READ_AHEAD) -> Iterator[bytes]:
    """``pieces`` read by a thread, at most ``budget`` bytes ahead (and one piece, however
    large): the network read overlaps the caller's hashing, decryption and writing (which
    release the GIL). Counted in bytes, not pieces, since a piece is 16 KiB (a TLS record) to
    1 MiB (a read grown on a full socket) and the download's memory must stay bounded."""
    q: queue.SimpleQueue[bytes | BaseException | None] = queue.SimpleQueue()
    room = threading.Condition()
    held = 0  # bytes put and not yet taken
    stop = threading.Event()

    def pump() -> None:
        nonlocal held
        try:
            for piece in pieces:
                with room:
                    while held and held + len(piece) > budget and not stop.is_set():
                        room.wait(0.1)
                    if stop.is_set():
                        return
                    held += len(piece)
                q.put(piece)
            q.put(None)
        except BaseException as exc:  # handed to the reader, raised there
            q.put(exc)

    t = threading.Thread(target=pump, name="citychain-download", daemon=True)
    t.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            with room:
                held -= len(item)
                room.notify()
            yield item
    finally:
        stop.set()
        with room:  # a pump waiting for room stops now, not at its next poll
            room.notify()
        t.join(timeout=5)


#: macOS has no fdatasync.
_datasync = getattr(os, "fdatasync", os.fsync)


class _WriteBehind:
    """A download's file, synced as it is written: every ``every`` bytes ``fdatasync``, then
    ``POSIX_FADV_DONTNEED`` over what is synced, so a download of gigabytes neither leaves
    them all to the final fsync nor pushes the machine's other files out of its page cache,
    and the next pages written reuse those just freed. Measured on a VM (``bench_data.py``'s
    harness, 256 MiB into a file): 163-224 MiB/s before, 209-272 after, with less system
    time; fresh page-cache pages were what the written bytes cost there. A platform without
    ``posix_fadvise`` (macOS) only syncs."""

    def __init__(self, file: IO[bytes], every: int = SYNC_EVERY) -> None:
        self._file = file
        self._every = every
        self._written = self._synced = 0

    def write(self, data: bytes) -> int:
        n = self._file.write(data)
        self._written += n
        if self._written - self._synced >= self._every:
            self._file.flush()
            fd = self._file.fileno()
            _datasync(fd)
            if hasattr(os, "posix_fadvise"):
                with contextlib.suppress(OSError):  # advice only: the bytes are synced
                    os.posix_fadvise(fd, 0, self._written, os.POSIX_FADV_DONTNEED)
            self._synced = self._written
        return n

    def flush(self) -> None:
        self._file.flush()


class Transfers:
    """Uploads, downloads, verification and signed reads on a blocking client."""

    def __init__(self, client: ServiceClient, send: Callable[..., Any]) -> None:
        self._client = client
        #: ``send(signer, method, args, gas_limit)``: the service's committed transaction.
        self._send = send
        self._chain: tuple[str, str] | None = None

    # -- the chain ------------------------------------------------------------------------
    def _chain_of(self) -> tuple[str, str]:
        """The chain's id and crypto suite name (asked once)."""
        if self._chain is None:
            s = self._client.status()
            self._chain = (s.chain_id, s.crypto_suite)
        return self._chain

    def _cipher(self) -> Any:
        from citychain.crypto.envelope import cipher_for_suite

        return cipher_for_suite(self._chain_of()[1])

    def _own_x25519(self, signer: Signer) -> tuple[bytes, bytes]:
        return encryption_keypair(signer)

    # -- upload ---------------------------------------------------------------------------
    def _lacking(
        self, signer: Signer, batch: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """The chunks of ``batch`` the node lacks (one round trip)."""
        asked = self._client._signed(
            signer, "POST", "/v1/data/blobs/missing", json={"ids": [c.hex() for c, _ in batch]}
        ).json()
        missing = set(asked["missing"])
        return [(c, sealed) for c, sealed in batch if c.hex() in missing]

    def _put(self, signer: Signer, chunk_id: bytes, sealed: bytes) -> None:
        self._client._signed(
            signer,
            "PUT",
            f"/v1/data/blobs/{chunk_id.hex()}",
            content=sealed,
            expect=(200, 201),
            digest=False,  # the URI names the chunk's hash; the node checks the body
        )

    def upload(
        self,
        signer: Signer,
        code: str,
        source: str | Path | IO[bytes],
        *,
        readers: Iterable[bytes] = (),
        subjects: Iterable[str | bytes] = (),
        chunk_size: int | None = None,
        progress: Progress | None = None,
        gas_limit: int,
    ) -> Uploaded:
        """Seal ``source`` (a path or a binary file) here, upload it and anchor it as the next
        version of ``code`` (see the module). ``readers`` are the Ed25519 public keys to wrap
        the data key for besides the uploader's own; ``subjects`` the DIDs (or subject tags)
        of the people its records are about. Signed by a member of the provider."""
        from citychain.crypto.envelope import (
            DEFAULT_CHUNK_SIZE,
            new_data_key,
            seal_stream,
            wrap_key,
        )

        code = check_code(code)
        tags = [t if isinstance(t, bytes) else subject_tag(t) for t in subjects]
        for t in tags:
            check_tag(t, "subjects")
        cipher = self._cipher()
        chain_id = self._chain_of()[0]
        context = context_of(chain_id, code)
        _, own_public = self._own_x25519(signer)
        wrap_for = {signer.address: own_public}
        for public_key in readers:
            wrap_for[signer.suite.address(public_key)] = _x25519_of(public_key)
        resume = _Resume.of(source, code, chain_id)
        key = resume.key(signer, cipher, context) if resume is not None else None
        # Under a fresh key every chunk is new (its id hashes a ciphertext no other key gives),
        # so only a resumed upload asks the node which chunks it lacks: the asks were a round
        # trip every batch (~5 ms each, 16 for 256 MiB), in which sealing waited.
        resumed = key is not None
        if key is None:
            key = new_data_key(cipher)
            if resume is not None:
                resume.save(signer, key, cipher, context)
        f, close, total = _open(source)
        # Chunks go out IN_FLIGHT at a time while the next batch is sealed; at most two
        # batches are held (the one being sent, the one being sealed).
        pool = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="citychain-upload")
        try:
            sealed = seal_stream(f, key, context, cipher, chunk_size or DEFAULT_CHUNK_SIZE)
            batch: list[tuple[bytes, bytes]] = []
            batched = 0
            # Sends under way, oldest first, and the bytes they hold: at most a batch's worth,
            # so the pool never drains at a batch's end (it waited for the whole previous
            # batch before: with 4 MiB chunks that left it idle at every ask).
            sending: deque[tuple[Future[None], int]] = deque()
            held = done = 0

            def flush(batch: list[tuple[bytes, bytes]]) -> None:
                nonlocal held, done
                for chunk_id, ciphertext in self._lacking(signer, batch) if resumed else batch:
                    while sending and held + len(ciphertext) > BATCH_BYTES:
                        fut, n = sending.popleft()
                        fut.result()  # the first failure stops the upload, naming its code
                        held -= n
                    fut = pool.submit(self._put, signer, chunk_id, ciphertext)
                    sending.append((fut, len(ciphertext)))
                    held += len(ciphertext)
                done += sum(len(c) for _, c in batch)
                if progress is not None:
                    progress(min(done, total) if total else done, total)

            try:
                for chunk_id, ciphertext in sealed:
                    batch.append((chunk_id, ciphertext))
                    batched += len(ciphertext)
                    if batched >= BATCH_BYTES or len(batch) >= BATCH_CHUNKS:
                        flush(batch)
                        batch, batched = [], 0
            except OSError as exc:
                raise InvalidInput(
                    f"reading {source!r} failed after {done} bytes were sent ({exc}); no "
                    "version was anchored: run the upload again, and the chunks the node "
                    "already stores are not sent twice",
                    ErrorCode.BAD_ARGUMENTS,
                ) from None
            if batch:
                flush(batch)
            for fut, _ in sending:
                fut.result()
            manifest = sealed.manifest
        finally:
            pool.shutdown(wait=True)  # sends under way finish: a rerun skips them
            if close:
                f.close()
        if progress is not None:
            progress(total or done, total or done)
        self._client._signed(
            signer,
            "PUT",
            f"/v1/data/manifests/{manifest.id.hex()}",
            content=manifest.encode(),
            expect=(201,),
        )
        wraps = [
            {"grantee": address, "wrapped": wrap_key(key, public, cipher, context)}
            for address, public in sorted(wrap_for.items())
        ]
        args = {
            "code": code,
            "manifest_id": manifest.id,
            "plain_hash": manifest.plain_hash,
            "cipher_hash": manifest.cipher_hash,
            "plain_size": manifest.plain_size,
            "cipher_size": manifest.cipher_size,
            "cipher": cipher,
            "subjects": sorted(tags),
            "wraps": wraps,
        }
        number = int(self._send(signer, "add_version", args, gas_limit))
        if resume is not None:
            resume.done()
        return Uploaded(
            code,
            number,
            manifest.id,
            manifest.plain_hash,
            manifest.cipher_hash,
            manifest.plain_size,
            manifest.cipher_size,
        )

    # -- keys for grantees ----------------------------------------------------------------
    def data_key(self, signer: Signer, code: str, version: int) -> bytes:
        """The data key of ``code`` version ``version``, unwrapped here from the wrap the
        chain holds for ``signer`` (``no_grant`` if none; ``key_unwrap_failed`` if the wrap
        is not for this key)."""
        from citychain.crypto.envelope import unwrap_key

        code = check_code(code)
        wrapped = self.read(signer, f"{resource_path(code)}/versions/{version}/key")
        if type(wrapped) is not bytes:
            raise InvalidInput("the node answered no wrapped key", ErrorCode.MALFORMED)
        private, _ = self._own_x25519(signer)
        cipher = self._version(code, version)["cipher"]
        return unwrap_key(wrapped, private, cipher, context_of(self._chain_of()[0], code))

    def grant_keys(
        self, signer: Signer, code: str, version: int | None = None, *, gas_limit: int
    ) -> list[int]:
        """The provider wraps ``code``'s key (of ``version``, the latest by default) for every
        grantee holding an active grant; the grant ids it wrapped for."""
        from citychain.crypto.envelope import wrap_key

        code = check_code(code)
        if version is None:
            version = int(self._client.query(NAME, "resource", code=code)["versions"])
        key = self.data_key(signer, code, version)
        cipher = self._version(code, version)["cipher"]
        context = context_of(self._chain_of()[0], code)
        done = []
        for g in self._all_grants(signer, code):
            if g["state"] != "active" or g["grantee"] == signer.address:
                continue
            wrapped = wrap_key(key, _grantee_key(g), cipher, context)
            args = {"code": code, "version": version, "grantee": g["grantee"], "wrapped": wrapped}
            self._send(signer, "wrap_key", args, gas_limit)
            done.append(int(g["id"]))
        return done

    def _all_grants(self, signer: Signer, code: str) -> Iterator[dict[str, Any]]:
        """Every grant on ``code``, a page (:data:`MAX_PAGE`) at a time, by id."""
        after = 0
        while True:
            page = self.read(signer, f"{resource_path(code)}/grants", after=after, limit=MAX_PAGE)
            yield from page
            if len(page) < MAX_PAGE:
                return
            after = int(page[-1]["id"])

    # -- download -------------------------------------------------------------------------
    def _version(self, code: str, version: int) -> dict[str, Any]:
        for v in self._client.query(NAME, "versions", code=code, after=version - 1, limit=1):
            if v["version"] == version:
                return dict(v)
        raise NotFound(f"resource {code} has no version {version}", ErrorCode.RESOURCE_NOT_FOUND)

    def download(
        self,
        signer: Signer,
        code: str,
        version: int,
        dest: str | Path | IO[bytes],
        *,
        grant: int,
        purpose: str | None = None,
        progress: Progress | None = None,
        gas_limit: int,
    ) -> Manifest:
        """Record an access under ``grant`` (the chain checks it), then stream ``code``
        version ``version`` here, decrypt and verify it into ``dest`` (a path, written only
        when complete and verified, or a binary file). The manifest read."""
        from citychain.crypto.envelope import Manifest, open_stream

        code = check_code(code)
        base = f"{resource_path(code)}/versions/{version}"
        # The key first, and that this node holds every chunk: an account with no key for
        # this version (``no_grant``), or a node that lacks its chunks (``chunk_missing``),
        # records no access it cannot use, and the audit trail lists only real downloads.
        key = self.data_key(signer, code, version)
        self._client._signed(signer, "GET", f"{base}/stored")
        access = int(
            self._send(
                signer,
                "record_access",
                {"grant": grant, "version": version, **({"purpose": purpose} if purpose else {})},
                gas_limit,
            )
        )
        params = {"access": str(access)}
        raw = self._client._signed(signer, "GET", f"{base}/manifest", params=params).content
        manifest = Manifest.decode(raw)
        context = context_of(self._chain_of()[0], code)
        total = manifest.cipher_size

        got, opened = 0, False

        def run(out: IO[bytes]) -> None:
            try:
                fetch(out)
            except Unavailable as exc:
                if not opened:
                    raise
                raise Unavailable(
                    f"the node cut the download after {got} of {total} bytes ({exc}): a chunk "
                    "it could not read (its log says which and why) or a dropped connection; "
                    "download again"
                ) from None

        def fetch(out: IO[bytes]) -> None:
            nonlocal opened
            with self._client._signed_stream(signer, f"{base}/content", params=params) as r:
                opened = True

                def counted() -> Iterator[bytes]:
                    nonlocal got
                    for piece in _read_ahead(r.iter_bytes()):
                        got += len(piece)
                        if progress is not None:
                            progress(got, total)
                        yield piece

                chunks = _rechunk(counted(), manifest)
                # Each chunk is authenticated by its AEAD tag (bound to its index and to the
                # last chunk) and the whole by the plaintext hash the chain anchors: a chunk id
                # check on top would be a third hash pass over every byte.
                # The ciphertext hash is skipped too: under one key the ciphertext is a
                # function of the plaintext (see open_stream), which the anchor authenticates.
                open_stream(
                    manifest,
                    lambda _id: next(chunks),
                    key,
                    context,
                    out,
                    fetch_verifies=True,
                    check_cipher_hash=False,
                )

        if not isinstance(dest, (str, Path)):
            run(dest)
            return manifest
        target = Path(dest)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
        try:
            with os.fdopen(fd, "wb") as out:
                run(cast("IO[bytes]", _WriteBehind(out)))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return manifest

    # -- verification ---------------------------------------------------------------------
    def verify(self, source: str | Path | IO[bytes], *, prove: bool = True) -> list[Anchor]:
        """Where the chain anchors ``source``: every version whose plaintext hash is the
        file's (empty: none), each with its anchoring block and, with ``prove``, the
        record checked by a state proof against a commit of the trusted validators."""
        from citychain.crypto.envelope import cipher_for_suite, hasher

        h = hasher(cipher_for_suite(self._chain_of()[1]))
        f, close, _ = _open(source)
        try:
            while piece := f.read(1 << 20):
                h.update(piece)
        finally:
            if close:
                f.close()
        digest = h.digest()
        answer = self._client._signed(None, "GET", f"/v1/data/hashes/{digest.hex()}").json()
        found = []
        for v in json_to_codec(answer["result"]):
            proof_height, verified, signed, total = 0, False, 0, 0
            if prove:
                proven = self._client.get_state(state_key(version_key(v["code"], v["version"])))
                if proven.decode() is None or proven.decode()["plain_hash"] != digest:
                    raise CitychainError(
                        f"the node's state proof does not show {v['code']} version "
                        f"{v['version']} with this file's hash",
                        ErrorCode.BAD_PROOF,
                    )
                proof_height, verified = proven.height, proven.verified
                signed, total = proven.signed_power, proven.total_power
            found.append(
                Anchor(
                    v["code"],
                    v["version"],
                    v["plain_hash"],
                    v["plain_size"],
                    v["height"],
                    v["time"],
                    v["tx"],
                    proof_height,
                    verified,
                    signed,
                    total,
                )
            )
        return found

    # -- signed reads ---------------------------------------------------------------------
    def read(self, signer: Signer, path: str, **params: Any) -> Any:
        """A signed read of the data routes (``path`` under the node): its result."""
        query = {k: str(v) for k, v in params.items() if v is not None}
        answer = self._client._signed(signer, "GET", path, params=query or None).json()
        return json_to_codec(answer["result"])

    def accesses(
        self, signer: Signer, subject: str | bytes | None = None, *, after: int = 0
    ) -> list[dict[str, Any]]:
        """The citizen's view: who accessed records about ``subject`` (the signer's own
        did:key by default), when and for what stated purpose, oldest first."""
        tag = subject_of(signer, subject)
        out: list[dict[str, Any]] = []
        while True:
            page = self.read(signer, accesses_path(tag), after=after, limit=200)
            out.extend(page)
            if len(page) < 200:
                return out
            after = int(page[-1]["seq"])


def subject_of(signer: Signer, subject: str | bytes | None) -> bytes:
    """The subject tag a citizen's view reads: ``subject`` (a tag, or a DID), else the tag
    of the signer's own did:key."""
    if subject is None:
        subject = did_key(signer.public_key)
    return subject if isinstance(subject, bytes) else subject_tag(subject)


def accesses_path(tag: bytes) -> str:
    """The signed route of the citizen's view of ``tag``."""
    return f"/v1/data/subjects/{tag.hex()}/accesses"


__all__ = [
    "Anchor",
    "Transfers",
    "Uploaded",
    "accesses_path",
    "context_of",
    "encryption_keypair",
    "resource_path",
    "subject_of",
]
