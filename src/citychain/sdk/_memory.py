"""The process's memory allocator, for programs that move large blocks (see
:func:`keep_freed_memory`)."""

from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

#: glibc's ``mallopt`` parameters (``<malloc.h>``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap, where a freed one is used again, instead of a
#: fresh mapping each (glibc starts at 128 KiB and moves the line only as mappings are freed).
MMAP_THRESHOLD = 16 << 20
#: The heap gives memory back to the system only when this much is free at its top.
TRIM_THRESHOLD = 64 << 20


def keep_freed_memory() -> bool:
    """Have glibc's allocator keep the memory a block freed for the next one; True if it
    took the settings (glibc on Linux), False elsewhere, where nothing changes.

    Why: a node, and a program moving files through the SDK, make and free blocks of
    megabytes again and again (a data chunk is 4 MiB: joined from the socket's pieces,
    hashed, sealed or opened, written). By default glibc maps each afresh and unmaps it when
    freed, so every 4 KiB of it costs a page fault each time. On a VM that is dear: a node
    took 50,000-90,000 faults and ~0.3 s of system time per 256 MiB uploaded, next to none
    with these settings (``/proc/<pid>/stat`` during ``bench_data.py``'s uploads).

    The heap keeps at most ``TRIM_THRESHOLD`` free per arena; blocks above
    ``MMAP_THRESHOLD`` are still mapped. It is process-wide, so it is the program's own
    choice, never made by a library call: the node makes it (``citychain start``), the CLI
    for its transfers (``citychain data upload``, ``download``), and a department's program
    that moves large files through the SDK may, once, at its start."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl's mallopt is a stub  # noqa: B018
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
