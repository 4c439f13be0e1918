"""Every route's happy path, with its answer checked against the published model."""

from __future__ import annotations

import re

import cbor2
import pytest
from fake_node import CHAIN_ID, FakeNode, TestClient, balance_key

from citychain import registry
from citychain.api import models as m
from citychain.crypto import Signer
from citychain.proof import ics23

CBOR = {"content-type": "application/cbor"}


def test_status_reports_chain_height_and_validators(client: TestClient, node: FakeNode) -> None:
    body = m.StatusResponse.model_validate(client.get("/v1/status").json())
    assert body.chain_id == CHAIN_ID
    assert body.crypto_suite == "ed25519"
    assert body.height == 0
    assert body.validators.hash == node.validator_set.hash.hex()
    assert body.validators.total_power == 30
    assert body.validators.quorum_power == 21
    assert len(body.validators.validators) == 3


def test_submit_one_cbor_is_202_with_hash_and_then_committed(
    client: TestClient, node: FakeNode, alice: Signer, bob: Signer
) -> None:
    tx = node.make_tx(alice, "transfer", {"to": bob.address, "amount": 5})
    r = client.post("/v1/tx", content=tx.encode(), headers=CBOR)
    assert r.status_code == 202
    assert m.SubmitOneResponse.model_validate(r.json()).hash == tx.hash.hex()

    got = client.get(f"/v1/txs/{tx.hash.hex()}")
    assert got.status_code == 200
    info = m.TxResponse.model_validate(got.json())
    assert info.status == "committed"
    assert info.height == 1 and info.index == 0
    assert info.tx.args == {"to": {"hex": bob.address.hex()}, "amount": 5}
    assert info.receipt is not None and info.receipt.code == "ok"
    assert info.receipt.events[0].attributes["amount"] == 5


def test_submit_one_json(client: TestClient, node: FakeNode, alice: Signer, bob: Signer) -> None:
    tx = node.make_tx(alice, "transfer", {"to": bob.address, "amount": 1})
    r = client.post("/v1/tx", json={"tx": "0x" + tx.encode().hex()})
    assert r.status_code == 202
    assert r.json()["hash"] == tx.hash.hex()


def test_pending_transaction_is_reported_pending(client: TestClient, alice: Signer) -> None:
    pending = FakeNode(auto_commit=False, genesis_balances={alice.address: 10})
    from citychain.api import create_app

    with TestClient(create_app(pending)) as c:
        tx = pending.make_tx(alice, "transfer", {"to": bytes(20), "amount": 1})
        assert c.post("/v1/tx", content=tx.encode(), headers=CBOR).status_code == 202
        info = m.TxResponse.model_validate(c.get(f"/v1/txs/{tx.hash.hex()}").json())
        assert info.status == "pending"
        assert info.height is None and info.receipt is None
        assert c.get("/v1/status").json()["mempool"]["txs"] == 1


@pytest.mark.parametrize(
    ("mutate", "code", "status"),
    [
        (lambda tx: tx.with_signature(bytes(64)).encode(), "bad_signature", 400),
        (lambda tx: b"\xff", "malformed", 400),
        (lambda tx: b"\x01\x02", "non_canonical", 400),
    ],
)
def test_refused_single_tx_answers_its_code(
    client: TestClient, node: FakeNode, alice: Signer, mutate, code: str, status: int
) -> None:
    tx = node.make_tx(alice, "transfer", {"to": bytes(20), "amount": 1})
    r = client.post("/v1/tx", content=mutate(tx), headers=CBOR)
    assert r.status_code == status
    assert r.json()["code"] == code
    assert set(r.json()) == {"code", "message"}


def test_mempool_full_is_429_with_retry_after(alice: Signer) -> None:
    from citychain.api import create_app

    full = FakeNode(auto_commit=False, mempool_capacity=0)
    with TestClient(create_app(full)) as c:
        tx = full.make_tx(alice, "transfer", {"to": bytes(20), "amount": 1})
        r = c.post("/v1/tx", content=tx.encode(), headers=CBOR)
    assert r.status_code == 429
    assert r.json()["code"] == "mempool_full"
    assert r.headers["retry-after"] == "1"


