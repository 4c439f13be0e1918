"""Errors as HTTP answers: every error body is ``{"code": ..., "message": ...}``.

The HTTP status follows the error code alone, from the one table in :mod:`citychain.errors`
(:data:`~citychain.errors.HTTP_STATUS_BY_CODE`), so the API raises the tree's own classes with
the code that says why (``InvalidInput(..., ErrorCode.TOO_LARGE)`` is a 413). A fault that is
not the caller's (``InternalError``, a proof the node itself cannot build, any unexpected
exception) is logged with its traceback and answered with a generic 500 that reveals nothing
about the node. Starlette's own routing answers (no such endpoint, method not allowed) are
given the same body shape here, with their own statuses (404, 405).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citychain.api._json import JSONResponse
from citychain.errors import HTTP_STATUS_BY_CODE, CitychainError, ErrorCode, InvalidInput
from citychain.sdk._httpsig import TAG

log = logging.getLogger("citychain.api")

INTERNAL_MESSAGE = "internal error; see node log"


def bad_arguments(message: str) -> InvalidInput:
    """The refusal of arguments the caller got wrong (400 ``bad_arguments``)."""
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def http_status(exc: CitychainError) -> int:
    """The HTTP status that answers ``exc``: its code's, from the one table."""
    # Every code has a status (tests/test_errors.py); 500 only guards a code added in a hurry.
    return HTTP_STATUS_BY_CODE.get(exc.code, 500)


def error_response(
    status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code.value, "message": message}, status, headers=headers)


def internal_error_response() -> JSONResponse:
    return error_response(500, ErrorCode.INTERNAL, INTERNAL_MESSAGE)


def citychain_error_response(exc: CitychainError, where: str) -> JSONResponse:
    """The answer to ``exc``; faults that are not the caller's are logged and hidden."""
    status = http_status(exc)
    if status >= 500 and status != 503:
        log.error("%s failed: %s", where, exc, exc_info=exc)
        return internal_error_response()
    headers = {"Retry-After": "1"} if status in (429, 503) else _challenge(exc.code)
    return error_response(status, exc.code, exc.message, headers)


#: The refusals of a signed read (:mod:`citychain.api._httpsig`), answered with a challenge.
SIGNATURE_CODES = frozenset(
    {
        ErrorCode.SIGNATURE_MISSING,
        ErrorCode.SIGNATURE_INVALID,
        ErrorCode.SIGNATURE_EXPIRED,
        ErrorCode.SIGNATURE_REPLAYED,
    }
)


#: What a 401 asks for: RFC 9421 §5.1 ``Accept-Signature`` (the components and parameters to
#: sign; ``content-digest`` too when there is a body), and the ``WWW-Authenticate`` challenge
#: RFC 9110 §11.6.1 requires on a 401. RFC 9421 registers no authentication scheme; the
#: ``Signature`` scheme name here is descriptive. (Here, not in ``_httpsig``, which imports
#: this module: one direction, no circle.)
CHALLENGE_HEADERS: Final = {
    "Accept-Signature": f'{TAG}=("@method" "@target-uri");created;expires;nonce;tag="{TAG}"',
    "WWW-Authenticate": f'Signature realm="{TAG}"',
}


def _challenge(code: ErrorCode) -> dict[str, str] | None:
    """A refused signed read says what to sign (RFC 9421 ``Accept-Signature``, and the
    ``WWW-Authenticate`` challenge RFC 9110 wants on a 401)."""
    if code not in SIGNATURE_CODES:
        return None
    return dict(CHALLENGE_HEADERS)


async def on_citychain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CitychainError)
    return citychain_error_response(exc, f"{request.method} {request.url.path}")


def _where(loc: Sequence[Any]) -> str:
    if not loc:
        return "request"
    kind, *rest = loc
    name = ".".join(str(p) for p in rest)
    if kind in ("path", "query", "header", "cookie"):
        return f"{kind} parameter {name!r}"
    if kind == "body":
        return f"body field {name!r}" if name else "body"
    return ".".join(str(p) for p in loc)


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One readable line from pydantic's error list: where, and what is wrong."""
    parts = []
    for err in errors[:5]:
        loc = err.get("loc", ()) if isinstance(err, dict) else ()
        msg = err.get("msg", "invalid value") if isinstance(err, dict) else str(err)
        parts.append(f"{_where(loc)}: {msg}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "; ".join(parts) or "invalid request"


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, ErrorCode.BAD_ARGUMENTS, describe_validation_errors(exc.errors()))


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        return error_response(
            404, ErrorCode.NOT_FOUND, f"no such endpoint: {method} {path} (see /docs)"
        )
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return error_response(
            405,
            ErrorCode.UNSUPPORTED,
            f"method {method} is not allowed on {path}"
            + (f" (allowed: {allowed})" if allowed else ""),
            headers={"Allow": allowed} if allowed else None,
        )
    if exc.status_code >= 500:
        return internal_error_response()
    return error_response(exc.status_code, ErrorCode.BAD_ARGUMENTS, str(exc.detail))


class CatchAll:
    """Outermost ASGI guard: an exception nothing else handled becomes a logged, generic 500.

    Starlette's own fallback answers too, but then re-raises so the server logs the same
    traceback a second time; this logs it once and ends the request cleanly.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except ClientDisconnect:
            return  # the client went (or a read timeout dropped it): nobody to answer
        except Exception as exc:
            # Starlette's handlers wrap an error raised after the start in a RuntimeError.
            cut = exc.__cause__ if isinstance(exc, RuntimeError) else exc
            if started and isinstance(cut, CitychainError):
                # A streamed answer (a download) stopped by a refusal after its status went
                # out, such as a chunk found corrupt in the store: the log says which and why
                # in one line (no traceback: the code is ours and says it), and the connection
                # is dropped short of its Content-Length, so the client sees the transfer cut.
                log.warning(
                    "answer to %s %s cut short: [%s] %s",
                    scope.get("method"),
                    scope.get("path"),
                    cut.code.value,
                    cut.message,
                )
                return
            log.exception("unhandled error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # half a response is out: let the server drop the connection
            await internal_error_response()(scope, receive, send)
