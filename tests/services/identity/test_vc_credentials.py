"""VC Data Model 2.0 with Data Integrity: issue, verify, present, verify the presentation, and
each refusal with its reason code; interop with PyLD used directly; any changed claim fails."""

from __future__ import annotations

import copy
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vc_fixtures import (
    NOW,
    VALID_FROM,
    VALID_UNTIL,
    DictResolver,
    did_document,
    key_did,
    licence_subject,
    signer,
)

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity import sdk
from citychain.services.identity.sdk._di import format_datetime

ISSUER_KEY = signer(1)
AUTH_ONLY_KEY = signer(2)
HOLDER_KEY = signer(3)
OTHER_KEY = signer(4)
ISSUER = "did:citychain:3nWDRRHmxJM8xLi6hv7wJr"
HOLDER = "did:citychain:8sRBK8nYm1dZ4oJAYnDq4K"
ISSUER_VM = f"{ISSUER}#key-1"
HOLDER_VM = f"{HOLDER}#key-1"
RESOLVER = DictResolver(
    did_document(
        ISSUER,
        {"key-1": ISSUER_KEY, "key-2": AUTH_ONLY_KEY},
        {"assertionMethod": ["key-1"], "authentication": ["key-2"]},
    ),
    did_document(HOLDER, {"key-1": HOLDER_KEY}, {"authentication": ["key-1"]}),
)
SUITES = list(sdk.CRYPTOSUITES)
UNDEFINED_TERMS = "https://www.w3.org/ns/credentials/undefined-terms/v2"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The library never opens a socket: any attempt fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the credential library tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


def _licence(**kwargs: Any) -> dict[str, Any]:
    return sdk.credential_from_template(
        "business-licence",
        issuer=ISSUER,
        subject=licence_subject(),
        valid_from=kwargs.pop("valid_from", VALID_FROM),
        valid_until=kwargs.pop("valid_until", VALID_UNTIL),
        id="urn:uuid:6f1c3ad0-4b8e-4c63-9b55-0f3f3f0a1a01",
        **kwargs,
    )


def _issued(suite: str, **kwargs: Any) -> dict[str, Any]:
    return sdk.issue_credential(_licence(**kwargs), ISSUER_KEY, ISSUER_VM, cryptosuite=suite)


def _code(call: Any) -> ErrorCode:
    with pytest.raises(InvalidInput) as e:
        call()
    return e.value.code


@pytest.mark.parametrize("suite", SUITES)
def test_issue_then_verify(suite: str) -> None:
    vc = _issued(suite)
    assert vc["proof"]["cryptosuite"] == suite
    assert vc["credentialSchema"]["type"] == "JsonSchema"
    result = sdk.verify_credential(vc, now=NOW, resolver=RESOLVER)
    assert result.signer == ISSUER
    assert result.verification_method.id == ISSUER_VM


def test_did_key_issuer_needs_no_resolver() -> None:
    did, vm = key_did(OTHER_KEY)
    vc = sdk.build_credential(
        issuer=did, subject={"id": HOLDER, "ageOver": 18}, contexts=[UNDEFINED_TERMS]
    )
    signed = sdk.issue_credential(vc, OTHER_KEY, vm)
    assert sdk.verify_credential(signed, now=NOW).signer == did


