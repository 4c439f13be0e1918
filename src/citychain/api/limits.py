"""What any API client can hold: connections, time, request size and subscriptions.

Theory of operation
-------------------
Every open client connection costs the node a file descriptor, and the API shares the
process's open-files limit (``RLIMIT_NOFILE``) with the consensus WAL, RocksDB, the mempool
journal and the p2p sockets. An API that takes every connection offered, and keeps a request
that never finishes its headers, lets any client use up that limit; the next file consensus
opens then fails with ``EMFILE`` and the validator stops. So the descriptors are bounded
where they are created, and every connection must make progress or go:

* **At start** (:func:`descriptor_budget`): the soft ``RLIMIT_NOFILE`` is raised to the hard
  one if it is lower, the descriptors already open are counted, ``[api] fd_reserve`` more are
  kept for consensus, storage and p2p, and as many as the databases may keep table files
  open (``[state] max_open_files``: RocksDB's own default keeps every one, without bound),
  and ``[api] max_connections`` is lowered to what is left. A limit that leaves almost
  nothing for the API refuses the start, in words.

* **At accept** (:class:`GuardedListener`): the listening socket's ``accept()`` is where a
  descriptor is born, so the count is kept there, not in uvicorn or ASGI, which see a
  connection only after asyncio has accepted it (asyncio accepts up to its backlog,
  ``API_BACKLOG`` in ``server.py``, in one go; a guard further in would act only once the
  descriptors are gone).
  uvicorn's own ``limit_concurrency`` is no bound here: it answers 503 only once a request's
  headers are parsed (a half-sent request is never counted against it) and keeps the
  connection open meanwhile; it has no per-address limit and no header-read timeout.
  A connection over the total or per-address cap is answered at once with a 503
  ``{"code": "unavailable", "message": ...}`` and closed within that same call, so a refused
  client never holds a descriptor longer than its refusal takes; at most
  :data:`REFUSE_PER_CALL` are refused per call, so a flood of them cannot keep the event loop
  (and consensus with it) from running. Each accepted socket gives its slot back when it is
  closed (:class:`_ClientSocket`), whoever closes it: the HTTP protocol, the WebSocket
  protocol it hands over to, or asyncio on an error. The count is therefore exact, and the
  descriptors the API holds never exceed ``max_connections`` plus the listening socket.
  The listener is served by :class:`Acceptor`, which calls that ``accept()`` on asyncio's
  loop and on uvloop's alike (uvloop's own server would accept in C and bypass it).

* **While reading a request** (:func:`guarded_protocol`, over uvicorn's httptools protocol,
  which has no timeout for a request that is being received): the request line and headers
  must arrive within ``header_timeout_ms`` of the connection or of the request's first byte,
  and the body within ``body_timeout_ms`` of the headers (each timer armed only when a read
  ends with the request incomplete, so a request that arrives whole arms none); otherwise
  the client gets a 503 saying so (when no answer of its own has begun) and the connection
  is closed. A request target over ``max_url_bytes``, a header section over
  ``max_header_bytes``, more than :data:`MAX_HEADERS` headers or a header line over
  :data:`MAX_HEADER_LINE` is answered 413 ``too_large`` and closed; these are also what a
  WebSocket handshake may carry (the ``websockets`` parser behind uvicorn's WebSocket
  protocol stops at 8,192-byte lines and 128 headers and then leaves the client waiting
  forever). An idle keep-alive connection is
  closed by uvicorn after ``keepalive_timeout_ms``.

* **Subscriptions** (:class:`SubscriberSlots`, used by ``/v1/events``): at most
  ``max_subscribers`` in all and ``max_subscribers_per_address`` from one address; a refused
  handshake is answered 503 with the same body.

Every refusal and every drop counts in ``citychain_api_refused_total{reason}`` and is logged
with the client's address (:class:`Refusals`), at most once per reason and address every
:data:`LOG_EVERY_S` seconds, with the number left unlogged, so a flood cannot fill the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import resource
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

import httptools
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from citychain.api._json import dumps
from citychain.api._kept import Kept
from citychain.errors import HTTP_STATUS_BY_CODE, ConfigError, ErrorCode

if TYPE_CHECKING:  # citychain.node would load RocksDB into the API (tests/arch)
    from citychain.node.config import ApiConfig

__all__ = [
    "LOG_EVERY_S",
    "MAX_HEADERS",
    "MAX_HEADER_LINE",
    "MIN_API_CONNECTIONS",
    "REFUSE_PER_CALL",
    "Acceptor",
    "ConnectionSlots",
    "GuardedListener",
    "Refusals",
    "RequestLimits",
    "SubscriberSlots",
    "descriptor_budget",
    "guarded_protocol",
    "refusal_bytes",
]

log = logging.getLogger("citychain.api")

#: Connections refused in one ``accept()`` call before the event loop gets its turn back.
REFUSE_PER_CALL: Final = 64
#: Most headers in one request, and longest header line (name, ": " and value).
MAX_HEADERS: Final = 100
MAX_HEADER_LINE: Final = 8_000
#: The fewest connections the descriptor budget may leave the API before a start is refused.
MIN_API_CONNECTIONS: Final = 8
#: One log line per refusal reason and address at most this often.
LOG_EVERY_S: Final = 10.0
#: The hard limit to raise to when the hard limit is "unlimited".
_UNLIMITED_FILES: Final = 1 << 20


# -- saying no ---------------------------------------------------------------------------------
def refusal_bytes(code: ErrorCode, message: str) -> bytes:
    """A whole HTTP/1.1 answer ``{"code", "message"}`` with the code's status, closing."""
    status = HTTP_STATUS_BY_CODE[code]
    body = dumps({"code": code.value, "message": message})
    phrase = {413: "Content Too Large", 503: "Service Unavailable"}.get(status, "Error")
    retry = "retry-after: 1\r\n" if status == 503 else ""
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{retry}connection: close\r\n\r\n"
    )
    return head.encode() + body


