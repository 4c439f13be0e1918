"""The governance routes (``/v1/gov/...``) over a real in-process node in ``key`` identity mode.

The fake node has no governance contract, so these tests open a real :class:`Node` on a
genesis with three organisations and commit blocks of governance transactions directly
(``chain.build_block`` + ``chain.commit``, as a single validator would), then read them
through the API. Every answer is checked against its published model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_node import FakeNode, TestClient

from citychain.api import create_app
from citychain.api.node_service import NodeServiceAdapter
from citychain.crypto import ED25519, Signer
from citychain.node import Node, NodeConfig
from citychain.p2p.certs import generate_org_ca
from citychain.services.gov.router import _models as m
from citychain.types import Commit, Transaction, Validator
from citychain.types.genesis import ChainParams, Genesis, Governance, Member, Organisation

CHAIN = "gov-api"
T0 = 1_767_225_600_000
POLICIES = {
    "token.mint": {"rule": "ANY", "roles": ["admin"]},
    "gov:set_params": {"rule": "ALL", "roles": ["admin"]},
}


def signer(n: int) -> Signer:
    return Signer(ED25519, hashlib.sha256(b"gov-api-key-%d" % n).digest())


VALIDATOR = signer(0)
ADMINS = {"org1": signer(1), "org2": signer(2), "org3": signer(3)}
CLERK = signer(10)  # a member of org1 from genesis
INSPECTOR = signer(11)  # registered on chain by org1's admin
NEW_ADMIN = signer(4)  # admin of org4, which governance admits


class GovChain:
    """A node whose blocks the test makes: ``block(tx, ...)`` commits one block."""

    def __init__(self, home: Path) -> None:
        orgs = tuple(
            Organisation(
                org,
                f"Organisation {org[-1]}",
                generate_org_ca(org, f"Organisation {org[-1]}")[0].decode(),
                (admin.public_key,),
                (Member(CLERK.public_key, ("member",)),) if org == "org1" else (),
                ("inspector",) if org == "org1" else (),
            )
            for org, admin in ADMINS.items()
        )
        (home / "config").mkdir(parents=True)
        Genesis(
            CHAIN,
            T0,
            "ed25519",
            (Validator(VALIDATOR.public_key, 10, "v0"),),
            ChainParams(),
            {},
            orgs,
            Governance("key", 100, POLICIES),
            ((VALIDATOR.public_key, "org1"),),
        ).save(home / "config" / "genesis.json")
        self.node = Node(NodeConfig(home=home), signer=VALIDATOR)
        self.nonces: dict[bytes, int] = {}

    def tx(self, who: Signer, method: str, **args: Any) -> Transaction:
        nonce = self.nonces.get(who.public_key, 0)
        self.nonces[who.public_key] = nonce + 1
        return Transaction.create(
            who,
            chain_id=CHAIN,
            nonce=nonce,
            contract="gov",
            method=method,
            args=args,
            gas_limit=1_000_000,
        )

    def block(self, *txs: Transaction) -> None:
        chain = self.node.chain
        pending = chain.build_block(list(txs), T0 + 1000 * (chain.height + 1), VALIDATOR.public_key)
        failed = [r for r in pending.receipts if not r.ok]
        assert not failed, failed
        chain.commit(pending, Commit.sign_single(VALIDATOR, CHAIN, pending.header))


@pytest.fixture(scope="module")
def gov_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GovChain]:
    """Three organisations; org4 admitted by proposal 1; proposal 2 (set_params) open with a
    yes and a no; proposal 3 (freeze) expired; an inspector registered by org1's admin."""
    g = GovChain(tmp_path_factory.mktemp("gov-api"))
    a1, a2, a3 = ADMINS["org1"], ADMINS["org2"], ADMINS["org3"]
    ca4 = generate_org_ca("org4", "Organisation 4")[0].decode()
    add_org = {
        "id": "org4",
        "name": "Organisation 4",
        "ca_cert": ca4,
        "admins": [NEW_ADMIN.public_key],
    }
    try:
        g.block(g.tx(a1, "propose", kind="add_org", params=add_org))  # 1
        g.block(g.tx(a2, "vote", id=1))  # 2
        g.block(g.tx(a3, "execute", id=1))  # 3
        set_params = {"params": {"chain": {"block_max_txs": 5000}}}
        g.block(g.tx(a2, "propose", kind="set_params", params=set_params))  # 4
        freeze = {"address": CLERK.address}
        g.block(
            g.tx(a3, "vote", id=2, approve=False),
            g.tx(a1, "propose", kind="freeze", params=freeze, deadline=5),
        )  # 5
        g.block(
            g.tx(
                a1,
                "register_member",
                public_key=INSPECTOR.public_key,
                org="org1",
                roles=["inspector"],
            )
        )  # 6
        g.block(g.tx(a2, "expire", id=3))  # 7
        yield g
    finally:
        g.node.close()


