"""Signed reads, node side: who signed an API request (RFC 9421 HTTP Message Signatures).

A route that serves data which is not public declares the dependency and decides who may read::

    from citychain.api._httpsig import SignedDep, require

    @router.get("/v1/data/grants/{id}")
    async def grant(id: str, signed: SignedDep, service: ServiceDep) -> Response:
        require(signed, {owner, grantee}, "only the owner and the grantee read a grant")
        rec = await service.query("data", "grant", {"id": id},
                                  private=True, caller=signed.address)

The dependency answers **who signed** (:class:`SignedBy`: address, public key, suite) or refuses
with a 401 that says why; **whether that account may read** is the route's decision
(:func:`require` refuses with 403 ``not_authorized`` and the route's reason).

Theory of operation
-------------------
The client side (:mod:`citychain.sdk._httpsig`) says what a signature covers; here the node
checks, in this order, answering 401 with a precise code and message at the first failure:

1. ``Signature-Input`` and ``Signature`` are present (else ``signature_missing``, with an
   ``Accept-Signature`` field (RFC 9421 §5.1) and a ``WWW-Authenticate`` challenge naming
   what to sign), and parse as structured-field dictionaries; exactly one member is tagged
   ``tag="citychain"`` (``signature_invalid`` otherwise).
2. Its parameters: ``keyid`` is ``<suite>:<public key hex>`` of a known suite; ``alg``, if
   given, is that suite's; ``created``, ``expires`` and ``nonce`` are present.
3. It covers ``"@method"``, ``"@target-uri"``, and ``content-digest`` when the request has a
   body (``signature_invalid``: "does not cover ...").
4. Time, on the node's wall clock (the API edge, never state): ``created`` within ±300 s of
   now and ``expires`` not past (``signature_expired``); ``expires`` after ``created`` and at
   most 300 s after it (``signature_invalid``), which bounds how long a nonce must be kept.
5. The signature base over the request **as the node received it** (method, target URI,
   covered fields) and the signature, checked with the key from ``keyid`` by the chain's suite
   code, and the body against the signed ``Content-Digest`` (``signature_invalid`` with the
   library's reason: "Content-Digest does not match the message body", ...).
6. Replay: the pair (``keyid``, ``nonce``) must be new (``signature_replayed``). Only requests
   that passed 1-5 are remembered, each until its signature could no longer be accepted
   (``min(expires, created + 300 s)``), in a cache of bounded size. When the cache is full of
   live entries the node refuses new signed requests for a moment (503 ``unavailable``) rather
   than forget a nonce early: a replay never passes, under any load.

The target URI is rebuilt from the request as received: the path and query exactly as sent
(ASGI ``raw_path`` and ``query_string``, never re-encoded), the scheme of the connection and the
``Host`` header. **Behind a reverse proxy** (TLS terminated in front of the node, a rewritten
Host) the client signs the public URI; then give the node its public origin,
``SignatureVerifier(origin="https://data.city.example")`` installed with :func:`install`, and
the scheme and authority are taken from there instead (the path must reach the node unchanged).
A production node should be given it (``[api] public_origin``): with the ``Host`` header as
received, a request signed for another node of the same chain, captured within its minute,
would be accepted here once (each node keeps its own nonces); with the origin set it is not.

The structured fields, the signature base and the digest check are the
``http-message-signatures`` library's (``HTTPMessageVerifier``); the checks of steps 1-4 and 6
are written here because the library leaves them to the caller ("authorization and replay
detection are always caller policy") and its time checks use a fixed 5 s skew on the process
clock, while this policy needs ±300 s and a clock tests can set.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, cast
from urllib.parse import quote

import http_sf
from fastapi import Depends, FastAPI, Request
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
)

from citychain.api._body import read_body
from citychain.api._errors import CHALLENGE_HEADERS, SIGNATURE_CODES  # a 401's challenge
from citychain.errors import CitychainError, ErrorCode, InvalidInput, Unavailable
from citychain.sdk._httpsig import ALG_BY_SUITE, COVERED, TAG, algorithm_for, parse_keyid

__all__ = [
    "CHALLENGE_HEADERS",
    "DEFAULT_MAX_SKEW_S",
    "DEFAULT_REPLAY_CAPACITY",
    "SIGNATURE_CODES",
    "SignatureVerifier",
    "SignedBy",
    "SignedDep",
    "check_signature",
    "install",
    "refuse",
    "require",
    "signed_request",
]

#: How far ``created`` may be from the node's clock, either way, and the longest validity.
DEFAULT_MAX_SKEW_S = 300
#: Most nonces remembered at once (each for at most ~10 minutes).
DEFAULT_REPLAY_CAPACITY = 100_000
#: Longest nonce accepted.
MAX_NONCE = 128
#: Largest body a signed route reads, when the app has no limits of its own.
_DEFAULT_MAX_BODY = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SignedBy:
    """Who signed a request, as checked: the account and the signature's parameters."""

    #: The account's 20-byte address (the suite's derivation, as for transactions).
    address: bytes
    public_key: bytes
    #: The suite's name: ``ed25519`` or ``sm2-sm3``.
    suite: str
    keyid: str
    created: int
    expires: int
    nonce: str
    #: The request body the signed ``Content-Digest`` covers (``b""`` when there is none).
    body: bytes


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.SIGNATURE_INVALID)