class Refusals:
    """Counts (``citychain_api_refused_total{reason}``) and logs every refusal and drop."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._counter = PromCounter(
            "citychain_api_refused",
            "API clients refused or dropped by a limit, by reason",
            ["reason"],
            registry=registry,
        )
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._unlogged: Counter[tuple[str, str]] = Counter()

    def refuse(self, reason: str, address: str, message: str) -> None:
        """Record that ``address`` was refused or dropped for ``reason`` (``message`` says why)."""
        self._counter.labels(reason=reason).inc()
        key = (reason, address)
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -LOG_EVERY_S) < LOG_EVERY_S:
                self._unlogged[key] += 1
                return
            self._last[key] = now
            skipped = self._unlogged.pop(key, 0)
            if len(self._last) > 10_000:  # forget old addresses, never grow without bound
                self._last = {k: t for k, t in self._last.items() if now - t < LOG_EVERY_S}
        more = f" ({skipped} more since the last line)" if skipped else ""
        log.warning("API client %s %s: %s%s", address, _VERB[reason], message, more)


#: How a log line says what happened to the client, by reason.
_VERB: Final[dict[str, str]] = {
    "connections": "refused",
    "connections_per_address": "refused",
    "subscribers": "refused",
    "subscribers_per_address": "refused",
    "header_timeout": "dropped",
    "body_timeout": "dropped",
    "url_too_long": "refused",
    "headers_too_large": "refused",
}


# -- descriptors -------------------------------------------------------------------------------
def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor
    except OSError:  # no /proc: count what answers fstat
        count = 0
        for fd in range(resource.getrlimit(resource.RLIMIT_NOFILE)[0]):
            with contextlib.suppress(OSError):
                os.fstat(fd)
                count += 1
        return count


def descriptor_budget(api: ApiConfig, *, db_files: int = 0) -> tuple[int, str]:
    """The connection cap that keeps ``api.fd_reserve`` descriptors for the rest of the node
    and ``db_files`` for its databases' table files (the most they may keep open), and a
    sentence for the log. Raises the soft open-files limit to the hard one first. Call it
    once the node's database and files are open (they are counted as in use, so the
    databases' files already open are kept twice: a margin, never a shortfall)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_FILES if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY:
        soft = _UNLIMITED_FILES
    elif soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the soft limit: the budget below still holds within it
    in_use = _open_descriptors()
    left = soft - in_use - api.fd_reserve - db_files
    kept = f"[api] fd_reserve {api.fd_reserve} kept for consensus, storage and p2p"
    if db_files:
        kept += f" and {db_files} for the databases' files ([state] max_open_files)"
    if left < MIN_API_CONNECTIONS:
        raise ConfigError(
            f"the open-files limit is {soft} and {in_use} are in use: with {kept}, only "
            f"{max(left, 0)} are left for API clients (at least {MIN_API_CONNECTIONS} needed); "
            "raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) or lower "
            + ("[state] max_open_files or " if db_files else "")
            + "[api] fd_reserve"
        )
    cap = min(api.max_connections, left)
    reserved = f"{api.fd_reserve} reserved for the node"
    if db_files:
        reserved += f" and {db_files} for its databases' files"
    words = (
        f"open-files limit {soft}, {in_use} in use, {reserved}: "
        f"the API takes at most {cap} connections ({api.max_connections_per_address} per address)"
    )
    return cap, words


