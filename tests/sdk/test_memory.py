"""A node's process (and the CLI's transfers) keeps the memory a block freed for the next
one (``citychain.sdk.keep_freed_memory``): a data chunk's 4 MiB body, joined and freed again
and again, must not cost a page fault for every 4 KiB each time (on a VM, ~0.3 s of a node's
system time per 256 MiB uploaded before)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PAGES_A_ROUND = 6 * (4 << 20) // 4096  # three 4 MiB pieces and their 12 MiB join
ROUNDS = 20

SCRIPT = f"""
import resource, sys
from citychain.sdk import keep_freed_memory

kept = keep_freed_memory() if sys.argv[1] == "kept" else False

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def a_request():  # what a chunk's upload allocates: the socket's pieces, then their join
    pieces = [b"x" * (4 << 20) for _ in range(3)]
    body = b"".join(pieces)
    del pieces, body

a_request()
before = faults()
for _ in range({ROUNDS}):
    a_request()
print(kept, faults() - before)
"""


def _faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc's allocator only",
)
def test_the_node_reuses_freed_blocks_instead_of_faulting_them_in_again() -> None:
    kept, faults = _faults("kept")
    assert kept
    # Once the first request has mapped its memory, the next twenty reuse it.
    assert faults < PAGES_A_ROUND, faults
    # With glibc's own settings the pieces are faulted in afresh round after round.
    kept, faults = _faults("default")
    assert not kept and faults > 5 * PAGES_A_ROUND, faults


def test_elsewhere_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    from citychain.sdk import keep_freed_memory

    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