def test_batch_cbor_gives_one_result_per_tx_in_order(
    client: TestClient, node: FakeNode, alice: Signer, bob: Signer
) -> None:
    good = node.make_tx(alice, "transfer", {"to": bob.address, "amount": 1}, nonce=0)
    good2 = node.make_tx(alice, "transfer", {"to": bob.address, "amount": 2}, nonce=1)
    forged = good2.with_signature(bytes(64))
    body = cbor2.dumps([good.encode(), b"junk", forged.encode(), good2.encode()])
    r = client.post("/v1/txs", content=body, headers=CBOR)
    assert r.status_code == 200
    res = m.SubmitBatchResponse.model_validate(r.json())
    assert (res.accepted, res.rejected) == (2, 2)
    assert [i.index for i in res.results] == [0, 1, 2, 3]
    assert [i.code for i in res.results] == ["ok", "malformed", "bad_signature", "ok"]
    assert res.results[1].hash is None
    assert res.results[3].hash == good2.hash.hex()
    assert node.submitted[-1] == [good.encode(), b"junk", forged.encode(), good2.encode()]


def test_batch_json(client: TestClient, node: FakeNode, alice: Signer) -> None:
    tx = node.make_tx(alice, "mint", {"to": alice.address, "amount": 9})
    r = client.post("/v1/txs", json={"txs": [tx.encode().hex()]})
    assert r.status_code == 200
    assert r.json()["results"][0] == {
        "index": 0,
        "hash": tx.hash.hex(),
        "code": "ok",
        "message": "",
    }


def _commit_two_blocks(client: TestClient, node: FakeNode, alice: Signer) -> None:
    for amount in (1, 2):
        tx = node.make_tx(alice, "mint", {"to": alice.address, "amount": amount})
        assert client.post("/v1/tx", content=tx.encode(), headers=CBOR).status_code == 202


def test_blocks_by_height_latest_and_hash_agree(
    client: TestClient, node: FakeNode, alice: Signer
) -> None:
    _commit_two_blocks(client, node, alice)
    latest = m.BlockResponse.model_validate(client.get("/v1/blocks/latest").json())
    assert latest.height == 2
    by_height = client.get("/v1/blocks/2").json()
    by_hash = client.get(f"/v1/blocks/hash/{latest.hash}").json()
    assert by_height == by_hash == latest.model_dump(mode="json")
    first = m.BlockResponse.model_validate(client.get("/v1/blocks/1").json())
    assert latest.header.prev_hash == first.hash
    assert latest.commit.block_hash == latest.hash
    assert len(latest.commit.signatures) == 3
    assert latest.txs[0].method == "mint"


def test_block_not_committed_and_unknown_hash_are_404(
    client: TestClient, node: FakeNode, alice: Signer
) -> None:
    r = client.get("/v1/blocks/latest")
    assert (r.status_code, r.json()["code"]) == (404, "height_not_committed")
    r = client.get("/v1/blocks/7")
    assert (r.status_code, r.json()["code"]) == (404, "height_not_committed")
    assert "latest is 0" in r.json()["message"]
    r = client.get("/v1/blocks/hash/" + "ab" * 32)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = client.get("/v1/txs/" + "ab" * 32)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


def test_state_value_with_a_proof_that_verifies(
    client: TestClient, node: FakeNode, alice: Signer
) -> None:
    _commit_two_blocks(client, node, alice)
    key = balance_key(alice.address)
    body = m.StateResponse.model_validate(client.get(f"/v1/state/{key.hex()}").json())
    assert body.exists and body.height == 2 and body.proof_spec == "ics23:smt"
    assert body.value is not None and cbor2.loads(bytes.fromhex(body.value)) == 1_003
    proof = ics23.decode_commitment_proof(bytes.fromhex(body.proof))
    ics23.verify_membership(
        ics23.SMT_SPEC,
        bytes.fromhex(body.header.state_root),
        proof,
        key,
        bytes.fromhex(body.value),
    )
    old = client.get(f"/v1/state/{key.hex()}", params={"height": 1}).json()
    assert old["height"] == 1 and cbor2.loads(bytes.fromhex(old["value"])) == 1_001


