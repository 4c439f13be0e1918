"""Verifiable credentials and presentations (W3C VC Data Model 2.0), secured with Data
Integrity proofs.

Issuing checks the credential's shape (and its ``credentialSchema`` if it names a bundled
one) before anything is signed; verifying checks, in order: shape, contexts (bundled only),
the proof, that the issuer controls the verification method, the validity window against
``now`` (a parameter: pure code never reads the clock), and the schema. A presentation's
proof is the holder's, in the ``authentication`` relationship, over the verifier's
``challenge`` and ``domain``; each credential inside is then verified as above.

Nothing here touches the chain. What the chain holds about a credential is the issuer's DID
document, the trusted-issuer entry and the status list: never a claim.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity.sdk._contexts import CITYCHAIN_V1, CREDENTIALS_V2, check_contexts
from citychain.services.identity.sdk._di import (
    EDDSA_RDFC_2022,
    Signer,
    add_proof,
    canonicalize_jcs,
    check_terms,
    format_datetime,
    verify_proof,
    xsd_datetime,
)
from citychain.services.identity.sdk._methods import Resolver, VerificationMethod
from citychain.services.identity.sdk._templates import TEMPLATES, validate_schema

VC_TYPE = "VerifiableCredential"
VP_TYPE = "VerifiablePresentation"
#: Properties whose every entry needs a ``type`` (VCDM 2.0 §4).
_TYPED_PROPERTIES = (
    "credentialStatus",
    "credentialSchema",
    "refreshService",
    "termsOfUse",
    "evidence",
)


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.INVALID_CREDENTIAL)


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and ":" in value and " " not in value and len(value) < 4096


def _types(doc: Mapping[str, Any]) -> list[str]:
    t = doc.get("type")
    types = [t] if isinstance(t, str) else t
    if not isinstance(types, list) or not all(isinstance(x, str) for x in types):
        raise _invalid("type must be a string or a list of strings")
    return types


def issuer_id(credential: Mapping[str, Any]) -> str:
    """The issuer's URL (``issuer`` or ``issuer.id``)."""
    issuer = credential.get("issuer")
    ident = issuer.get("id") if isinstance(issuer, Mapping) else issuer
    if not _is_url(ident):
        raise _invalid("issuer must be a URL or an object whose id is a URL")
    return str(ident)


def check_credential_shape(credential: Any) -> None:
    """The data model's MUSTs that a verifier checks (VCDM 2.0 §4); ``invalid_credential``."""
    if not isinstance(credential, Mapping):
        raise _invalid("a verifiable credential is a JSON object")
    ctx = credential.get("@context")
    if not isinstance(ctx, list) or not ctx or ctx[0] != CREDENTIALS_V2:
        raise _invalid(f"@context must be a list whose first item is {CREDENTIALS_V2!r}")
    if VC_TYPE not in _types(credential):
        raise _invalid(f"type must include {VC_TYPE!r}")
    if "id" in credential and not _is_url(credential["id"]):
        raise _invalid("id must be a URL")
    issuer_id(credential)
    subjects = credential.get("credentialSubject")
    subjects = subjects if isinstance(subjects, list) else [subjects]
    if not subjects or not all(
        isinstance(s, Mapping) and any(k != "id" for k in s) for s in subjects
    ):
        raise _invalid("credentialSubject must be an object (or objects) with claims")
    start = end = None
    if "validFrom" in credential:
        start = xsd_datetime(credential["validFrom"], "validFrom")
    if "validUntil" in credential:
        end = xsd_datetime(credential["validUntil"], "validUntil")
    if start is not None and end is not None and end < start:
        raise _invalid("validUntil is before validFrom")
    for prop in (
        "credentialStatus",
        "credentialSchema",
        "refreshService",
        "termsOfUse",
        "evidence",
    ):
        if prop not in credential:
            continue
        value = credential[prop]
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, Mapping) or not isinstance(item.get("type"), str | list):
                raise _invalid(f"every {prop} needs a type")
            if "id" in item and not _is_url(item["id"]):
                raise _invalid(f"{prop}.id must be a URL")


