"""Offline proof bundles on both crypto suites, on in-process chains (no node processes).

* An ``ed25519`` chain's bundle is the bytes it always was: ``vectors/identity/bundle-ed25519``
  holds a genesis and the bundle the code before SM3 bundles made on it (``SOURCE.md`` there);
  the same chain rebuilt here makes exactly those bytes, and they verify.
* An ``sm2-sm3`` chain's bundle names its suite and verifies against that chain's genesis;
  each suite's bundle is refused against the other suite's trust anchor (``wrong_suite``).
* A ``did:citychain`` document takes SM2 keys (``sm2-pub`` Multikeys) on an ``sm2-sm3`` chain,
  so an SM2 account can control a DID there; an ``ed25519`` chain refuses them with the words
  it always did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import base58
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vc_fixtures import REFUSALS as OFFLINE_REFUSALS  # type: ignore[import-not-found]

from citychain.chain import Chain
from citychain.crypto import ED25519, SM2_SM3, CryptoSuite, Signer
from citychain.crypto.keystore import load_key
from citychain.errors import CitychainError, ErrorCode
from citychain.execution import ContractRegistry
from citychain.execution.keys import account_nonce
from citychain.node.home import init_home
from citychain.p2p.certs import generate_org_ca
from citychain.proof.ics23 import encode_commitment_proof
from citychain.services.gov.contract import Gov
from citychain.services.identity.contract import Identity, to_json, to_record
from citychain.services.identity.sdk import (
    EDDSA_JCS_2022,
    bundle_bytes,
    credential_from_template,
    issue_credential,
    make_bundle,
    status_entry,
    verify_bundle,
)
from citychain.services.identity.shapes import (
    SM2_PUB,
    method_key_decode,
    method_key_encode,
    multikey_encode,
    sm2_multikey_decode,
    sm2_multikey_encode,
)
from citychain.services.token.contract import Token
from citychain.store.kv import KVStore
from citychain.types import Commit, Receipt, StateProof, Transaction, Validator, ValidatorSet
from citychain.types.answers import BlockInfo, NodeStatus
from citychain.types.genesis import ChainParams, Genesis, Governance, Member, Organisation

VECTOR = Path(__file__).resolve().parents[2] / "vectors" / "identity" / "bundle-ed25519"
CHAIN = "bundle-chain"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW = datetime(2026, 6, 1, tzinfo=UTC)
TYPE = "BusinessLicenceCredential"
BUREAU = "Fuzhou Market Regulation Bureau"
#: Credentials are signed with Ed25519 (eddsa-jcs-2022) on either suite.
ISSUING = Signer(ED25519, b"\x61" * 32)


def keys(suite: CryptoSuite) -> dict[str, Signer]:
    return {n: Signer(suite, bytes([i + 0x11]) * 32) for i, n in enumerate(("val", "alice"))}


def make_genesis(suite: CryptoSuite = ED25519) -> Genesis:
    """How ``vectors/identity/bundle-ed25519/genesis.json`` was made (its CA certificate is
    random, so the file, not this function, is the vector): one organisation whose admin,
    alice, may trust issuers."""
    k = keys(suite)
    ca = generate_org_ca("org1", "Org org1")[0].decode()
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=T0,
        crypto_suite=suite.name,
        validators=(Validator(k["val"].public_key, 10, "val"),),
        params=ChainParams(block_max_txs=100),
        contracts={},
        organisations=(
            Organisation(
                "org1",
                "Org org1",
                ca,
                admins=(k["alice"].public_key,),
                members=(Member(k["alice"].public_key, ("member", "admin")),),
            ),
        ),
        governance=Governance(
            "key", 20, {"identity.trust_issuer": {"rule": "ANY", "roles": ["admin"]}}
        ),
        validator_orgs=((k["val"].public_key, "org1"),),
    )
    return Genesis.from_json(genesis.to_json())


class InProcessNode:
    """What :func:`make_bundle` asks a node, answered by a :class:`Chain` in this process."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def status(self) -> NodeStatus:
        raise AssertionError("the tests pass the suite: make_bundle need not ask")

    def state_proof(self, key: bytes, height: int | None = None) -> StateProof:
        h = height or self.chain.height
        value, proof = self.chain.state.prove(key, h)
        header, commit = self.chain.blocks.header(h), self.chain.blocks.commit(h)
        assert header is not None and commit is not None
        return StateProof(key, value, h, encode_commitment_proof(proof), header, commit)

    def validators(self, height: int | None = None) -> ValidatorSet:
        return self.chain.validators(height)

    def block(self, height: int | None = None) -> BlockInfo:
        h = height or self.chain.height
        block, commit = self.chain.blocks.block(h), self.chain.blocks.commit(h)
        assert block is not None and commit is not None
        return BlockInfo(block, commit)