def test_absent_state_key_has_a_non_membership_proof(
    client: TestClient, node: FakeNode, alice: Signer
) -> None:
    _commit_two_blocks(client, node, alice)
    body = client.get(f"/v1/state/{b'nobody'.hex()}").json()
    assert body["value"] is None and body["exists"] is False
    proof = ics23.decode_commitment_proof(bytes.fromhex(body["proof"]))
    ics23.verify_non_membership(
        ics23.SMT_SPEC, bytes.fromhex(body["header"]["state_root"]), proof, b"nobody"
    )


def test_state_height_errors(client: TestClient, node: FakeNode, alice: Signer) -> None:
    key = balance_key(alice.address).hex()
    r = client.get(f"/v1/state/{key}")
    assert (r.status_code, r.json()["code"]) == (404, "height_not_committed")
    _commit_two_blocks(client, node, alice)
    r = client.get(f"/v1/state/{key}", params={"height": 3})
    assert (r.status_code, r.json()["code"]) == (404, "height_not_committed")
    node.pruned_below = 2
    r = client.get(f"/v1/state/{key}", params={"height": 1})
    assert (r.status_code, r.json()["code"]) == (410, "height_pruned")


def test_query_get_and_post_with_bytes_and_big_ints(client: TestClient, alice: Signer) -> None:
    args = {"owner": {"hex": alice.address.hex()}}
    r = client.get("/v1/query/token/balance", params={"args": __import__("json").dumps(args)})
    assert r.status_code == 200
    assert m.QueryResponse.model_validate(r.json()).result == 1_000
    r = client.post("/v1/query/token/balance", json={"args": args})
    assert r.json() == {"contract": "token", "method": "balance", "result": 1_000}
    big = 2**100
    r = client.post("/v1/query/token/echo", json={"args": {"n": big, "b": {"hex": "00ff"}}})
    assert r.status_code == 200
    assert r.json()["result"] == {"n": big, "b": {"hex": "00ff"}}
    assert client.get("/v1/query/token/total_supply").json()["result"] == 1_000


def test_query_errors_carry_the_contract_code(client: TestClient) -> None:
    r = client.get("/v1/query/nosuch/balance")
    assert (r.status_code, r.json()["code"]) == (404, "unknown_contract")
    r = client.get("/v1/query/token/nosuch")
    assert (r.status_code, r.json()["code"]) == (404, "unknown_method")
    r = client.get("/v1/query/token/fail")
    assert (r.status_code, r.json()["code"]) == (400, "contract_error")
    r = client.post("/v1/query/token/balance", json={"args": {"owner": 5}})
    assert (r.status_code, r.json()["code"]) == (400, "bad_arguments")


def test_account_nonces(client: TestClient, node: FakeNode, alice: Signer) -> None:
    body = m.AccountResponse.model_validate(
        client.get(f"/v1/accounts/{alice.address.hex()}").json()
    )
    assert (body.nonce, body.pending_nonce) == (0, 0)
    _commit_two_blocks(client, node, alice)
    body = m.AccountResponse.model_validate(
        client.get(f"/v1/accounts/{alice.address.hex()}").json()
    )
    assert (body.nonce, body.pending_nonce) == (2, 2)


def test_validators(client: TestClient, node: FakeNode) -> None:
    body = m.ValidatorsResponse.model_validate(client.get("/v1/validators").json())
    assert body.height == 1
    assert body.hash == node.validator_set.hash.hex()
    assert client.get("/v1/validators", params={"height": 1}).json()["height"] == 1
    r = client.get("/v1/validators", params={"height": 5})
    assert (r.status_code, r.json()["code"]) == (404, "height_not_committed")