def _expired(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.SIGNATURE_EXPIRED)


class _Fields:
    """Received header field lines as the library reads them (read-only)."""

    def __init__(self, lines: Sequence[tuple[str, str]]) -> None:
        self._lines = [(k.lower(), v) for k, v in lines]

    def items(self) -> Iterable[tuple[str, str]]:
        return self._lines

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(k == name.lower() for k, _ in self._lines)

    def get(self, name: str) -> str | None:
        """The field's value, repeated lines joined by ", " (RFC 9110 §5.3); None if absent."""
        values = [v for k, v in self._lines if k == name]
        return ", ".join(values) if values else None


@dataclass
class _Message:
    method: str
    url: str
    headers: _Fields


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, keyid: str, public_key: bytes) -> None:
        self._keyid = keyid
        self._public_key = public_key

    def resolve_public_key(self, key_id: str) -> bytes | None:
        return self._public_key if key_id == self._keyid else None


class _Verifier(HTTPMessageVerifier):
    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        """Checked before, by :meth:`SignatureVerifier.verify`, on its own clock and skew."""


class _ReplayCache:
    """(keyid, nonce) pairs seen, each kept until its signature can no longer be accepted."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._until: dict[tuple[str, str], int] = {}
        self._heap: list[tuple[int, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._until)

    def add(self, key: tuple[str, str], until: int, now: int) -> None:
        with self._lock:
            while self._heap and self._heap[0][0] < now:
                end, old = heapq.heappop(self._heap)
                if self._until.get(old) == end:
                    del self._until[old]
            if key in self._until:
                raise InvalidInput(
                    f"this signature's nonce {key[1][:40]!r} was already used by this key: a "
                    "replayed request (sign each request afresh)",
                    ErrorCode.SIGNATURE_REPLAYED,
                )
            if len(self._until) >= self.capacity:
                raise Unavailable(
                    "too many signed requests in the last minutes to remember their nonces; "
                    "try again shortly",
                    ErrorCode.UNAVAILABLE,
                )
            self._until[key] = until
            heapq.heappush(self._heap, (until, key))


class SignatureVerifier:
    """Checks RFC 9421 signatures on requests (see the module). One per app: it holds the
    replay cache.

    ``origin`` (``"https://host[:port]"``) is the public scheme and authority clients address
    when the node sits behind a proxy; None takes them from the connection and ``Host``.
    ``clock`` is the node's wall clock in seconds (tests set it)."""

    def __init__(
        self,
        *,
        origin: str | None = None,
        max_skew_s: int = DEFAULT_MAX_SKEW_S,
        replay_capacity: int = DEFAULT_REPLAY_CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if origin is not None:
            scheme, sep, authority = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not authority or "/" in authority:
                raise ValueError(f"origin must be http(s)://host[:port], got {origin!r}")
        if max_skew_s <= 0 or replay_capacity <= 0:
            raise ValueError("max_skew_s and replay_capacity must be positive")
        self.origin = origin
        self.max_skew_s = max_skew_s
        self._clock = clock
        self._replays = _ReplayCache(replay_capacity)

    def target_uri(self, scope: Any, host: str | None) -> str:
        """The URI a request was addressed by, as received (see the module on proxies)."""
        if self.origin is not None:
            base = self.origin
        else:
            if not host:
                raise _invalid("the request has no Host header: its @target-uri is unknown")
            base = f"{scope.get('scheme', 'http')}://{host}"
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else quote(scope.get("path", "/"))
        query = scope.get("query_string", b"").decode("latin-1")
        return f"{base}{path}?{query}" if query else f"{base}{path}"

    def verify(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        body_bound: bool = False,
    ) -> SignedBy:
        """Who signed this request; raises the 401 refusal (or 503 with a full replay cache).

        ``body_bound``: the route's URI names the hash of the body (a content-addressed PUT)
        and the route checks the body against it, so the signed ``@target-uri`` already binds
        the body and no ``Content-Digest`` is required (one SHA-256 pass fewer per byte)."""
        fields = _Fields(headers)
        label, components, params = self._select(fields)
        keyid = params.get("keyid")
        if not isinstance(keyid, str):
            raise _invalid("the signature has no keyid (the signer's '<suite>:<public key hex>')")
        suite, public_key = parse_keyid(keyid)
        alg = params.get("alg")
        if alg is not None and alg != ALG_BY_SUITE[suite.name]:
            raise _invalid(f"alg {alg!r} does not match the {suite.name} key in keyid")
        needed = [*COVERED, *(("content-digest",) if body and not body_bound else ())]
        missing = [c for c in needed if c not in components]
        if missing:
            raise _invalid(
                "the signature does not cover "
                + ", ".join(f'"{c}"' for c in missing)
                + " (every signed request covers @method and @target-uri, and content-digest "
                "when it has a body)"
            )
        created, expires, nonce = self._check_params(params)
        digested = body if "content-digest" in components or not body_bound else None
        check_signature(
            method, url, headers, digested, suite.name, keyid, public_key, tag=TAG, label=label
        )
        until = min(expires, created + self.max_skew_s)
        self._replays.add((keyid, nonce), until, int(self._clock()))
        return SignedBy(
            suite.address(public_key), public_key, suite.name, keyid, created, expires, nonce, body
        )

    def _select(self, fields: _Fields) -> tuple[str, list[str], dict[str, Any]]:
        """The one signature tagged ``citychain``: its label, covered components, params."""
        inputs, signatures = fields.get("signature-input"), fields.get("signature")
        if inputs is None and signatures is None:
            raise InvalidInput(
                "this route reads only requests signed by an authorised account (RFC 9421 HTTP "
                f'Message Signatures, tag="{TAG}"); the request has no signature',
                ErrorCode.SIGNATURE_MISSING,
            )
        if inputs is None or signatures is None:
            raise _invalid("a signed request has both Signature-Input and Signature fields")
        try:
            parsed = http_sf.parse(inputs.encode("latin-1"), tltype="dictionary")
        except (ValueError, TypeError, UnicodeEncodeError):
            raise _invalid(
                "Signature-Input is not a structured-field dictionary (RFC 9421 §4.1)"
            ) from None
        ours = [
            (label, member, params)
            for label, (member, params) in cast(dict[str, Any], parsed).items()
            if params.get("tag") == TAG
        ]
        if not ours:
            raise _invalid(f'no signature in Signature-Input is tagged tag="{TAG}"')
        if len(ours) > 1:
            raise _invalid(f'more than one signature is tagged tag="{TAG}"')
        label, member, params = ours[0]
        if not isinstance(member, list):
            raise _invalid(f"Signature-Input member {label!r} is not an inner list")
        components = [
            item for item, item_params in member if isinstance(item, str) and not item_params
        ]
        return label, components, dict(params)

    def _check_params(self, params: dict[str, Any]) -> tuple[int, int, str]:
        created, expires, nonce = (params.get(p) for p in ("created", "expires", "nonce"))
        for name, value in (("created", created), ("expires", expires)):
            if type(value) is not int:
                raise _invalid(f"the signature has no {name} parameter (an integer, seconds)")
        assert isinstance(created, int) and isinstance(expires, int)
        if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE:
            raise _invalid(f"the signature has no nonce parameter (a string of 1 to {MAX_NONCE})")
        now = int(self._clock())
        skew = self.max_skew_s
        if abs(now - created) > skew:
            when = "in the future" if created > now else "old"
            raise _expired(
                f"the signature was created {abs(now - created)} s {when} by the node's clock; "
                f"at most {skew} s either way is accepted (check the signer's clock)"
            )
        if expires <= now:
            raise _expired(f"the signature expired {now - expires} s ago")
        if not created < expires <= created + skew:
            raise _invalid(f"expires must be after created, by at most {skew} s")
        return created, expires, nonce


def check_signature(
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes | None,
    suite_name: str,
    keyid: str,
    public_key: bytes,
    *,
    tag: str | None = None,
    label: str | None = None,
) -> None:
    """The signature check proper (step 5 of the module): the signature base of the request
    ``method url headers`` for the signature ``keyid`` (selected by ``tag`` and ``label``;
    the only one when both are None), checked with ``public_key`` by the suite, and ``body``
    against the signed ``Content-Digest`` (not checked when ``body`` is None). No policy: no
    time, coverage or replay check. Raises ``signature_invalid`` with the reason."""
    try:
        _Verifier(
            signature_algorithm=algorithm_for(suite_name),
            key_resolver=_OneKey(keyid, public_key),
        ).verify(
            _Message(method, url, _Fields(headers)),
            max_age=None,
            expect_tag=tag,
            expect_label=label,
            body=body,
        )
    except HTTPMessageSignaturesException as exc:  # InvalidSignature included
        raise _invalid(f"the signature is not valid for this request: {exc}") from None


def install(app: FastAPI, verifier: SignatureVerifier) -> None:
    """Make ``verifier`` the one ``app``'s signed routes use (e.g. with the public ``origin``
    of a node behind a proxy). Without it, a default one is made on first use."""
    app.state.signature_verifier = verifier


def public_base(request: Any) -> str:
    """The URL clients address this node's API by: ``[api] public_origin`` when set (the
    city's gateway in front of every node, so what a node writes in a document, such as the
    IRIs of the data catalogue, is the same whichever node wrote it), else the request's."""
    origin = verifier_of(request.app).origin
    return origin if origin is not None else str(request.base_url).rstrip("/")


def verifier_of(app: Any) -> SignatureVerifier:
    found = getattr(app.state, "signature_verifier", None)
    if found is None:
        found = SignatureVerifier()
        app.state.signature_verifier = found
    return cast(SignatureVerifier, found)


async def signed_request(request: Request) -> SignedBy:
    """FastAPI dependency: who signed this request (see the module), or the 401 refusal.

    It reads the body (within the app's body limit) to check its digest; the route gets the
    same bytes from :attr:`SignedBy.body` (``request.body()`` also answers them)."""
    return await _signed(request, body_bound=False)


async def signed_content_addressed(request: Request) -> SignedBy:
    """As :func:`signed_request`, for a route whose URI names the hash of its body and which
    checks the body against it (a content-addressed store's PUT): no ``Content-Digest`` is
    required, the signed ``@target-uri`` binding the body through that hash."""
    return await _signed(request, body_bound=True)


async def _signed(request: Request, *, body_bound: bool) -> SignedBy:
    verifier = verifier_of(request.app)
    limits = getattr(request.app.state, "limits", None)
    body = await read_body(request, getattr(limits, "max_body_bytes", _DEFAULT_MAX_BODY))
    # Starlette keeps a body it has read in ``_body``; setting it lets the route and any later
    # reader (``request.body()``, ``request.stream()``) see these bytes, the stream being spent.
    request._body = body
    url = verifier.target_uri(request.scope, request.headers.get("host"))
    return verifier.verify(
        request.method, url, request.headers.items(), body, body_bound=body_bound
    )


#: ``signed: SignedDep`` in a route's parameters: who signed the request.
SignedDep = Annotated[SignedBy, Depends(signed_request)]
#: The same for a content-addressed PUT (the route checks the body against its URI's hash).
ContentAddressedDep = Annotated[SignedBy, Depends(signed_content_addressed)]


def refuse(signed: SignedBy, reason: str) -> CitychainError:
    """The 403 ``not_authorized`` refusal of ``signed``'s account, saying ``reason``."""
    return InvalidInput(
        f"account {signed.address.hex()} may not read this: {reason}", ErrorCode.NOT_AUTHORIZED
    )


def require(
    signed: SignedBy,
    allowed: Collection[bytes] | Callable[[SignedBy], bool],
    reason: str,
) -> None:
    """Refuse (403 ``not_authorized``, with ``reason``) unless the signer's address is in
    ``allowed``, or ``allowed(signed)`` is true. For a check that must await (a contract
    query), decide in the route and ``raise refuse(signed, reason)``."""
    ok = allowed(signed) if callable(allowed) else signed.address in allowed
    if not ok:
        raise refuse(signed, reason)