@pytest.fixture(scope="module")
def api(gov_chain: GovChain) -> Iterator[TestClient]:
    with TestClient(create_app(NodeServiceAdapter(gov_chain.node))) as c:
        yield c


def ok(api: TestClient, path: str, model: type[m._Model]) -> Any:
    r = api.get(path)
    assert r.status_code == 200, r.text
    return model.model_validate(r.json())


def assert_error(r: Any, status: int, code: str, *fragments: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    for f in fragments:
        assert f in body["message"], body["message"]


# -- organisations and members ------------------------------------------------------------------


def test_config(api: TestClient) -> None:
    body = ok(api, "/v1/gov/config", m.GovConfigResponse)
    assert body.mode == "key" and body.voting_period == 100


def test_orgs_lists_genesis_and_admitted_organisations(api: TestClient) -> None:
    body = ok(api, "/v1/gov/orgs", m.GovOrgsResponse)
    assert [o.id for o in body.orgs] == ["org1", "org2", "org3", "org4"]
    org4 = body.orgs[3]
    assert org4.name == "Organisation 4" and org4.admins == [NEW_ADMIN.public_key.hex()]
    assert "BEGIN CERTIFICATE" in org4.ca_cert and len(org4.ca_fp) == 64


def test_org_with_roles(api: TestClient) -> None:
    org = ok(api, "/v1/gov/orgs/org1", m.GovOrgResponse)
    assert org.id == "org1" and org.admins == [ADMINS["org1"].public_key.hex()]
    assert org.roles == ["admin", "auditor", "member", "validator", "inspector"]


@pytest.mark.parametrize("path", ["/v1/gov/orgs/nope", "/v1/gov/orgs/nope/members"])
def test_unknown_org_is_404(api: TestClient, path: str) -> None:
    assert_error(api.get(path), 404, "not_found", "no organisation 'nope'")


@pytest.mark.parametrize("path", ["/v1/gov/orgs/-x", "/v1/gov/orgs/a%20b/members"])
def test_bad_org_id_is_400(api: TestClient, path: str) -> None:
    assert_error(api.get(path), 400, "bad_arguments", "organisation id")


def test_org_members(api: TestClient) -> None:
    body = ok(api, "/v1/gov/orgs/org1/members", m.GovMembersResponse)
    assert body.org == "org1"
    by_address = {x.address: x for x in body.members}
    assert set(by_address) == {
        ADMINS["org1"].address.hex(),
        CLERK.address.hex(),
        INSPECTOR.address.hex(),
    }
    inspector = by_address[INSPECTOR.address.hex()]
    assert inspector.roles == ["inspector"] and inspector.public_key == INSPECTOR.public_key.hex()
    assert inspector.serial is None and inspector.ca_fp is None and inspector.not_after is None
    assert ok(api, "/v1/gov/orgs/org4/members", m.GovMembersResponse).members[0].roles == ["admin"]


def test_member(api: TestClient) -> None:
    body = ok(api, f"/v1/gov/members/{ADMINS['org2'].address.hex()}", m.GovMemberResponse)
    assert body.org == "org2" and body.roles == ["admin"]
    assert body.in_good_standing and body.standing == "ok" and not body.revoked
    with_prefix = ok(api, f"/v1/gov/members/0x{CLERK.address.hex()}", m.GovMemberResponse)
    assert with_prefix.address == CLERK.address.hex() and with_prefix.roles == ["member"]


def test_unknown_member_is_404(api: TestClient) -> None:
    stranger = signer(99).address.hex()
    assert_error(api.get(f"/v1/gov/members/{stranger}"), 404, "not_found", stranger, "not a member")


@pytest.mark.parametrize(
    ("address", "fragment"),
    [("zz", "hex digits"), ("abcd", "must be 20 bytes"), ("00" * 21, "must be 20 bytes")],
)
def test_bad_member_address_is_400(api: TestClient, address: str, fragment: str) -> None:
    assert_error(api.get(f"/v1/gov/members/{address}"), 400, "bad_arguments", fragment)


# -- validators, parameters, policies ------------------------------------------------------------


def test_validators(api: TestClient) -> None:
    body = ok(api, "/v1/gov/validators", m.GovValidatorsResponse)
    assert body.from_height == 1 and body.total_power == 10
    (v,) = body.validators
    assert v.public_key == VALIDATOR.public_key.hex() and v.org == "org1" and v.name == "v0"


def test_params(api: TestClient) -> None:
    body = ok(api, "/v1/gov/params", m.GovParamsResponse)
    assert body.chain["block_max_txs"] == 10_000  # proposal 2 is not executed
    assert body.gas["max_gas_per_tx"] == body.chain["max_gas_per_tx"]


def test_policies(api: TestClient) -> None:
    body = ok(api, "/v1/gov/policies", m.GovPoliciesResponse)
    by_target = {p.target: p for p in body.policies}
    assert set(by_target) == set(POLICIES)
    mint = by_target["token.mint"]
    assert mint.rule == "ANY" and mint.roles == ["admin"] and mint.orgs == []
    assert mint.description == "ANY of every organisation (role admin)"
    assert by_target["gov:set_params"].rule == "ALL"


@pytest.mark.parametrize(
    ("target", "rule", "source"),
    [
        ("token.mint", "ANY", "token.mint"),
        ("token.transfer", "ANY", None),
        ("token.*", "ANY", None),
        ("gov:set_params", "ALL", "gov:set_params"),
        ("gov:add_org", "MAJORITY", None),
    ],
)
def test_policy_in_force(api: TestClient, target: str, rule: str, source: str | None) -> None:
    body = ok(api, f"/v1/gov/policies/{target}", m.GovPolicyResponse)
    assert body.target == target and body.rule == rule and body.source == source


def test_policy_of_an_unknown_kind_is_404(api: TestClient) -> None:
    assert_error(api.get("/v1/gov/policies/gov:nope"), 404, "not_found", "no proposal kind 'nope'")


@pytest.mark.parametrize("target", ["token", "token.", ".mint", "to%20ken.mint", "token.%2A%2A"])
def test_bad_policy_target_is_400(api: TestClient, target: str) -> None:
    assert_error(api.get(f"/v1/gov/policies/{target}"), 400, "bad_arguments", "'contract.method'")


# -- proposals and history ---------------------------------------------------------------------


def test_proposals_newest_first_and_by_status(api: TestClient) -> None:
    body = ok(api, "/v1/gov/proposals", m.GovProposalsResponse)
    assert [(p.id, p.kind, p.status) for p in body.proposals] == [
        (3, "freeze", "expired"),
        (2, "set_params", "open"),
        (1, "add_org", "executed"),
    ]
    for status, ids in (("open", [2]), ("executed", [1]), ("expired", [3])):
        got = ok(api, f"/v1/gov/proposals?status={status}", m.GovProposalsResponse)
        assert [p.id for p in got.proposals] == ids
    assert [
        p.id for p in ok(api, "/v1/gov/proposals?limit=1", m.GovProposalsResponse).proposals
    ] == [3]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("status=passed", "query parameter 'status'"),
        ("limit=0", "query parameter 'limit'"),
        ("limit=201", "query parameter 'limit'"),
        ("limit=many", "query parameter 'limit'"),
    ],
)
def test_bad_proposal_listing_is_400(api: TestClient, query: str, fragment: str) -> None:
    assert_error(api.get(f"/v1/gov/proposals?{query}"), 400, "bad_arguments", fragment)


