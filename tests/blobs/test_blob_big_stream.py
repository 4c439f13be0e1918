"""A 1 GiB file streamed into a local blob store and back in bounded memory.

The work runs in a fresh interpreter, which reports its peak resident size as ``VmHWM`` from
``/proc/self/status``: the high-water mark of its own address space. Not ``ru_maxrss``: on
Linux that survives ``exec``, so a child started from a pytest worker late in the suite
reported the worker's ~376 MiB, not the stream's ~55 MiB. The plaintext is generated on the
fly (a pattern whose period is not a multiple of the chunk size, so every chunk differs) and
the downloaded bytes are compared with a second run of the generator as they arrive: nothing
is ever held whole.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from citychain.crypto.envelope import DEFAULT_CHUNK_SIZE

GIB = 1 << 30
LIMIT_MIB = 200

SCRIPT = r"""
import hashlib, io, json, sys, time
from citychain.blobs import LocalStore, download, upload
from citychain.crypto.envelope import new_data_key


def peak_kib():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])

SIZE = int(sys.argv[2])
PERIOD = (1 << 20) + 13  # not a multiple of the chunk size: every chunk differs
PATTERN = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(32769))[:PERIOD]


class Generator(io.RawIOBase):
    def __init__(self):
        self.pos = 0

    def readable(self):
        return True

    def readinto(self, buf):
        off = self.pos % len(PATTERN)
        n = min(len(buf), SIZE - self.pos, len(PATTERN) - off)
        buf[:n] = PATTERN[off:off + n]
        self.pos += n
        return n


class Checker:
    def __init__(self):
        self.expected, self.seen, self.same = Generator(), 0, True

    def write(self, data):
        at = 0  # (bytes, not a memoryview: comparing one of those is element by element)
        while at < len(data):
            want = self.expected.read(len(data) - at)  # up to the pattern's end
            self.same = self.same and want == data[at:at + len(want)]
            at += len(want)
        self.seen += len(data)
        return len(data)


store = LocalStore(sys.argv[1])
key = new_data_key("aes-256-gcm")
started = time.monotonic()
manifest = upload(Generator(), store, key, b"big/v1")
uploaded = time.monotonic()
checker = Checker()
download(manifest.id, store, key, b"big/v1", checker)
print(json.dumps({
    "chunks": len(manifest.chunks),
    "plain_size": manifest.plain_size,
    "seen": checker.seen,
    "same": checker.same,
    "stored": store.usage().bytes,
    "upload_s": round(uploaded - started, 2),
    "download_s": round(time.monotonic() - uploaded, 2),
    "maxrss_mib": peak_kib() / 1024,
}))
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_gib_streams_in_and_out_in_bounded_memory(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "blobs"), str(GIB)],
        capture_output=True,
        text=True,
        check=False,
        timeout=115,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    # 4 MiB chunks by default, as the README says: 256 for a GiB.
    assert DEFAULT_CHUNK_SIZE == 4 << 20 and result["chunks"] == 256
    assert result["plain_size"] == GIB
    assert result["seen"] == GIB and result["same"], result
    assert result["stored"] > GIB  # every chunk's ciphertext and tag, and the manifest
    assert result["maxrss_mib"] < LIMIT_MIB, result
