"""The W3C Data Integrity EdDSA v1.0 test vectors (tests/vectors/vc/SOURCE.md) verify with our
library, and our library reproduces them: same canonical forms, same proofValue (Ed25519 is
deterministic), so what we sign verifies wherever the spec's algorithm is implemented."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime
from typing import Any

import base58
import pytest
from vc_fixtures import NOW, vector

from citychain.crypto import Signer
from citychain.crypto.ed25519 import ED25519
from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity import sdk

SIGNED = {
    "jcs-alumni": "vc-di-eddsa/eddsa-jcs-2022/signedJCS.json",
    "rdfc-alumni": "vc-di-eddsa/eddsa-rdfc-2022/signedDataInt.json",
    "rdfc-employment": "vc-di-eddsa/eddsa-rdfc-2022/employ/signedDataInt.json",
}
UNSIGNED = {
    "jcs-alumni": "vc-di-eddsa/unsigned.json",
    "rdfc-alumni": "vc-di-eddsa/unsigned.json",
    "rdfc-employment": "vc-di-eddsa/employmentAuth.json",
}


def _vector_key() -> Signer:
    """The spec's key pair: privateKeyMultibase is z + base58btc(0x8026 ‖ 32-byte seed)."""
    pair = vector("vc-di-eddsa/keyPair.json")
    raw = base58.b58decode(pair["privateKeyMultibase"][1:])
    assert raw[:2] == b"\x80\x26"
    key = Signer(ED25519, raw[2:])
    assert (
        "z" + base58.b58encode(b"\xed\x01" + key.public_key).decode()
        == (pair["publicKeyMultibase"])
    )
    return key


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_published_vectors_verify(name: str) -> None:
    signed = vector(SIGNED[name])
    method = sdk.verify_proof(signed)  # did:key: resolved with no resolver, no network
    assert method.id == signed["proof"]["verificationMethod"]
    # the caveat: the vectors' issuer is not the key's controller, so only the proof is checked
    sdk.verify_credential(signed, now=NOW, check_issuer=False)
    with pytest.raises(InvalidInput) as e:
        sdk.verify_credential(signed, now=NOW)
    assert e.value.code is ErrorCode.WRONG_KEY


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_we_reproduce_the_published_proof(name: str) -> None:
    signed = vector(SIGNED[name])
    proof = signed["proof"]
    created = datetime.fromisoformat(proof["created"]).astimezone(UTC)
    ours = sdk.add_proof(
        vector(UNSIGNED[name]),
        _vector_key(),
        proof["verificationMethod"],
        cryptosuite=proof["cryptosuite"],
        created=created,
    )
    assert ours == signed


def test_canonical_forms_match_the_spec() -> None:
    unsigned = vector("vc-di-eddsa/unsigned.json")
    assert sdk.canonicalize_rdfc(unsigned) == vector(
        "vc-di-eddsa/eddsa-rdfc-2022/canonDocDataInt.txt"
    )
    assert sdk.canonicalize_rdfc(vector("vc-di-eddsa/employmentAuth.json")) == vector(
        "vc-di-eddsa/eddsa-rdfc-2022/employ/canonDocDataInt.txt"
    )
    proof_config = vector("vc-di-eddsa/eddsa-rdfc-2022/proofConfigDataInt.json")
    assert sdk.canonicalize_rdfc(proof_config) == vector(
        "vc-di-eddsa/eddsa-rdfc-2022/proofCanonDataInt.txt"
    )
    assert sdk.canonicalize_jcs(unsigned).decode() == vector(
        "vc-di-eddsa/eddsa-jcs-2022/canonDocJCS.txt"
    )
    # the signature the spec prints is the one over hash(config) ‖ hash(document)
    key = _vector_key()
    config = sdk.canonicalize_jcs(vector("vc-di-eddsa/eddsa-jcs-2022/proofConfigJCS.json"))
    message = (
        hashlib.sha256(config).digest() + hashlib.sha256(sdk.canonicalize_jcs(unsigned)).digest()
    )
    assert key.sign(message).hex() == vector("vc-di-eddsa/eddsa-jcs-2022/sigHexJCS.txt").strip()


def _tamper(doc: dict[str, Any], name: str) -> None:
    if name == "rdfc-employment":
        doc["credentialSubject"]["birthDate"] = "1999-07-18"
    else:
        doc["credentialSubject"]["alumniOf"] = "The School of Forgery"


@pytest.mark.parametrize("name", sorted(SIGNED))
def test_a_changed_vector_claim_is_refused(name: str) -> None:
    signed = copy.deepcopy(vector(SIGNED[name]))
    _tamper(signed, name)
    with pytest.raises(InvalidInput) as e:
        sdk.verify_proof(signed)
    assert e.value.code is ErrorCode.TAMPERED


def test_a_changed_jcs_proof_context_is_refused() -> None:
    signed = copy.deepcopy(vector(SIGNED["jcs-alumni"]))
    signed["proof"]["@context"] = ["https://www.w3.org/ns/credentials/v2"]
    signed["@context"] = ["https://www.w3.org/ns/credentials/examples/v2"]
    with pytest.raises(InvalidInput) as e:
        sdk.verify_proof(signed)
    assert e.value.code is ErrorCode.INVALID_CREDENTIAL
