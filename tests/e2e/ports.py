"""Blocks of ports for test networks, reserved across every process of the test run.

A network generated for a test (:func:`citychain.node.testnet.generate_network`) puts node
``i`` at ``base + PORT_STRIDE * i`` (p2p) and the port after it (API). Checking that those
ports are free *now* is not enough: the nodes bind them seconds later, and meanwhile another
pytest-xdist worker (or the same test, picking ports for a node it starts later) can pick
the same block. Two CI runs failed that way: an outsider node of a fault test was given the
ports of the test's own node0, whose process had not bound them yet.

So each block of ``PORT_STRIDE`` ports is claimed by an exclusive ``flock`` on a file named
after it in a directory shared by every worker. A lock is held by an open file: it is
released by :meth:`PortBlocks.release`, or by the kernel when the process that holds it ends
(a killed worker leaves no stale claim). ``flock`` locks belong to the open file, so a second
claim in the same process conflicts too. The files are opened close-on-exec: a node process
started by the test does not inherit (and outlive the test with) the claim.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

from citychain.node.testnet import PORT_STRIDE

#: Port blocks are picked between these (below Linux's ephemeral range, 32768 and up, where
#: ports bound to 0 and outgoing connections come from).
PORT_LOW, PORT_HIGH = 20000, 32000
LOCK_DIR = Path(tempfile.gettempdir()) / "citychain-test-ports"


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _claim(base: int) -> int | None:
    """An open descriptor holding the claim on the block at ``base``, or None if taken."""
    fd = os.open(LOCK_DIR / f"{base}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class PortBlocks:
    """``count`` consecutive blocks of ``PORT_STRIDE`` ports, claimed until :meth:`release`."""

    def __init__(self, count: int, tries: int = 200) -> None:
        LOCK_DIR.mkdir(exist_ok=True)
        span = PORT_STRIDE * count
        for _ in range(tries):
            base = random.randrange(PORT_LOW, PORT_HIGH - span, PORT_STRIDE)
            fds: list[int] = []
            for i in range(count):
                fd = _claim(base + PORT_STRIDE * i)
                if fd is None:
                    break
                fds.append(fd)
            # Claimed, and nothing outside the test run listens there either.
            if len(fds) == count and all(
                _free(base + PORT_STRIDE * i + k) for i in range(count) for k in (0, 1)
            ):
                self.base = base
                self._fds = fds
                return
            for fd in fds:
                os.close(fd)
        raise RuntimeError(f"no free block of {span} ports between {PORT_LOW} and {PORT_HIGH}")

    def release(self) -> None:
        """Give the blocks back (idempotent)."""
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)


#: Claims made by :func:`free_base_port`, held until this process ends.
_HELD: list[PortBlocks] = []


def free_base_port(validators: int) -> int:
    """A base port whose blocks for ``validators`` nodes are claimed for the rest of this
    process (for networks a module-scoped fixture or ``citychain net up`` starts)."""
    blocks = PortBlocks(validators)
    _HELD.append(blocks)
    return blocks.base
