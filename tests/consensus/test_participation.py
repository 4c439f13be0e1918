"""Who takes part in consensus (citychain.consensus.participation), fed by hand: the engine's
bookkeeping behind ``GET /v1/consensus``'s ``validators`` and ``last_commit``."""

from __future__ import annotations

from typing import Any

from citychain.consensus.participation import (
    LAG_GRACE_MS,
    LATE_WINDOW_MS,
    OFFLINE_MS,
    Participation,
)
from citychain.types import Commit, CommitSig, Validator, ValidatorSet, Vote, VoteType

KEYS = [bytes([i + 1]) * 32 for i in range(4)]
NAMES = ["node0", "node1", "node2", "node3"]
VALS = ValidatorSet([Validator(k, 10, n) for k, n in zip(KEYS, NAMES, strict=True)])
ME = KEYS[0]
BLOCK = b"\xbb" * 32
PC, PV = VoteType.PRECOMMIT, VoteType.PREVOTE


def vote(i: int, height: int, round_: int = 0, type_: VoteType = PC, block: bytes = BLOCK) -> Vote:
    return Vote(type_, height, round_, block, KEYS[i], b"sig")


def commit(height: int, signers: list[int], round_: int = 0) -> Commit:
    return Commit(height, round_, BLOCK, tuple(CommitSig(KEYS[i], b"sig") for i in signers))


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def healthy(now: int = 1_000) -> Participation:
    """Height 10 committed at ``now`` by node0-2; every peer connected and at height 10."""
    p = Participation(9, 0)
    held = [vote(i, 10) for i in range(3)]
    for v in held:
        p.heard(v, now - 5)
    p.heard(vote(3, 10, type_=PV), now - 5)
    p.committed(commit(10, [0, 1, 2]), VALS, held, now)
    for name in NAMES[1:]:
        p.peer_height(name, 11)
    return p


def report(p: Participation, now: int, connected: list[str] | None = None) -> dict[str, Any]:
    conn = NAMES[1:] if connected is None else connected
    return by_name(p.report(VALS, ME, conn, NAMES[1:], now))


def test_a_precommit_after_the_decision_is_late_not_missing() -> None:
    p = healthy()
    late = vote(3, 10)
    assert p.wants_late(late, 1_012)
    p.late_precommit(late, 1_012)
    assert not p.wants_late(late, 1_013)  # counted once
    rows = report(p, 1_100)
    assert [r["state"] for r in rows.values()] == ["this node", "ok", "ok", "ok"]
    assert [r["last_commit"] for r in rows.values()] == ["signed", "signed", "signed", "late"]
    assert rows["node3"]["note"] == "its precommit came 12 ms after the decision"
    assert p.last_commit() == {
        "height": 10,
        "round": 0,
        "signed": ["node0", "node1", "node2"],
        "late": ["node3"],
        "nil": [],
        "absent": [],
    }


def test_only_precommits_of_the_commit_height_and_round_within_the_window_count() -> None:
    p = healthy()
    assert not p.wants_late(vote(3, 10, type_=PV), 1_010)  # a prevote
    assert not p.wants_late(vote(3, 9), 1_010)  # another height
    assert not p.wants_late(vote(3, 10, round_=1), 1_010)  # another round
    assert not p.wants_late(vote(1, 10), 1_010)  # already in the commit
    assert not p.wants_late(vote(3, 10), 1_000 + LATE_WINDOW_MS + 1)  # too late to tell
    stranger = Vote(PC, 10, 0, BLOCK, b"\x09" * 32, b"sig")
    assert not p.wants_late(stranger, 1_010)  # not a validator
    p.late_precommit(vote(3, 10), 1_000 + LATE_WINDOW_MS + 1)  # ignored
    assert p.last_commit() is not None and p.last_commit()["absent"] == ["node3"]  # type: ignore[index]
    # A precommit for nil (or another block) is not a late signature.
    p.late_precommit(vote(3, 10, block=b""), 1_010)
    assert report(p, 1_020)["node3"]["last_commit"] == "nil"
    # The next commit replaces the record: the window of height 10 is over.
    p.committed(commit(11, [0, 1, 2, 3]), VALS, [], 1_300)
    assert not p.wants_late(vote(3, 10), 1_310)
    assert p.last_commit()["signed"] == NAMES  # type: ignore[index]


