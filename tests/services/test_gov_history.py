"""The governance trail (paging through the history, following one proposal, a decided
proposal reading the same after the chain moves on) and a policy that would lock itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_gov import (  # type: ignore[import-not-found]
    ADMIN,
    BOB,
    CAS,
    Net,
    make_genesis,
    ok,
)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "chain", make_genesis())
    yield n
    n.chain.close()


def test_history_pages_and_follows_one_proposal(net: Net) -> None:
    first = net.propose(ADMIN["org1"], "freeze", {"address": BOB.address})
    second = net.propose(ADMIN["org2"], "unfreeze", {"address": BOB.address})
    ok(net.gov(ADMIN["org2"], "vote", id=first))
    ok(net.gov(ADMIN["org3"], "vote", id=second, approve=False))
    ok(net.gov(ADMIN["org1"], "execute", id=first))
    everything = net.query("gov", "history")
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    page = net.query("gov", "history", after=2, limit=2)
    assert [e["seq"] for e in page] == [3, 4]
    assert net.query("gov", "history", after=len(everything)) == []
    mine = net.query("gov", "history", proposal=first)
    assert [e["action"] for e in mine] == ["propose", "vote", "execute"]
    assert all(e["proposal"] == first for e in mine)
    one = net.query("gov", "history", proposal=first, after=mine[0]["seq"], limit=1)
    assert one == [mine[1]]  # from a seek to 'after', at most 'limit'
    theirs = net.query("gov", "history", proposal=second, after=mine[0]["seq"])
    assert [(e["action"], e["detail"].get("approve")) for e in theirs] == [
        ("propose", None),
        ("vote", False),
    ]


def test_an_executed_proposal_reads_as_it_was_decided(net: Net) -> None:
    pid = net.propose(ADMIN["org1"], "freeze", {"address": BOB.address})
    ok(net.gov(ADMIN["org2"], "vote", id=pid))
    ok(net.gov(ADMIN["org1"], "execute", id=pid))
    decided = net.query("gov", "proposal", id=pid)
    # a fourth organisation joins: the old decision still reads as passed, by the same orgs
    net.enact(
        "add_org",
        {
            "id": "org4",
            "name": "Org org4",
            "ca_cert": CAS["org4"][0].decode(),
            "admins": [ADMIN["org4"].public_key],
        },
        voters=(ADMIN["org2"],),
    )
    later = net.query("gov", "proposal", id=pid)
    assert later["status"] == "executed" and later["passed"] is True
    assert later["approving_orgs"] == decided["approving_orgs"] == ["org1", "org2"]
    assert later["needs"].startswith("passed and executed at height")


def test_a_policy_nobody_can_meet_is_refused(net: Net) -> None:
    from citychain.errors import ErrorCode

    r = net.gov(
        ADMIN["org1"],
        "propose",
        kind="set_policy",
        params={"target": "gov:set_policy", "policy": {"rule": "5", "roles": ["admin"]}},
    )
    assert r.code == ErrorCode.BAD_ARGUMENTS
    assert "can never be met by the organisations on this chain (org1, org2, org3)" in r.message
