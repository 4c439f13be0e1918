"""Data Integrity proofs (W3C VC Data Integrity 1.0) with the EdDSA cryptosuites v1.0:
``eddsa-rdfc-2022`` (RDFC-1.0 canonical N-Quads, by PyLD's URDNA2015) and ``eddsa-jcs-2022``
(RFC 8785 JSON canonicalisation, by ``rfc8785``).

Both hash the same way: ``hashData = SHA-256(canonical proof config) || SHA-256(canonical
document)`` (64 bytes), signed with Ed25519; ``proofValue`` is ``z`` + base58btc(signature).
For eddsa-rdfc-2022 the proof config borrows the document's ``@context`` while hashing; for
eddsa-jcs-2022 the proof carries that ``@context`` itself and a verifier checks the document's
``@context`` starts with it. Contexts come only from the bundle (``unknown_context`` for any
other); PyLD is imported only when an RDFC proof is made or checked.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from nacl import bindings
from nacl.exceptions import BadSignatureError, CryptoError

from citychain.errors import CitychainError, ErrorCode, InvalidInput
from citychain.services.identity.sdk._contexts import check_contexts
from citychain.services.identity.sdk._contexts import document_loader as _loader
from citychain.services.identity.sdk._methods import Resolver, VerificationMethod, dereference
from citychain.services.identity.shapes._base58 import b58decode, b58encode

EDDSA_RDFC_2022 = "eddsa-rdfc-2022"
EDDSA_JCS_2022 = "eddsa-jcs-2022"
CRYPTOSUITES = (EDDSA_RDFC_2022, EDDSA_JCS_2022)
PROOF_TYPE = "DataIntegrityProof"


class Signer(Protocol):
    """What signs: an Ed25519 key (e.g. :class:`citychain.crypto.Signer`)."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.INVALID_CREDENTIAL)


def xsd_datetime(value: Any, what: str) -> datetime:
    """An XSD dateTimeStamp (with a time zone) as an aware datetime; ``invalid_credential``."""
    if isinstance(value, str) and "T" in value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise _invalid(f"{what} must be an XSD dateTimeStamp with a time zone, got {str(value)[:40]!r}")