def test_executed_proposal(api: TestClient) -> None:
    p = ok(api, "/v1/gov/proposals/1", m.GovProposalModel)
    assert p.kind == "add_org" and p.status == "executed" and p.executed_height == 3
    assert p.proposer == ADMINS["org1"].address.hex() and p.proposer_org == "org1"
    assert p.created == 1 and p.created_time == T0 + 1000 and p.deadline == 101
    assert p.params["id"] == "org4"
    assert p.params["admins"] == [{"hex": NEW_ADMIN.public_key.hex()}]  # canonical: bytes as hex
    assert [(v.org, v.approve, v.height) for v in p.votes] == [("org1", True, 1), ("org2", True, 2)]
    assert p.result == {
        "org": "org4",
        "name": "Organisation 4",
        "admins": [NEW_ADMIN.public_key.hex()],
    }


def test_open_proposal_says_what_it_needs(api: TestClient) -> None:
    p = ok(api, "/v1/gov/proposals/2", m.GovProposalModel)
    assert p.status == "open" and p.executed_height is None and p.result is None
    assert [(v.voter, v.org, v.approve) for v in p.votes] == [
        (ADMINS["org2"].address.hex(), "org2", True),
        (ADMINS["org3"].address.hex(), "org3", False),
    ]
    assert p.approving_orgs == ["org2"] and not p.passed
    assert p.policy == "ALL of every organisation (role admin)"
    assert p.needs == "needs 4 of 4 organisations, approved by org2"
    assert p.params == {"params": {"chain": {"block_max_txs": 5000}}}


