"""Shared helpers for the credential-library tests: keys, DIDs and a resolver over a dict."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from citychain.crypto import Signer
from citychain.crypto.ed25519 import ED25519
from citychain.errors import ErrorCode, NotFound
from citychain.services.identity.shapes import did_key, multikey_encode

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "vc"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2031, 1, 1, tzinfo=UTC)


def vector(path: str) -> Any:
    text = (VECTORS / path).read_text("utf-8")
    return json.loads(text) if path.endswith(".json") else text


def signer(seed: int) -> Signer:
    return Signer(ED25519, bytes([seed]) * 32)


def key_did(s: Signer) -> tuple[str, str]:
    """(did:key, its verification method id)."""
    did = did_key(s.public_key)
    return did, f"{did}#{multikey_encode(s.public_key)}"


def did_document(
    did: str, keys: Mapping[str, Signer], relationships: Mapping[str, list[str]]
) -> dict[str, Any]:
    """A DID Core document: one Multikey per ``keys`` entry (fragment -> key) and the
    relationships listing fragments."""
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [
            {
                "id": f"{did}#{frag}",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": multikey_encode(k.public_key),
            }
            for frag, k in keys.items()
        ],
        **{rel: [f"#{f}" for f in frags] for rel, frags in relationships.items()},
    }


class DictResolver:
    """A resolver over a dict of DID documents, counting its calls."""

    def __init__(self, *docs: Mapping[str, Any]) -> None:
        self.docs = {d["id"]: d for d in docs}
        self.calls = 0

    def __call__(self, did: str) -> Mapping[str, Any]:
        self.calls += 1
        if did not in self.docs:
            raise NotFound(f"no DID {did}", ErrorCode.DID_NOT_FOUND)
        return self.docs[did]


def licence_subject(**overrides: Any) -> dict[str, Any]:
    subject = {
        "id": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "legalName": "Beijing Example Trading Co., Ltd.",
        "unifiedSocialCreditCode": "91110000600037341L",
        "legalRepresentative": "Li Lei",
        "registeredAddress": "1 Chang'an Avenue, Dongcheng District, Beijing",
        "establishedOn": "2020-01-02",
    }
    subject.update(overrides)
    return subject


#: The codes an offline bundle with any byte changed may be refused with (never another
#: exception): the bundle tests of both suites hold every refusal to this set.
REFUSALS = {
    ErrorCode.TAMPERED,
    ErrorCode.BAD_PROOF,
    ErrorCode.MALFORMED,
    ErrorCode.BAD_ARGUMENTS,
    ErrorCode.INVALID_CREDENTIAL,
    ErrorCode.UNKNOWN_CONTEXT,
    ErrorCode.WRONG_KEY,
    ErrorCode.KEY_NOT_AUTHORIZED,
    ErrorCode.SCHEMA_VIOLATION,
    ErrorCode.ISSUER_NOT_TRUSTED,
    ErrorCode.DID_NOT_FOUND,
    ErrorCode.CREDENTIAL_EXPIRED,
    ErrorCode.NOT_YET_VALID,
    ErrorCode.STATUS_LIST_NOT_FOUND,
}