def format_datetime(moment: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ssZ`` of an aware datetime (seconds, UTC)."""
    if moment.tzinfo is None:
        raise InvalidInput("a datetime must carry a time zone", ErrorCode.BAD_ARGUMENTS)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_MAX_SAFE = 2**53 - 1


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only what :func:`json.dumps` writes exactly as RFC 8785 does:
    objects with keys in the Basic Multilingual Plane (whose UTF-16 order is code-point
    order), arrays, strings with no lone surrogate, integers within 2**53, booleans, null.
    Iterative: a credential's depth never costs a Python frame."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not v.isascii() and any(0xD800 <= ord(c) <= 0xDFFF for c in v):
                return False
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int):
            if not -_MAX_SAFE <= v <= _MAX_SAFE:
                return False
        elif isinstance(v, dict):
            for k in v:
                if not isinstance(k, str) or not (k.isascii() or max(map(ord, k)) < 0xD800):
                    return False
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        else:  # floats, tuples, anything else: the library decides
            return False
    return True


def canonicalize_jcs(value: Any) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme bytes of ``value``; floats that are not integers
    and integers past 2**53 are refused (``invalid_credential``), as I-JSON requires.

    Written partly by hand, and why: the ``rfc8785`` library is pure Python and was a fifth of
    a credential's verification. For the values credentials hold (see :func:`_plain`), the C
    ``json.dumps`` with sorted keys, no spaces and no ASCII escaping writes the same bytes
    (its string escapes are RFC 8785's: ``\\b \\t \\n \\f \\r``, other controls as
    lowercase ``\\u00xx``); anything else goes to the library. ``tests/services/identity``
    holds the two to the same bytes with hypothesis."""
    if isinstance(value, dict) and _plain(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    import rfc8785

    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise _invalid(f"not canonicalisable as JCS (RFC 8785): {e}") from None


_E = TypeVar("_E", bound=BaseException)


class _UndefinedTerm(Exception):
    """Raised inside PyLD when expansion would silently drop a property (an undefined term)."""


def _unknown_context_in(error: BaseException) -> InvalidInput | None:
    found = _find(error, InvalidInput)
    return found if found is not None and found.code is ErrorCode.UNKNOWN_CONTEXT else None


def _find(error: BaseException, kind: type[_E]) -> _E | None:
    seen: set[int] = set()
    stack: list[Any] = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return e
        stack.extend([getattr(e, "cause", None), e.__cause__, e.__context__])
        details = getattr(e, "details", None)
        if isinstance(details, dict):
            stack.extend(v for v in details.values() if isinstance(v, BaseException))
    return None


def _json_ld(document: Mapping[str, Any], operation: str) -> Any:
    """Run PyLD's ``expand`` or ``normalize`` (RDFC-1.0) on ``document`` with the bundled
    contexts only, refusing (rather than dropping) any property no context defines."""
    from pyld import jsonld  # type: ignore[import-untyped]

    check_contexts(document)

    def dropped(expanded: str | None) -> None:
        raise _UndefinedTerm(expanded)

    processor = jsonld.JsonLdProcessor(on_property_dropped=dropped)
    options: dict[str, Any] = {"documentLoader": _loader}
    if operation == "normalize":
        options.update(algorithm="URDNA2015", format="application/n-quads")
    try:
        return getattr(processor, operation)(copy.deepcopy(dict(document)), options)
    except CitychainError:
        raise
    except Exception as e:  # PyLD raises JsonLdError (and the loader's error inside it)
        found = _unknown_context_in(e)
        if found is not None:
            raise found from None
        undefined = _find(e, _UndefinedTerm)
        if undefined is not None:
            raise _invalid(
                "a property is not defined by the document's contexts, so a signature would "
                f"not cover it (expands to {undefined.args[0]!r})"
            ) from None
        raise _invalid(f"not valid JSON-LD: {str(e)[:300]}") from None


def check_terms(document: Mapping[str, Any]) -> None:
    """Refuse (``invalid_credential``) a document using a term that no context defines (JSON-LD
    expansion would drop it silently), or naming a context that is not bundled."""
    _json_ld(document, "expand")


def canonicalize_rdfc(document: Mapping[str, Any]) -> str:
    """RDFC-1.0 canonical N-Quads of a JSON-LD document (PyLD's URDNA2015, which RDFC-1.0
    standardised), loading contexts only from the bundle and refusing undefined terms."""
    nquads = _json_ld(document, "normalize")
    if not isinstance(nquads, str):
        raise _invalid("RDF canonicalisation gave no N-Quads")
    return nquads


def _hash_data(cryptosuite: str, document: Mapping[str, Any], config: Mapping[str, Any]) -> bytes:
    if cryptosuite == EDDSA_RDFC_2022:
        doc_c = canonicalize_rdfc(document).encode()
        config_c = canonicalize_rdfc(config).encode()
    else:
        doc_c = canonicalize_jcs(document)
        config_c = canonicalize_jcs(config)
    return hashlib.sha256(config_c).digest() + hashlib.sha256(doc_c).digest()


def _suite(proof: Mapping[str, Any]) -> str:
    if proof.get("type") != PROOF_TYPE:
        raise _invalid(f"proof type must be {PROOF_TYPE!r}, got {str(proof.get('type'))[:40]!r}")
    suite = proof.get("cryptosuite")
    if suite not in CRYPTOSUITES:
        raise _invalid(f"unsupported cryptosuite {str(suite)[:40]!r} (take {CRYPTOSUITES})")
    return str(suite)


def add_proof(
    document: Mapping[str, Any],
    signer: Signer,
    verification_method: str,
    *,
    cryptosuite: str = EDDSA_RDFC_2022,
    proof_purpose: str = "assertionMethod",
    created: datetime | None = None,
    expires: datetime | None = None,
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """``document`` with a Data Integrity proof added (a new dict; the input is untouched).

    ``created`` and ``expires`` (after which verifiers refuse the proof) are given by the
    caller (this code never reads the clock); each omitted if None.
    A presentation's proof carries ``challenge`` and ``domain`` (proof purpose
    ``authentication``).
    """
    if cryptosuite not in CRYPTOSUITES:
        raise InvalidInput(f"unsupported cryptosuite {cryptosuite!r}", ErrorCode.BAD_ARGUMENTS)
    if "proof" in document:
        raise InvalidInput("the document already has a proof", ErrorCode.BAD_ARGUMENTS)
    if "@context" not in document:
        raise _invalid("a document to sign needs an @context")
    check_contexts(document)
    unsecured = copy.deepcopy(dict(document))
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": cryptosuite,
    }
    if created is not None:
        proof["created"] = format_datetime(created)
    if expires is not None:
        proof["expires"] = format_datetime(expires)
    proof["verificationMethod"] = verification_method
    proof["proofPurpose"] = proof_purpose
    if challenge is not None:
        proof["challenge"] = challenge
    if domain is not None:
        proof["domain"] = domain
    config = dict(proof)
    config["@context"] = copy.deepcopy(unsecured["@context"])
    if cryptosuite == EDDSA_JCS_2022:
        proof["@context"] = copy.deepcopy(unsecured["@context"])
    signature = signer.sign(_hash_data(cryptosuite, unsecured, config))
    proof["proofValue"] = "z" + b58encode(signature)
    unsecured["proof"] = proof
    return unsecured


def verify_proof(
    document: Mapping[str, Any],
    resolver: Resolver | None = None,
    *,
    purpose: str = "assertionMethod",
    challenge: str | None = None,
    domain: str | None = None,
) -> VerificationMethod:
    """Check ``document``'s one Data Integrity proof; the verification method that signed it.

    Refusals: ``invalid_credential`` (no proof, wrong type or cryptosuite, bad ``created``,
    a proof ``@context`` the document does not start with), ``unknown_context``, ``wrong_key``
    (the method cannot be dereferenced or is not an Ed25519 Multikey), ``key_not_authorized``
    (not in the ``purpose`` relationship), ``wrong_challenge`` / ``wrong_domain`` (when
    ``challenge`` / ``domain`` are expected), ``tampered`` (the signature does not match: a
    claim was changed after signing, or another key signed it).
    """
    if not isinstance(document, Mapping):
        raise _invalid("a secured document is a JSON object")
    proof = document.get("proof")
    if isinstance(proof, list):
        if len(proof) != 1:
            raise _invalid("exactly one proof is taken (proof sets and chains are not)")
        proof = proof[0]
    if not isinstance(proof, Mapping):
        raise _invalid("the document has no proof")
    suite = _suite(proof)
    for when in ("created", "expires"):
        if when in proof:
            xsd_datetime(proof[when], f"proof.{when}")
    if proof.get("proofPurpose") != purpose:
        raise InvalidInput(
            f"proofPurpose must be {purpose!r}, got {str(proof.get('proofPurpose'))[:40]!r}",
            ErrorCode.KEY_NOT_AUTHORIZED,
        )
    value = proof.get("proofValue")
    try:
        if not isinstance(value, str) or not value.startswith("z"):
            raise ValueError
        signature = b58decode(value[1:])
    except ValueError:
        raise _invalid("proofValue must be base58btc multibase ('z...')") from None
    if challenge is not None and proof.get("challenge") != challenge:
        raise InvalidInput(
            f"the proof's challenge {str(proof.get('challenge'))[:80]!r} is not the one expected",
            ErrorCode.WRONG_CHALLENGE,
        )
    if domain is not None:
        got = proof.get("domain")
        if not (got == domain or (isinstance(got, list) and domain in got)):
            raise InvalidInput(
                f"the proof's domain {str(got)[:80]!r} is not {domain[:80]!r}",
                ErrorCode.WRONG_DOMAIN,
            )
    check_contexts(document)
    # shallow copies: canonicalisation reads them and never writes (RDFC copies deeply itself)
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    if suite == EDDSA_JCS_2022 and "@context" in config:
        ctx = config["@context"]
        doc_ctx = unsecured.get("@context")
        ctx_l = ctx if isinstance(ctx, list) else [ctx]
        doc_l = doc_ctx if isinstance(doc_ctx, list) else [doc_ctx]
        if doc_l[: len(ctx_l)] != ctx_l:
            raise _invalid("the document's @context does not start with the proof's @context")
        unsecured["@context"] = ctx
    else:
        config["@context"] = unsecured.get("@context")
    method = dereference(proof.get("verificationMethod"), resolver, purpose)
    message = _hash_data(suite, unsecured, config)
    if len(signature) != 64 or not _ed25519_ok(method.public_key, message, signature):
        raise InvalidInput(
            "the proof does not verify: a signed claim was changed, or the signature is not "
            f"by {method.id[:120]!r}",
            ErrorCode.TAMPERED,
        )
    return method


def _ed25519_ok(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        bindings.crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False
    return True