def test_unknown_proposal_is_404(api: TestClient) -> None:
    assert_error(api.get("/v1/gov/proposals/99"), 404, "not_found", "no proposal 99")


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/v1/gov/proposals/0", "greater than or equal to 1"),
        ("/v1/gov/proposals/abc", "path parameter 'proposal_id'"),
        ("/v1/gov/proposals/-1", "greater than or equal to 1"),
    ],
)
def test_bad_proposal_id_is_400(api: TestClient, path: str, fragment: str) -> None:
    assert_error(api.get(path), 400, "bad_arguments", fragment)


def test_history(api: TestClient) -> None:
    body = ok(api, "/v1/gov/history", m.GovHistoryResponse)
    assert [(e.seq, e.height, e.action, e.proposal) for e in body.entries] == [
        (1, 1, "propose", 1),
        (2, 2, "vote", 1),
        (3, 3, "execute", 1),
        (4, 4, "propose", 2),
        (5, 5, "vote", 2),
        (6, 5, "propose", 3),
        (7, 6, "register_member", None),
        (8, 7, "expire", 3),
    ]
    assert body.next_after == 8
    execute = body.entries[2]
    assert execute.actor == ADMINS["org3"].address.hex() and execute.time == T0 + 3000
    assert execute.detail["org"] == "org4" and execute.detail["kind"] == "add_org"
    assert len(execute.tx) == 64
    assert body.entries[4].detail == {"org": "org3", "approve": False}
    assert body.entries[6].detail == {
        "address": INSPECTOR.address.hex(),
        "org": "org1",
        "roles": ["inspector"],
    }


def test_history_pages_and_filters(api: TestClient) -> None:
    page = ok(api, "/v1/gov/history?after=2&limit=2", m.GovHistoryResponse)
    assert [e.seq for e in page.entries] == [3, 4] and page.next_after == 4
    rest = ok(api, f"/v1/gov/history?after={page.next_after}", m.GovHistoryResponse)
    assert [e.seq for e in rest.entries] == [5, 6, 7, 8]
    end = ok(api, "/v1/gov/history?after=8", m.GovHistoryResponse)
    assert end.entries == [] and end.next_after == 8
    one = ok(api, "/v1/gov/history?proposal=1", m.GovHistoryResponse)
    assert [e.action for e in one.entries] == ["propose", "vote", "execute"]
    assert ok(api, "/v1/gov/history?proposal=42", m.GovHistoryResponse).entries == []


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("after=-1", "query parameter 'after'"),
        ("limit=0", "query parameter 'limit'"),
        ("limit=1000", "query parameter 'limit'"),
        ("proposal=0", "query parameter 'proposal'"),
        ("proposal=x", "query parameter 'proposal'"),
    ],
)
def test_bad_history_query_is_400(api: TestClient, query: str, fragment: str) -> None:
    assert_error(api.get(f"/v1/gov/history?{query}"), 400, "bad_arguments", fragment)


# -- the published document --------------------------------------------------------------------


def test_openapi_documents_every_gov_route(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    expected = {
        "/v1/gov/config": "GovConfigResponse",
        "/v1/gov/orgs": "GovOrgsResponse",
        "/v1/gov/orgs/{org_id}": "GovOrgResponse",
        "/v1/gov/orgs/{org_id}/members": "GovMembersResponse",
        "/v1/gov/members/{address_hex}": "GovMemberResponse",
        "/v1/gov/validators": "GovValidatorsResponse",
        "/v1/gov/params": "GovParamsResponse",
        "/v1/gov/policies": "GovPoliciesResponse",
        "/v1/gov/policies/{target}": "GovPolicyResponse",
        "/v1/gov/proposals": "GovProposalsResponse",
        "/v1/gov/proposals/{proposal_id}": "GovProposalModel",
        "/v1/gov/history": "GovHistoryResponse",
    }
    for path, model in expected.items():
        op = doc["paths"][path]["get"]
        assert op["tags"] == ["governance"]
        ok_schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok_schema["$ref"].endswith(f"/{model}"), (path, ok_schema)
        assert op["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorBody"
        )
        assert "422" not in op["responses"]


def test_a_node_without_governance_answers_with_a_code(alice: Signer) -> None:
    """The fake node runs no gov contract: the routes say so (4xx), never a 500."""
    with TestClient(create_app(FakeNode())) as c:
        for path in ("/v1/gov/config", "/v1/gov/proposals", "/v1/gov/proposals/1"):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["code"] == "unknown_contract", r.text