@pytest.mark.parametrize("suite", SUITES)
def test_a_changed_claim_is_tampered(suite: str) -> None:
    vc = _issued(suite)
    vc["credentialSubject"]["legalName"] = "Someone Else Ltd."
    assert _code(lambda: sdk.verify_credential(vc, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.TAMPERED
    )


@pytest.mark.parametrize("suite", SUITES)
def test_signed_by_another_key_than_named_is_tampered(suite: str) -> None:
    vc = sdk.issue_credential(_licence(), OTHER_KEY, ISSUER_VM, cryptosuite=suite)
    assert _code(lambda: sdk.verify_credential(vc, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.TAMPERED
    )


def test_a_key_the_issuer_does_not_control_is_the_wrong_key() -> None:
    """A valid proof by someone else's key (here the holder's DID) is not the issuer's."""
    vc = copy.deepcopy(_licence())
    _did, vm = key_did(OTHER_KEY)
    signed = sdk.issue_credential(vc, OTHER_KEY, vm)
    assert _code(lambda: sdk.verify_credential(signed, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.WRONG_KEY
    )
    unknown = sdk.issue_credential(vc, ISSUER_KEY, f"{ISSUER}#key-9")
    assert _code(lambda: sdk.verify_credential(unknown, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.WRONG_KEY
    )
    # a DID the resolver does not know: said as the node's verifier says it
    stranger = sdk.issue_credential(vc, ISSUER_KEY, "did:citychain:Ld8b3WRB6ERGXFNbdX4PmU#key-1")
    assert _code(lambda: sdk.verify_credential(stranger, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.DID_NOT_FOUND
    )


def test_a_key_not_in_assertion_method_is_not_authorized() -> None:
    vc = sdk.issue_credential(_licence(), AUTH_ONLY_KEY, f"{ISSUER}#key-2")
    assert _code(lambda: sdk.verify_credential(vc, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.KEY_NOT_AUTHORIZED
    )


@pytest.mark.parametrize("suite", SUITES)
def test_validity_window_is_the_callers_now(suite: str) -> None:
    vc = _issued(suite)
    verify = sdk.verify_credential
    assert _code(lambda: verify(vc, now=VALID_FROM - timedelta(seconds=1), resolver=RESOLVER)) is (
        ErrorCode.NOT_YET_VALID
    )
    assert _code(lambda: verify(vc, now=VALID_UNTIL + timedelta(seconds=1), resolver=RESOLVER)) is (
        ErrorCode.CREDENTIAL_EXPIRED
    )
    verify(vc, now=VALID_FROM, resolver=RESOLVER)
    verify(vc, now=VALID_UNTIL, resolver=RESOLVER)


@pytest.mark.parametrize("suite", SUITES)
def test_unknown_context_is_refused_without_fetching(suite: str) -> None:
    vc = _licence()
    vc["@context"].append("https://evil.example/context.jsonld")
    assert _code(lambda: sdk.issue_credential(vc, ISSUER_KEY, ISSUER_VM, cryptosuite=suite)) is (
        ErrorCode.UNKNOWN_CONTEXT
    )
    signed = _issued(suite)
    signed["@context"].append("https://evil.example/context.jsonld")
    with pytest.raises(InvalidInput, match="unknown context") as e:
        sdk.verify_credential(signed, now=NOW, resolver=RESOLVER)
    assert e.value.code is ErrorCode.UNKNOWN_CONTEXT
    with pytest.raises(InvalidInput) as e:
        sdk.document_loader("https://www.w3.org/2018/credentials/v1")
    assert e.value.code is ErrorCode.UNKNOWN_CONTEXT
    # a URL reached only inside JSON-LD processing (@import) is refused by the loader
    imported = _licence()
    imported["@context"].append({"@import": "https://evil.example/ctx.jsonld"})
    assert _code(lambda: sdk.canonicalize_rdfc(imported)) is ErrorCode.UNKNOWN_CONTEXT


@pytest.mark.parametrize("suite", SUITES)
def test_a_term_no_context_defines_is_refused(suite: str) -> None:
    """credentials/v2 has no @vocab: an undefined term would be dropped from the RDF, i.e. left
    unsigned. The issuer refuses it (either suite) rather than sign around it."""
    did, vm = key_did(OTHER_KEY)
    vc = sdk.build_credential(issuer=did, subject={"id": HOLDER, "ageOver": 18})
    with pytest.raises(InvalidInput, match="not defined") as e:
        sdk.issue_credential(vc, OTHER_KEY, vm, cryptosuite=suite)
    assert e.value.code is ErrorCode.INVALID_CREDENTIAL


def test_a_claim_slipped_in_under_an_undefined_term_is_refused() -> None:
    """With eddsa-rdfc-2022, a claim added under a term no context defines would not change
    the canonical N-Quads; the verifier refuses the document instead of ignoring the claim."""
    signed = _issued(sdk.EDDSA_RDFC_2022)
    signed["credentialSubject"]["nationalIdNumber"] = "110101199003070000"
    assert _code(lambda: sdk.verify_credential(signed, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.INVALID_CREDENTIAL
    )


def test_schema_violation_is_refused_at_issue_and_at_verify() -> None:
    vc = _licence()
    vc["credentialSubject"]["unifiedSocialCreditCode"] = "not a code"
    with pytest.raises(InvalidInput) as e:
        sdk.issue_credential(vc, ISSUER_KEY, ISSUER_VM)
    assert e.value.code is ErrorCode.SCHEMA_VIOLATION
    assert "unifiedSocialCreditCode" in e.value.message
    # an issuer that signed it anyway (bypassing the check) is caught by the verifier
    signed = sdk.add_proof(vc, ISSUER_KEY, ISSUER_VM)
    assert _code(lambda: sdk.verify_credential(signed, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.SCHEMA_VIOLATION
    )


def test_malformed_credentials_are_refused_before_signing() -> None:
    vc = _licence()
    for breakage in (
        lambda d: d.update({"@context": ["https://www.w3.org/ns/credentials/examples/v2"]}),
        lambda d: d.update({"type": ["AlumniCredential"]}),
        lambda d: d.update({"issuer": "not a url"}),
        lambda d: d.update({"credentialSubject": {"id": HOLDER}}),
        lambda d: d.update({"validFrom": "2026-01-01"}),
        lambda d: d.update({"validUntil": "2020-01-01T00:00:00Z"}),
        lambda d: d.update({"credentialStatus": {"id": "x:1"}}),
    ):
        broken = copy.deepcopy(vc)
        breakage(broken)
        assert _code(lambda b=broken: sdk.issue_credential(b, ISSUER_KEY, ISSUER_VM)) is (
            ErrorCode.INVALID_CREDENTIAL
        )


def test_rdfc_canonical_form_is_pyld_s() -> None:
    """What we sign with eddsa-rdfc-2022 canonicalises identically with PyLD used directly."""
    from pyld import jsonld

    vc = _issued(sdk.EDDSA_RDFC_2022)
    unsecured = {k: v for k, v in vc.items() if k != "proof"}
    direct = jsonld.normalize(
        copy.deepcopy(unsecured),
        {
            "algorithm": "URDNA2015",
            "format": "application/n-quads",
            "documentLoader": lambda url, options=None: {
                "contextUrl": None,
                "documentUrl": url,
                "document": sdk.context_document(url),
            },
        },
    )
    assert direct == sdk.canonicalize_rdfc(unsecured)
    assert "<https://w3id.org/citychain#unifiedSocialCreditCode>" in direct


@pytest.mark.parametrize("suite", SUITES)
def test_presentation_round_trip_and_refusals(suite: str) -> None:
    vc = _issued(suite)
    vp = sdk.sign_presentation(
        sdk.create_presentation([vc], holder=HOLDER),
        HOLDER_KEY,
        HOLDER_VM,
        challenge="3f6b1c0e",
        domain="https://verifier.example",
        cryptosuite=suite,
    )
    ok = sdk.verify_presentation(
        vp, challenge="3f6b1c0e", domain="https://verifier.example", now=NOW, resolver=RESOLVER
    )
    assert ok.signer == HOLDER
    assert [c.signer for c in ok.credentials] == [ISSUER]

    def verify(
        doc: Any = vp, challenge: str = "3f6b1c0e", domain: str = "https://verifier.example"
    ) -> Any:
        return sdk.verify_presentation(
            doc, challenge=challenge, domain=domain, now=NOW, resolver=RESOLVER
        )

    assert _code(lambda: verify(challenge="replayed")) is ErrorCode.WRONG_CHALLENGE
    assert _code(lambda: verify(domain="https://other.example")) is ErrorCode.WRONG_DOMAIN
    # the challenge rewritten to match: the holder's signature no longer does
    rewritten = copy.deepcopy(vp)
    rewritten["proof"]["challenge"] = "fresh"
    assert _code(lambda: verify(rewritten, challenge="fresh")) is ErrorCode.TAMPERED
    # a claim of an embedded credential changed: the holder's proof covers it too
    changed = copy.deepcopy(vp)
    changed["verifiableCredential"][0]["credentialSubject"]["legalName"] = "X"
    assert _code(lambda: verify(changed)) is ErrorCode.TAMPERED
    # the holder signing with an assertion-only key: not in authentication
    wrong_rel = sdk.sign_presentation(
        sdk.create_presentation([vc], holder=ISSUER),
        ISSUER_KEY,
        ISSUER_VM,
        challenge="3f6b1c0e",
        domain="https://verifier.example",
        cryptosuite=suite,
    )
    assert _code(lambda: verify(wrong_rel)) is ErrorCode.KEY_NOT_AUTHORIZED
    # someone else's authentication key presenting the holder's credential
    thief = sdk.sign_presentation(
        sdk.create_presentation([vc], holder=HOLDER),
        AUTH_ONLY_KEY,
        f"{ISSUER}#key-2",
        challenge="3f6b1c0e",
        domain="https://verifier.example",
        cryptosuite=suite,
    )
    assert _code(lambda: verify(thief)) is ErrorCode.WRONG_KEY


def test_presentation_of_an_expired_credential_is_refused() -> None:
    vc = _issued(sdk.EDDSA_JCS_2022, valid_until=NOW - timedelta(days=1))
    vp = sdk.sign_presentation(
        sdk.create_presentation([vc], holder=HOLDER),
        HOLDER_KEY,
        HOLDER_VM,
        challenge="c",
        domain="d",
    )
    with pytest.raises(InvalidInput) as e:
        sdk.verify_presentation(vp, challenge="c", domain="d", now=NOW, resolver=RESOLVER)
    assert e.value.code is ErrorCode.CREDENTIAL_EXPIRED


@pytest.mark.parametrize("suite", SUITES)
def test_a_proof_past_its_own_expires_is_refused(suite: str) -> None:
    """Data Integrity's ``expires``: the signer's end for the proof, apart from the
    credential's ``validUntil`` (a presentation good for minutes, a key being retired)."""
    later = sdk.issue_credential(
        _licence(), ISSUER_KEY, ISSUER_VM, cryptosuite=suite, expires=NOW + timedelta(hours=1)
    )
    assert later["proof"]["expires"] == format_datetime(NOW + timedelta(hours=1))
    sdk.verify_credential(later, now=NOW, resolver=RESOLVER)
    with pytest.raises(InvalidInput) as e:
        sdk.verify_credential(later, now=NOW + timedelta(hours=2), resolver=RESOLVER)
    assert e.value.code is ErrorCode.CREDENTIAL_EXPIRED and "the proof expired" in e.value.message
    # The date is signed: moving it later breaks the proof.
    moved = copy.deepcopy(later)
    moved["proof"]["expires"] = format_datetime(NOW + timedelta(days=9))
    assert _code(lambda: sdk.verify_credential(moved, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.TAMPERED
    )
    moved["proof"]["expires"] = "soon"
    assert _code(lambda: sdk.verify_credential(moved, now=NOW, resolver=RESOLVER)) is (
        ErrorCode.INVALID_CREDENTIAL
    )

    vp = sdk.sign_presentation(
        sdk.create_presentation([_issued(suite)], holder=HOLDER),
        HOLDER_KEY,
        HOLDER_VM,
        challenge="c",
        domain="d",
        cryptosuite=suite,
        expires=NOW + timedelta(minutes=5),
    )
    sdk.verify_presentation(vp, challenge="c", domain="d", now=NOW, resolver=RESOLVER)
    with pytest.raises(InvalidInput) as e:
        sdk.verify_presentation(
            vp, challenge="c", domain="d", now=NOW + timedelta(minutes=6), resolver=RESOLVER
        )
    assert e.value.code is ErrorCode.CREDENTIAL_EXPIRED and "the proof expired" in e.value.message


_SIGNED = {suite: _issued(suite) for suite in SUITES}
_CLAIMS = sorted(set(licence_subject()) - {"id"})  # every claim but the subject DID


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    suite=st.sampled_from(SUITES),
    claim=st.sampled_from(_CLAIMS),
    value=st.text(min_size=1, max_size=30),
)
def test_any_single_changed_claim_fails(suite: str, claim: str, value: str) -> None:
    vc = copy.deepcopy(_SIGNED[suite])
    if vc["credentialSubject"][claim] == value:
        value += "x"
    vc["credentialSubject"][claim] = value
    with pytest.raises(InvalidInput) as e:
        sdk.verify_proof(vc, RESOLVER)
    assert e.value.code is ErrorCode.TAMPERED


def test_an_unreachable_resolver_is_not_a_verdict() -> None:
    """A node that cannot answer is not evidence against the credential: its error goes up."""
    from citychain.errors import Unavailable

    def down(did: str) -> Any:
        raise Unavailable("node busy")

    with pytest.raises(Unavailable):
        sdk.verify_credential(_issued(sdk.EDDSA_JCS_2022), now=NOW, resolver=down)
