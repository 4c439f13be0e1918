"""Every JSON answer of a real node, as plain HTTP fetches it, read back by the SDK.

One demo node runs for the module. Each answer is fetched with plain httpx; then an SDK
``Client`` whose transport replays exactly those bytes asks for it, so the SDK's own parser
(its ``_parse`` functions and the client's checks) reads the very JSON this test looks at, and
the test checks that the fields agree.

Documented gaps (routes the SDK has no typed parser for):

* ``/v1/consensus``, ``/v1/net/peers`` and ``/health``'s details are free-form: the SDK hands
  them on as plain dicts (checked equal), with no typed shape.
* ``/metrics`` is Prometheus text, not JSON; ``/v1/events`` is a WebSocket (tests/sdk).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from nodeproc import NodeProcess, running_demo  # type: ignore[import-not-found]

from citychain import codec
from citychain.errors import DecodeError, ErrorCode, NotFound
from citychain.sdk import Client
from citychain.sdk._errors import error_from_response
from citychain.services.gov.sdk import Gov, rest
from citychain.services.token.shapes import balance_key
from citychain.types import TxStatus
from citychain.types.genesis import Genesis
from citychain.types.tx import json_to_codec

pytestmark = pytest.mark.slow

CBOR = {"content-type": "application/cbor"}


class Replay:
    """Fetches answers from the live node with plain httpx and serves exactly those bytes
    to an SDK client (a request the test did not fetch first fails)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.recorded: dict[tuple[str, str], httpx.Response] = {}

    def fetch(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r = self.http.request(method, path, **kw)
        self.recorded[(method, r.request.url.raw_path.decode())] = r
        return r

    def get(self, path: str, **params: str) -> Any:
        r = self.fetch("GET", path, params=params or None)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    def handler(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.raw_path.decode())
        assert key in self.recorded, f"the SDK asked for {key}, which the test did not fetch"
        r = self.recorded[key]
        return httpx.Response(
            r.status_code, headers={"content-type": r.headers["content-type"]}, content=r.content
        )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One demo node for the whole module (the ``node`` fixture of conftest, module-wide)."""
    with running_demo(tmp_path_factory.mktemp("answers") / "node") as n:
        yield n


@pytest.fixture(scope="module")
def genesis(node: NodeProcess) -> Genesis:
    return Genesis.load(node.home / "config" / "genesis.json")


@pytest.fixture(scope="module")
def live(node: NodeProcess, genesis: Genesis) -> Iterator[Client]:
    with Client(node.url, chain_id=genesis.chain_id, validators=genesis.validator_set) as c:
        yield c


@pytest.fixture
def replay(node: NodeProcess, genesis: Genesis) -> Iterator[tuple[Replay, Client]]:
    rec = Replay(node.url)
    transport = httpx.MockTransport(rec.handler)
    with (
        rec.http,
        Client(
            node.url,
            chain_id=genesis.chain_id,
            validators=genesis.validator_set,
            transport=transport,
        ) as sdk,
    ):
        # The SDK learns the chain's crypto suite (and so its hash) from /v1/status before it
        # checks the hashes of an answer; the replay serves it as the node answered it.
        rec.get("/v1/status")
        yield rec, sdk


def _txs_and_blocks(node: NodeProcess, live: Client, rec: Replay, sdk: Client) -> None:
    alice, bob = node.signer("alice"), node.signer("bob")
    start = live.account(alice.address).pending_nonce

    # POST /v1/tx: 202 {"hash", "status": "pending"}; the SDK checks the hash is the tx's
    one = live.build_tx(alice, "token", "transfer", {"to": bob.address, "amount": 3}, nonce=start)
    r = rec.fetch("POST", "/v1/tx", content=one.encode(), headers=CBOR)
    assert r.status_code == 202, r.text
    assert r.json() == {"hash": one.hash.hex(), "status": "pending"}
    assert sdk.submit(one) == one.hash

    # POST /v1/txs: one admitted, one undecodable, one already received
    two = live.build_tx(
        alice, "token", "transfer", {"to": bob.address, "amount": 4}, nonce=start + 1
    )
    batch = [two.encode(), b"\xff", one.encode()]
    body = rec.fetch("POST", "/v1/txs", content=codec.encode_trusted(batch), headers=CBOR).json()
    results = sdk.submit_batch(batch)
    assert body["accepted"] == sum(r.ok for r in results) == 1
    assert body["rejected"] == 2
    for i, (raw, got) in enumerate(zip(body["results"], results, strict=True)):
        assert raw["index"] == i
        assert raw["hash"] == (got.tx_hash.hex() if got.tx_hash is not None else None)
        assert raw["code"] == got.code and raw["message"] == got.message
    assert results[0].ok and results[0].tx_hash == two.hash
    assert results[1].tx_hash is None and results[1].code == ErrorCode.MALFORMED
    assert results[2].tx_hash == one.hash and not results[2].ok

    receipt = live.wait_for_commit(two.hash, timeout=30)
    assert receipt.ok, receipt

    # GET /v1/txs/{hash}: committed
    raw = rec.get(f"/v1/txs/{two.hash.hex()}")
    info = sdk.tx(two.hash)
    assert info.status == TxStatus.COMMITTED == raw["status"] and info.committed
    assert info.tx_hash.hex() == raw["hash"] and info.tx is not None
    assert info.tx.to_json() == raw["tx"]
    assert (info.height, info.index) == (raw["height"], raw["index"])
    assert info.receipt is not None and info.receipt.to_json() == raw["receipt"]
    height = raw["height"]

    # pending: a nonce gap keeps it in the mempool, no block can take it
    gapped = live.build_tx(
        alice, "token", "transfer", {"to": bob.address, "amount": 1}, nonce=start + 5
    )
    assert rec.fetch("POST", "/v1/tx", content=gapped.encode(), headers=CBOR).status_code == 202
    raw = rec.get(f"/v1/txs/{gapped.hash.hex()}")
    info = sdk.tx(gapped.hash)
    assert raw["status"] == "pending" == info.status and not info.committed
    assert raw["height"] is raw["index"] is raw["receipt"] is None
    assert info.height is info.index is info.receipt is None
    assert info.tx is not None and info.tx.to_json() == raw["tx"] == gapped.to_json()

    # unknown: 404 with the API's error body, which the SDK turns into NotFound
    unknown = rec.fetch("GET", f"/v1/txs/{'ab' * 32}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert isinstance(error_from_response(unknown), NotFound)
    with pytest.raises(NotFound):
        sdk.tx(bytes.fromhex("ab" * 32))

    # GET /v1/accounts/{address}: the gapped transaction does not move the pending nonce
    raw = rec.get(f"/v1/accounts/{alice.address.hex()}")
    acct = sdk.account(alice.address)
    assert acct.to_json() == raw
    assert acct.nonce == start + 2 and acct.pending_nonce == start + 2

    # blocks: latest, by height, by hash
    raw_latest = rec.get("/v1/blocks/latest")
    latest = sdk.block()
    assert latest.to_json() == raw_latest and latest.hash.hex() == raw_latest["hash"]
    raw_block = rec.get(f"/v1/blocks/{height}")
    block = sdk.block(height)
    assert block.to_json() == raw_block
    assert two.hash in [t.hash for t in block.block.txs]
    raw_by_hash = rec.get(f"/v1/blocks/hash/{raw_block['hash']}")
    assert sdk.block_by_hash(raw_block["hash"]).to_json() == raw_by_hash == raw_block


def test_core_answers_parse_and_agree(
    node: NodeProcess, live: Client, replay: tuple[Replay, Client]
) -> None:
    rec, sdk = replay
    _txs_and_blocks(node, live, rec, sdk)
    bob = node.signer("bob")

    # GET /v1/status
    raw = rec.get("/v1/status")
    status = sdk.status()
    assert status.to_json() == raw
    assert status.latest_block_hash.hex() == raw["latest_block_hash"]
    assert status.latest_block_time == raw["latest_block_time"]
    assert status.mempool_txs == raw["mempool"]["txs"] >= 1  # the gapped transaction
    assert status.validators.hash.hex() == raw["validators"]["hash"]
    height = status.height

    # GET /v1/validators (the next block's set, and block 1's)
    raw = rec.get("/v1/validators")
    vs = sdk.validators()
    assert raw["hash"] == vs.hash.hex() and raw["total_power"] == vs.total_power
    assert raw["quorum_power"] == vs.quorum() and raw["validators"] == vs.to_json()
    raw = rec.get("/v1/validators", height="1")
    assert raw["height"] == 1 and sdk.validators(1).hash.hex() == raw["hash"]

    # GET /v1/state/{key}: present (latest, and at a height) and absent; proven by the SDK
    key = balance_key(bob.address)
    raw = rec.get(f"/v1/state/{key.hex()}")
    got = sdk.get_state(key)
    assert got.verified and got.exists and raw["exists"]
    assert got.value is not None and got.value.hex() == raw["value"]
    assert got.height == raw["height"] and got.header.to_json() == raw["header"]
    raw = rec.get(f"/v1/state/{key.hex()}", height=str(height))
    at = sdk.get_state(key, height)
    assert at.verified and at.height == raw["height"] == height
    absent = b"no/such/key"
    raw = rec.get(f"/v1/state/{absent.hex()}")
    none = sdk.get_state(absent)
    assert none.verified and not none.exists and raw["value"] is None and not raw["exists"]

    # /v1/query: GET and POST answer alike; the SDK asks with POST
    path = "/v1/query/token/balance"
    args = {"owner": {"hex": bob.address.hex()}}
    raw_get = rec.get(path, args=json.dumps(args, separators=(",", ":")))
    raw_post = rec.fetch("POST", path, json={"args": args}).json()
    assert raw_get == raw_post and raw_post["contract"] == "token"
    assert sdk.query("token", "balance", owner=bob.address) == json_to_codec(raw_post["result"])

    # GET /v1/evidence (none on a healthy one-node chain)
    raw = rec.get("/v1/evidence", limit="100")
    assert sdk.evidence().to_json() == raw

    # free-form answers: handed on as they are
    raw = rec.get("/v1/consensus")
    assert sdk.consensus() == raw
    assert {"engine", "height", "round", "step", "waiting_for", "details"} <= set(raw)
    raw = rec.get("/v1/net/peers")
    assert sdk.peers() == raw["peers"]
    raw = rec.get("/health")
    assert sdk.health() == (raw["ok"], raw["details"]) and raw["ok"] is True


def test_gov_answers_parse_into_the_shapes_client_gov_reads(
    node: NodeProcess, live: Client, replay: tuple[Replay, Client]
) -> None:
    """Every ``/v1/gov/*`` answer goes through the SDK's REST parsers (``gov.sdk.rest``) and
    comes out equal, field by field, to what ``client.gov`` reads through contract queries."""
    rec, _ = replay
    gov = live.service(Gov)

    cfg = gov.config()
    assert rest.config(rec.get("/v1/gov/config")) == {
        "mode": cfg.get("mode", "open"),
        "voting_period": cfg.get("voting_period"),
    }

    orgs = gov.orgs()
    assert rest.orgs(rec.get("/v1/gov/orgs")) == orgs and orgs
    org_id = orgs[0].id
    org = gov.org(org_id)
    assert rest.org(rec.get(f"/v1/gov/orgs/{org_id}")) == org and org.roles

    members = gov.members(org_id)
    assert rest.members(rec.get(f"/v1/gov/orgs/{org_id}/members")) == (org_id, members)
    assert members

    alice = node.signer("alice")
    member = gov.member(alice.address)
    assert member is not None and member.standing == "ok"
    assert rest.member(rec.get(f"/v1/gov/members/{alice.address.hex()}")) == member

    assert rest.validators(rec.get("/v1/gov/validators")) == gov.validators()
    assert rec.get("/v1/gov/params") == gov.params()

    assert rest.policies(rec.get("/v1/gov/policies")) == gov.policies()
    answer, source = rest.policy_answer(rec.get("/v1/gov/policies/token.transfer"))
    policy = gov.policy("token.transfer")
    # the REST answer names the target asked for and, as source, the configured policy that
    # decides it; the contract's answer names the matched policy itself ("token.*", or
    # "token.transfer (default)"): the rest is the same
    assert answer.target == "token.transfer" and policy.target.startswith("token.")
    assert replace(answer, target=policy.target) == policy
    assert source == gov.policy_source("token.transfer")

    # a proposal with a vote and an address in its params, so every field of one is read
    pid = gov.propose(node.signer("org1-admin"), "freeze", {"address": node.signer("bob").address})
    proposals = gov.proposals()
    assert pid in [p.id for p in proposals] and all(p.votes for p in proposals)
    assert rest.proposals(rec.get("/v1/gov/proposals")) == proposals
    for p in proposals:
        assert rest.proposal(rec.get(f"/v1/gov/proposals/{p.id}")) == p
    missing = rec.fetch("GET", "/v1/gov/proposals/999999")
    assert missing.status_code == 404
    with pytest.raises(NotFound):
        gov.proposal(999999)

    history = gov.history()
    assert rest.history(rec.get("/v1/gov/history")) == (
        history,
        history[-1].seq if history else 0,
    )


def test_a_malformed_gov_answer_is_a_decode_error_naming_it() -> None:
    with pytest.raises(DecodeError, match="the governance validators"):
        rest.validators(
            {
                "from_height": 1,
                "total_power": 11,
                "validators": [{"public_key": "00", "power": 10, "name": "n", "org": None}],
            }
        )
    with pytest.raises(DecodeError, match="the member"):
        rest.member({"address": "zz"})
    with pytest.raises(DecodeError, match="the governance config"):
        rest.config({"mode": "anything", "voting_period": None})
