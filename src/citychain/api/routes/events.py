"""Committed events over a WebSocket (``/v1/events``), and the 426 a plain GET gets.

Theory of operation: after the filters are checked and the subscription made, two tasks run
side by side: ``forward`` sends each event of the node's stream as a text message, and
``until_disconnect`` reads the socket until the client goes. With ``progress=true``,
``forward`` also sends a ``PositionMessage`` when it has waited :data:`PROGRESS_EVERY` for
the next event and the stream's position moved since it last said (blocks without a matching
event). It is the one task that sends, and it waits on the same pending ``__anext__`` across
those seconds (never cancelling it, which would end the node's stream), so a position is
sent only after every event up to it. Whichever ends first ends the
connection. If the stream ended (the node closed a subscriber too slow to keep up, or is
stopping) or failed, the client gets a ``ClosedMessage`` saying why, then a close frame with
a matching code (1013 "try again later" for unavailable, 1008 otherwise). In every case both
tasks are cancelled and awaited and the subscription closed, so nothing is left buffering.

Subscriptions are capped in all and per client address (``[api] max_subscribers`` and
``max_subscribers_per_address``, see :mod:`citychain.api.limits`): a handshake over a cap is
answered 503 ``{"code": "unavailable", "message": ...}`` and never becomes a subscription.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from citychain.api import models as m
from citychain.api._body import check_name
from citychain.api._errors import INTERNAL_MESSAGE, bad_arguments, error_response, http_status, log
from citychain.api._json import dumps
from citychain.api._withhold import subscriber_sees
from citychain.api.limits import SubscriberSlots
from citychain.api.routes._common import ServiceDep
from citychain.api.service import EventStream, NodeService
from citychain.errors import CitychainError, ErrorCode
from citychain.types.answers import (
    TxFilter,
    closed_message_json,
    event_message_json,
    position_message_json,
)

router = APIRouter(tags=["events"])

#: Seconds a ``progress=true`` stream waits for an event before it says how far it got.
PROGRESS_EVERY = 1.0


@router.get(
    "/v1/events",
    status_code=426,
    response_model=m.ErrorBody,
    summary="Committed events (WebSocket)",
)
async def events_http() -> Response:
    """A WebSocket endpoint: connect to
    ``ws://HOST/v1/events?contract=&type=&from_height=&progress=`` (all optional). Each text
    message is an ``EventMessage``; the server sends a ``ClosedMessage`` before it closes the
    stream. With ``from_height`` the stream starts at that committed block (the past blocks'
    events read back first, then the live ones: each event once, in commit order); a
    subscriber closed for falling behind got every event before the one the
    ``ClosedMessage`` names the height of, and resumes from it. With ``progress=true`` the
    server also sends a ``PositionMessage`` (every matching event up to its height was sent)
    when the chain moved on and no event came for a second: a reader of rare events notes
    how far it got. The events of a private call (a contract's ``private_methods``, e.g. a
    data request or download) go only to a subscriber whose handshake is signed (RFC 9421,
    over its ``http(s)://`` URI) by a member in good standing or by the call's sender or
    endorser. A plain HTTP GET answers 426."""
    return error_response(
        426,
        ErrorCode.UNSUPPORTED,
        "/v1/events is a WebSocket endpoint: connect with ws:// (or wss://) "
        "and optional ?contract=&type=&from_height=&progress= parameters",
    )


@router.websocket("/v1/events")
async def events(ws: WebSocket, service: ServiceDep) -> None:
    slots = _slots(ws)
    address = ws.client.host if ws.client is not None else "unknown"
    refused = slots.take(address)
    if refused is not None:
        await _deny(ws, refused)
        return
    try:
        try:
            shows_private = subscriber_sees(ws, service)
        except CitychainError as exc:  # a signature that does not verify: 401, as on GETs
            await _deny(ws, exc.message, http_status(exc), exc.code)
            return
        await ws.accept()
        try:
            progress = _progress(ws)
            stream = _subscribe(ws, service, shows_private)
        except CitychainError as exc:
            await _close_ws(ws, exc.code, exc.message)
            return
        await _pump(ws, stream, progress)
    finally:
        slots.give_back(address)


def _slots(ws: WebSocket) -> SubscriberSlots:
    """The app's subscription caps (``[api] max_subscribers...``, set by the server), or the
    defaults for an app built without them."""
    slots = getattr(ws.app.state, "subscribers", None)
    if not isinstance(slots, SubscriberSlots):
        # Here, not at import: citychain.node would load RocksDB into the API (tests/arch).
        from citychain.node.config import ApiConfig

        slots = ws.app.state.subscribers = SubscriberSlots.of(ApiConfig())
    return slots


async def _deny(
    ws: WebSocket, message: str, status: int = 503, code: ErrorCode = ErrorCode.UNAVAILABLE
) -> None:
    """Refuse the handshake with ``status`` and ``{"code", "message"}`` (or, where the server
    cannot answer a handshake in HTTP, accept it and close with a ClosedMessage saying why)."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        headers = {"Retry-After": "1"} if status == 503 else None
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await ws.send_denial_response(error_response(status, code, message, headers=headers))
        return
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await ws.accept()
    await _close_ws(ws, code, message)


def _subscribe(ws: WebSocket, service: NodeService, shows_private: TxFilter | None) -> EventStream:
    """The subscription the query parameters ask for (``contract``, ``type``, both optional),
    with the private calls its handshake's signer may read (:mod:`citychain.api._withhold`)."""
    params = ws.query_params
    unknown = sorted(set(params) - {"contract", "type", "from_height", "progress"})
    if unknown:
        raise bad_arguments(f"unknown query parameter {unknown[0]!r}")
    contract, event_type = params.get("contract"), params.get("type")
    if contract is not None:
        check_name(contract, "contract")
    if event_type is not None:
        check_name(event_type, "type")
    from_height = None
    raw = params.get("from_height")
    if raw is not None:
        if not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 19 and int(raw) >= 1):
            raise bad_arguments(f"from_height must be a block height (1, 2, ...), got {raw[:40]!r}")
        from_height = int(raw)
    return service.subscribe(contract, event_type, shows_private, from_height)


