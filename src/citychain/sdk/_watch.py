"""A client's transport, watched (for :mod:`citychain.sdk._probe`): the status of the last
answer, or the network error that stopped the last request, so that how a read failed can be
told apart beyond the typed error the client raises.

This module imports httpx; the SDK imports it only when a probe is made."""

from __future__ import annotations

import httpx


class Watch(httpx.BaseTransport):
    """``inner`` (by default httpx's own network transport, as a client makes it), noting
    the status of the last answer (``status``) or the network error of the last request
    (``error``); one request at a time."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self._inner = inner if inner is not None else httpx.HTTPTransport()
        self.status: int | None = None
        self.error: httpx.TransportError | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.status, self.error = None, None
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError as exc:
            self.error = exc
            raise
        self.status = response.status_code
        return response

    def close(self) -> None:
        self._inner.close()