@dataclass(frozen=True)
class Keys:
    val: Signer  # signs the commits
    alice: Signer  # the bureau's account: controls the DID, runs its status list
    admin: Signer  # an organisation admin: trusts the issuer


@dataclass
class World:
    genesis: Genesis
    chain: Chain
    did: str
    licence: dict[str, Any]
    revoked: dict[str, Any]

    @property
    def suite(self) -> CryptoSuite:
        return self.genesis.suite

    def bundle(self, vc: dict[str, Any] | None = None) -> bytes:
        node = InProcessNode(self.chain)
        return bundle_bytes(make_bundle(node, vc or self.licence, suite=self.suite))


def build(path: Path, genesis: Genesis, k: Keys) -> World:
    """On ``genesis``'s chain: alice creates a DID (her account key controls it, ISSUING
    issues), the admin trusts it for business licences, alice registers a revocation list and
    revokes entry 7. Deterministic: the same genesis and keys give the same blocks, byte for
    byte."""
    alice, val = k.alice, k.val
    reg = ContractRegistry()
    for c in (Gov(), Token(), Identity()):
        reg.register(c)
    chain = Chain(KVStore(path), genesis, reg)

    def send(method: str, args: dict[str, Any], signer: Signer = alice) -> Receipt:
        tx = Transaction.create(
            signer,
            chain_id=genesis.chain_id,
            nonce=account_nonce(chain.state, signer.address),
            contract="identity",
            method=method,
            args=args,
            gas_limit=5_000_000,
        )
        pending = chain.build_block([tx], T0 + 1000 * (chain.height + 1), val.public_key)
        chain.commit(pending, Commit.sign_single(val, genesis.chain_id, pending.header))
        (r,) = pending.receipts
        assert r.code == ErrorCode.OK, f"{r.code}: {r.message}"
        return r

    methods = [
        ("key-1", method_key_encode(alice.public_key)),
        ("key-2", multikey_encode(ISSUING.public_key)),
    ]
    document = {
        "verificationMethod": [
            {"id": f"#{frag}", "type": "Multikey", "publicKeyMultibase": mk} for frag, mk in methods
        ],
        "authentication": ["#key-1"],
        "capabilityInvocation": ["#key-1"],
        "assertionMethod": ["#key-2"],
    }
    did = str(send("create_did", {"document": document}).result)
    send("trust_issuer", {"issuer": did, "type": TYPE, "name": BUREAU}, k.admin)
    lst = str(
        send(
            "register_status_list", {"issuer": did, "name": "licences", "purpose": "revocation"}
        ).result
    )
    send("set_status", {"list_id": lst, "set": [7]})

    def licence(index: int) -> dict[str, Any]:
        vc = credential_from_template(
            "business-licence",
            issuer=did,
            subject={
                "id": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
                "legalName": "Fuzhou Tea Co., Ltd.",
                "unifiedSocialCreditCode": "91350100MA2Y7K1234",
                "legalRepresentative": "Chen Mei",
                "registeredAddress": "1 Wuyi Road, Gulou District, Fuzhou",
                "establishedOn": "2021-03-04",
            },
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            valid_until=datetime(2031, 1, 1, tzinfo=UTC),
            credential_status=status_entry(lst, index),
        )
        return issue_credential(
            vc,
            ISSUING,
            f"{did}#key-2",
            cryptosuite=EDDSA_JCS_2022,
            created=datetime(2026, 1, 2, tzinfo=UTC),
        )

    return World(genesis, chain, did, licence(21), licence(7))


