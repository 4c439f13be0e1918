"""A fault-injecting TCP proxy between the nodes of a local network, for partition tests.

Theory of operation
-------------------
For every *directed* link ``i -> j`` between nodes (``i`` dials ``j``) the proxy listens on
its own loopback port (:meth:`FaultProxy.port_for`) and forwards each connection to ``j``'s
real p2p port. Node ``i``'s ``persistent_peers`` name that port for ``j`` (see
``generate_network(peer_address=...)``), so every connection between two nodes runs through
exactly one proxy link. The proxy only moves bytes, both ways, so TLS passes through
untouched: node certificates and the handshake are exactly what they would be without it.

Faults are a set of *cut* node pairs. Cutting a pair (``partition``, ``isolate``, ``cut``)
closes at once, with a TCP reset on both sides, every open connection of the links ``i -> j``
and ``j -> i``, and from then on every new connection on those links is accepted and reset
straight away (a listening socket cannot refuse one connection and keep the port), until
``heal``. Node processes see exactly what a network partition looks like to them: resets,
then failed redials.

A link may also *delay* (``delay`` seconds, one way, the same on every link): each chunk read
is written on only once it is ``delay`` old, in order, so a round trip through the proxy takes
at least twice that. This is the WAN bench's stand-in for ``tc netem delay`` (this machine's
kernel has no ``sch_netem``); it adds latency only, no loss, jitter or bandwidth limit.

The proxy runs its own asyncio event loop in a daemon thread of the test process. Every
public method may be called from the test's thread; the ones that change faults return only
after the loop has applied them (connections already closed). Per link it counts the bytes
forwarded each way, the connections forwarded, refused and cut (:meth:`FaultProxy.stats`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import struct
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds to wait for a target's port to accept a forwarded connection.
CONNECT_TIMEOUT = 5.0
CHUNK = 64 * 1024
#: The longest one-way delay a link may add, and the most chunks it may hold back meanwhile
#: (a full queue stops reading from the sender: TCP backpressure, not unbounded memory).
MAX_DELAY = 5.0
DELAY_QUEUE = 1024


@dataclass(slots=True)
class LinkStats:
    """Counters of one directed link ``src -> dst`` (``src`` dialled ``dst``)."""

    #: Bytes from the dialling node to the dialled node, and back.
    bytes_forward: int = 0
    bytes_back: int = 0
    #: Connections forwarded, refused while the link was cut, and closed by a cut.
    connections: int = 0
    refused: int = 0
    cut: int = 0
    #: Connections that could not reach the target (nothing listening there).
    unreachable: int = 0

    @property
    def bytes_total(self) -> int:
        return self.bytes_forward + self.bytes_back


@dataclass(eq=False, slots=True)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter

    def reset(self) -> None:
        for w in (self.client, self.upstream):
            _reset(w)


@dataclass(slots=True)
class _Link:
    src: int
    dst: int
    server: asyncio.Server | None = None
    port: int = 0
    conns: set[_Conn] = field(default_factory=set)
    stats: LinkStats = field(default_factory=LinkStats)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close now with a TCP reset (SO_LINGER 0), not an orderly FIN after pending data."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """One listening port per directed link between the nodes of ``targets``.

    ``targets`` maps a node index to its real p2p port (on ``host``). Use as a context
    manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self, targets: dict[int, int], host: str = "127.0.0.1", *, delay: float = 0.0
    ) -> None:
        if len(targets) < 2:
            raise ValueError("a fault proxy needs at least two nodes to stand between")
        if not 0.0 <= delay <= MAX_DELAY:
            raise ValueError(f"delay must be between 0 and {MAX_DELAY} s, got {delay}")
        self.delay = delay
        self.targets = dict(targets)
        self.host = host
        self._links = {(i, j): _Link(i, j) for i in self.targets for j in self.targets if i != j}
        self._cut: set[frozenset[int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        """Open every link's listening port; :meth:`port_for` works once this returns."""
        if self._loop is not None:
            raise RuntimeError("the fault proxy is already started")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="faultproxy", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._open())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close every port and connection and end the proxy's thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if thread.is_alive():
                self._call(self._close())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests ask -----------------------------------------------------------------------
    def port_for(self, i: int, j: int) -> int:
        """The port node ``i`` dials to reach node ``j`` through the proxy."""
        link = self._links.get((i, j))
        if link is None:
            raise ValueError(f"no link {i} -> {j} (nodes: {sorted(self.targets)})")
        if not link.port:
            raise RuntimeError("the fault proxy is not started")
        return link.port

    def stats(self) -> dict[tuple[int, int], LinkStats]:
        """A snapshot of every link's counters."""
        return {k: dataclasses.replace(link.stats) for k, link in self._links.items()}

    def bytes_forwarded(self, i: int, j: int) -> int:
        """Bytes moved (both ways) over the connections node ``i`` opened to node ``j``."""
        return self._links[(i, j)].stats.bytes_total

    def is_cut(self, i: int, j: int) -> bool:
        return frozenset((i, j)) in self._cut

    # -- faults -------------------------------------------------------------------------------
    def partition(self, groups: Iterable[set[int]]) -> None:
        """Cut every pair of nodes in different groups; pairs within a group are connected.
        A node in no group is a group of its own. Replaces any earlier faults."""
        group_of: dict[int, int] = {}
        for g, members in enumerate(groups):
            for n in members:
                self._check_node(n)
                if n in group_of:
                    raise ValueError(f"node {n} is in two groups of the partition")
                group_of[n] = g
        for n in self.targets:  # the unlisted, each alone
            group_of.setdefault(n, -1 - n)
        self._set_cut({frozenset((i, j)) for (i, j) in self._links if group_of[i] != group_of[j]})

    def isolate(self, i: int) -> None:
        """Cut node ``i`` from every other node (the others stay connected). Replaces any
        earlier faults."""
        self._check_node(i)
        self.partition([{i}, set(self.targets) - {i}])

    def cut(self, i: int, j: int) -> None:
        """Cut the pair ``i``, ``j`` (both directions), keeping earlier faults."""
        self._check_node(i)
        self._check_node(j)
        self._set_cut(self._cut | {frozenset((i, j))})

    def heal(self) -> None:
        """Remove every fault: new connections go through again (nodes redial by themselves)."""
        self._set_cut(set())

    # -- inside ---------------------------------------------------------------------------------
    def _check_node(self, n: int) -> None:
        if n not in self.targets:
            raise ValueError(f"unknown node {n} (nodes: {sorted(self.targets)})")

    def _set_cut(self, cut: set[frozenset[int]]) -> None:
        self._call(self._apply(cut))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the fault proxy is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _open(self) -> None:
        for link in self._links.values():

            async def handle(
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                link: _Link = link,
            ) -> None:
                await self._forward(link, reader, writer)

            link.server = await asyncio.start_server(handle, self.host, 0)
            link.port = int(link.server.sockets[0].getsockname()[1])

    async def _apply(self, cut: set[frozenset[int]]) -> None:
        self._cut = cut
        for link in self._links.values():
            if frozenset((link.src, link.dst)) in cut:
                for conn in list(link.conns):
                    link.stats.cut += 1
                    conn.reset()
        await asyncio.sleep(0)  # let the transports finish closing

    async def _close(self) -> None:
        for link in self._links.values():
            if link.server is not None:
                link.server.close()
            for conn in list(link.conns):
                conn.reset()
        for link in self._links.values():
            if link.server is not None:
                await link.server.wait_closed()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0)

    async def _forward(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.is_cut(link.src, link.dst):
                link.stats.refused += 1
                _reset(writer)
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.targets[link.dst]), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError):
                link.stats.unreachable += 1
                _reset(writer)
                return
            conn = _Conn(writer, up_writer)
            if self.is_cut(link.src, link.dst):  # cut while we were connecting
                link.stats.refused += 1
                conn.reset()
                return
            link.conns.add(conn)
            link.stats.connections += 1
            try:
                await asyncio.gather(
                    self._pump(reader, up_writer, link, forward=True),
                    self._pump(up_reader, writer, link, forward=False),
                )
            finally:
                link.conns.discard(conn)
                for w in (writer, up_writer):
                    w.close()
                for w in (writer, up_writer):
                    with contextlib.suppress(ConnectionError, OSError):
                        await w.wait_closed()
        finally:
            self._tasks.discard(task)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: _Link, *, forward: bool
    ) -> None:
        """Copy ``src`` to ``dst`` until EOF (each chunk once it is :attr:`delay` old), then
        half-close ``dst``; on an error, or when the other side is gone, stop quietly (the
        connection is being torn down)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(DELAY_QUEUE)

        async def send() -> None:
            # Keeps taking chunks after ``dst`` broke (dropping them), so the reader below
            # never waits on a full queue that nobody empties.
            broken = False
            while (item := await queue.get()) is not None:
                if broken:
                    continue
                due, data = item
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                try:
                    dst.write(data)
                    await dst.drain()
                except (ConnectionError, OSError):
                    dst.transport.abort()
                    broken = True

        sender = asyncio.create_task(send()) if self.delay else None
        try:
            while data := await src.read(CHUNK):
                if forward:
                    link.stats.bytes_forward += len(data)
                else:
                    link.stats.bytes_back += len(data)
                if sender is None:
                    dst.write(data)
                    await dst.drain()
                else:
                    await queue.put((loop.time() + self.delay, data))
            if sender is not None:
                await queue.put(None)
                await sender
            if not dst.is_closing() and dst.can_write_eof():
                dst.write_eof()
        except (ConnectionError, OSError):
            dst.transport.abort()
        finally:
            if sender is not None and not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                    await sender
