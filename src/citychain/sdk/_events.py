"""Event subscriptions over the node's WebSocket ``/v1/events``.

The server sends one JSON text message per committed event and, before it ends a stream,
a ``{"type": "closed", "code", "reason"}`` message. The SDK asks for ``progress=true``, so
the server also says ``{"type": "position", "height"}`` when the chain moved on without an
event for this subscription: iteration skips those and keeps the height in ``position``.
An ended stream means events may have been missed (the subscriber fell too far behind, or
the node stopped), so iteration raises that error instead of ending quietly; a stream the
client closes itself just ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from citychain.crypto import Signer
from citychain.errors import CitychainError, Unavailable
from citychain.sdk import _parse
from citychain.sdk._errors import error_from
from citychain.sdk._types import CommittedEvent


def events_url(
    base: str,
    contract: str | None,
    event_type: str | None,
    from_height: int | None = None,
    *,
    progress: bool = False,
) -> str:
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    asked = (("contract", contract), ("type", event_type), ("from_height", from_height))
    query = {k: str(v) for k, v in asked if v is not None}
    if progress:
        query["progress"] = "true"
    path = parts.path.rstrip("/") + "/v1/events"
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def _message(text: str | bytes) -> CommittedEvent | int:
    """The event in a message, or the height of a ``position`` message; raises the node's
    error for a ``closed`` message."""
    raw: Any = _parse.parsed("event message", lambda: json.loads(text))
    kind = _parse.parsed("event message", lambda: _parse.obj(raw).get("type"))
    if kind == "closed":
        d = _parse.obj(raw)
        raise error_from(str(d.get("code", "unavailable")), str(d.get("reason", "stream closed")))
    if kind == "position":
        return _parse.parsed("event message", lambda: _parse.integer(_parse.obj(raw)["height"]))
    return _parse.parsed("event message", lambda: _parse.committed_event(raw))


class _Stream:
    """What both subscriptions keep. ``position`` is the height up to which every event of
    the subscription was received (None until the stream said or an event showed), so
    subscribing again ``from_height=position + 1`` goes on with no gap and nothing twice."""

    def __init__(
        self,
        url: str,
        timeout: float,
        signer: Signer | None = None,
        from_height: int | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._signer = signer
        self.position = None if from_height is None else from_height - 1
        self._closed_by_us = False

    def _took(self, message: CommittedEvent | int) -> CommittedEvent | None:
        """The event of ``message``, or None for a position (noted)."""
        if isinstance(message, int):
            height, event = message, None
        else:
            height, event = message.height - 1, message  # that block's others may follow
        if self.position is None or height > self.position:
            self.position = height
        return event


def _not_opened(url: str, exc: Exception) -> CitychainError:
    """Why the handshake failed: the node's coded refusal when it answered one (a 401 for a
    signature that does not verify, a 503 when it has too many subscribers), else
    :class:`Unavailable` naming the cause."""
    body = getattr(getattr(exc, "response", None), "body", None)
    if body:
        try:
            d = json.loads(body)
            return error_from(str(d["code"]), f"cannot open event stream {url}: {d['message']}")
        except (ValueError, KeyError, TypeError):
            pass
    return Unavailable(f"cannot open event stream {url}: {exc}")


def _lost(url: str, exc: Exception) -> Unavailable:
    return Unavailable(f"event stream {url} was cut: {exc}")


def signed_headers(url: str, signer: Signer | None) -> dict[str, str]:
    """The RFC 9421 signature fields of a subscription's handshake for ``signer`` (none for
    None). What is signed is the handshake's ``http(s)://`` URI: RFC 6455 sends that GET, and
    the node (or the proxy in front of it) sees it so."""
    if signer is None:
        return {}
    import httpx

    from citychain.sdk._httpsig import sign_request

    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    request = httpx.Request("GET", urlunsplit((scheme, *parts[1:])))
    sign_request(request, signer)
    return {k: request.headers[k] for k in ("signature-input", "signature")}


class EventSubscription(_Stream):
    """A blocking iterator of :class:`CommittedEvent`; close it (or use ``with``) when done."""

    def __init__(
        self,
        url: str,
        timeout: float,
        signer: Signer | None = None,
        from_height: int | None = None,
    ) -> None:  # opens the stream at once
        from websockets.sync.client import connect

        super().__init__(url, timeout, signer, from_height)
        self._stack = ExitStack()
        headers = signed_headers(self.url, self._signer)
        try:
            # Entered as a context manager: websockets >= 17.1 deprecates using it bare.
            self._ws = self._stack.enter_context(
                connect(self.url, open_timeout=self.timeout, proxy=None, additional_headers=headers)
            )
        except Exception as exc:  # OSError, TimeoutError, websockets' handshake errors
            raise _not_opened(self.url, exc) from None

    def __iter__(self) -> Iterator[CommittedEvent]:
        return self

    def __next__(self) -> CommittedEvent:
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                text = self._ws.recv()
            except ConnectionClosed as exc:
                if self._closed_by_us:
                    raise StopIteration from None
                raise _lost(self.url, exc) from None
            event = self._took(_message(text))
            if event is not None:
                return event

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


class AsyncEventSubscription(_Stream):
    """``async with client.subscribe(...) as events: async for event in events: ...``"""

    _ws: Any = None  # opened by ``async with``

    async def __aenter__(self) -> AsyncEventSubscription:
        from websockets.asyncio.client import connect

        try:
            self._ws = await connect(
                self.url,
                open_timeout=self.timeout,
                proxy=None,
                additional_headers=signed_headers(self.url, self._signer),
            )
        except CitychainError:
            raise
        except Exception as exc:
            raise _not_opened(self.url, exc) from None
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
        while True:
            try:
                text = await self._ws.recv()
            except ConnectionClosed as exc:
                if self._closed_by_us:
                    raise StopAsyncIteration from None
                raise _lost(self.url, exc) from None
            event = self._took(_message(text))
            if event is not None:
                return event
