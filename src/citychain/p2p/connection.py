"""One established connection to a peer: a reader task, a writer task, a bounded send queue.

Theory of operation
-------------------
Sending never blocks the caller. :meth:`SendQueue.put` appends a frame to the peer's bounded
queue (or returns ``False`` when it is full) and wakes the connection's *writer task*, which
takes queued frames in batches of about 256 KiB, joins each batch into one write (the SSL
transport makes a TLS record per write item) and awaits ``drain()``. While a slow peer keeps
``drain()`` waiting, its queue fills and further sends to it fail fast; other peers have their
own queues and writer tasks and are not affected. Memory per peer is bounded by the queue plus
the transport's buffer above its high-water mark plus one batch.

The *reader task* reads up to 256 KiB at a time and splits it into frames
(:class:`~citychain.p2p.frames.FrameDecoder`; a length over the limit is refused before the
body arrives), charges what it read to two token buckets (bytes and messages per second) and
sleeps when they run dry, which throttles the peer through TCP flow control instead of
disconnecting it. Consumer frames go to ``deliver``; control frames may only be a
Refuse (the peer is closing and says why).

A connection ends once, through :meth:`Connection.close`, whoever notices first (the reader at
end of stream, a protocol violation or a Refuse; the writer on a write error; the switch on a
duplicate or at stop). It cancels the other task, sends a Refuse frame if it is the one
refusing, closes the transport and calls ``on_closed`` exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from citychain.errors import PeerRefused
from citychain.p2p.frames import (
    CONTROL_CHANNEL,
    HEADER,
    FrameDecoder,
    NodeKeyProof,
    Refuse,
    decode_control,
    header,
)
from citychain.p2p.handshake import Established, close_writer, refuse_and_close
from citychain.p2p.ratelimit import TokenBucket
from citychain.p2p.refusals import explain_tls_error

#: Bytes asked of the TLS stream per read; frames are decoded many per read.
READ_CHUNK = 256 * 1024
#: Frames are joined into writes of about this many bytes.
WRITE_BATCH_BYTES = 256 * 1024


@dataclass(slots=True)
class PeerStats:
    """Counters kept per peer across its connections. Bytes count whole frames (header too)."""

    msgs_sent: int = 0
    bytes_sent: int = 0
    msgs_received: int = 0
    bytes_received: int = 0
    dropped: int = 0


class SendQueue:
    """A bounded FIFO of (channel, payload) frames with a wake-up for the writer task."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[tuple[int, bytes]] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, channel: int, payload: bytes) -> bool:
        """Queue a frame; ``False`` (nothing queued) when the queue is full."""
        if len(self._items) >= self.capacity:
            return False
        self._items.append((channel, payload))
        self._ready.set()
        return True

    async def take_batch(self, max_bytes: int) -> list[tuple[int, bytes]]:
        """Wait until something is queued, then take frames worth about ``max_bytes``.

        Always at least one frame, however large; more while the total stays within
        ``max_bytes`` (so one write never copies an unbounded amount).
        """
        await self._ready.wait()
        items = self._items
        batch = [items.popleft()]
        total = len(batch[0][1])
        while items and total + len(items[0][1]) <= max_bytes:
            item = items.popleft()
            batch.append(item)
            total += len(item[1])
        if not items:
            self._ready.clear()
        return batch

    def clear(self) -> int:
        """Drop everything queued; return how many frames were dropped."""
        n = len(self._items)
        self._items.clear()
        self._ready.clear()
        return n


@dataclass(frozen=True, slots=True)
class ReadLimits:
    max_message_bytes: int
    bytes_per_s: int
    msgs_per_s: int


