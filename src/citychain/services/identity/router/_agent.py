"""The issuer's and the holder's own service: the W3C VC-API issuer and holder endpoints.

Theory of operation
-------------------
A validator verifies credentials for anyone (``/credentials/verify``, ``/presentations/verify``
on every node) but holds no one's keys. Issuing needs the bureau's key and presenting needs
the citizen's, so those endpoints are served by a separate process that runs where the key
is: ``citychain vc serve`` for an issuer, ``citychain wallet serve`` for a holder. Both are
this app, with an :class:`Issuer`, a :class:`~citychain.services.identity.sdk.Wallet`, or both.

* **Who may call**: every route needs ``Authorization: Bearer <token>``; the app keeps only the
  token's SHA-256 and compares in constant time. No token or a wrong one: 401
  ``unauthenticated`` (with ``WWW-Authenticate: Bearer``), and nothing is done.
* **Issuing** (``POST /credentials/issue``, one credential, VC-API; ``POST
  /credentials/issue/batch``, up to 10,000, every one or none): the credential's issuer must
  be this issuer (else ``wrong_issuer``); the chain's register must trust it for every type
  (asked of the node, else 403 ``issuer_not_trusted``); with a status list, each credential
  gets a ``BitstringStatusListEntry`` whose index comes from a keyed permutation of a counter
  (:class:`~citychain.services.identity.sdk.IndexAllocator`, keyed by a value derived from
  the issuer's key, so indexes say nothing of order and the allocation survives restarts).
  The counter is advanced on disk, durably, *before* signing: a refused or crashed batch
  wastes its numbers but never hands one index to two credentials.
* **Holding** (``GET /credentials``, ``GET``/``DELETE /credentials/{id}``, ``POST
  /credentials`` to store one, ``POST /presentations`` to prove a VP over a verifier's
  challenge and domain, ``POST /presentations/sd-jwt`` to disclose chosen claims): the
  wallet's methods, each change written to its encrypted file before the answer.
* Errors are the node API's: ``{"code", "message"}`` with the status of the code's row in
  :mod:`citychain.errors`; a batch refusal adds ``index``, the refused item.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from citychain import __version__
from citychain.api._body import read_body
from citychain.api._errors import (
    citychain_error_response,
    on_citychain_error,
    on_http_exception,
    on_validation_error,
)
from citychain.api._json import JSONResponse
from citychain.errors import BatchRefused, CitychainError, ErrorCode, InvalidInput
from citychain.services.identity.sdk import CRYPTOSUITES, EDDSA_JCS_2022, MAX_BATCH, Issuer, Wallet

#: The most a request body may hold: a batch of 10,000 licences is about 8 MB.
MAX_BODY_BYTES = 64 * 1024 * 1024


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


async def _body(request: Request) -> dict[str, Any]:
    raw = await read_body(request, MAX_BODY_BYTES)  # refused as it streams in, never buffered
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput("the body is not JSON", ErrorCode.MALFORMED) from None
    if not isinstance(value, dict):
        raise _bad("the body is a JSON object")
    return value


def _options(body: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise _bad("options is a JSON object")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise _bad(f"unknown option {unknown[0]!r} (this endpoint takes {', '.join(allowed)})")
    return options


def _cryptosuite(options: dict[str, Any]) -> str:
    suite = options.get("cryptosuite", EDDSA_JCS_2022)
    if suite not in CRYPTOSUITES:
        raise _bad(f"cryptosuite must be one of {', '.join(CRYPTOSUITES)}, got {suite!r}")
    return str(suite)


def _text(options: dict[str, Any], name: str) -> str:
    value = options.get(name)
    if not isinstance(value, str) or not value:
        raise _bad(f"options.{name} is required (a text the verifier gave)")
    return value


def agent_app(*, token: str, issuer: Issuer | None = None, wallet: Wallet | None = None) -> FastAPI:
    """The VC-API issuer and/or holder service for ``issuer`` and ``wallet``; every request
    must carry ``Authorization: Bearer <token>``."""
    if len(token) < 16:
        raise _bad("the bearer token must be at least 16 characters")
    token_hash = hashlib.sha256(token.encode()).digest()
    app = FastAPI(
        title="citychain credential agent (VC-API issuer and holder)",
        version=__version__,
        default_response_class=JSONResponse,
        docs_url=None,
        redoc_url=None,
    )
    app.add_exception_handler(CitychainError, on_citychain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    lock = threading.Lock()  # one wallet change at a time

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Response:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        digest = hashlib.sha256(given.strip().encode()).digest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(digest, token_hash):
            return JSONResponse(
                {
                    "code": ErrorCode.UNAUTHENTICATED.value,
                    "message": "this service needs Authorization: Bearer <its token>",
                },
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        response: Response = await call_next(request)
        return response

    if issuer is not None:
        _issuer_routes(app, issuer)
    if wallet is not None:
        _holder_routes(app, wallet, lock)
    return app


def _issuer_routes(app: FastAPI, issuer: Issuer) -> None:
    @app.post("/credentials/issue", status_code=201, summary="Issue one credential (VC-API)")
    async def issue_one(request: Request) -> Response:
        body = await _body(request)
        suite = _cryptosuite(_options(body, ("cryptosuite", "credentialId")))
        credential = body.get("credential")
        if not isinstance(credential, dict):
            raise _bad("the body needs credential: the unsigned credential (a JSON object)")
        if "credentialId" in body.get("options", {}):
            credential.setdefault("id", str(body["options"]["credentialId"]))
        try:
            [vc] = await run_in_threadpool(issuer.issue, [credential], suite)
        except BatchRefused as exc:  # one item: its own reason, as VC-API expects
            raise InvalidInput(exc.message.partition(": ")[2], exc.code) from None
        return JSONResponse({"verifiableCredential": vc}, 201)

    @app.post(
        "/credentials/issue/batch",
        status_code=201,
        summary=f"Issue up to {MAX_BATCH:,} credentials, every one or none",
    )
    async def issue_many(request: Request) -> Response:
        body = await _body(request)
        suite = _cryptosuite(_options(body, ("cryptosuite",)))
        credentials = body.get("credentials")
        if not isinstance(credentials, list):
            raise _bad("the body needs credentials: a list of unsigned credentials")
        try:
            issued = await run_in_threadpool(issuer.issue, credentials, suite)
        except BatchRefused as exc:
            answer = citychain_error_response(exc, "issue batch")
            return JSONResponse(
                {**exc.to_dict(), "index": exc.index, "total": exc.total}, answer.status_code
            )
        return JSONResponse({"verifiableCredentials": issued}, 201)


def _holder_routes(app: FastAPI, wallet: Wallet, lock: threading.Lock) -> None:
    def locked(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with lock:
            return fn(*args, **kwargs)

    @app.get("/credentials", summary="The wallet's credentials (VC-API holder)")
    async def list_credentials() -> Response:
        return JSONResponse({"credentials": [c.to_json() for c in wallet.credentials()]})

    @app.post("/credentials", status_code=201, summary="Store an issued credential")
    async def store(request: Request) -> Response:
        body = await _body(request)
        value = body.get("verifiableCredential", body.get("sdJwt"))
        if value is None:
            raise _bad("the body needs verifiableCredential (an object) or sdJwt (a text)")
        cid = await run_in_threadpool(locked, wallet.add, value)
        return JSONResponse({"id": cid}, 201)

    @app.get("/credentials/{cid}", summary="One stored credential")
    async def get_one(cid: str) -> Response:
        value = wallet.get(cid)
        key = "sdJwt" if isinstance(value, str) else "verifiableCredential"
        return JSONResponse({"id": cid, key: value})

    @app.delete("/credentials/{cid}", status_code=204, summary="Forget a stored credential")
    async def delete_one(cid: str) -> Response:
        await run_in_threadpool(locked, wallet.remove, cid)
        return Response(status_code=204)

    @app.post("/presentations", status_code=201, summary="Prove a presentation (VC-API holder)")
    async def present(request: Request) -> Response:
        body = await _body(request)
        options = _options(body, ("challenge", "domain", "key", "cryptosuite"))
        ids = body.get("credentialIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _bad("the body needs credentialIds: the ids of the credentials to present")
        vp = await run_in_threadpool(
            wallet.present,
            ids,
            challenge=_text(options, "challenge"),
            domain=_text(options, "domain"),
            key=str(options.get("key", "default")),
            cryptosuite=_cryptosuite(options),
        )
        return JSONResponse({"verifiablePresentation": vp}, 201)

    @app.post(
        "/presentations/sd-jwt", status_code=201, summary="Disclose chosen claims of an SD-JWT"
    )
    async def present_sd_jwt(request: Request) -> Response:
        body = await _body(request)
        options = _options(body, ("nonce", "audience", "key", "now"))
        cid, disclose = body.get("credentialId"), body.get("disclose")
        if not isinstance(cid, str) or not isinstance(disclose, list):
            raise _bad("the body needs credentialId and disclose (the claims to show)")
        if not all(isinstance(d, str | list) for d in disclose):
            raise _bad("each claim in disclose is a name or a path (a list of names)")
        paths = [d if isinstance(d, str) else tuple(d) for d in disclose]
        # the agent is an edge, not state: it may read the clock for the binding's iat
        now = options.get("now", int(time.time()))
        if type(now) is not int:
            raise _bad("options.now is the time to bind, in whole seconds since 1970")
        shown = wallet.present_sd_jwt(
            cid,
            paths,
            nonce=_text(options, "nonce"),
            audience=_text(options, "audience"),
            now=now,
            key=str(options.get("key", "default")),
        )
        return JSONResponse({"presentation": shown}, 201)
