"""Answers to public GETs kept until the next block, given again by the HTTP protocol itself.

Theory of operation
-------------------
Some answers are a function of the request and the committed state only, and are asked again
and again between two blocks: every verifier resolves the same issuers' DIDs and reads the
same status lists. A route that gives such an answer may keep it here (:meth:`Kept.keep`),
under the request's target (path and query, as sent) and its ``Accept`` header, for the
height it read *before* computing the answer. An entry is given only while that height is
still the node's latest (a block committing during the computation can only make the kept
answer newer than its height, and it stops being given when the height moves).

Two readers give kept answers:

* the route itself (:meth:`Kept.get`), for a request that reaches it;
* the node's HTTP protocol (:class:`citychain.api.limits._GuardedHttpProtocol`), *before* any
  ASGI task is made, for a plain ``GET`` (HTTP/1.1, kept alive, no body, no upgrade, one
  ``Accept`` at most) arriving when nothing else is being answered on its connection: it
  writes the status line, the server's own ``date`` and ``server`` headers and the kept
  headers and body, exactly what the route would send. Not while the connection's writes
  are paused (a client that does not read): then the app's way, which waits for the client
  and stops reading its pipelined requests, keeps the memory a connection holds bounded.
  Anything else (``HEAD``, a request pipelined behind one in progress, ``Connection:
  close``, HTTP/1.0) goes the ordinary way too.

Measured: a repeated DID resolution cost the node ~51 µs through uvicorn's cycle and the app,
~15 µs given here (one DID asked by 8 connections: 19,100 → 64,800 resolutions/s).

Answers made by the protocol
----------------------------
A route whose answer is cheap to compute may also give the protocol a *producer*
(:meth:`Kept.add_producer`, for a path prefix): on a miss, the protocol calls it with the
request's key, on the event loop, as the route itself would run. It returns the answer to
write (keeping it, if it may be kept, as the route does), or ``None`` for the app's way: for
anything it does not answer itself (an option it does not parse, a query needing more than
the loop's budget, any error the app renders). Its answer must be byte for byte the route's;
a producer that raises is a bug, answered the app's way (which logs it). A resolution of a
DID asked for the first time since the last block then costs the node its query and its JSON,
not uvicorn's cycle as well (``bench/RESULTS.md``).

Only public, read-only answers may be kept (no signature, no caller-dependent content). Bounded
by ``max_bytes``; when full it starts over, as the chain's query cache does.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import NamedTuple

__all__ = ["Kept", "KeptAnswer", "Key", "Produce", "answer_of", "request_key"]

#: Largest body kept (a status list's credential or token is well under it).
MAX_BODY = 256 * 1024

#: A request's key: its target (path and query, as sent) and its ``Accept`` header.
Key = tuple[bytes, bytes | None]


class KeptAnswer(NamedTuple):
    """An answer as the protocol writes it (immutable: one is given to many requests). A
    named tuple, not a frozen dataclass: one is made for every resolution not kept yet, and
    a frozen dataclass's ``__init__`` (``object.__setattr__`` for each field) cost twice
    as much."""

    status: int
    #: the answer's own headers (``content-length`` and ``content-type`` first), raw
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    #: the status line
    line: bytes
    #: the header lines that follow the server's own, and the blank line
    head: bytes


#: A producer: the answer to a request's key, made now, or None for the app's way.
Produce = Callable[[Key], "KeptAnswer | None"]


#: Status lines by status (looking the phrase up each time was ~2 % of a producer's answer).
_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}


def answer_of(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> KeptAnswer:
    """An answer as the protocol writes it: status line, the route's headers, body."""
    lines = b"".join([name + b": " + value + b"\r\n" for name, value in headers])
    return KeptAnswer(status, tuple(headers), body, _LINES[status], lines + b"\r\n")


def request_key(raw_path: bytes, query_string: bytes, accept: bytes | None) -> Key:
    """The key of a request as a route sees it (ASGI ``raw_path`` and ``query_string``)."""
    return (raw_path + b"?" + query_string if query_string else raw_path, accept)


class Kept:
    """Kept answers of one node's API (see the module docstring)."""

    __slots__ = ("_bytes", "_height", "_producers", "_values", "latest_height", "max_bytes")

    def __init__(self, latest_height: Callable[[], int], max_bytes: int = 16 * 1024 * 1024):
        self.latest_height = latest_height
        self.max_bytes = max_bytes
        self._height = -1
        self._values: dict[Key, KeptAnswer] = {}
        self._bytes = 0
        self._producers: tuple[tuple[bytes, Produce], ...] = ()

    def add_producer(self, prefix: bytes, produce: Produce) -> None:
        """Let the protocol make answers to targets under ``prefix`` by ``produce``."""
        self._producers += ((prefix, produce),)

    def answer(self, key: Key) -> KeptAnswer | None:
        """What the protocol writes for ``key``: the kept answer, else a producer's, else
        None (the app's way)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        target = key[0]
        for prefix, produce in self._producers:
            if target.startswith(prefix):
                return produce(key)
        return None

    def get(self, key: Key) -> KeptAnswer | None:
        """The kept answer to ``key``, if it was computed at the latest height."""
        if not self._values or self.latest_height() != self._height:
            return None
        return self._values.get(key)

    def keep(self, key: Key, height: int, answer: KeptAnswer) -> None:
        """Keep ``answer`` (:func:`answer_of`), computed at ``height`` (read before computing
        it). An answer of an older height than those kept is dropped: a slow request finishing
        late must not empty the newer answers."""
        body = answer.body
        cost = len(body) + len(key[0]) + len(key[1] or b"") + 64 * len(answer.headers) + 200
        if height < self._height or cost > self.max_bytes or len(body) > MAX_BODY:
            return
        if height != self._height or self._bytes + cost > self.max_bytes:
            self._values, self._bytes, self._height = {}, 0, height
        self._values[key] = answer
        self._bytes += cost
