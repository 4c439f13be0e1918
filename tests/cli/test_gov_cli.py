"""`citychain gov ...` and `citychain tx send --endorse` against a real node.

The fake node has no governance contract, so each test here runs a real single-validator node
(solo consensus) in ``key`` identity mode with three organisations, in a thread, with the API
served on a free local port; the commands reach it through ``$CITYCHAIN_NODE``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import PASSPHRASE, run

from citychain.api import create_app
from citychain.api.node_service import NodeServiceAdapter
from citychain.crypto import ED25519, Signer
from citychain.crypto.keystore import save_key
from citychain.errors import InvalidInput
from citychain.node import Node, NodeConfig
from citychain.p2p.certs import generate_org_ca
from citychain.services.gov.cli import build_params, parse_param_value
from citychain.types import Validator
from citychain.types.genesis import ChainParams, Genesis, Governance, Organisation

ENV = {"CITYCHAIN_PASSPHRASE": PASSPHRASE}
CHAIN = "gov-cli"
#: Defining a role of org1 needs the admins of both org1 and org2 (co-signatures).
POLICIES = {"gov.define_role": {"rule": "ALL", "orgs": ["org1", "org2"], "roles": ["admin"]}}


def signer(n: int) -> Signer:
    return Signer(ED25519, hashlib.sha256(b"gov-cli-key-%d" % n).digest())


VALIDATOR = signer(0)
ADMINS = {"admin1": signer(1), "admin2": signer(2), "admin3": signer(3)}
NEW_ADMIN = signer(4)
STRANGER = signer(50)


@dataclass
class GovNet:
    url: str
    node: Node
    home: Path

    @property
    def height(self) -> int:
        return self.node.height


@contextmanager
def _serve(node: Node) -> Iterator[str]:
    """Run ``node`` (consensus and API) on an event loop in a thread; yields the API URL."""
    import uvicorn

    config = uvicorn.Config(
        create_app(NodeServiceAdapter(node)),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        consensus = asyncio.create_task(node.run())
        try:
            await server.serve()
        finally:
            node.stop()
            await consensus

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "test node did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive(), "test node did not stop"


@pytest.fixture
def net(tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GovNet]:
    """org1..org3, each with one admin whose key is stored as adminN in <home>/keys (and
    a stranger's key, a member of none)."""
    orgs = tuple(
        Organisation(
            f"org{i}",
            f"Org {i}",
            generate_org_ca(f"org{i}", f"Org {i}")[0].decode(),
            (s.public_key,),
        )
        for i, s in enumerate(ADMINS.values(), start=1)
    )
    node_home = tmp_path / "node"
    (node_home / "config").mkdir(parents=True)
    Genesis(
        CHAIN,
        1_767_225_600_000,
        "ed25519",
        (Validator(VALIDATOR.public_key, 10, "v0"),),
        ChainParams(block_interval_ms=5),
        {},
        orgs,
        Governance("key", 50, POLICIES),
        ((VALIDATOR.public_key, "org1"),),
    ).save(node_home / "config" / "genesis.json")
    keys = isolated_env / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    for name, s in [*ADMINS.items(), ("admin4", NEW_ADMIN), ("stranger", STRANGER)]:
        save_key(keys / f"{name}.json", s, PASSPHRASE, kdf_level="interactive")
    node = Node(NodeConfig(home=node_home), signer=VALIDATOR)
    try:
        with _serve(node) as url:
            # A chain's first block is made at once, transactions or not: wait for it, so
            # that from here on heights move only with the tests' own transactions (a test
            # that set a deadline at "the next height" lost the race to it under load).
            deadline = time.monotonic() + 10
            while node.height < 1:
                assert time.monotonic() < deadline, "the test node made no first block"
                time.sleep(0.01)
            monkeypatch.setenv("CITYCHAIN_NODE", url)
            yield GovNet(url, node, isolated_env)
    finally:
        node.close()


def gov(*args: str) -> Any:
    return run("gov", *args, env=ENV)


def gov_json(*args: str) -> Any:
    r = gov(*args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def assert_fails(r: Any, code: str, *fragments: str) -> None:
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith(f"error [{code}]: "), r.stderr
    flat = " ".join(r.stderr.split())
    for f in fragments:
        assert f in flat, r.stderr


def write_ca(tmp_path: Path, org: str) -> Path:
    path = tmp_path / f"{org}-ca.pem"
    path.write_bytes(generate_org_ca(org, f"Org {org[-1]}")[0])
    return path


# -- end to end ------------------------------------------------------------------------------------


def test_admit_an_organisation_propose_vote_execute_show_history(
    net: GovNet, tmp_path: Path
) -> None:
    ca = write_ca(tmp_path, "org4")
    # As `citychain net add-org` prints it: the new admin's key file gives its public key.
    r = gov(
        "propose",
        "add_org",
        "--org-id",
        "org4",
        "--name",
        "Org 4",
        "--ca-cert",
        str(ca),
        "--admin-key-file",
        str(net.home / "keys" / "admin4.json"),
        "--key",
        "admin1",
    )
    assert r.exit_code == 0, r.output
    assert "proposal 1 (add_org) is open until height" in r.stdout
    assert "citychain gov vote 1" in r.stdout

    r = gov("show", "1")
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "add_org" in out and "open" in out and "id org4" in out and "<PEM certificate>" in out
    assert "still open: needs 2 of 3 organisations, approved by org1" in out
    assert ADMINS["admin1"].address.hex() in out

    r = gov("vote", "1", "--key", "admin2")
    assert r.exit_code == 0, r.output
    assert "voted yes on proposal 1" in r.stdout
    assert "proposal 1 has passed" in r.stdout and "citychain gov execute 1" in r.stdout

    doc = gov_json("execute", "1", "--key", "admin3")
    assert doc["status"] == "committed" and doc["receipt"]["code"] == "ok"
    assert doc["receipt"]["result"]["org"] == "org4"

    out = " ".join(gov("show", "1").stdout.split())
    assert "executed at height" in out and "org=org4" in out
    shown = gov_json("show", "1")
    assert shown["status"] == "executed"
    assert [(v["org"], v["approve"]) for v in shown["votes"]] == [("org1", True), ("org2", True)]

    r = gov("history")
    assert r.exit_code == 0, r.output
    for column in ("seq", "height", "time (UTC)", "actor", "action", "proposal", "what changed"):
        assert column in r.stdout
    for action in ("propose", "vote", "execute"):
        assert action in r.stdout
    history = gov_json("history", "--proposal", "1")
    assert [e["action"] for e in history["entries"]] == ["propose", "vote", "execute"]
    assert history["entries"][2]["actor"] == ADMINS["admin3"].address.hex()
    assert history["entries"][2]["detail"]["org"] == "org4"
    page = gov_json("history", "--after", "1", "--limit", "1")
    assert [e["seq"] for e in page["entries"]] == [2] and page["next_after"] == 2
    assert "more may follow: --after 2" in gov("history", "--limit", "2").stdout

    assert [o["id"] for o in gov_json("orgs")["orgs"]] == ["org1", "org2", "org3", "org4"]
    assert "org4" in gov("orgs").stdout
    (admin4,) = gov_json("members", "org4")["members"]
    assert admin4["address"] == NEW_ADMIN.address.hex() and admin4["roles"] == ["admin"]
    listed = gov_json("proposals", "--status", "executed")["proposals"]
    assert [p["id"] for p in listed] == [1]
    assert "executed" in gov("proposals").stdout

    # The new organisation's admin governs from now on: now 3 of 4 organisations are needed.
    r = gov("propose", "remove_org", "--param", "id=org3", "--key", "admin4", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["proposal"] == 2
    assert "needs 3 of 4 organisations, approved by org4" in gov("show", "2").stdout


def test_refusals_print_their_code_and_exit_1(net: GovNet) -> None:
    params = ["--param", "address=0x" + STRANGER.address.hex()]
    assert gov("propose", "freeze", *params, "--key", "admin1").exit_code == 0
    assert_fails(gov("vote", "1", "--key", "admin1"), "duplicate", "already voted on proposal 1")
    assert_fails(
        gov("execute", "1", "--key", "admin2"),
        "proposal_not_passed",
        "needs 2 of 3 organisations, approved by org1",
    )
    assert_fails(gov("propose", "freeze", *params, "--key", "stranger"), "not_member")
    assert_fails(gov("vote", "7", "--key", "admin2"), "not_found", "no proposal 7")
    assert_fails(gov("show", "99"), "not_found", "no proposal 99")
    assert_fails(gov("propose", "bogus", "--key", "admin1"), "bad_arguments", "unknown proposal")
    assert_fails(
        gov("propose", "freeze", "--ca-cert", "x.pem", "--key", "admin1"),
        "bad_arguments",
        "--ca-cert is for add_org, update_org proposals, not freeze",
    )
    assert_fails(
        gov("propose", "add_org", "--param", "id=org9", "--key", "admin1"),
        "bad_arguments",
        "proposal params lack name, ca_cert, admins",
    )
    assert_fails(gov("member", "zz"), "bad_arguments", "address must be hex digits")
    assert_fails(gov("member", STRANGER.address.hex()), "not_found", "not a member")
    assert_fails(gov("members", "nope"), "not_found", "no organisation 'nope'")
    assert_fails(gov("policy", "gov:nope"), "not_found", "no proposal kind 'nope'")
    assert_fails(gov("policy", "nodot"), "bad_arguments", "'contract.method'")
    assert_fails(gov("orgs", "--node", "http://127.0.0.1:9"), "unavailable", "cannot reach")
    r = gov("proposals", "--status", "passed")
    assert r.exit_code == 2 and "Invalid value" in r.output  # a usage error, from click


def test_expired_proposal(net: GovNet) -> None:
    # The proposal's block is the next one: its deadline is that very height.
    deadline = net.height + 1
    params = ["--param", "address=0x" + STRANGER.address.hex()]
    r = gov("propose", "freeze", *params, "--deadline", str(deadline), "--key", "admin1")
    assert r.exit_code == 0, r.output
    assert f"open until height {deadline}" in r.stdout
    clerk = signer(70).public_key.hex()
    r = gov(
        "register-member",
        "--org",
        "org3",
        "--roles",
        "member",
        "--public-key",
        clerk,
        "--key",
        "admin3",
    )  # one more block
    assert r.exit_code == 0, r.output
    assert net.height > deadline
    assert_fails(gov("vote", "1", "--key", "admin2"), "proposal_expired", "expired after height")
    r = gov("expire", "1", "--key", "admin2")
    assert r.exit_code == 0, r.output
    assert "proposal 1 is recorded as expired" in r.stdout
    assert [p["id"] for p in gov_json("proposals", "--status", "expired")["proposals"]] == [1]
    assert "expired" in gov("show", "1").stdout
    assert [e["action"] for e in gov_json("history", "--proposal", "1")["entries"]] == [
        "propose",
        "expire",
    ]


def test_members_and_roles(net: GovNet) -> None:
    clerk = signer(60)
    r = gov(
        "register-member",
        "--org",
        "org3",
        "--roles",
        "member,auditor",
        "--public-key",
        clerk.public_key.hex(),
        "--key",
        "admin3",
    )
    assert r.exit_code == 0, r.output
    assert f"registered {clerk.address.hex()} in org3 as member, auditor" in r.stdout
    doc = gov_json("member", clerk.address.hex())
    assert doc["org"] == "org3" and doc["roles"] == ["auditor", "member"]
    assert doc["in_good_standing"] is True
    r = gov("member", clerk.address.hex())
    assert "standing" in r.stdout and "ok" in r.stdout and "auditor, member" in r.stdout
    members = gov_json("members", "org3")["members"]
    assert {m["address"] for m in members} == {
        ADMINS["admin3"].address.hex(),
        clerk.address.hex(),
    }
    assert clerk.address.hex() in gov("members", "org3").stdout

    assert_fails(
        gov(
            "register-member",
            "--org",
            "org3",
            "--roles",
            "member",
            "--public-key",
            signer(61).public_key.hex(),
            "--key",
            "admin1",
        ),
        "unauthorized",
        "only an admin of organisation 'org3'",
    )
    r = gov("remove-member", clerk.address.hex(), "--key", "admin3")
    assert r.exit_code == 0, r.output
    assert_fails(gov("member", clerk.address.hex()), "not_found")
    kinds = [e["action"] for e in gov_json("history")["entries"]]
    assert kinds == ["register_member", "remove_member"]


def test_endorsements_meet_a_two_organisation_policy(net: GovNet) -> None:
    """gov.define_role needs the admins of org1 and org2: one signature is refused, a
    co-signature from org2's admin makes it pass (tx send and gov define-role alike)."""
    args = json.dumps({"org": "org1", "role": "inspector"})
    r = run("tx", "send", "gov", "define_role", "--args", args, "--key", "admin1", env=ENV)
    assert_fails(r, "policy_not_met", "policy gov.define_role", "approved by org1")
    r = run(
        "tx",
        "send",
        "gov",
        "define_role",
        "--args",
        args,
        "--key",
        "admin1",
        "--endorse",
        "admin2",
        "--json",
        env=ENV,
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["receipt"]["code"] == "ok"
    assert "inspector" in gov_json("history")["entries"][-1]["detail"]["role"]
    r = gov("define-role", "org1", "surveyor", "--key", "admin1", "--endorse", "admin2")
    assert r.exit_code == 0, r.output
    assert "organisation org1 has role surveyor" in r.stdout
    last = gov_json("history")["entries"][-1]
    assert last["detail"] == {"org": "org1", "role": "surveyor"}
    tx = json.loads(run("query", "tx", last["tx"], "--json").stdout)
    assert [e["public_key"] for e in tx["tx"]["endorsements"]] == [
        ADMINS["admin2"].public_key.hex()
    ]
    assert_fails(
        run(
            "tx",
            "send",
            "gov",
            "define_role",
            "--args",
            args,
            "--key",
            "admin1",
            "--endorse",
            "admin1",
            env=ENV,
        ),
        "bad_arguments",
        "the sender's own key cannot endorse",
    )
    assert_fails(
        run(
            "tx",
            "send",
            "gov",
            "define_role",
            "--args",
            args,
            "--key",
            "admin1",
            "--endorse",
            "admin2",
            "--endorse",
            "admin2",
            env=ENV,
        ),
        "bad_arguments",
        "already an endorser",
    )


def test_reads(net: GovNet) -> None:
    assert gov_json("config") == {"mode": "key", "voting_period": 50}
    assert "identity mode  key" in gov("config").stdout
    policies = gov_json("policies")["policies"]
    assert [p["target"] for p in policies] == ["gov.define_role"]
    assert "gov.define_role" in gov("policies").stdout
    r = gov("policy", "gov.define_role")
    assert r.exit_code == 0, r.output
    assert "ALL of org1, org2 (role admin)" in r.stdout and "set as gov.define_role" in r.stdout
    r = gov("policy", "gov:add_org")
    assert "MAJORITY of every organisation (role admin)" in r.stdout
    assert "built-in default" in r.stdout
    vals = gov_json("validators")
    assert vals["validators"][0]["public_key"] == VALIDATOR.public_key.hex()
    assert "org1" in gov("validators").stdout
    assert gov_json("params")["chain"]["block_interval_ms"] == 5
    assert "chain.block_interval_ms" in gov("params").stdout
    assert gov("proposals").stdout.strip() == "no proposals"
    assert gov("history").stdout.strip() == "no governance history"


def test_set_params_with_dotted_params(net: GovNet) -> None:
    r = gov(
        "propose",
        "set_params",
        "--param",
        "params.chain.block_max_txs=5000",
        "--key",
        "admin2",
        "--json",
    )
    assert r.exit_code == 0, r.output
    pid = json.loads(r.stdout)["proposal"]
    assert gov_json("show", str(pid))["params"] == {"params": {"chain": {"block_max_txs": 5000}}}
    assert gov("vote", str(pid), "--key", "admin3").exit_code == 0
    assert gov("execute", str(pid), "--key", "admin1").exit_code == 0
    assert gov_json("params")["chain"]["block_max_txs"] == 5000


def test_propose_add_validator_with_flags(net: GovNet) -> None:
    key = signer(80).public_key.hex()
    r = gov(
        "propose",
        "add_validator",
        "--public-key",
        key,
        "--power",
        "10",
        "--name",
        "node9",
        "--org",
        "org2",
        "--key",
        "admin2",
        "--json",
    )
    assert r.exit_code == 0, r.output
    shown = gov_json("show", str(json.loads(r.stdout)["proposal"]))
    assert shown["params"] == {
        "public_key": {"hex": key},
        "power": 10,
        "name": "node9",
        "org": "org2",
    }


def test_no_wait_returns_the_pending_hash(net: GovNet) -> None:
    r = gov("propose", "remove_org", "--param", "id=org3", "--key", "admin1", "--no-wait")
    assert r.exit_code == 0, r.output
    assert "pending; not waiting" in r.stdout


def test_enroll_is_for_certificate_mode(net: GovNet, tmp_path: Path) -> None:
    cert = write_ca(tmp_path, "org1")
    assert_fails(
        gov("enroll", "--cert", str(cert), "--key", "stranger"),
        "unauthorized",
        "this chain runs in 'key' identity mode",
    )
    assert_fails(
        gov("enroll", "--cert", str(tmp_path / "missing.pem"), "--key", "stranger"),
        "bad_arguments",
        "--cert: cannot read",
    )


# -- proposal parameters, without a node --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5000", 5000),
        ("-3", -3),
        ("0x0a1B", b"\x0a\x1b"),
        ("true", True),
        ("false", False),
        ("null", None),
        ("org4", "org4"),
        ("Org 4", "Org 4"),
        ('"123"', "123"),
        ('["a", {"hex": "00ff"}]', ["a", b"\x00\xff"]),
        ('{"rule": "ANY", "roles": ["admin"]}', {"rule": "ANY", "roles": ["admin"]}),
    ],
)
def test_param_values(text: str, value: Any) -> None:
    assert parse_param_value(text, "x") == value


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("0xzz", "hex digits"), ("[1, 2", "not valid JSON"), ('{"a": 1.5}', "float")],
)
def test_bad_param_values(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_param_value(text, "x")


def test_build_params(tmp_path: Path) -> None:
    params = build_params(
        "add_org",
        '{"id": "org4"}',
        ["name=Org 4"],
        {
            "--ca-cert": "PEM",
            "--admin": [NEW_ADMIN.public_key],
            "--admin-key-file": [STRANGER.public_key],
            "--role": ["inspector"],
            "--public-key": None,
            "--power": None,
        },
    )
    assert params == {
        "id": "org4",
        "name": "Org 4",
        "ca_cert": "PEM",
        "admins": [NEW_ADMIN.public_key, STRANGER.public_key],
        "roles": ["inspector"],
    }
    validator = build_params(
        "add_validator",
        flags={"--public-key": b"k", "--power": 5, "--name": "node9", "--org": "org2"},
    )
    assert validator == {"public_key": b"k", "power": 5, "name": "node9", "org": "org2"}
    nested = build_params(
        "set_params", param=["params.chain.block_max_txs=5000", "params.gas.tx_base=3000"]
    )
    assert nested == {"params": {"chain": {"block_max_txs": 5000}, "gas": {"tx_base": 3000}}}
    from_file = tmp_path / "p.json"
    from_file.write_text('{"target": "token.mint", "policy": null}')
    assert build_params("set_policy", f"@{from_file}") == {"target": "token.mint", "policy": None}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"param": ["id"]}, "must be NAME=VALUE"),
        ({"param": ["=x"]}, "must be NAME=VALUE"),
        ({"param": ["a b=1"]}, "letters, digits"),
        ({"param": ["a..b=1"]}, "letters, digits"),
        ({"param": ["id=1", "id=2"]}, "given twice"),
        ({"params_json": '{"id": 1}', "param": ["id=2"]}, "given twice"),
        ({"param": ["a=1", "a.b=2"]}, "not a map"),
        ({"params_json": "[1]"}, "must be a JSON object"),
        ({"params_json": "@/nonexistent/p.json"}, "cannot read"),
        ({"flags": {"--role": ["x"]}, "kind": "update_org"}, "--role is for add_org proposals"),
        ({"flags": {"--power": 3}}, "--power is for add_validator, set_validator_power"),
        ({"flags": {"--name": "n"}, "param": ["name=m"]}, "given twice"),
    ],
)
def test_bad_params(kwargs: dict[str, Any], fragment: str) -> None:
    args: dict[str, Any] = {"kind": "add_org", "params_json": None, "param": None, "flags": None}
    args.update(kwargs)
    with pytest.raises(InvalidInput, match=fragment):
        build_params(**args)