def test_health_is_200_when_ok_and_503_when_not(client: TestClient, node: FakeNode) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert m.HealthResponse.model_validate(r.json()).ok is True
    node.healthy = False
    r = client.get("/health")
    assert r.status_code == 503
    assert r.json()["ok"] is False


def test_metrics_are_prometheus_text(client: TestClient, node: FakeNode, alice: Signer) -> None:
    _commit_two_blocks(client, node, alice)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "fake_height 2.0" in r.text


def test_events_over_http_explains_websocket(client: TestClient) -> None:
    r = client.get("/v1/events")
    assert r.status_code == 426
    assert r.json()["code"] == "unsupported"


EXPECTED_PATHS = {
    "/v1/txs": {"post"},
    "/v1/tx": {"post"},
    "/v1/txs/{tx_hash}": {"get"},
    "/v1/blocks/latest": {"get"},
    "/v1/blocks/{height}": {"get"},
    "/v1/blocks/hash/{block_hash}": {"get"},
    "/v1/status": {"get"},
    "/v1/state/{key_hex}": {"get"},
    "/v1/query/{contract}/{method}": {"get", "post"},
    "/v1/accounts/{address_hex}": {"get"},
    "/v1/validators": {"get"},
    "/v1/events": {"get"},
    "/v1/consensus": {"get"},
    "/v1/net/peers": {"get"},
    "/v1/evidence": {"get"},
    "/health": {"get"},
    "/metrics": {"get"},
}


def _service_paths() -> dict[str, set[str]]:
    """The documented routes of every registered service's router (``/v1/gov/...``)."""
    found: dict[str, set[str]] = {}
    for _service, module in registry.parts("router"):
        for route in module.router.routes:
            if getattr(route, "include_in_schema", False):
                path = re.sub(r":\w+}", "}", route.path)  # /openapi.json drops {p:path}'s :path
                found.setdefault(path, set()).update(m.lower() for m in route.methods)
    return found


def test_openapi_lists_every_route_and_no_422(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    services = _service_paths()
    assert "/v1/gov/orgs" in services  # the gov service's routes are among them
    assert {p: set(ops) for p, ops in doc["paths"].items()} == {**EXPECTED_PATHS, **services}
    assert '"422"' not in __import__("json").dumps(doc)
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for name in ("ErrorBody", "EventMessage", "ClosedMessage", "StateResponse", "BlockResponse"):
        assert name in schemas
    batch_body = doc["paths"]["/v1/txs"]["post"]["requestBody"]["content"]
    assert set(batch_body) == {"application/cbor", "application/json"}
    ok = doc["paths"]["/v1/state/{key_hex}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/StateResponse")
    assert "ErrorBody" in str(doc["paths"]["/v1/tx"]["post"]["responses"]["429"])
    taken = doc["paths"]["/v1/data/collections/{name}/items/{key}"]["put"]["responses"]
    assert {"pushed_to", "acks"} <= set(taken["201"]["content"]["application/json"]["schema"]
                                        ["properties"])  # fmt: skip
    assert "dissemination_failed" in taken["503"]["description"] and "200" not in taken
    assert client.get("/docs").status_code == 200


def test_consensus_peers_and_evidence_routes_answer_their_models(client: TestClient) -> None:
    c = m.ConsensusResponse.model_validate(client.get("/v1/consensus").json())
    assert c.engine == "fake" and c.waiting_for
    p = m.PeersResponse.model_validate(client.get("/v1/net/peers").json())
    assert p.peers[0]["name"] == "fake1"
    e = m.EvidenceResponse.model_validate(client.get("/v1/evidence").json())
    assert e.committed == [] and e.pending == []
    bad = client.get("/v1/evidence?limit=0")
    assert bad.status_code == 400 and bad.json()["code"] == "bad_arguments"
