"""What the kernel's page cache holds of a file, for tests of code that drops what it wrote
(the blob store's chunks, a download's file), and how to drop a file from it (also what
``bench/bench_data.py`` does before it reads from the disk)."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path


def cached_pages(path: Path) -> int:
    """How many of ``path``'s pages the page cache holds: mincore(2) over a shared read-only
    map of the file (mapping it reads nothing)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t] + [ctypes.c_int] * 3 + [ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    vec = ctypes.create_string_buffer(pages)
    with path.open("rb") as f:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, f.fileno(), 0)
        assert address not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            assert libc.mincore(address, size, vec) == 0, os.strerror(ctypes.get_errno())
        finally:
            libc.munmap(address, size)
    return sum(b & 1 for b in vec.raw[:pages])


def evict(path: Path) -> None:
    """Sync ``path`` and drop its pages from the page cache (where the platform can), so the
    next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        if hasattr(os, "posix_fadvise"):  # not on macOS: the pages stay, as said above
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def pages_can_be_dropped(directory: Path) -> bool:
    """Whether a file's synced pages can leave the page cache on ``directory``'s filesystem
    (not on tmpfs, for one, where the cache is where the file lives)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    probe = directory / ".pagecache-probe"
    probe.write_bytes(os.urandom(1 << 20))
    try:
        evict(probe)
        return cached_pages(probe) == 0
    finally:
        probe.unlink()
