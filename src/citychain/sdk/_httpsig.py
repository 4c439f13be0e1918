"""Signed reads, client side: RFC 9421 HTTP Message Signatures over the SDK's requests.

Data that is not public (grants, audit trails, private records) is read only by a request
signed by an authorised account. The signature is a standard one, RFC 9421, so any HTTP client
with an RFC 9421 library can make it; this module makes it for the SDK::

    with Client(url, signer=alice) as node:      # every request of this client is signed
        node._call(...)                            # (service helpers use it, e.g. client.data)

    httpx.Client(auth=SignedRequests(alice))     # any httpx client, sync or async

Theory of operation
-------------------
What a request's signature covers, and why:

* ``"@method"`` and ``"@target-uri"``: the method and the whole URI (scheme, authority, path,
  query) as the client addressed it. One derived component binds all four; the alternative,
  ``@authority`` + ``@path`` + ``@query``, says the same thing in three lines and leaves the
  scheme out. Behind a TLS-terminating proxy the node is told the public origin it is
  addressed by (:class:`citychain.api._httpsig.SignatureVerifier`'s ``origin``).
* ``content-digest`` (RFC 9530, ``sha-256``) when the request has a body: the header is added
  here and the node checks it against the bytes it received. ``content-type`` is covered too
  when there is a body, so the same bytes cannot be re-read as another format.
* parameters: ``created`` (the signer's clock, seconds), ``expires`` (``created`` + 60 s),
  ``nonce`` (128 random bits, so the node can refuse a replay), ``keyid``, ``alg`` and
  ``tag="citychain"`` (the application, RFC 9421 §2.3, so a signature made for another
  application is never taken for ours). The label is ``citychain``.

``keyid`` is the account's public key in a self-describing text form, ``<suite>:<hex>``
(``ed25519:3b6a…``, ``sm2-sm3:04…``): the suite names as :func:`citychain.crypto.get_suite`
knows them, then the key's bytes in lower-case hex. The node needs no lookup: it reads the key
from ``keyid``, checks the signature with it and derives the account address from it
(:meth:`citychain.crypto.CryptoSuite.address`), as for a transaction. Authorisation (is this
address allowed to read that?) is then the route's decision.

``alg`` is ``ed25519`` (RFC 9421 §3.3.6: Ed25519 over the signature base, no prehash) for
Ed25519 accounts. For SM2 accounts it is ``sm2-sm3``, a name **not** in the IANA HTTP
Signature Algorithms registry: SM2 (GB/T 32918, with the chain's distinguishing ID) over the
signature base, hashed with SM3 inside the scheme, 64-byte ``r || s`` as the suite defines it.

The signature base, the structured fields and the digest are made by the
``http-message-signatures`` library (``HTTPMessageSigner.prepare``/``apply``); the signing
itself is the account's :class:`~citychain.crypto.Signer` (so keystores, PKCS#11 keys and SM2
all work), which is why ``prepare`` + ``apply`` is used rather than the library's own key
handling. The library and ``cryptography`` are imported when a request is first signed, never
with the SDK.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from citychain.crypto import CryptoSuite, Signer, get_suite
from citychain.errors import ErrorCode, InvalidInput

if TYPE_CHECKING:
    import httpx
    from http_message_signatures import HTTPSignatureAlgorithm

__all__ = [
    "ALG_BY_SUITE",
    "COVERED",
    "LABEL",
    "TAG",
    "VALIDITY_S",
    "SignedRequests",
    "algorithm_for",
    "keyid_for",
    "parse_keyid",
    "sign_request",
]

#: The signed application tag (RFC 9421 §2.3 ``tag``): a signature without it is not ours.
TAG = "citychain"
#: The signature's label in ``Signature-Input``/``Signature`` (not signed; ``tag`` is).
LABEL = "citychain"
#: Seconds from ``created`` to ``expires``.
VALIDITY_S = 60
#: Components every request's signature covers (``content-digest`` too when there is a body).
COVERED = ("@method", "@target-uri")
#: ``alg`` by suite: RFC 9421's registered name for Ed25519; ``sm2-sm3`` is not registered.
ALG_BY_SUITE = {"ed25519": "ed25519", "sm2-sm3": "sm2-sm3"}


def keyid_for(suite: CryptoSuite | str, public_key: bytes) -> str:
    """``<suite>:<hex>``: the ``keyid`` of an account's public key."""
    name = suite if isinstance(suite, str) else suite.name
    return f"{name}:{public_key.hex()}"


def parse_keyid(keyid: str) -> tuple[CryptoSuite, bytes]:
    """The suite and public key a ``keyid`` names; :class:`InvalidInput`
    (``signature_invalid``) saying what is wrong otherwise. The key's size is checked here;
    whether it is a valid point is the signature check's business."""
    name, sep, hex_key = keyid.partition(":")
    if not sep or name not in ALG_BY_SUITE:
        raise _invalid(
            f"keyid {keyid[:80]!r} is not '<suite>:<public key hex>' with a suite of "
            f"{', '.join(ALG_BY_SUITE)}"
        )
    try:
        public_key = bytes.fromhex(hex_key)
    except ValueError:
        raise _invalid(f"keyid {keyid[:80]!r}: the public key is not hex") from None
    suite = get_suite(name)
    if len(public_key) != suite.public_key_size:
        raise _invalid(
            f"keyid: {name} public keys are {suite.public_key_size} bytes, got {len(public_key)}"
        )
    return suite, public_key


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.SIGNATURE_INVALID)