class Connection:
    """An established, checked connection to the peer ``est.cert.node_name``."""

    def __init__(
        self,
        est: Established,
        *,
        queue: SendQueue,
        stats: PeerStats,
        limits: ReadLimits,
        deliver: Callable[[str, int, bytes], None],
        on_closed: Callable[[Connection, str, PeerRefused | None], None],
    ) -> None:
        self.name = est.cert.node_name
        self.org_id = est.cert.org_id
        self.direction = est.direction
        self.address = est.address
        self._reader = est.reader
        self._writer = est.writer
        self._queue = queue
        self._stats = stats
        self._limits = limits
        self._deliver = deliver
        self._on_closed = on_closed
        self._bytes = TokenBucket(limits.bytes_per_s)
        self._msgs = TokenBucket(limits.msgs_per_s)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._closed = asyncio.Event()

    def describe(self) -> str:
        """``n2 at 127.0.0.1:4000 (outbound)``, for log lines."""
        way = "outbound" if self.direction == "out" else "inbound"
        return f"{self.name} at {self.address} ({way})"

    def start(self) -> None:
        """Start the reader and writer tasks."""
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"p2p-read-{self.name}"),
            asyncio.create_task(self._write_loop(), name=f"p2p-write-{self.name}"),
        ]

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def abort(self) -> None:
        """Drop the connection at once, without a word to the peer (the task that was to
        close it in order was cancelled: the switch is stopping)."""
        for task in self._tasks:
            task.cancel()
        self._writer.transport.abort()  # even if closing: see close()

    async def close(self, reason: str, refusal: PeerRefused | None = None) -> None:
        """End the connection (once). ``refusal`` (ours) is sent to the peer first."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]
        try:
            for task in others:
                task.cancel()
            for task in others:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if refusal is not None and not refusal.by_peer:
                await refuse_and_close(self._reader, self._writer, refusal)
            else:
                await close_writer(self._writer)
        finally:
            # Unconditionally: a TLS transport "is closing" as soon as a shutdown starts (ours,
            # or one the peer began with its close_notify), yet its socket stays open until
            # that shutdown ends, which a cut-short close no longer waits for. Once the
            # connection is lost, abort() does nothing.
            self._writer.transport.abort()
            self._closed.set()
            self._on_closed(self, reason, refusal)

    async def _read_loop(self) -> None:
        reason: str
        refusal: PeerRefused | None = None
        decoder = FrameDecoder(self._limits.max_message_bytes)
        stats = self._stats
        try:
            while True:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    raise asyncio.IncompleteReadError(b"", None)
                frames = decoder.feed(data)
                for channel, payload in frames:
                    stats.msgs_received += 1
                    stats.bytes_received += len(payload) + HEADER.size
                    if channel == CONTROL_CHANNEL:
                        message = decode_control(payload)
                        if isinstance(message, Refuse):
                            raise message.as_error()
                        what = "node key proof" if isinstance(message, NodeKeyProof) else "hello"
                        raise PeerRefused("protocol", f"a second {what} on an open connection")
                    self._deliver(self.name, channel, payload)
                if decoder.refusal is not None:
                    raise decoder.refusal
                wait = max(self._bytes.take(len(data)), self._msgs.take(len(frames)))
                if wait > 0:
                    await asyncio.sleep(wait)
        except PeerRefused as exc:
            refusal = exc
            reason = f"{exc.words}: {exc.message}"
        except asyncio.IncompleteReadError:
            reason = "closed by the peer"
        except ssl.SSLError as exc:
            reason = f"TLS error: {explain_tls_error(exc).message}"
        except OSError as exc:
            reason = f"connection lost: {exc.strerror or exc}"
        await self.close(reason, refusal)

    async def _write_loop(self) -> None:
        try:
            while True:
                items = await self._queue.take_batch(WRITE_BATCH_BYTES)
                parts: list[bytes] = []
                size = 0
                for channel, payload in items:
                    parts.append(header(channel, len(payload)))
                    parts.append(payload)
                    size += len(payload) + HEADER.size
                # One write: the SSL transport makes a TLS record per write()/writelines()
                # item, and 5-byte records would cost more than copying the batch once.
                self._writer.write(b"".join(parts))
                self._stats.msgs_sent += len(items)
                self._stats.bytes_sent += size
                await self._writer.drain()
        except OSError as exc:
            reason = f"connection lost while sending: {exc.strerror or exc}"
        await self.close(reason)