def offline(data: bytes, g: Genesis, suite: CryptoSuite | None = None) -> Any:
    return verify_bundle(
        data, chain_id=g.chain_id, validators=g.validator_set, suite=suite or g.suite, now=NOW
    )


@pytest.fixture(scope="module")
def ed(tmp_path_factory: pytest.TempPathFactory) -> World:
    genesis = Genesis.from_json(json.loads((VECTOR / "genesis.json").read_text()))
    k = keys(ED25519)
    return build(
        tmp_path_factory.mktemp("ed") / "db", genesis, Keys(k["val"], k["alice"], k["alice"])
    )


@pytest.fixture(scope="module")
def gm(tmp_path_factory: pytest.TempPathFactory) -> World:
    """An ``sm2-sm3`` chain as ``citychain init --crypto sm2`` makes it (its genesis, SM2
    keys and organisation), run in this process."""
    home = tmp_path_factory.mktemp("gm") / "home"
    val = Signer(SM2_SM3, b"\x21" * 32)
    init_home(
        home, suite=SM2_SM3, validator=val, kdf_level="interactive", genesis_time=T0, chain_id=CHAIN
    )
    genesis = Genesis.load(home / "config" / "genesis.json")
    assert genesis.crypto_suite == "sm2-sm3"
    words = (home / "config" / "passphrase").read_text().strip()
    alice, admin = (load_key(home / "keys" / f"{n}.json", words) for n in ("alice", "org1-admin"))
    return build(home / "db", genesis, Keys(val, alice, admin))


def test_an_ed25519_bundle_is_the_bytes_it_always_was(ed: World) -> None:
    before = (VECTOR / "licence.bundle").read_bytes()
    assert ed.bundle() == before  # made by the code before bundles named their suite
    assert b"cryptoSuite" not in before
    verdict = offline(before, ed.genesis)
    assert (verdict.issuer, verdict.issuer_name, verdict.credential_type) == (ed.did, BUREAU, TYPE)
    assert offline(before, ed.genesis, ED25519).height == verdict.height  # the default suite
    with pytest.raises(CitychainError) as err:
        offline(ed.bundle(ed.revoked), ed.genesis)
    assert err.value.code == ErrorCode.CREDENTIAL_REVOKED


def test_an_sm3_bundle_names_its_suite_and_verifies(gm: World) -> None:
    data = gm.bundle()
    assert json.loads(data)["cryptoSuite"] == "sm2-sm3"
    verdict = offline(data, gm.genesis)
    assert (verdict.issuer, verdict.issuer_name) == (gm.did, BUREAU)
    with pytest.raises(CitychainError) as err:
        offline(gm.bundle(gm.revoked), gm.genesis)
    assert err.value.code == ErrorCode.CREDENTIAL_REVOKED


def test_each_suites_bundle_is_refused_against_the_other_suites_anchor(
    ed: World, gm: World
) -> None:
    for bundle, anchor, other in (
        (ed.bundle(), gm.genesis, SM2_SM3),  # SHA-256 bundle, SM3 trust anchor
        (gm.bundle(), ed.genesis, ED25519),  # SM3 bundle, SHA-256 trust anchor
    ):
        with pytest.raises(CitychainError) as err:
            offline(bundle, anchor, other)
        assert err.value.code == ErrorCode.WRONG_SUITE, err.value
    # the right suite but the other chain's validators: the light client finds no path
    with pytest.raises(CitychainError) as err:
        offline(gm.bundle(), ed.genesis, SM2_SM3)
    assert err.value.code == ErrorCode.BAD_PROOF


