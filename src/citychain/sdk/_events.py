"""Event subscriptions over the node's WebSocket ``/v1/events``.

The server sends one JSON text message per committed event and, before it ends a stream,
a ``{"type": "closed", "code", "reason"}`` message. An ended stream means events may have
been missed (the subscriber fell too far behind, or the node stopped), so iteration raises
that error instead of ending quietly; a stream the client closes itself just ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from citychain.errors import CitychainError, Unavailable
from citychain.sdk import _parse
from citychain.sdk._errors import error_from
from citychain.sdk._types import CommittedEvent


def events_url(base: str, contract: str | None, event_type: str | None) -> str:
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = {k: v for k, v in (("contract", contract), ("type", event_type)) if v is not None}
    path = parts.path.rstrip("/") + "/v1/events"
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def _message(text: str | bytes) -> CommittedEvent:
    """The event in a message; raises the node's error for a ``closed`` message."""
    raw: Any = _parse.parsed("event message", lambda: json.loads(text))
    kind = _parse.parsed("event message", lambda: _parse.obj(raw).get("type"))
    if kind == "closed":
        d = _parse.obj(raw)
        raise error_from(str(d.get("code", "unavailable")), str(d.get("reason", "stream closed")))
    return _parse.parsed("event message", lambda: _parse.committed_event(raw))


def _lost(url: str, exc: Exception) -> Unavailable:
    return Unavailable(f"event stream {url} was cut: {exc}")


class EventSubscription:
    """A blocking iterator of :class:`CommittedEvent`; close it (or use ``with``) when done."""

    def __init__(self, url: str, timeout: float) -> None:
        from websockets.sync.client import connect

        self.url = url
        self._closed_by_us = False
        self._stack = ExitStack()
        try:
            # Entered as a context manager: websockets >= 17.1 deprecates using it bare.
            self._ws = self._stack.enter_context(connect(url, open_timeout=timeout, proxy=None))
        except Exception as exc:  # OSError, TimeoutError, websockets' handshake errors
            raise Unavailable(f"cannot open event stream {url}: {exc}") from None

    def __iter__(self) -> Iterator[CommittedEvent]:
        return self

    def __next__(self) -> CommittedEvent:
        from websockets.exceptions import ConnectionClosed

        try:
            text = self._ws.recv()
        except ConnectionClosed as exc:
            if self._closed_by_us:
                raise StopIteration from None
            raise _lost(self.url, exc) from None
        return _message(text)

    def close(self) -> None:
        self._closed_by_us = True
        self._stack.close()

    def __enter__(self) -> EventSubscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncEventSubscription:
    """``async with client.subscribe(...) as events: async for event in events: ...``"""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._ws: Any = None
        self._closed_by_us = False

    async def __aenter__(self) -> AsyncEventSubscription:
        from websockets.asyncio.client import connect

        try:
            self._ws = await connect(self.url, open_timeout=self.timeout, proxy=None)
        except CitychainError:
            raise
        except Exception as exc:
            raise Unavailable(f"cannot open event stream {self.url}: {exc}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed_by_us = True
        if self._ws is not None:
            await self._ws.close()

    def __aiter__(self) -> AsyncIterator[CommittedEvent]:
        return self

    async def __anext__(self) -> CommittedEvent:
        from websockets.exceptions import ConnectionClosed

        if self._ws is None:
            raise RuntimeError("use 'async with client.subscribe(...) as events'")
        try:
            text = await self._ws.recv()
        except ConnectionClosed as exc:
            if self._closed_by_us:
                raise StopAsyncIteration from None
            raise _lost(self.url, exc) from None
        return _message(text)