def build_credential(
    *,
    issuer: str | Mapping[str, Any],
    subject: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    types: Iterable[str] = (),
    contexts: Iterable[str | Mapping[str, Any]] = (),
    id: str | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    credential_status: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    credential_schema: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    name: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """An unsecured VC 2.0 credential from its parts (checked, not signed)."""
    vc: dict[str, Any] = {"@context": [CREDENTIALS_V2, *contexts]}
    if id is not None:
        vc["id"] = id
    vc["type"] = [VC_TYPE, *(t for t in types if t != VC_TYPE)]
    if name is not None:
        vc["name"] = name
    if description is not None:
        vc["description"] = description
    vc["issuer"] = dict(issuer) if isinstance(issuer, Mapping) else issuer
    if valid_from is not None:
        vc["validFrom"] = format_datetime(valid_from)
    if valid_until is not None:
        vc["validUntil"] = format_datetime(valid_until)
    vc["credentialSubject"] = (
        dict(subject) if isinstance(subject, Mapping) else [dict(s) for s in subject]
    )
    if credential_status is not None:
        vc["credentialStatus"] = credential_status
    if credential_schema is not None:
        vc["credentialSchema"] = credential_schema
    check_credential_shape(vc)
    return vc


def issue_credential(
    credential: Mapping[str, Any],
    signer: Signer,
    verification_method: str,
    *,
    cryptosuite: str = EDDSA_RDFC_2022,
    created: datetime | None = None,
    expires: datetime | None = None,
) -> dict[str, Any]:
    """Sign ``credential`` (``assertionMethod``): its shape, contexts, terms (each defined by a
    context) and bundled schema are checked first, so nothing malformed is ever signed.
    ``expires``: the proof's own end (verifiers refuse it after), if given."""
    check_credential_shape(credential)
    check_contexts(credential)
    if cryptosuite != EDDSA_RDFC_2022:
        check_terms(credential)  # RDFC canonicalisation checks them on its way
    validate_schema(credential)
    return add_proof(
        credential,
        signer,
        verification_method,
        cryptosuite=cryptosuite,
        created=created,
        expires=expires,
    )


@dataclass(frozen=True, slots=True)
class VerifiedDocument:
    """A credential or presentation that verified: who signed it, and with which key."""

    document: Mapping[str, Any]
    signer: str  # the issuer (a credential) or the holder (a presentation)
    verification_method: VerificationMethod
    credentials: tuple[VerifiedDocument, ...] = field(default=())


def _window(credential: Mapping[str, Any], now: datetime) -> None:
    if now.tzinfo is None:
        raise InvalidInput("now must carry a time zone", ErrorCode.BAD_ARGUMENTS)
    if "validFrom" in credential and now < xsd_datetime(credential["validFrom"], "validFrom"):
        raise InvalidInput(f"not valid before {credential['validFrom']}", ErrorCode.NOT_YET_VALID)
    if "validUntil" in credential and now > xsd_datetime(credential["validUntil"], "validUntil"):
        raise InvalidInput(f"expired at {credential['validUntil']}", ErrorCode.CREDENTIAL_EXPIRED)


def _proof_window(document: Mapping[str, Any], now: datetime) -> None:
    """A Data Integrity proof's own ``expires`` (after which its signature is not to be
    relied on, whatever the credential's ``validUntil``): ``credential_expired`` past it."""
    proof = document.get("proof")
    proof = proof[0] if isinstance(proof, list) and proof else proof
    if not isinstance(proof, Mapping) or "expires" not in proof:
        return
    if now > xsd_datetime(proof["expires"], "proof.expires"):
        raise InvalidInput(f"the proof expired at {proof['expires']}", ErrorCode.CREDENTIAL_EXPIRED)


def verify_credential(
    credential: Any,
    *,
    now: datetime,
    resolver: Resolver | None = None,
    check_issuer: bool = True,
) -> VerifiedDocument:
    """Verify a secured credential at time ``now``; raise with the reason code otherwise.

    ``check_issuer=False`` checks the proof without tying its key to the issuer (only for
    foreign test vectors whose issuer is not the key's controller); the city's verifiers keep
    it on: the issuer must control the verification method (``wrong_key``).

    Not checked here, because they need more than the credential: its status (fetch and verify
    the status list credential, then :func:`check_status`) and whether the issuer is trusted
    for the credential's type (the chain's trusted-issuer registry).
    """
    check_credential_shape(credential)
    check_contexts(credential)
    method = verify_proof(credential, resolver, purpose="assertionMethod")
    issuer = issuer_id(credential)
    if check_issuer and method.controller != issuer:
        raise InvalidInput(
            f"the proof's key {method.id[:120]!r} is controlled by {method.controller[:80]!r}, "
            f"not by the issuer {issuer[:80]!r}",
            ErrorCode.WRONG_KEY,
        )
    _window(credential, now)
    _proof_window(credential, now)
    validate_schema(credential)
    return VerifiedDocument(credential, issuer, method)


def credential_digest(credential: Mapping[str, Any]) -> bytes:
    """SHA-256 of the RFC 8785 (JCS) bytes of a (secured) credential: the only thing about a
    particular credential that may be anchored on chain. It reveals nothing without the
    credential, and anyone holding the credential can recompute it."""
    return hashlib.sha256(canonicalize_jcs(credential)).digest()


def create_presentation(
    credentials: Sequence[Mapping[str, Any]],
    *,
    holder: str | None = None,
    id: str | None = None,
    contexts: Iterable[str | Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """An unsecured presentation of ``credentials`` (each a secured credential object)."""
    vp: dict[str, Any] = {"@context": [CREDENTIALS_V2, *contexts]}
    if id is not None:
        vp["id"] = id
    vp["type"] = [VP_TYPE]
    if holder is not None:
        vp["holder"] = holder
    vp["verifiableCredential"] = [dict(c) for c in credentials]
    return vp


def sign_presentation(
    presentation: Mapping[str, Any],
    signer: Signer,
    verification_method: str,
    *,
    challenge: str,
    domain: str,
    cryptosuite: str = EDDSA_RDFC_2022,
    created: datetime | None = None,
    expires: datetime | None = None,
) -> dict[str, Any]:
    """The holder's proof (``authentication``) over ``presentation``, bound to the verifier's
    ``challenge`` (one use) and ``domain`` (who it is for), and refused after ``expires`` if
    given (a presentation that is good for minutes)."""
    _check_presentation_shape(presentation)
    return add_proof(
        presentation,
        signer,
        verification_method,
        cryptosuite=cryptosuite,
        proof_purpose="authentication",
        created=created,
        expires=expires,
        challenge=challenge,
        domain=domain,
    )


def _check_presentation_shape(vp: Any) -> None:
    if not isinstance(vp, Mapping):
        raise _invalid("a verifiable presentation is a JSON object")
    ctx = vp.get("@context")
    if not isinstance(ctx, list) or not ctx or ctx[0] != CREDENTIALS_V2:
        raise _invalid(f"@context must be a list whose first item is {CREDENTIALS_V2!r}")
    if VP_TYPE not in _types(vp):
        raise _invalid(f"type must include {VP_TYPE!r}")
    if "holder" in vp:
        holder = vp["holder"]
        ident = holder.get("id") if isinstance(holder, Mapping) else holder
        if not _is_url(ident):
            raise _invalid("holder must be a URL or an object whose id is a URL")
    creds = vp.get("verifiableCredential", [])
    creds = creds if isinstance(creds, list) else [creds]
    if not all(isinstance(c, Mapping) for c in creds):
        raise _invalid("verifiableCredential holds objects, never strings")


def verify_presentation(
    presentation: Any,
    *,
    challenge: str,
    domain: str,
    now: datetime,
    resolver: Resolver | None = None,
) -> VerifiedDocument:
    """Verify the holder's proof (``wrong_challenge``, ``wrong_domain``, ``key_not_authorized``
    for a key not in ``authentication``, ``wrong_key`` if the holder does not control it,
    ``tampered``), then every credential in it at ``now``."""
    _check_presentation_shape(presentation)
    check_contexts(presentation)
    method = verify_proof(
        presentation, resolver, purpose="authentication", challenge=challenge, domain=domain
    )
    holder = presentation.get("holder")
    holder_id = holder.get("id") if isinstance(holder, Mapping) else holder
    if holder_id is not None and method.controller != holder_id:
        raise InvalidInput(
            f"the presentation is signed by {method.controller[:80]!r}, not by its holder "
            f"{str(holder_id)[:80]!r}",
            ErrorCode.WRONG_KEY,
        )
    _proof_window(presentation, now)
    creds = presentation.get("verifiableCredential", [])
    creds = creds if isinstance(creds, list) else [creds]
    verified = tuple(verify_credential(c, now=now, resolver=resolver) for c in creds)
    return VerifiedDocument(presentation, method.controller, method, verified)


def credential_from_template(
    template: str,
    *,
    issuer: str,
    subject: Mapping[str, Any],
    valid_from: datetime,
    valid_until: datetime | None = None,
    id: str | None = None,
    credential_status: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An unsecured credential of one of :data:`TEMPLATES`, validated against its schema."""
    found = TEMPLATES.get(template)
    if found is None:
        raise InvalidInput(
            f"unknown template {template!r} (take {', '.join(TEMPLATES)})",
            ErrorCode.BAD_ARGUMENTS,
        )
    vc = build_credential(
        issuer=issuer,
        subject=subject,
        types=[found.credential_type],
        contexts=[CITYCHAIN_V1],
        id=id,
        valid_from=valid_from,
        valid_until=valid_until,
        credential_status=credential_status,
        credential_schema={"id": found.schema_id, "type": "JsonSchema"},
        name=found.title,
    )
    validate_schema(vc)
    return vc