@pytest.fixture(scope="module")
def gm_bundle(gm: World) -> bytes:
    return gm.bundle()


#: An SM3 bundle's changed bytes may also name the other suite.
REFUSALS = OFFLINE_REFUSALS | {ErrorCode.WRONG_SUITE}


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_single_changed_byte_of_an_sm3_bundle_is_refused(
    gm_bundle: bytes, gm: World, data: st.DataObject
) -> None:
    bundle = gm_bundle
    pos = data.draw(st.integers(0, len(bundle) - 1), label="position")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != bundle[pos]), label="byte")
    changed = bundle[:pos] + bytes([new]) + bundle[pos + 1 :]
    with pytest.raises(CitychainError) as err:
        offline(changed, gm.genesis)
    assert err.value.code in REFUSALS, (pos, err.value)


HEX = b"0123456789abcdef"


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_changed_hex_digit_is_caught_by_the_sm3_and_sm2_checks(
    gm_bundle: bytes, gm: World, data: st.DataObject
) -> None:
    """A hex digit changed to another keeps the file canonical JSON, so it gets past the
    byte-exactness check to the proofs (SM3), the commits' signatures (SM2) and the rest."""
    bundle = gm_bundle
    pos = data.draw(st.sampled_from(_hex_positions(bundle)), label="position")
    new = data.draw(st.sampled_from([d for d in HEX if d != bundle[pos]]), label="digit")
    changed = bundle[:pos] + bytes([new]) + bundle[pos + 1 :]
    with pytest.raises(CitychainError) as err:
        offline(changed, gm.genesis)
    assert err.value.code in REFUSALS, (pos, err.value)


def _hex_positions(bundle: bytes) -> list[int]:
    """Positions inside the long hex strings of a bundle (keys, values, proofs, hashes,
    public keys, signatures)."""
    out, run = [], 0
    for i, c in enumerate(bundle):
        run = run + 1 if c in HEX else 0
        if run == 16:
            out.extend(range(i - 15, i + 1))
        elif run > 16:
            out.append(i)
    return out


def test_did_documents_take_sm2_keys_only_on_an_sm2_chain(gm: World) -> None:
    alice = Signer(SM2_SM3, b"\x12" * 32)
    multikey = sm2_multikey_encode(alice.public_key)
    doc = {
        "verificationMethod": [{"id": "#k", "type": "Multikey", "publicKeyMultibase": multikey}],
        "capabilityInvocation": ["#k"],
    }
    record = to_record(doc, None, sm2=True)
    assert record["vm"][0][2] == alice.public_key
    assert to_json(record, gm.did)["verificationMethod"][0]["publicKeyMultibase"] == multikey
    with pytest.raises(CitychainError) as err:  # an ed25519 chain: the words it always had
        to_record(doc, None)
    assert err.value.code == ErrorCode.INVALID_DID_DOCUMENT
    assert "is not an Ed25519 key (multicodec 0xed01)" in err.value.message


@settings(max_examples=40, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32).filter(lambda s: any(s)))
def test_sm2_multikeys_round_trip_through_the_compressed_point(secret: bytes) -> None:
    try:
        key = Signer(SM2_SM3, secret).public_key
    except CitychainError:  # a secret outside [1, n-2]
        return
    encoded = sm2_multikey_encode(key)
    assert base58.b58decode(encoded[1:]).startswith(SM2_PUB)
    assert sm2_multikey_decode(encoded) == key == method_key_decode(encoded, sm2=True)


def test_an_sm2_multikey_off_the_curve_is_refused() -> None:
    for x in range(1, 40):  # about half of all x have no point on the curve
        point = b"\x02" + x.to_bytes(32, "big")
        encoded = "z" + base58.b58encode(SM2_PUB + point).decode()
        try:
            sm2_multikey_decode(encoded)
        except CitychainError as exc:
            assert exc.code == ErrorCode.BAD_ARGUMENTS and "not a point" in exc.message
            return
    raise AssertionError("no x off the curve found")
