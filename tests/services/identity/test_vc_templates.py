"""E-certificate templates: each has a bundled JSON Schema (2020-12) that jsonschema accepts, a
good credential of each issues and verifies, and a schema violation names the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from vc_fixtures import NOW, VALID_FROM, DictResolver, did_document, licence_subject, signer

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity import sdk

ISSUER_KEY = signer(31)
ISSUER = "did:citychain:5yKq2W6c7oQk1vTz8mYpUa"
RESOLVER = DictResolver(did_document(ISSUER, {"key-1": ISSUER_KEY}, {"assertionMethod": ["key-1"]}))
HOLDER = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"

SUBJECTS: dict[str, dict[str, Any]] = {
    "business-licence": licence_subject(registeredCapital="1000000 CNY", legalForm="LLC"),
    "professional-qualification": {
        "id": HOLDER,
        "name": "Wang Fang",
        "qualification": "Registered Architect",
        "qualificationLevel": "Class 1",
        "certificateNumber": "RA-2024-00017",
        "awardedOn": "2024-03-01",
    },
    "residence-permit": {
        "id": HOLDER,
        "givenName": "Anna",
        "familyName": "Schmidt",
        "birthDate": "1991-02-03",
        "nationality": "DEU",
        "permitNumber": "BJ-RP-778899",
        "permitType": "work",
    },
    "property-certificate": {
        "id": HOLDER,
        "owner": "Zhang Wei",
        "certificateNumber": "JING2025-0012345",
        "propertyAddress": "Room 1201, 8 Example Road, Chaoyang District, Beijing",
        "parcelNumber": "110105001001GB00001F00010012",
        "floorArea": "89.50",
        "ownershipShare": "1/1",
    },
}
BREAKAGES = {
    "business-licence": ("unifiedSocialCreditCode", "123"),
    "professional-qualification": ("awardedOn", "2024-13-45"),
    "residence-permit": ("permitType", "tourist"),
    "property-certificate": ("floorArea", 89.5),  # a float: areas are decimal strings
}


def test_four_templates_with_valid_bundled_schemas() -> None:
    assert set(sdk.TEMPLATES) == set(SUBJECTS)
    for template in sdk.TEMPLATES.values():
        schema = sdk.credential_schema(template.schema_id)
        Draft202012Validator.check_schema(schema)
        assert schema["$id"] == template.schema_id
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert "hash" in schema["description"]  # says what (not) to put on chain


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_each_template_issues_and_verifies(name: str) -> None:
    vc = sdk.credential_from_template(
        name, issuer=ISSUER, subject=SUBJECTS[name], valid_from=VALID_FROM
    )
    assert vc["credentialSchema"] == {"id": sdk.TEMPLATES[name].schema_id, "type": "JsonSchema"}
    assert sdk.TEMPLATES[name].credential_type in vc["type"]
    signed = sdk.issue_credential(vc, ISSUER_KEY, f"{ISSUER}#key-1")
    assert sdk.verify_credential(signed, now=NOW, resolver=RESOLVER).signer == ISSUER
    # the claims are defined terms of the bundled citychain context: RDFC keeps every one
    nquads = sdk.canonicalize_rdfc({k: v for k, v in signed.items() if k != "proof"})
    for claim in SUBJECTS[name]:
        if claim not in ("id", "name"):
            assert f"<https://w3id.org/citychain#{claim}>" in nquads


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_schema_violations_name_the_field(name: str) -> None:
    field, value = BREAKAGES[name]
    subject = copy.deepcopy(SUBJECTS[name])
    subject[field] = value
    with pytest.raises(InvalidInput) as e:
        sdk.credential_from_template(name, issuer=ISSUER, subject=subject, valid_from=VALID_FROM)
    assert e.value.code is ErrorCode.SCHEMA_VIOLATION
    assert field in e.value.message
    missing = {k: v for k, v in SUBJECTS[name].items() if k != "id"}
    with pytest.raises(InvalidInput) as e:
        sdk.credential_from_template(name, issuer=ISSUER, subject=missing, valid_from=VALID_FROM)
    assert e.value.code is ErrorCode.SCHEMA_VIOLATION
    extra = {**SUBJECTS[name], "nationalIdNumber": "110101199003070000"}
    with pytest.raises(InvalidInput) as e:
        sdk.credential_from_template(name, issuer=ISSUER, subject=extra, valid_from=VALID_FROM)
    assert e.value.code is ErrorCode.SCHEMA_VIOLATION


def test_unknown_schema_or_template_is_refused() -> None:
    vc = sdk.build_credential(
        issuer=ISSUER,
        subject={"id": HOLDER, "x": 1},
        credential_schema={"id": "https://schemas.example/other.json", "type": "JsonSchema"},
    )
    with pytest.raises(InvalidInput) as e:
        sdk.validate_schema(vc)
    assert e.value.code is ErrorCode.SCHEMA_VIOLATION
    with pytest.raises(InvalidInput) as e:
        sdk.credential_from_template(
            "driving-licence", issuer=ISSUER, subject={}, valid_from=VALID_FROM
        )
    assert e.value.code is ErrorCode.BAD_ARGUMENTS


def test_what_goes_on_chain_is_a_hash() -> None:
    name = "residence-permit"
    vc = sdk.credential_from_template(
        name, issuer=ISSUER, subject=SUBJECTS[name], valid_from=VALID_FROM
    )
    signed = sdk.issue_credential(vc, ISSUER_KEY, f"{ISSUER}#key-1")
    digest = sdk.credential_digest(signed)
    assert len(digest) == 32
    assert digest == sdk.credential_digest(copy.deepcopy(signed))
    assert SUBJECTS[name]["birthDate"].encode() not in digest
    changed = copy.deepcopy(signed)
    changed["credentialSubject"]["birthDate"] = "1991-02-04"
    assert sdk.credential_digest(changed) != digest


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_schema_verdicts_agree_with_the_python_jsonschema(name: str) -> None:
    """The SDK validates with jsonschema-rs; the pure-Python jsonschema is the independent
    oracle: a good credential passes both, each breakage fails both."""
    from jsonschema import FormatChecker

    vc = sdk.credential_from_template(
        name, issuer=ISSUER, subject=SUBJECTS[name], valid_from=VALID_FROM
    )
    oracle = Draft202012Validator(
        sdk.credential_schema(sdk.TEMPLATES[name].schema_id), format_checker=FormatChecker()
    )
    assert oracle.is_valid(vc)
    sdk.validate_schema(vc)
    field, bad = BREAKAGES[name]
    for broken_subject in (
        {**SUBJECTS[name], field: bad},
        {k: v for k, v in SUBJECTS[name].items() if k != field},
        {**SUBJECTS[name], field: None},
    ):
        broken = copy.deepcopy(vc)
        broken["credentialSubject"] = broken_subject
        assert not oracle.is_valid(broken)
        with pytest.raises(InvalidInput) as e:
            sdk.validate_schema(broken)
        assert e.value.code == ErrorCode.SCHEMA_VIOLATION and field in e.value.message