def test_a_stopped_validator_is_offline_by_name_and_the_others_are_not() -> None:
    p = healthy()
    p.peer_gone("node2")
    # Connected peers are fine; node2 voted at height 10, the last committed: not yet offline.
    rows = report(p, 1_100, connected=["node1", "node3"])
    assert rows["node2"]["state"] == "ok" and rows["node2"]["connected"] is False
    # The next height is committed without it: offline at once.
    p.committed(commit(11, [0, 1, 3]), VALS, [], 1_500)
    rows = report(p, 1_600, connected=["node1", "node3"])
    assert {n: r["state"] for n, r in rows.items()} == {
        "node0": "this node",
        "node1": "ok",
        "node2": "offline",
        "node3": "ok",
    }
    assert rows["node2"]["note"].startswith("not connected; last vote heard at height 10")
    assert rows["node2"]["last_commit"] == "absent"


def test_offline_also_when_nothing_is_decided_without_it() -> None:
    """A stalled chain (the quorum lacks it): no newer height, so the time tells."""
    p = healthy()
    p.heard(vote(2, 11, type_=PV), 1_200)  # voted at the current height, then went away
    p.peer_gone("node2")
    conn = ["node1", "node3"]
    assert report(p, 1_200 + OFFLINE_MS, connected=conn)["node2"]["state"] == "ok"
    assert report(p, 1_201 + OFFLINE_MS, connected=conn)["node2"]["state"] == "offline"


def test_a_validator_heard_through_other_peers_is_not_offline() -> None:
    p = healthy()
    p.peer_gone("node3")
    p.heard(vote(3, 11, type_=PV), 1_050)  # relayed by node1
    row = report(p, 1_100, connected=["node1", "node2"])["node3"]
    assert row["state"] == "ok" and row["connected"] is False
    assert "through other peers" in row["note"]
    # Never heard and never connected: offline (no peer of its name, nothing heard).
    fresh = Participation(0, 0)
    rows = by_name(fresh.report(VALS, ME, [], [], 100))
    assert rows["node1"]["state"] == "offline" and rows["node1"]["connected"] is None
    assert rows["node1"]["note"] == "no peer of this name; no vote heard since this node started"


def test_lagging_needs_a_real_gap_not_a_moment_behind() -> None:
    p = healthy(now=1_000)
    p.peer_height("node1", 10)  # still committing height 10 (at 9 committed)
    p.peer_height("node2", 9)  # two heights behind
    rows = report(p, 1_000 + LAG_GRACE_MS)
    assert rows["node1"]["state"] == "ok" and rows["node1"]["height"] == 9
    assert rows["node2"]["state"] == "lagging"
    assert rows["node2"]["note"] == "at height 8; this node is at 10"
    rows = report(p, 1_001 + LAG_GRACE_MS)  # one behind for too long
    assert rows["node1"]["state"] == "lagging"
    p.peer_height("node1", 12)  # ahead of us: not lagging (this node is the one behind)
    assert report(p, 5_000)["node1"]["state"] == "ok"


def test_bookkeeping_stays_bounded() -> None:
    p = healthy()
    gone = Vote(PC, 10, 0, BLOCK, b"\x09" * 32, b"sig")
    p.heard(gone, 1_000)
    p.committed(commit(11, [0, 1, 2]), VALS, [], 2_000)  # the set has no such validator
    assert b"\x09" * 32 not in p._heard
    for name in NAMES[1:]:
        p.peer_gone(name)
    assert p._peers == {}