# -- connections -------------------------------------------------------------------------------
class ConnectionSlots:
    """Open connections, in all and per address (one per accepted socket until it closes)."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total = total
        self.per_address = per_address
        self.open = 0
        self._by_address: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, address: str) -> str | None:
        """Take a slot for ``address``; the refusal reason when there is none."""
        with self._lock:
            if self.open >= self.total:
                return "connections"
            if self._by_address[address] >= self.per_address:
                return "connections_per_address"
            self.open += 1
            self._by_address[address] += 1
            return None

    def give_back(self, address: str) -> None:
        with self._lock:
            self.open -= 1
            self._by_address[address] -= 1
            if self._by_address[address] <= 0:
                del self._by_address[address]

    def of(self, address: str) -> int:
        return self._by_address[address]


class _ClientSocket(socket.socket):
    """An accepted client socket that gives its slot back once, when it is closed.

    Closed means either of two calls: ``close()`` (asyncio's own transports, and any code of
    ours) or ``detach()``: uvloop's transport owns the descriptor once it has the socket,
    closes it in libuv and then detaches the Python object so the descriptor is not closed
    twice (``uvloop/handles/handle.pyx``, ``UVSocketHandle._close``). Nothing else detaches an
    accepted client socket."""

    _slots: ConnectionSlots | None
    _address: str

    def _give_back(self) -> None:
        slots, self._slots = getattr(self, "_slots", None), None
        if slots is not None:
            slots.give_back(self._address)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back()

    def detach(self) -> int:
        try:
            return super().detach()
        finally:
            self._give_back()


def _peer_host(addr: Any) -> str:
    return str(addr[0]) if isinstance(addr, tuple) and addr else "unix"


class GuardedListener(socket.socket):
    """The API's listening socket, counting and capping connections as it accepts them
    (see the module docstring). Made with :meth:`adopt` from the bound socket."""

    slots: ConnectionSlots
    refusals: Refusals

    @classmethod
    def adopt(
        cls, sock: socket.socket, slots: ConnectionSlots, refusals: Refusals
    ) -> GuardedListener:
        """Take over ``sock``'s descriptor (``sock`` is left detached)."""
        guarded = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        guarded.slots = slots
        guarded.refusals = refusals
        return guarded

    def accept(self) -> tuple[socket.socket, Any]:
        for _ in range(REFUSE_PER_CALL):
            fd, addr = self._accept()  # type: ignore[attr-defined]  # BlockingIOError: none left
            host = _peer_host(addr)
            reason = self.slots.take(host)
            if reason is None:
                conn = _ClientSocket(self.family, self.type, self.proto, fileno=fd)
                conn._slots, conn._address = self.slots, host
                if self.family in (socket.AF_INET, socket.AF_INET6):
                    # no Nagle: an answer's last piece must not wait for the client's ACK
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return conn, addr
            self._refuse(fd, host, reason)
        raise BlockingIOError(  # the event loop runs, then the listener is read again
            "refused enough connections for one turn"
        )

    def _refuse(self, fd: int, host: str, reason: str) -> None:
        if reason == "connections":
            message = (
                f"the node is serving its most API connections ({self.slots.total}); "
                "try again later"
            )
        else:
            message = (
                f"{host} already holds {self.slots.per_address} API connections, the most "
                "one address may; close some first"
            )
        self.refusals.refuse(reason, host, message)
        conn = socket.socket(self.family, self.type, self.proto, fileno=fd)
        try:
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                # Read what the client already sent, so the close ends with FIN, not RST
                # (an RST may make the client drop the answer unread).
                conn.recv(65536)
            with contextlib.suppress(OSError):
                conn.send(refusal_bytes(ErrorCode.UNAVAILABLE, message))
        finally:
            conn.close()


