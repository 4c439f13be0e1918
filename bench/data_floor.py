"""The floor of an encrypted transfer on this machine: the data directory's irreducible work,
done by a stripped pipeline with nothing else, so ``bench_data.py`` can print how far the real
upload and download are from it, and how far it is from the disk.

    .venv/bin/python bench/data_floor.py [--mib M] [--rounds R]

Theory of operation
-------------------
The design fixes what every byte of a transfer must go through (``crypto/envelope.py``,
``blobs/local.py``, ``services/data/sdk/_transfer.py``):

* an upload: the client reads the file, hashes the plaintext (the ``plain_hash`` the chain
  anchors), seals each chunk with AES-256-GCM, hashes each sealed chunk (its id) and the whole
  ciphertext (``cipher_hash``), and sends it; the node receives it, checks its id (it cannot
  trust the client), writes it and fsyncs it: four SHA-256 passes, one AES-GCM pass;
* a download: the node reads each chunk from its disk and checks its id (a disk can rot),
  sends it; the client opens it with AES-GCM, hashes the plaintext (checked against the
  anchor) and writes and syncs it: two SHA-256 passes, one AES-GCM pass.

This module does exactly that, in two processes joined by a loopback TCP socket as the SDK
and the node are, with the same primitives (hashlib's SHA-256, ``cryptography``'s AES-GCM, the
same writes, fsyncs and page drops, 4 MiB chunks), the same threads for the two running
hashes, and nothing else: no HTTP, no signatures, no framework, no chain, buffers reused. What
it reaches is an upper bound for any implementation of this design on this machine's cores
and disk; :func:`hash_bound` is the looser bound of the hashing alone, perfectly spread over
every core.

Framing on the socket: an 8-byte big-endian length (0 ends the stream) and the chunk's
32-byte id, then the sealed chunk.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

MIB = 1 << 20
CHUNK = 4 * MIB  # the SDK's default chunk (crypto/envelope.py DEFAULT_CHUNK_SIZE)
TAG = 16
SYNC_EVERY = 32 * MIB  # the SDK's download syncs and drops this often (_WriteBehind)
UPLOAD_PASSES = 4  # SHA-256 passes over every byte of an upload, client and node
DOWNLOAD_PASSES = 2  # ... and of a download
_HEAD = struct.Struct(">Q32s")


def sha256_rate(mib: int = 128) -> float:
    """One core's SHA-256 over large buffers, MiB/s (hashlib, as the SDK and node use)."""
    block = os.urandom(4 * MIB)
    t0 = time.perf_counter()
    for _ in range(mib // 4):
        hashlib.sha256(block).digest()
    return mib / (time.perf_counter() - t0)


def hash_bound(rate: float, passes: int, cores: int | None = None) -> float:
    """MiB/s a transfer could reach if it did nothing but its SHA-256 passes, spread perfectly
    over every core of this machine (client and node share them here)."""
    n = cores or len(os.sched_getaffinity(0))
    return n * rate / passes


def _recv_exact(sock: socket.socket, view: memoryview) -> None:
    while view:
        n = sock.recv_into(view)
        if not n:
            raise ConnectionError("the peer closed the stream inside a chunk")
        view = view[n:]


def _drop(fd: int) -> None:
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


# -- the node's halves ------------------------------------------------------------------------


def _store_chunk(store: Path, chunk_id: bytes, data: memoryview) -> None:
    if hashlib.sha256(data).digest() != chunk_id:
        raise ValueError(f"chunk {chunk_id.hex()} does not hash to its id")
    path = store / chunk_id.hex()
    tmp = store / (chunk_id.hex() + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = data
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        _drop(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _serve_upload(sock: socket.socket, store: Path) -> None:
    """Receive chunks into reused buffers; check, write and fsync each in one of two threads
    (the node runs its puts in a thread pool, four at a time)."""
    buffers = [bytearray(CHUNK + TAG) for _ in range(4)]
    pool = ThreadPoolExecutor(2)
    pending: list[Future[None] | None] = [None] * len(buffers)
    i = 0
    head = bytearray(_HEAD.size)
    while True:
        _recv_exact(sock, memoryview(head))
        size, chunk_id = _HEAD.unpack(head)
        if not size:
            break
        slot = i % len(buffers)
        if (f := pending[slot]) is not None:
            f.result()
        view = memoryview(buffers[slot])[:size]
        _recv_exact(sock, view)
        pending[slot] = pool.submit(_store_chunk, store, chunk_id, view)
        i += 1
    for f in pending:
        if f is not None:
            f.result()
    pool.shutdown()
    fd = os.open(store, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    sock.sendall(b"k")


def _serve_download(sock: socket.socket, store: Path, ids: list[bytes]) -> None:
    """Read each chunk, check its id, send it (the next read overlaps the send)."""

    def read(chunk_id: bytes) -> bytes:
        data = (store / chunk_id.hex()).read_bytes()
        if hashlib.sha256(data).digest() != chunk_id:
            raise ValueError(f"chunk {chunk_id.hex()} does not hash to its id")
        return data

    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(read, ids[0]) if ids else None
        for n, chunk_id in enumerate(ids):
            assert ahead is not None
            data = ahead.result()
            ahead = pool.submit(read, ids[n + 1]) if n + 1 < len(ids) else None
            sock.sendall(_HEAD.pack(len(data), chunk_id))
            sock.sendall(data)
    sock.sendall(_HEAD.pack(0, bytes(32)))


def _node(argv: list[str]) -> None:
    """The node's process: ``upload STORE`` or ``download STORE ID...``; prints its port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        print(server.getsockname()[1], flush=True)
        conn, _ = server.accept()
        with conn:
            store = Path(argv[1])
            if argv[0] == "upload":
                _serve_upload(conn, store)
            else:
                _serve_download(conn, store, [bytes.fromhex(x) for x in argv[2:]])


def _start_node(*args: str) -> tuple[subprocess.Popen[str], socket.socket]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--node", *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, socket.create_connection(("127.0.0.1", port))


# -- the client's halves ----------------------------------------------------------------------


def upload(src: Path, store: Path) -> tuple[float, list[bytes], Any]:
    """The floor of an upload of ``src`` into ``store`` (an empty directory): MiB/s from the
    first read to the node's answer that every chunk is synced, the chunk ids, and the AEAD
    they were sealed with (for :func:`download`)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(os.urandom(32))
    plain_h, cipher_h = hashlib.sha256(), hashlib.sha256()
    ids: list[bytes] = []
    proc, sock = _start_node("upload", str(store))
    size = src.stat().st_size
    buffers = [bytearray(CHUNK) for _ in range(3)]
    hashed: list[Future[None] | None] = [None] * len(buffers)
    plain_t, cipher_t, send_t = (ThreadPoolExecutor(1) for _ in range(3))
    sent: list[Future[None]] = []

    def send(chunk_id: bytes, sealed: bytes) -> None:
        sock.sendall(_HEAD.pack(len(sealed), chunk_id))
        sock.sendall(sealed)

    t0 = time.perf_counter()
    with sock, open(src, "rb", buffering=0) as f:
        index = 0
        while True:
            slot = index % len(buffers)
            if (h := hashed[slot]) is not None:
                h.result()
            n = f.readinto(buffers[slot])
            if not n and index:
                break
            plain = memoryview(buffers[slot])[:n]
            hashed[slot] = plain_t.submit(plain_h.update, plain)
            sealed = aead.encrypt(index.to_bytes(12, "big"), plain, b"context")
            cipher_t.submit(cipher_h.update, sealed)
            chunk_id = hashlib.sha256(sealed).digest()
            ids.append(chunk_id)
            sent.append(send_t.submit(send, chunk_id, sealed))
            if len(sent) > 2:  # at most two sealed chunks held beyond the one being sent
                sent.pop(0).result()
            index += 1
            if n < CHUNK:
                break
        for fut in sent:
            fut.result()
        sock.sendall(_HEAD.pack(0, bytes(32)))
        if sock.recv(1) != b"k":
            raise ConnectionError("the node did not confirm the upload")
        for t in (plain_t, cipher_t, send_t):
            t.shutdown()
        plain_h.digest(), cipher_h.digest()
    elapsed = time.perf_counter() - t0
    if proc.wait(30):
        raise RuntimeError("the floor's node failed")
    return size / MIB / elapsed, ids, aead


def download(store: Path, ids: list[bytes], aead: Any, dest: Path) -> float:
    """The floor of a download of the chunks :func:`upload` stored (sealed with ``aead``)
    into ``dest``: MiB/s from the request to the synced file."""
    plain_h = hashlib.sha256()
    proc, sock = _start_node("download", str(store), *(i.hex() for i in ids))
    buffers = [bytearray(CHUNK + TAG) for _ in range(2)]
    head = bytearray(_HEAD.size)
    sink = ThreadPoolExecutor(1)  # the plaintext's hash and its file, in order
    behind: list[Future[None]] = []
    written = synced = 0
    t0 = time.perf_counter()
    with sock, open(dest, "wb", buffering=0) as out:

        def keep(plain: bytes) -> None:
            nonlocal written, synced
            plain_h.update(plain)
            view = memoryview(plain)
            while view:
                view = view[out.write(view) or 0 :]
            written += len(plain)
            if written - synced >= SYNC_EVERY:
                os.fdatasync(out.fileno())
                _drop(out.fileno())
                synced = written

        index = 0
        while True:
            _recv_exact(sock, memoryview(head))
            size, _chunk_id = _HEAD.unpack(head)
            if not size:
                break
            view = memoryview(buffers[index % 2])[:size]
            _recv_exact(sock, view)
            plain = aead.decrypt(index.to_bytes(12, "big"), view, b"context")
            behind.append(sink.submit(keep, plain))
            if len(behind) > 2:
                behind.pop(0).result()
            index += 1
        for fut in behind:
            fut.result()
        sink.shutdown()
        os.fsync(out.fileno())
        plain_h.digest()
    elapsed = time.perf_counter() - t0
    if proc.wait(30):
        raise RuntimeError("the floor's node failed")
    return written / MIB / elapsed


def main() -> None:
    if sys.argv[1:2] == ["--node"]:
        _node(sys.argv[2:])
        return
    import shutil
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="data-floor-"))
    try:
        src = work / "src.bin"
        block = os.urandom(MIB)
        with open(src, "wb") as f:
            for _ in range(args.mib):
                f.write(block)
        for r in range(args.rounds):
            store = work / f"store{r}"
            store.mkdir()
            up, ids, aead = upload(src, store)
            down = download(store, ids, aead, work / "out.bin")
            rate = sha256_rate()
            print(
                f"round {r + 1}: upload floor {up:,.0f} MiB/s (hash bound "
                f"{hash_bound(rate, UPLOAD_PASSES):,.0f}), download floor {down:,.0f} MiB/s "
                f"(hash bound {hash_bound(rate, DOWNLOAD_PASSES):,.0f}); SHA-256 {rate:,.0f} "
                "MiB/s a core"
            )
            shutil.rmtree(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
