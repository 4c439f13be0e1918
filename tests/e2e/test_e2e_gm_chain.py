"""A real node on the national cryptography suite: ``citychain init --crypto sm2``.

Everything the chain hashes is SM3 there, and these tests check it from outside, against an
SM3 that is not the one the node uses: :func:`citychain.crypto.sm2.sm3` goes through
libcrypto's ``EVP_Digest`` by ctypes, the node through :mod:`hashlib`. The Merkle roots are
recomputed here by a few lines of RFC 6962 over that SM3, not by ``citychain.proof.merkle``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import httpx
import pytest
from nodeproc import NodeProcess, cli  # type: ignore[import-not-found]
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import browser  # type: ignore[import-not-found]
from citychain import codec
from citychain.crypto import ED25519, SM2_SM3, get_suite
from citychain.crypto.sm2 import sm3
from citychain.errors import CitychainError, ErrorCode, ProofError
from citychain.proof import ics23
from citychain.sdk import Client, prove_value, verify_state
from citychain.services.identity.sdk import Wallet
from citychain.services.token.shapes import balance_key
from citychain.types import Transaction
from citychain.types.genesis import Genesis

pytestmark = pytest.mark.slow


def _rfc6962_root(items: list[bytes]) -> bytes:
    """The simple Merkle root (Tendermint's shape) under SM3, written out independently."""
    if not items:
        return sm3(b"")
    hashes = [sm3(b"\x00" + i) for i in items]

    def root(hs: list[bytes]) -> bytes:
        if len(hs) == 1:
            return hs[0]
        k = 1
        while k * 2 < len(hs):
            k *= 2
        return sm3(b"\x01" + root(hs[:k]) + root(hs[k:]))

    return root(hashes)


@pytest.fixture(scope="module")
def gm_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    home = tmp_path_factory.mktemp("gm") / "node"
    made = cli("init", "--home", str(home), "--crypto", "sm2")
    assert made.returncode == 0, made.stdout + made.stderr
    node = NodeProcess(home)
    node.start(demo=False)
    try:
        yield node
    finally:
        node.stop()


def _genesis(node: NodeProcess) -> Genesis:
    return Genesis.load(node.home / "config" / "genesis.json")


def _client(node: NodeProcess) -> Client:
    g = _genesis(node)
    return Client(node.url, chain_id=g.chain_id, validators=g.validator_set, suite=g.crypto_suite)


def test_the_genesis_names_sm2_and_hashes_with_sm3(gm_node: NodeProcess) -> None:
    g = _genesis(gm_node)
    assert g.crypto_suite == "sm2-sm3"
    assert g.hash == sm3(codec.encode(g.to_json()))
    assert g.hash != hashlib.sha256(codec.encode(g.to_json())).digest()
    validators = [v.encode() for v in sorted(g.validators, key=lambda v: v.public_key)]
    assert g.validator_set.hash == _rfc6962_root(validators)
    status = httpx.get(f"{gm_node.url}/v1/status", timeout=10).json()
    assert status["crypto_suite"] == "sm2-sm3"
    assert status["validators"]["hash"] == _rfc6962_root(validators).hex()


def test_init_writes_the_sm2_id_in_genesis_and_the_node_reports_it(gm_node: NodeProcess) -> None:
    raw = json.loads((gm_node.home / "config" / "genesis.json").read_text())
    assert raw["crypto_params"] == {"distid": "1234567812345678"}  # GM/T 0009's default
    status = httpx.get(f"{gm_node.url}/v1/status", timeout=10).json()
    assert status["crypto_params"] == {"distid": "1234567812345678"}


def test_a_chain_of_another_sm2_id_commits_what_the_sdk_signs_under_it(tmp_path: Path) -> None:
    """A genesis naming another ID: the node signs its blocks and checks every transaction
    under it; the SDK learns it from the status (or the genesis) and signs under it with keys
    loaded from their keystores; a transaction signed under the default ID is refused."""
    home = tmp_path / "node"
    made = cli("init", "--home", str(home), "--crypto", "sm2")
    assert made.returncode == 0, made.stdout + made.stderr
    path = home / "config" / "genesis.json"
    raw = json.loads(path.read_text())
    raw["crypto_params"] = {"distid": "ALICE123@YAHOO.COM"}  # GB/T 32918's example ID
    path.write_text(json.dumps(raw))
    node = NodeProcess(home)
    node.start(demo=False)
    try:
        g = Genesis.load(path)
        alice, bob = node.signer("alice"), node.signer("bob")
        assert alice.suite is SM2_SM3  # the keystore's: the default ID
        with Client(node.url) as c:  # trust on first use: the suite and ID from the status
            assert c.status().crypto_params == {"distid": "ALICE123@YAHOO.COM"}
            r = c.send(alice, "token", "transfer", {"to": bob.address, "amount": 3})
            assert r.ok, r
            wrong = Transaction.create(
                alice,
                chain_id=g.chain_id,
                nonce=c.account(alice.address).pending_nonce,
                contract="token",
                method="transfer",
                args={"to": bob.address, "amount": 1},
            )
            with pytest.raises(CitychainError) as err:
                c.submit(wrong)
            assert err.value.code is ErrorCode.BAD_SIGNATURE, err.value
        trusted = Client(node.url, chain_id=g.chain_id, validators=g.validator_set, suite=g.suite)
        with trusted as c:
            r = c.send(alice, "token", "transfer", {"to": bob.address, "amount": 4})
            assert r.ok, r
            assert c.balance(bob.address) >= 7  # a verified read: commits signed under the ID
    finally:
        node.stop()


def test_transfers_commit_and_every_hash_is_sm3(gm_node: NodeProcess) -> None:
    alice, bob = gm_node.signer("alice"), gm_node.signer("bob")
    assert alice.suite.name == "sm2-sm3" and len(alice.public_key) == 65
    with _client(gm_node) as c:
        before = c.balance(bob.address)
        receipts = [
            c.send(alice, "token", "transfer", {"to": bob.address, "amount": 5 + i})
            for i in range(3)
        ]
        assert all(r.ok for r in receipts), receipts
        assert c.balance(bob.address) == before + 5 + 6 + 7
        # the transaction hash is SM3 of its canonical (wire) bytes, on the node's side too
        info = httpx.get(f"{gm_node.url}/v1/txs/{receipts[0].tx_hash.hex()}", timeout=10).json()
        tx = c.tx(receipts[0].tx_hash).tx
        assert sm3(tx.encode()) == receipts[0].tx_hash == tx.hash
        assert info["tx"]["hash"] == sm3(tx.encode()).hex()
        assert hashlib.sha256(tx.encode()).digest() != tx.hash
        # the block: its hash is SM3 of the header's canonical bytes, its roots SM3 trees
        height = c.tx(receipts[0].tx_hash).height
        assert height is not None
        raw: dict[str, Any] = httpx.get(f"{gm_node.url}/v1/blocks/{height}", timeout=10).json()
        b = c.block(height)
        assert raw["header"]["hash"] == sm3(b.header.encode()).hex() == b.hash.hex()
        assert b.commit.block_hash == sm3(b.header.encode())
        assert b.header.tx_root == _rfc6962_root([t.encode() for t in b.block.txs])
        assert b.header.evidence_root == sm3(b"") == _rfc6962_root([])
        receipts_of_block = [c.tx(t.hash).receipt for t in b.block.txs]
        assert all(r is not None for r in receipts_of_block)
        assert b.header.results_root == _rfc6962_root(
            [r.encode() for r in receipts_of_block if r is not None]
        )
        previous = c.block(height - 1) if height > 1 else None
        if previous is not None:
            assert b.header.prev_hash == sm3(previous.header.encode())
        # the CLI (through the SDK) verifies a state proof on this chain too
        env = {
            "CITYCHAIN_HOME": str(gm_node.home),
            "CITYCHAIN_NODE": gm_node.url,
            "CITYCHAIN_PASSPHRASE": gm_node.passphrase,
        }
        proof = cli("query", "state", balance_key(bob.address).hex(), env=env)
        assert proof.returncode == 0 and "proof verified" in proof.stdout, proof.stdout


def test_a_state_proof_verifies_in_the_sdk_and_a_flipped_byte_fails(gm_node: NodeProcess) -> None:
    bob = gm_node.signer("bob")
    g = _genesis(gm_node)
    key = balance_key(bob.address)
    with _client(gm_node) as c:
        proven = c.get_state(key)  # the SDK's own path: light client, then the proof
        assert proven.verified and proven.value is not None
        a = c.state_proof(key)
    parsed = ics23.decode_commitment_proof(a.proof)
    assert parsed.exist is not None and parsed.exist.leaf is not None
    assert {op.hash for op in parsed.exist.path} == {ics23.HashOp.SM3}
    assert parsed.exist.leaf.hash == ics23.HashOp.SM3
    # the leaf is SM3(0x00 || SM3(key) || SM3(value)), with the independent SM3
    assert ics23.apply_leaf(parsed.exist.leaf, key, a.value or b"") == sm3(
        b"\x00" + sm3(key) + sm3(a.value or b"")
    )
    anchors: dict[str, Any] = dict(
        suite=SM2_SM3, chain_id=g.chain_id, validators=g.validator_set, key=key
    )
    ok = verify_state(
        **anchors,
        value=a.value,
        height=a.height,
        proof=a.proof,
        header=a.header,
        commit=a.commit,
    )
    assert ok.verified and cbor2.loads(ok.value or b"") == cbor2.loads(proven.value)
    for i in range(0, len(a.proof), max(1, len(a.proof) // 24)):
        flipped = bytearray(a.proof)
        flipped[i] ^= 0x01
        with pytest.raises(ProofError):
            verify_state(
                **anchors,
                value=a.value,
                height=a.height,
                proof=bytes(flipped),
                header=a.header,
                commit=a.commit,
            )
    assert a.value is not None
    with pytest.raises(ProofError):
        verify_state(
            **anchors,
            value=bytes([a.value[0] ^ 1]) + a.value[1:],
            height=a.height,
            proof=a.proof,
            header=a.header,
            commit=a.commit,
        )


def test_an_sm3_proof_is_refused_against_an_ed25519_chains_spec(gm_node: NodeProcess) -> None:
    bob = gm_node.signer("bob")
    g = _genesis(gm_node)
    key = balance_key(bob.address)
    with _client(gm_node) as c:
        a = c.state_proof(key)
    proof_args: dict[str, Any] = dict(
        validators=g.validator_set,
        key=key,
        value=a.value,
        proof=a.proof,
        header=a.header,
        commit=a.commit,
    )
    assert prove_value(**proof_args, spec=ics23.SMT_SPEC_SM3).verified
    with pytest.raises(ProofError, match="SM3"):
        prove_value(**proof_args, spec=ics23.SMT_SPEC)  # the spec of an ed25519 chain
    with pytest.raises(ProofError, match="SM3"):
        prove_value(**proof_args)  # the default is the SHA-256 spec: it fails closed
    # and the SDK's spec for each suite is the one of that suite's chains
    from citychain.sdk._verify import state_spec

    assert state_spec(ED25519) == ics23.SMT_SPEC
    assert state_spec(get_suite("sm2-sm3")) == ics23.SMT_SPEC_SM3


def test_init_refuses_an_unknown_suite_in_words(tmp_path: Path) -> None:
    made = cli("init", "--home", str(tmp_path / "n"), "--crypto", "rsa")
    assert made.returncode != 0
    assert "unknown crypto suite 'rsa'" in made.stdout + made.stderr
    assert "Traceback" not in made.stdout + made.stderr
    assert not (tmp_path / "n" / "config" / "genesis.json").exists()


def test_data_on_a_gm_chain_is_sealed_with_sm4_and_anchored_by_sm3(
    gm_node: NodeProcess, tmp_path: Path
) -> None:
    """The data directory on SM2 accounts: the version is sealed with SM4-GCM, its hashes are
    SM3, the data key is wrapped for X25519 keys the SM2 accounts derive (the grantee hands
    its public half over with its request), and the file comes back whole."""
    provider, reader = gm_node.signer("org1-admin"), gm_node.signer("bob")
    code = "301003/000001"
    body = b"meter,kwh\n" + b"".join(b"M-%d,%d\n" % (i, i * 7) for i in range(4000))
    (src := tmp_path / "grid.csv").write_bytes(body)
    with _client(gm_node) as c:
        c.data.register_resource(
            provider, code=code, title="Grid load", provider="org1", sharing="unconditional"
        )
        up = c.data.upload(provider, code, src, chunk_size=4096)
        assert up.plain_hash == sm3(body) != hashlib.sha256(body).digest()
        assert c.data.versions(code)[0]["cipher"] == "sm4-gcm"
        grant = c.data.request_access(reader, code, "grid planning", period=3_600_000)
        assert c.data.grant_keys(provider, code) == [grant["grant"]]
        c.data.download(reader, code, 1, tmp_path / "got.csv", grant=grant["grant"])
        assert (tmp_path / "got.csv").read_bytes() == body
        (anchor,) = c.data.verify(src)
        assert (anchor.code, anchor.version, anchor.verified) == (code, 1, True)


def test_a_citizen_sees_on_a_gm_chain_who_accessed_records_about_them(
    gm_node: NodeProcess, tmp_path: Path
) -> None:
    """``/my-data`` on an ``sm2-sm3`` chain, in a real headless Chromium at a phone's size.
    The citizen's key is the Ed25519 did:key their wallet exports (WebCrypto has no SM2); a
    signed read names its algorithm in its keyid, so the node checks it whatever the chain
    signs blocks with, and the page lists the access a department made. Asking for a copy
    would need an SM2 transaction, which the page says in words it cannot sign, pointing to
    the app; nothing is sent."""
    provider, reader = gm_node.signer("org1-admin"), gm_node.signer("bob")
    code = "301004/000001"
    wallet = Wallet.create(tmp_path / "wallet.json", "wallet pass", kdf_level="interactive")
    citizen = wallet.new_key("default")
    (src := tmp_path / "checkups.csv").write_bytes(b"resident,bmi\nR-1,22.5\n")
    with _client(gm_node) as c:
        c.data.register_resource(
            provider, code=code, title="Health check results", provider="org1",
            sharing="unconditional",
        )  # fmt: skip
        c.data.upload(provider, code, src, subjects=[citizen])
        grant = c.data.request_access(reader, code, "clinic planning", period=3_600_000)
        c.data.grant_keys(provider, code)
        c.data.download(reader, code, 1, tmp_path / "got.csv", grant=grant["grant"],
                        purpose="clinic planning 2027")  # fmt: skip
    (key_file := tmp_path / "citizen.jwe").write_text(wallet.export_key("phone passphrase"))

    with browser.page() as page:
        sent: list[str] = []
        page.on("request", lambda r: sent.append(f"{r.method} {r.url}"))
        page.goto(gm_node.url + "/my-data")
        page.set_input_files("#keyfile", str(key_file))
        page.fill("#passphrase", "phone passphrase")
        page.click("#show")
        status = page.locator("#status")
        expect(status).to_have_text("1 access to records about you, oldest first.", timeout=30_000)
        assert page.locator("#who").inner_text() == f"Signed in as {citizen}"
        rows = page.locator("#accesses tbody tr")
        assert [r.get_attribute("data-action") for r in rows.all()] == ["download"]
        row = rows.nth(0).inner_text()
        assert "downloaded it" in row and "clinic planning 2027" in row, row
        assert f"Health check results ({code})" in row, row

        page.locator(f"#records li[data-code='{code}'] button.ask").click()
        page.fill("#purpose", "my own file")
        page.click("#send")
        asked = page.locator("#asked")
        expect(asked).not_to_have_text(re.compile(r"^$|…$"), timeout=30_000)
        assert asked.inner_text() == (
            "This city's chain signs with sm2-sm3, which a browser cannot: use the citychain "
            "app (citychain data request, citychain data download)."
        )
        assert not [r for r in sent if r.startswith("POST ")], sent  # no transaction sent
        assert any("/v1/data/subjects/" in r for r in sent), sent  # the signed reads were
    with _client(gm_node) as c:  # the page sent nothing: only the download's request is there
        assert [r["purpose"] for r in c.data.requests(provider, code)] == ["clinic planning"]