class Acceptor:
    """Serves a :class:`GuardedListener` on the running event loop: accepts through its
    ``accept()`` (the cap) and gives each connection to a new protocol made by
    ``create_protocol``, by ``loop.connect_accepted_socket``.

    Why not ``loop.create_server(sock=listener)``: asyncio's loop accepts by calling the
    socket object's ``accept()``, so the guard works there, but uvloop's loop takes the
    descriptor and accepts in libuv (C), never calling it: a flood would be accepted without
    bound. This acceptor works the same on either loop, so the node may run on uvloop
    (``[node] event_loop``), whose C loop takes less of the node's CPU a request: a third
    less for a DID resolution at 100,000 DIDs, a tenth to a fifth for an answer from memory,
    nothing measurable where RocksDB reads dominate (``bench/RESULTS.md``, 2026-12-06).

    Like asyncio's own server it accepts at most ``backlog`` connections a turn of the loop,
    and when the process is out of descriptors (``EMFILE`` and kin: another part of the
    process took what the budget left) it stops reading the listener for a second rather
    than spin. It has the two methods uvicorn calls on a server, ``close`` and
    ``wait_closed``; the listening socket stays its owner's to close."""

    #: Seconds the listener rests when the process is out of descriptors (asyncio's figure).
    RETRY_S: Final = 1.0

    def __init__(
        self,
        listener: GuardedListener,
        create_protocol: Callable[[], asyncio.Protocol],
        *,
        backlog: int,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener = listener
        self._create_protocol = create_protocol
        self._backlog = max(1, backlog)
        self._fd = listener.fileno()
        self._retry: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task[Any]] = set()
        self._serving = True
        listener.setblocking(False)
        self._loop.add_reader(self._fd, self._accept)

    def _accept(self) -> None:
        for _ in range(self._backlog):
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return  # none left, or enough refused for one turn (GuardedListener.accept)
            except ConnectionAbortedError:
                continue  # the client gave up while it waited in the backlog
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                log.warning(
                    "API: cannot accept a connection (%s); the listener rests %g s",
                    exc.strerror,
                    self.RETRY_S,
                )
                self._loop.remove_reader(self._fd)
                self._retry = self._loop.call_later(self.RETRY_S, self._resume)
                return
            conn.setblocking(False)
            task = self._loop.create_task(
                self._loop.connect_accepted_socket(self._create_protocol, sock=conn)
            )
            self._connecting.add(task)
            task.add_done_callback(functools.partial(self._connected, conn))

    def _connected(self, conn: socket.socket, task: asyncio.Task[Any]) -> None:
        self._connecting.discard(task)
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.warning("API: a connection could not be set up: %s", task.exception())
            conn.close()  # gives its slot back, if the transport did not

    def _resume(self) -> None:
        self._retry = None
        if self._serving:
            self._loop.add_reader(self._fd, self._accept)

    def close(self) -> None:
        if not self._serving:
            return
        self._serving = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        else:
            self._loop.remove_reader(self._fd)

    async def wait_closed(self) -> None:
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)


