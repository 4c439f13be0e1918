"""Verification methods: dereferencing a ``verificationMethod`` through a resolver callback.

The library never resolves a DID itself except ``did:key`` (Ed25519), which needs nothing but
the identifier. Everything else goes through the caller's ``resolver``: a function from a DID
to its DID document (a dict, DID Core 1.0). A node-backed resolver, a cached one, or one that
reads an offline proof bundle are all just functions; the library stays pure.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from citychain.errors import CitychainError, ErrorCode, InvalidInput, NotFound
from citychain.services.identity.shapes import did_key, multikey_decode, split_did

#: did -> its DID document. Raise (any :class:`~citychain.errors.CitychainError`) if unknown.
Resolver = Callable[[str], Mapping[str, Any]]

#: Refusals of a resolver that say the DID cannot be used (whatever class carried them).
_DID_REFUSALS = frozenset(
    {ErrorCode.DID_NOT_FOUND, ErrorCode.DID_DEACTIVATED, ErrorCode.INVALID_DID_DOCUMENT}
)

#: Verification method types whose ``publicKeyMultibase`` is an Ed25519 Multikey (``z6Mk...``).
_ED25519_TYPES = ("Multikey", "Ed25519VerificationKey2020")


def _wrong_key(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.WRONG_KEY)


@dataclass(frozen=True, slots=True)
class VerificationMethod:
    """A dereferenced Ed25519 verification method."""

    id: str
    controller: str
    public_key: bytes
    document: Mapping[str, Any]  # the DID document it was found in


def did_key_document(did: str) -> dict[str, Any]:
    """The DID document of an Ed25519 ``did:key`` (did:key method, Multikey form), built
    locally: no chain, no network."""
    return copy.deepcopy(_did_key_document(did))


@lru_cache(maxsize=4096)
def _did_key_document(did: str) -> dict[str, Any]:  # shared: callers here never write to it
    method, msid = split_did(did)
    if method != "key":
        raise InvalidInput(f"{did[:80]!r} is not a did:key", ErrorCode.BAD_ARGUMENTS)
    key = multikey_decode(msid)  # bad_arguments unless an Ed25519 multikey
    if did_key(key) != did:
        raise InvalidInput(f"{did[:80]!r} is not a canonical did:key", ErrorCode.BAD_ARGUMENTS)
    vm_id = f"{did}#{msid}"
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [
            {"id": vm_id, "type": "Multikey", "controller": did, "publicKeyMultibase": msid}
        ],
        "authentication": [vm_id],
        "assertionMethod": [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
    }


@lru_cache(maxsize=4096)
def _multikey_cached(value: str) -> bytes:
    return multikey_decode(value)


def _multikey(value: Any) -> bytes:
    return _multikey_cached(value) if isinstance(value, str) else multikey_decode(value)


def _absolute(ref: str, did: str) -> str:
    return did + ref if ref.startswith("#") else ref


def resolve_document(did: str, resolver: Resolver | None) -> Mapping[str, Any]:
    """The DID document of ``did``: did:key locally, anything else through ``resolver``.
    ``did_not_found`` or ``did_deactivated`` as the resolver says so, else ``wrong_key`` when
    it cannot be had (no resolver, or the resolver refused)."""
    try:
        method, _ = split_did(did)
    except CitychainError:
        raise _wrong_key(f"verification method DID {did[:80]!r} is not a DID") from None
    try:
        if method == "key":
            return _did_key_document(did)
        if resolver is None:
            raise _wrong_key(f"no resolver for {did[:80]!r} (only did:key resolves without one)")
        doc = resolver(did)
    except CitychainError as e:
        # the DID's own answer (unknown, deactivated, malformed) is the credential's fault;
        # an unreachable node or a bad proof from it is not, and is raised as it is
        if e.code is ErrorCode.WRONG_KEY or not (
            isinstance(e, InvalidInput | NotFound) or e.code in _DID_REFUSALS
        ):
            raise
        if e.code in (ErrorCode.DID_NOT_FOUND, ErrorCode.DID_DEACTIVATED):
            # said as the node says it: a verifier shows "deactivated", not "wrong key"
            raise InvalidInput(f"cannot resolve {did[:80]!r}: {e.message}", e.code) from None
        raise _wrong_key(f"cannot resolve {did[:80]!r}: {e.message}") from None
    if not isinstance(doc, Mapping) or doc.get("id") != did:
        raise _wrong_key(f"the resolver gave no DID document for {did[:80]!r}")
    return doc


def dereference(vm_id: Any, resolver: Resolver | None, purpose: str) -> VerificationMethod:
    """Resolve ``vm_id`` (``did:...#fragment``) to its Ed25519 key, and check it is listed in
    the DID document's ``purpose`` relationship (``assertionMethod``, ``authentication``).

    ``wrong_key``: not a DID URL, not in the document, not an Ed25519 Multikey;
    ``key_not_authorized``: in the document but not in that relationship (e.g. a key only for
    authentication signing a credential).
    """
    if not isinstance(vm_id, str) or "#" not in vm_id:
        raise _wrong_key(f"verificationMethod {str(vm_id)[:80]!r} is not a DID URL with a key")
    did = vm_id.split("#", 1)[0]
    doc = resolve_document(did, resolver)
    found: Mapping[str, Any] | None = None
    for entry in list(doc.get("verificationMethod") or []) + [
        e for rel in _RELATIONSHIPS for e in (doc.get(rel) or []) if isinstance(e, Mapping)
    ]:
        if isinstance(entry, Mapping) and _absolute(str(entry.get("id", "")), did) == vm_id:
            found = entry
            break
    if found is None:
        raise _wrong_key(f"{vm_id[:120]!r} is not a verification method of {did[:80]!r}")
    if found.get("type") not in _ED25519_TYPES:
        raise _wrong_key(f"{vm_id[:120]!r} is a {found.get('type')!r}, not an Ed25519 Multikey")
    try:
        key = _multikey(found.get("publicKeyMultibase"))
    except CitychainError as e:
        raise _wrong_key(f"{vm_id[:120]!r}: {e.message}") from None
    listed = [
        _absolute(e if isinstance(e, str) else str(e.get("id", "")), did)
        for e in (doc.get(purpose) or [])
        if isinstance(e, str | Mapping)
    ]
    if vm_id not in listed:
        raise InvalidInput(
            f"{vm_id[:120]!r} is not in the {purpose} relationship of {did[:80]!r}",
            ErrorCode.KEY_NOT_AUTHORIZED,
        )
    controller = found.get("controller")
    if not isinstance(controller, str):
        raise _wrong_key(f"{vm_id[:120]!r} names no controller")
    return VerificationMethod(vm_id, controller, key, doc)


_RELATIONSHIPS = (
    "authentication",
    "assertionMethod",
    "keyAgreement",
    "capabilityInvocation",
    "capabilityDelegation",
)