def _progress(ws: WebSocket) -> bool:
    """The ``progress`` parameter: ``true`` or ``false`` (the default)."""
    raw = ws.query_params.get("progress", "false")
    if raw not in ("true", "false"):
        raise bad_arguments(f"progress must be true or false, got {raw[:40]!r}")
    return raw == "true"


async def _pump(ws: WebSocket, stream: EventStream, progress: bool = False) -> None:
    """Forward ``stream`` to ``ws`` until either ends (see the module docstring)."""

    async def forward() -> None:
        if not progress:
            async for item in stream:
                await ws.send_text(dumps(event_message_json(item)).decode())
            return
        said = stream.position
        events = aiter(stream)
        while True:
            taking = asyncio.ensure_future(anext(events))
            try:
                while not (await asyncio.wait({taking}, timeout=PROGRESS_EVERY))[0]:
                    if stream.position > said:
                        said = stream.position
                        await ws.send_text(dumps(position_message_json(said)).decode())
            finally:
                taking.cancel()  # only when this task itself is cancelled or fails
            try:
                item = taking.result()
            except StopAsyncIteration:
                return
            await ws.send_text(dumps(event_message_json(item)).decode())

    async def until_disconnect() -> None:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    pump = asyncio.ensure_future(forward())
    watch = asyncio.ensure_future(until_disconnect())
    try:
        done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        if pump in done:
            await _close_after(ws, stream, pump.exception())
    finally:
        for task in (pump, watch):
            task.cancel()
        for task in (pump, watch):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        stream.close("client disconnected")


async def _close_after(ws: WebSocket, stream: EventStream, failure: BaseException | None) -> None:
    """Tell the client why the stream ended (``failure`` None: the node ended it)."""
    if failure is None:
        reason = stream.closed_reason or "the event stream ended"
        await _close_ws(ws, ErrorCode.UNAVAILABLE, reason)
    elif isinstance(failure, CitychainError) and http_status(failure) < 500:
        await _close_ws(ws, failure.code, failure.message)
    elif not isinstance(failure, WebSocketDisconnect | OSError):
        log.error("event stream failed", exc_info=failure)
        await _close_ws(ws, ErrorCode.INTERNAL, INTERNAL_MESSAGE)


async def _close_ws(ws: WebSocket, code: ErrorCode, reason: str) -> None:
    """Send a ClosedMessage, then close with a matching WebSocket close code."""
    if ws.application_state != WebSocketState.CONNECTED:
        return
    ws_code = 1013 if code in (ErrorCode.UNAVAILABLE, ErrorCode.MEMPOOL_FULL) else 1008
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await ws.send_text(dumps(closed_message_json(code, reason)).decode())
        await ws.close(ws_code, reason.encode()[:120].decode(errors="ignore"))