# -- requests ----------------------------------------------------------------------------------
class _Refuse(Exception):
    def __init__(self, reason: str, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.reason, self.code, self.message = reason, code, message


@dataclass(frozen=True, slots=True)
class RequestLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_url_bytes: int
    max_header_bytes: int


def guarded_protocol(
    limits: RequestLimits, refusals: Refusals, kept: Kept | None = None
) -> type[asyncio.Protocol]:
    """uvicorn's httptools HTTP protocol with the request limits of the module docstring
    (pass it as ``uvicorn.Config(http=...)``), giving ``kept``'s answers itself
    (:mod:`citychain.api._kept`)."""

    class GuardedHttpProtocol(_GuardedHttpProtocol):
        pass

    GuardedHttpProtocol.limits = limits
    GuardedHttpProtocol.refusals = refusals
    GuardedHttpProtocol.kept = kept
    return GuardedHttpProtocol


class _BodyPieces:
    """What a request's body holds between two ASGI ``receive`` calls: the parser's pieces as
    they came, in place of uvicorn's ``bytearray``. uvicorn appends each piece to its bytearray
    and hands ``bytes(body)`` to the app, two copies of every byte on the event loop; its
    ``bytes(...)`` of this object gives the piece itself when there is one (the usual case: the
    app reads as fast as pieces come) and one join otherwise. For a 4 MiB chunk of a data
    upload that was two of the node's four copies (bench/RESULTS.md, 2026-12-08)."""

    __slots__ = ("pieces", "size")

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        pieces = self.pieces
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _GuardedHttpProtocol(HttpToolsProtocol):
    limits: RequestLimits
    refusals: Refusals
    kept: Kept | None = None
    #: The server's header lines joined (:meth:`_server_lines`), and the list they come from.
    _lines: bytes = b""
    _lines_of: object = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        #: What the request being read still lacks ("header_timeout": its head,
        #: "body_timeout": its body), None between requests. Its timer is armed only when a
        #: read leaves it so (see data_received): most requests arrive whole in one read, and
        #: arming and cancelling two timers for each was ~7 % of the node's CPU for a
        #: resolution answered from memory (py-spy).
        self._pending: str | None = None
        #: The request being read was answered from ``kept`` (no ASGI cycle was made for it).
        self._answered_kept = False
        self._head_bytes = 0
        self._headers = 0
        self._done = False
        #: When the last response ended, if no request has begun since (the keep-alive timer).
        self._idle_since: float | None = None

    # -- timers --------------------------------------------------------------------------------
    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, reason)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, reason: str) -> None:
        self._deadline = None
        if reason == "header_timeout":
            message = (
                f"no complete request line and headers within {self.limits.header_timeout_s:g} s;"
                " connection closed"
            )
        else:
            message = (
                f"the request body did not arrive within {self.limits.body_timeout_s:g} s; "
                "connection closed"
            )
        self._end(reason, ErrorCode.UNAVAILABLE, message)

    def _end(self, reason: str, code: ErrorCode, message: str) -> None:
        """Answer (unless an answer of our own has begun) and close the connection."""
        if self._done or self.transport is None or self.transport.is_closing():
            return
        self._done = True
        self._disarm()
        host = self.client[0] if self.client else "unknown"
        self.refusals.refuse(reason, host, message)
        cycle = self.cycle
        if reason == "body_timeout":  # the cycle is this request's: answer if it has not
            answer = cycle is not None and not cycle.response_started
        else:  # a request whose head is not complete: answer unless one before is answering
            answer = cycle is None or cycle.response_complete
        if answer:
            self.transport.write(refusal_bytes(code, message))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        transport = self.transport
        transport.close()
        # A client that does not read would hold the socket until the answer drains.
        self.loop.call_later(1.0, transport.abort)

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(cast(asyncio.Transport, transport))
        self._arm(self.limits.header_timeout_s, "header_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        self._done = True
        super().connection_lost(exc)

    # -- the keep-alive timer ------------------------------------------------------------------
    # uvicorn arms a timer when a response ends and cancels it when the next request's first
    # bytes arrive: one timer made and cancelled for every request of a kept-alive connection,
    # ~8 % of the node's CPU for a resolution given from the identity index (py-spy). Here one
    # timer runs while the connection is idle or busy: a response's end notes the time, a read
    # clears it, and the timer, when it fires, closes a connection idle for the whole timeout,
    # or runs again for what is left of it (or not at all while a request is under way: its
    # response's end arms it again). A connection is closed when uvicorn would close it.
    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None

    def on_response_complete(self) -> None:
        # uvicorn's (0.54), with the keep-alive timer above
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._idle_since = None
        self.flow.resume_reading()
        if self.pipeline:  # start the next pipelined request
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self._keep_alive_due
            )

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        idle = self._idle_since
        if idle is None:
            return
        left = idle + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()

    def data_received(self, data: bytes) -> None:
        # uvicorn's, but a limit's refusal from a parser callback is answered as such, not
        # as uvicorn's 400 for unparsable requests.
        if self._done:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__
            if isinstance(refusal, _Refuse):
                self._end(refusal.reason, refusal.code, refusal.message)
                return
            self._bad_request()
        except httptools.HttpParserError:
            self._bad_request()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        else:
            # A request this read left incomplete must complete in time. A timer already
            # running is kept, never pushed back: a client trickling bytes gains nothing.
            pending = self._pending
            if pending is not None and self._deadline is None and not self._done:
                limit = self.limits.header_timeout_s
                if pending == "body_timeout":
                    limit = self.limits.body_timeout_s
                self._arm(limit, pending)

    def _bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self._done = True
        self._disarm()
        self.send_400_response(msg)

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        self._done = True  # the WebSocket protocol owns the connection from here
        super().handle_websocket_upgrade()

    # -- parser callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        # uvicorn's begins the ASGI scope here (a dict of ten entries, a copy of the app's
        # state: ~1 µs), which an answer given from ``kept`` never reads: it is begun in
        # on_headers_complete instead, for a request that goes the app's way. Only what
        # uvicorn's parser callbacks fill in before then is reset here.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._head_bytes = 0
        self._headers = 0
        self._pending = "header_timeout"  # armed if this read ends before the head does

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.limits.max_url_bytes:
            raise _Refuse(
                "url_too_long",
                ErrorCode.TOO_LARGE,
                f"request target longer than {self.limits.max_url_bytes} bytes; send large "
                "arguments in a POST body",
            )
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        self._head_bytes += len(name) + len(value) + 4
        if (
            self._headers > MAX_HEADERS
            or len(name) + len(value) + 2 > MAX_HEADER_LINE
            or self._head_bytes > self.limits.max_header_bytes
        ):
            raise _Refuse(
                "headers_too_large",
                ErrorCode.TOO_LARGE,
                f"request headers over the limit ({MAX_HEADERS} headers, {MAX_HEADER_LINE} "
                f"bytes a line, {self.limits.max_header_bytes} bytes in all)",
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        if self.kept is not None and self._answer_kept(self.kept):
            return
        # The scope uvicorn's on_message_begin makes (see ours), around what the parser read.
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.headers.extend(headers)  # the scope holds this very list
        self.url, self.expect_100_continue = url, expect
        super().on_headers_complete()
        upgrade = self.parser.should_upgrade() and self._should_upgrade()
        self._pending = None if upgrade else "body_timeout"

    def on_body(self, body: bytes) -> None:
        # uvicorn's, keeping the pieces (_BodyPieces) where its cycle holds a bytearray, which
        # its receive() turns into bytes; any other holder (another uvicorn) is left to it.
        cycle = self.cycle
        held: object = cycle.body  # typed bytearray by uvicorn: this holder is ours
        if type(held) is bytearray and not held:
            held = _BodyPieces()
        if not isinstance(held, _BodyPieces):
            super().on_body(body)
            return
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        cycle.body = cast("bytearray", held)  # uvicorn only takes len() and bytes() of it
        held.pieces.append(body)
        held.size += len(body)
        if held.size > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        self._disarm()
        self._pending = None
        if self._answered_kept:  # nothing of uvicorn's to finish: no cycle was made
            self._answered_kept = False
            return
        super().on_message_complete()

    def _server_lines(self) -> bytes:
        """The server's own header lines (``date``, ``server``) as uvicorn would write them:
        joined once for each list uvicorn makes (its ``date`` changes once a second)."""
        headers = self.server_state.default_headers
        cls = type(self)
        if headers is not cls._lines_of:
            cls._lines = b"".join([name + b": " + value + b"\r\n" for name, value in headers])
            cls._lines_of = headers
        return cls._lines

    def _answer_kept(self, kept: Kept) -> bool:
        """Answer a plain ``GET`` from ``kept`` before any ASGI task is made, when nothing
        else is being answered on this connection (see :mod:`citychain.api._kept`)."""
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            return False
        if self.flow.write_paused:
            # The client is not reading what it was sent: the app's way waits for it to drain
            # and stops reading pipelined requests meanwhile; written here, answers to a
            # stream of pipelined GETs would pile up in memory without bound.
            return False
        parser = self.parser
        if (
            parser.get_method() != b"GET"
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
            or parser.should_upgrade()
        ):
            return False
        accept: bytes | None = None
        for name, value in self.headers:
            if name == b"accept":
                if accept is not None:
                    return False
                accept = value
            elif name in (b"content-length", b"transfer-encoding"):
                return False
        try:
            answer = kept.answer((self.url, accept))
        except Exception:  # a producer's bug: logged, and the app's way answers
            log.exception("a producer of answers failed; the app answers instead")
            return False
        if answer is None:
            return False
        self.transport.write(
            b"".join((answer.line, self._server_lines(), answer.head, answer.body))
        )
        self._answered_kept = True
        self._pending = None
        self.on_response_complete()  # uvicorn's: counts it, arms the keep-alive timer
        return True


# -- subscriptions -----------------------------------------------------------------------------
class SubscriberSlots:
    """Open ``/v1/events`` subscriptions, in all and per address (event-loop only)."""

    def __init__(self, total: int, per_address: int, refusals: Refusals | None = None) -> None:
        self.total = total
        self.per_address = per_address
        self.refusals = refusals
        self.open = 0
        self._by_address: Counter[str] = Counter()

    @classmethod
    def of(cls, api: ApiConfig, refusals: Refusals | None = None) -> SubscriberSlots:
        return cls(api.max_subscribers, api.max_subscribers_per_address, refusals)

    def take(self, address: str) -> str | None:
        """Take a slot for ``address``; the refusal's message when there is none."""
        if self.open >= self.total:
            reason = "subscribers"
            message = f"the node serves its most event subscriptions ({self.total}); try later"
        elif self._by_address[address] >= self.per_address:
            reason = "subscribers_per_address"
            message = (
                f"{address} already holds {self.per_address} event subscriptions, the most "
                "one address may; close some first"
            )
        else:
            self.open += 1
            self._by_address[address] += 1
            return None
        if self.refusals is not None:
            self.refusals.refuse(reason, address, message)
        return message

    def give_back(self, address: str) -> None:
        self.open -= 1
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]