@functools.cache
def algorithm_for(suite_name: str) -> type[HTTPSignatureAlgorithm]:
    """The library's algorithm class for a suite, signing and verifying with the suite itself.

    Written here rather than taken from the library: the library's ``ED25519`` goes through
    ``cryptography``, while citychain checks every Ed25519 signature with libsodium (which
    refuses non-canonical signatures and small-order keys: the same verdict as for
    transactions), and the library has no SM2 at all. Keys are raw bytes (the suite's wire
    form); a public key is taken from ``keyid``.
    """
    from http_message_signatures import HTTPSignatureAlgorithm, InvalidSignature

    suite = get_suite(suite_name)

    class SuiteAlgorithm(HTTPSignatureAlgorithm):
        algorithm_id = ALG_BY_SUITE[suite_name]

        def __init__(self, public_key: Any = None, private_key: Any = None) -> None:
            self.public_key = public_key
            self.private_key = private_key

        def sign(self, message: bytes) -> bytes:
            return suite.sign(self.private_key, message)

        def verify(self, signature: bytes, message: bytes) -> None:
            if not isinstance(self.public_key, bytes) or not suite.verify(
                self.public_key, message, signature
            ):
                raise InvalidSignature(
                    f"the {suite.name} signature does not verify over the request's signature "
                    "base with the key in keyid"
                )

    SuiteAlgorithm.__name__ = SuiteAlgorithm.__qualname__ = f"SuiteAlgorithm_{suite.name}"
    return SuiteAlgorithm


class _Headers:
    """httpx's headers as the library's message interface wants them: every field line in
    order (``multi_items``), assignment and deletion passed through."""

    def __init__(self, headers: httpx.Headers) -> None:
        self._h = headers

    def items(self) -> Iterable[tuple[str, str]]:
        return self._h.multi_items()

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._h.multi_items()))

    def __contains__(self, name: object) -> bool:
        return name in self._h

    def __setitem__(self, name: str, value: str) -> None:
        self._h[name] = value

    def __delitem__(self, name: str) -> None:
        del self._h[name]


@dataclass
class _Message:
    """A request as the library reads it: method, encoded absolute URL, header fields."""

    method: str
    url: str
    headers: _Headers


def sign_request(
    request: httpx.Request,
    signer: Signer,
    *,
    created: int | None = None,
    expires: int | None = None,
    nonce: str | None = None,
    digest: bool = True,
) -> None:
    """Sign ``request`` in place for ``signer``'s account (adds ``Content-Digest`` when it has
    a body, then ``Signature-Input`` and ``Signature``). ``created`` defaults to now,
    ``expires`` to ``created`` + :data:`VALIDITY_S`, ``nonce`` to 128 random bits.
    ``digest=False`` leaves the body out of the signature: only for a content-addressed PUT,
    whose URI (which the signature covers) names the body's hash and whose route checks it.

    A streamed body cannot be signed (its digest needs the bytes first): send bytes."""
    from http_message_signatures import HTTPMessageSigner

    try:
        body = request.content
    except Exception:  # httpx.RequestNotRead: a streaming body
        raise InvalidInput(
            "a signed request needs its body as bytes, not a stream", ErrorCode.BAD_ARGUMENTS
        ) from None
    name = signer.suite.name
    if name not in ALG_BY_SUITE:
        raise InvalidInput(
            f"requests cannot be signed with the {name} suite (known: {', '.join(ALG_BY_SUITE)})",
            ErrorCode.BAD_ARGUMENTS,
        )
    if created is None:
        created = int(time.time())
    if expires is None:
        expires = created + VALIDITY_S
    for stale in ("content-digest", "signature-input", "signature"):  # a redirect's copy
        if stale in request.headers:
            del request.headers[stale]
    covered = list(COVERED)
    if body and "content-type" in request.headers:
        covered.append("content-type")
    message = _Message(request.method, str(request.url), _Headers(request.headers))
    http_signer = HTTPMessageSigner(signature_algorithm=algorithm_for(name))
    prepared = http_signer.prepare(
        message,
        key_id=keyid_for(signer.suite, signer.public_key),
        created=datetime.fromtimestamp(created, UTC),
        expires=datetime.fromtimestamp(expires, UTC),
        nonce=secrets.token_urlsafe(16) if nonce is None else nonce,
        label=LABEL,
        tag=TAG,
        covered_component_ids=covered,
        # No body: no digest (an empty body has nothing to bind); digest=False: the URI binds it.
        body=(body or None) if digest else None,
    )
    http_signer.apply(message, prepared, signer.sign(prepared.signature_base))


class SignedRequests:
    """An httpx auth that signs every request with ``signer`` (RFC 9421, see the module).

    Pass it as ``auth=`` to ``httpx.Client`` or ``httpx.AsyncClient`` (httpx calls it for each
    request, redirects and retries included), or give the signer to the SDK's client:
    ``Client(url, signer=alice)``. ``clock`` gives the signer's time in seconds (tests)."""

    def __init__(
        self,
        signer: Signer,
        *,
        validity_s: int = VALIDITY_S,
        clock: Callable[[], float] = time.time,
        digest: bool = True,
    ) -> None:
        if not 0 < validity_s <= 300:
            raise InvalidInput(
                f"validity_s must be 1 to 300 seconds, got {validity_s}", ErrorCode.BAD_ARGUMENTS
            )
        self.signer = signer
        self.validity_s = validity_s
        self._clock = clock
        self.digest = digest

    def __call__(self, request: httpx.Request) -> httpx.Request:
        created = int(self._clock())
        sign_request(
            request,
            self.signer,
            created=created,
            expires=created + self.validity_s,
            digest=self.digest,
        )
        return request

    def __repr__(self) -> str:
        return f"SignedRequests({self.signer!r})"
