"""Credential templates: the city's e-certificates, each with a JSON Schema (2020-12) named by
the credential's ``credentialSchema`` (``{"id": <schema URL>, "type": "JsonSchema"}``).

The schemas ship with the package (``schemas/*.json``) and are never fetched. A credential
naming one of them is validated against it when issued and when verified
(``schema_violation``); one naming a schema we do not bundle is refused.

What goes on chain for these certificates: the issuer's DID document, its trusted-issuer
entry for the credential type and the status list bit. Never a claim, never a subject: a
party that wants to anchor a particular certificate records a hash of it (SHA-256 of its
JCS bytes), which reveals nothing without the certificate itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from citychain.errors import ErrorCode, InvalidInput

SCHEMA_BASE = "https://w3id.org/citychain/schemas/"


@dataclass(frozen=True, slots=True)
class Template:
    """One kind of e-certificate: its credential type, schema and bundled file."""

    name: str
    credential_type: str
    schema_id: str
    title: str


def _t(name: str, credential_type: str, title: str) -> Template:
    return Template(name, credential_type, f"{SCHEMA_BASE}{name}/v1", title)


#: name -> template. Business licence (营业执照), professional qualification (职业资格证书),
#: residence permit (居住证), property certificate (不动产权证书).
TEMPLATES: Mapping[str, Template] = {
    t.name: t
    for t in (
        _t("business-licence", "BusinessLicenceCredential", "Business licence"),
        _t(
            "professional-qualification",
            "ProfessionalQualificationCredential",
            "Professional qualification",
        ),
        _t("residence-permit", "ResidencePermitCredential", "Residence permit"),
        _t("property-certificate", "PropertyCertificateCredential", "Property certificate"),
    )
}
_BY_SCHEMA_ID = {t.schema_id: t for t in TEMPLATES.values()}


@cache
def _schema_text(name: str) -> str:
    return resources.files(__package__).joinpath("schemas", f"{name}-v1.json").read_text("utf-8")


def credential_schema(schema_id: str) -> dict[str, Any]:
    """A fresh copy of the bundled JSON Schema ``schema_id``."""
    template = _BY_SCHEMA_ID.get(schema_id)
    if template is None:
        raise InvalidInput(
            f"credentialSchema {schema_id[:120]!r} is not a bundled schema "
            f"({', '.join(sorted(_BY_SCHEMA_ID))})",
            ErrorCode.SCHEMA_VIOLATION,
        )
    loaded: dict[str, Any] = json.loads(_schema_text(template.name))
    return loaded


@cache
def _validator(schema_id: str) -> Any:
    # jsonschema-rs (Rust) and not the pure-Python jsonschema: measured here, 1.2 us against
    # 172 us for a business licence, which was half of a credential's verification. The
    # tests check the same credentials with the Python jsonschema as an independent oracle.
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(credential_schema(schema_id), validate_formats=True)


def validate_schema(credential: Mapping[str, Any]) -> None:
    """Validate ``credential`` against every ``credentialSchema`` it names (JsonSchema);
    ``schema_violation`` naming the first failing field."""
    entries = credential.get("credentialSchema")
    if entries is None:
        return
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, Mapping) or entry.get("type") != "JsonSchema":
            raise InvalidInput(
                "credentialSchema entries must be {'id': <URL>, 'type': 'JsonSchema'}",
                ErrorCode.SCHEMA_VIOLATION,
            )
        validator = _validator(str(entry.get("id")))
        if validator.is_valid(credential):
            continue
        errors = sorted(
            validator.iter_errors(dict(credential)), key=lambda e: [str(p) for p in e.instance_path]
        )
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.instance_path) or "(the credential)"
            raise InvalidInput(
                f"{where}: {first.message[:200]} (schema {entry.get('id')})",
                ErrorCode.SCHEMA_VIOLATION,
            )
