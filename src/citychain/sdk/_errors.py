"""The API's ``{"code", "message"}`` error bodies rebuilt as :mod:`citychain.errors` exceptions.

The code is kept exactly, so ``except TxRejected as e: if e.code == ErrorCode.NONCE_TOO_LOW``
works the same against a remote node as in-process. The class follows the code (a refused
transaction is :class:`TxRejected`, a missing block :class:`NotFound`, ...), as the one table
in :mod:`citychain.errors` says. A code this SDK does not know (a newer node) becomes a plain
:class:`CitychainError` with code ``INTERNAL`` and the node's code in the message.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from citychain.errors import (
    CLASS_BY_CODE,
    CitychainError,
    ErrorCode,
    InternalError,
    InvalidInput,
    NotFound,
    Unavailable,
)

if TYPE_CHECKING:
    import httpx


def error_from(code: str, message: str) -> CitychainError:
    """The exception for an error ``code`` and ``message`` from a node."""
    try:
        known = ErrorCode(code)
    except ValueError:
        return CitychainError(f"{message} (node error code {code!r})", ErrorCode.INTERNAL)
    cls = CLASS_BY_CODE.get(known, CitychainError)
    return cls(message, known)


def error_from_response(response: httpx.Response) -> CitychainError:
    """The exception for an HTTP error answer, whatever its body looks like."""
    body: Any = None
    with contextlib.suppress(ValueError):
        body = response.json()
    if (
        isinstance(body, dict)
        and isinstance(body.get("code"), str)
        and isinstance(body.get("message"), str)
    ):
        return error_from(body["code"], body["message"])
    # Not the API's error shape: a proxy, a load balancer, or not a citychain node at all.
    status = response.status_code
    snippet = response.text[:200].strip()
    message = f"HTTP {status} from {response.request.url}" + (f": {snippet}" if snippet else "")
    if status in (429, 502, 503, 504):
        return Unavailable(message)
    if status == 404:
        return NotFound(message)
    return InternalError(message) if status >= 500 else InvalidInput(message)


def transport_error(url: str, exc: httpx.HTTPError) -> Unavailable:
    """A network failure (refused, reset, timed out) as a transient :class:`Unavailable`."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return Unavailable(f"node at {url} did not answer in time ({type(exc).__name__})")
    return Unavailable(f"cannot reach node at {url}: {exc or type(exc).__name__}")
