"""The credential library is SDK-level and pure: importing and using it loads nothing of the
node's extra, its contexts and schemas ship as package data, and a client carries it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.errors import InvalidInput
from citychain.services.identity import sdk
from citychain.services.identity.sdk import _contexts, _templates

ROOT = Path(__file__).resolve().parents[3]
NODE_ONLY = ("fastapi", "rocksdict", "typer", "rich", "cryptography", "uvicorn", "pkcs11")


def test_using_the_library_imports_nothing_of_the_node_extra() -> None:
    code = f"""
import json, sys
from datetime import datetime, UTC
from citychain.services.identity import sdk
from citychain.crypto import Signer
from citychain.crypto.ed25519 import ED25519
from citychain.services.identity.shapes import did_key, multikey_encode
k = Signer(ED25519, bytes(32)); did = did_key(k.public_key)
vm = did + "#" + multikey_encode(k.public_key)
vc = sdk.build_credential(issuer=did, subject={{"id": did, "name": "x"}})
for suite in sdk.CRYPTOSUITES:
    signed = sdk.issue_credential(vc, k, vm, cryptosuite=suite)
    sdk.verify_credential(signed, now=datetime(2026, 1, 1, tzinfo=UTC))
sdk.StatusList().encode()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {NODE_ONLY!r})
print(json.dumps(loaded))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_contexts_and_schemas_are_package_data() -> None:
    package = resources.files("citychain.services.identity.sdk")
    for name in _contexts.CONTEXT_FILES.values():
        assert package.joinpath("contexts", name).is_file()
    for template in _templates.TEMPLATES.values():
        assert package.joinpath("schemas", f"{template.name}-v1.json").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["citychain"]
    assert "services/identity/sdk/contexts/*.jsonld" in patterns
    assert "services/identity/sdk/schemas/*.json" in patterns
    deps = " ".join(config["project"]["dependencies"])
    for needed in ("pyld", "rfc8785", "jsonschema", "pynacl"):
        assert needed in deps


def test_bundled_contexts_are_json_ld_contexts() -> None:
    for url in _contexts.CONTEXT_FILES:
        doc = sdk.context_document(url)
        assert isinstance(doc["@context"], dict)


def test_a_client_carries_the_helper() -> None:
    helper = sdk.bind(object())
    assert helper.verify_credential is sdk.verify_credential
    async_helper = sdk.bind_async(object())
    assert async_helper.verify_sd_jwt is sdk.verify_sd_jwt


def test_the_helper_carries_the_did_client() -> None:
    client = object()
    assert isinstance(sdk.bind(client).dids, sdk.Dids)
    assert isinstance(sdk.bind_async(client).dids, sdk.AsyncDids)


def test_the_helper_resolver_verifies_with_the_clients_dids() -> None:
    from datetime import UTC, datetime

    from vc_fixtures import did_document, signer

    from citychain.errors import ErrorCode, InvalidInput

    key = signer(41)
    did = "did:citychain:Hx3kP9wQ2nRt5vYb7cLm1a"
    document = did_document(did, {"key-1": key}, {"assertionMethod": ["key-1"]})
    metadata = {"deactivated": False}

    class FakeDids:
        def resolve_proven(self, asked: str) -> sdk.ProvenDid:
            assert asked == did
            return sdk.ProvenDid(did, document, dict(metadata), 7, True)

    helper = sdk.bind(object())
    helper.dids = FakeDids()  # type: ignore[assignment]
    vc = sdk.issue_credential(
        sdk.build_credential(issuer=did, subject={"id": did, "name": "x"}), key, f"{did}#key-1"
    )
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert helper.verify_credential(vc, now=now, resolver=helper.resolver()).signer == did
    metadata["deactivated"] = True
    with pytest.raises(InvalidInput) as e:
        helper.verify_credential(vc, now=now, resolver=helper.resolver())
    # said as the node's verifier says it, not as a wrong key
    assert e.value.code is ErrorCode.DID_DEACTIVATED and "deactivated" in e.value.message


_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=0x20))
)
_json_values = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _json_values, max_size=6))
def test_jcs_fast_path_writes_the_bytes_rfc8785_does(value: dict[str, Any]) -> None:
    """canonicalize_jcs writes plain credentials with the C json module; the rfc8785
    library is the oracle, for any keys (non-BMP ones sort by UTF-16 there), controls, big
    integers and floats."""
    import rfc8785

    try:
        expected: bytes | None = rfc8785.dumps(value)
    except Exception:
        expected = None
    if expected is None:
        with pytest.raises(InvalidInput):
            sdk.canonicalize_jcs(value)
    else:
        assert sdk.canonicalize_jcs(value) == expected


_plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=0xD7FF), max_size=6), inner)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=6).filter(str.isascii), _plain_values, max_size=6))
def test_jcs_fast_path_is_taken_and_exact_for_plain_documents(value: dict[str, Any]) -> None:
    import rfc8785

    from citychain.services.identity.sdk._di import _plain

    assert _plain(value)
    assert sdk.canonicalize_jcs(value) == rfc8785.dumps(value)
