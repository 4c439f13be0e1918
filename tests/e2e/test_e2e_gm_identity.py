"""The identity service on a real ``sm2-sm3`` node: a DID controlled by an SM2 key, a licence
issued under it, and the licence's offline proof bundle verified with no network, in the SDK
and the CLI, against the chain's genesis (every hash SM3, every commit signature SM2).

The bundle names its chain's suite; the verifier takes the suite from the trust anchor, so the
same bundle against an ``ed25519`` anchor (or a bundle claiming ``ed25519`` against this
chain's) is refused with ``wrong_suite``. The properties (any changed byte refused) run on an
in-process chain of the same making, ``tests/services/identity/test_bundle_suites.py``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from nodeproc import NodeProcess, cli  # type: ignore[import-not-found]

from citychain.crypto import ED25519, SM2_SM3, Signer
from citychain.crypto.sm2 import sm3
from citychain.errors import CitychainError, ErrorCode
from citychain.node.home import init_home
from citychain.proof import ics23
from citychain.sdk import Client
from citychain.services.identity.sdk import (
    bundle_bytes,
    credential_from_template,
    issue_credential,
    make_bundle,
    status_entry,
    verify_bundle,
)
from citychain.services.identity.shapes import multikey_encode, sm2_multikey_encode
from citychain.types.genesis import Genesis

pytestmark = pytest.mark.slow

BUREAU = "Fuzhou Market Regulation Bureau"
TYPE = "BusinessLicenceCredential"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
#: The bureau's credential key: credentials are signed with eddsa-jcs-2022 (Ed25519), the
#: DID is controlled by the bureau's SM2 account key, the key this chain's transactions use.
ISSUING = Signer(ED25519, b"\x61" * 32)


@dataclass
class Gm:
    node: NodeProcess
    genesis: Genesis
    did: str
    good: dict[str, Any]
    bundle: bytes
    revoked_bundle: bytes


def _subject() -> dict[str, Any]:
    return {
        "id": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "legalName": "Fuzhou Tea Co., Ltd.",
        "unifiedSocialCreditCode": "91350100MA2Y7K1234",
        "legalRepresentative": "Chen Mei",
        "registeredAddress": "1 Wuyi Road, Gulou District, Fuzhou",
        "establishedOn": "2021-03-04",
    }


@pytest.fixture(scope="module")
def gm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gm]:
    home = tmp_path_factory.mktemp("gm-identity") / "node"
    # what `citychain init --crypto sm2` makes (test_e2e_gm_chain runs that command), made in
    # this process with the fast KDF: a subprocess and the default KDF cost seconds
    init_home(home, suite=SM2_SM3, kdf_level="interactive")
    node = NodeProcess(home)
    node.start(demo=False)
    try:
        g = Genesis.load(home / "config" / "genesis.json")
        bureau, admin = node.signer("alice"), node.signer("org1-admin")
        assert bureau.suite.name == "sm2-sm3"
        document = {
            "verificationMethod": [
                {
                    "id": "#key-1",
                    "type": "Multikey",
                    "publicKeyMultibase": sm2_multikey_encode(bureau.public_key),
                },
                {
                    "id": "#key-2",
                    "type": "Multikey",
                    "publicKeyMultibase": multikey_encode(ISSUING.public_key),
                },
            ],
            "authentication": ["#key-1"],
            "capabilityInvocation": ["#key-1"],
            "assertionMethod": ["#key-2"],
        }
        with Client(node.url, chain_id=g.chain_id, validators=g.validator_set, suite=g.suite) as c:
            did = c.identity.dids.create(bureau, document)
            trusted = c.send(
                admin, "identity", "trust_issuer", {"issuer": did, "type": TYPE, "name": BUREAU}
            )
            assert trusted.ok, trusted
            listed = c.send(
                bureau,
                "identity",
                "register_status_list",
                {"issuer": did, "name": "licences", "purpose": "revocation"},
            )
            assert listed.ok, listed
            revocations = str(listed.result)
            assert c.send(bureau, "identity", "set_status", {"list_id": revocations, "set": [7]}).ok

            def licence(index: int) -> dict[str, Any]:
                vc = credential_from_template(
                    "business-licence",
                    issuer=did,
                    subject=_subject(),
                    valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                    valid_until=datetime(2031, 1, 1, tzinfo=UTC),
                    credential_status=status_entry(revocations, index),
                )
                return issue_credential(vc, ISSUING, f"{did}#key-2")

            good, revoked = licence(21), licence(7)
            files = [bundle_bytes(make_bundle(c, vc)) for vc in (good, revoked)]
        yield Gm(node, g, did, good, files[0], files[1])
    finally:
        node.stop()


def offline(data: bytes, g: Genesis, suite: Any = None) -> Any:
    return verify_bundle(
        data,
        chain_id=g.chain_id,
        validators=g.validator_set,
        suite=suite or g.suite,
        now=NOW,
    )


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an offline verification touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_did_is_controlled_by_an_sm2_key_and_the_node_verifies_the_licence(gm: Gm) -> None:
    with Client(gm.node.url, chain_id=gm.genesis.chain_id, suite=gm.genesis.suite) as c:
        proven = c.identity.dids.resolve_proven(gm.did)  # rebuilt from SM3-proven state
    assert proven.verified
    methods = {m["id"].split("#")[1]: m for m in proven.document["verificationMethod"]}
    assert methods["key-1"]["publicKeyMultibase"] == sm2_multikey_encode(
        gm.node.signer("alice").public_key
    )
    answer = httpx.post(
        gm.node.url + "/credentials/verify", json={"verifiableCredential": gm.good}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["issuerName"] == BUREAU


def test_the_bundle_names_sm2_sm3_carries_sm3_proofs_and_verifies_offline(
    gm: Gm, no_network: None
) -> None:
    b = json.loads(gm.bundle)
    assert b["cryptoSuite"] == "sm2-sm3"
    for raw in b["proofs"]:  # every header's hash and every proof's ops are SM3
        proof = ics23.decode_commitment_proof(bytes.fromhex(raw["proof"]))
        ops = proof.exist.path if proof.exist else []
        assert all(op.hash == ics23.HashOp.SM3 for op in ops)
        assert raw["header"]["hash"] == sm3(_header(raw["header"], gm.genesis).encode()).hex()
    verdict = offline(gm.bundle, gm.genesis)
    assert (verdict.issuer, verdict.issuer_name, verdict.credential_type) == (gm.did, BUREAU, TYPE)
    with pytest.raises(CitychainError) as err:
        offline(gm.revoked_bundle, gm.genesis)
    assert err.value.code == ErrorCode.CREDENTIAL_REVOKED


def _header(raw: dict[str, Any], g: Genesis) -> Any:
    from citychain.sdk import _parse

    return _parse.header(raw, g.suite.hash_new)


def test_the_suite_comes_from_the_trust_anchor_not_the_bundle(gm: Gm, no_network: None) -> None:
    # the same bundle against an ed25519 trust anchor: refused before any proof is read
    with pytest.raises(CitychainError) as err:
        offline(gm.bundle, gm.genesis, ED25519)
    assert err.value.code == ErrorCode.WRONG_SUITE and "sm2-sm3" in err.value.message
    # a bundle that claims ed25519 (no cryptoSuite) against this SM3 chain's anchor
    claims = json.loads(gm.bundle)
    del claims["cryptoSuite"]
    with pytest.raises(CitychainError) as err:
        offline(bytes(rfc8785.dumps(claims)), gm.genesis)
    assert err.value.code == ErrorCode.WRONG_SUITE
    # an explicit "ed25519" is not the canonical form of any bundle
    claims["cryptoSuite"] = "ed25519"
    with pytest.raises(CitychainError) as err:
        offline(bytes(rfc8785.dumps(claims)), gm.genesis, ED25519)
    assert err.value.code == ErrorCode.TAMPERED
    assert offline(gm.bundle, gm.genesis, SM2_SM3).issuer == gm.did


def test_vc_bundle_and_vc_verify_offline_on_the_gm_chain(gm: Gm, tmp_path: Path) -> None:
    genesis = str(gm.node.home / "config" / "genesis.json")
    (tmp_path / "licence.json").write_text(json.dumps(gm.good))
    r = cli("vc", "bundle", str(tmp_path / "licence.json"), "-o", str(tmp_path / "licence.b"),
            "--node", gm.node.url, "--genesis", genesis)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "licence.b").read_bytes())["cryptoSuite"] == "sm2-sm3"
    r = cli("vc", "verify", "--offline", str(tmp_path / "licence.b"), "--genesis", genesis)
    assert r.returncode == 0, r.stderr
    assert f"issued by {BUREAU}" in r.stdout and "checked offline against genesis" in r.stdout
    data = (tmp_path / "licence.b").read_bytes()
    at = data.index(b'"cryptoSuite":"sm2-sm3"') + len(b'"cryptoSuite":"sm')
    (tmp_path / "bent.b").write_bytes(data[:at] + b"3" + data[at + 1 :])  # "sm3-sm3"
    r = cli("vc", "verify", "--offline", str(tmp_path / "bent.b"), "--genesis", genesis)
    assert r.returncode != 0 and "wrong_suite" in r.stderr and "Traceback" not in r.stderr
