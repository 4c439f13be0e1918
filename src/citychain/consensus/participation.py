"""Who takes part in consensus, as one node sees it: each validator offline, lagging, merely
late for the last commit, or fine.

Theory of operation
-------------------
A commit holds the precommits a node had when it decided: the first ones past 2/3 of the
power. So in a healthy network some validator is "missing" from nearly every commit, only
because its precommit arrived a few milliseconds after the others. Being absent from a commit
says nothing by itself; these facts, which the engine feeds in, do:

* every vote the engine verified (:meth:`Participation.heard`): the newest height each
  validator voted at, and when that vote reached us;
* every round state a connected peer sends (:meth:`~Participation.peer_height`): the height
  it is deciding; a peer that disconnects is forgotten (:meth:`~Participation.peer_gone`);
* every commit (:meth:`~Participation.committed`): our height, when we reached it, who signed
  the commit and who had precommitted something else (nil, another block) by then;
* precommits for the block just decided that arrive after the decision, for
  :data:`LATE_WINDOW_MS` or until the next commit (:meth:`~Participation.late_precommit`):
  the engine asks :meth:`~Participation.wants_late` whether a vote counts, checks its
  signature, and never feeds it to the state machine (the height is over).

:meth:`~Participation.report` then says, per validator of the current set:

* ``offline``: not connected to this node (or no peer has its name), and no vote of it heard
  at the last committed height or later, or none for :data:`OFFLINE_MS`;
* ``lagging``: connected, and the last height it reported is two or more below ours, or one
  below for longer than :data:`LAG_GRACE_MS` after we committed (a peer a moment behind
  while it commits the same block is normal);
* ``ok``; ``this node`` for our own validator;

and, for the last commit, whether it ``signed`` it, was ``late`` (its precommit for the block
came after the decision: fine), precommitted ``nil`` or another block, or is ``absent``.

Peers are matched to validators by name: the node name of a peer's certificate and the
validator's name in the set, which ``net up`` and ``gov propose add_validator --name`` make
the same. A validator that no peer is named after is judged by its votes alone.

Nothing here reaches the state machine, the WAL or a block, so reading the wall clock is fine.
What is kept is bounded: one entry per validator (pruned to the set at each commit), one per
connected peer, and the last commit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from citychain.types import Commit, ValidatorSet, Vote, VoteType

#: A validator not connected to us and not heard from for this long is offline (also when no
#: block was decided meanwhile, e.g. because it is one of those the quorum lacks).
OFFLINE_MS = 10_000
#: A connected peer one height behind us is lagging only after this long at our height.
LAG_GRACE_MS = 2_000
#: Precommits for the block just decided are counted (as late) this long after the decision.
LATE_WINDOW_MS = 3_000


def validator_name(name: str, public_key: bytes) -> str:
    """How people see a validator: its name, else a hex prefix of its key."""
    return name or public_key.hex()[:16]


@dataclass(slots=True)
class _Heard:
    height: int  # the newest height it voted at
    at_ms: int  # when that vote reached us


@dataclass(slots=True)
class _LastCommit:
    height: int
    round: int
    block_hash: bytes
    at_ms: int
    validators: ValidatorSet
    signed: frozenset[bytes]
    #: validator -> ms after the decision its precommit for the block arrived
    late: dict[bytes, int] = field(default_factory=dict)
    #: precommitted nil or another block in the commit's round
    other: set[bytes] = field(default_factory=set)

    def role(self, key: bytes) -> str:
        if key in self.signed:
            return "signed"
        if key in self.late:
            return "late"
        if key in self.other:
            return "nil"
        return "absent"


class Participation:
    """The engine's record of who takes part; see the module docstring."""

    def __init__(self, height: int, now_ms: int) -> None:
        self._heard: dict[bytes, _Heard] = {}
        self._peers: dict[str, int] = {}  # connected peer -> the height it last reported
        self._height = height  # our committed height ...
        self._height_at = now_ms  # ... and when we reached it (or started)
        self._last: _LastCommit | None = None

    # -- facts -------------------------------------------------------------------------------
    def heard(self, vote: Vote, now_ms: int) -> None:
        """A vote whose signature the engine checked (any height)."""
        old = self._heard.get(vote.validator)
        if old is None or vote.height >= old.height:
            self._heard[vote.validator] = _Heard(vote.height, now_ms)

    def peer_height(self, peer: str, deciding: int) -> None:
        """A connected peer's round state: it is deciding height ``deciding``."""
        self._peers[peer] = deciding - 1

    def peer_gone(self, peer: str) -> None:
        self._peers.pop(peer, None)

    def committed(
        self, commit: Commit, validators: ValidatorSet, held: Iterable[Vote], now_ms: int
    ) -> None:
        """We committed ``commit``'s block (decided here or fetched by block sync);
        ``validators`` is the set of its height, ``held`` the votes of it we had."""
        signed = frozenset(s.validator for s in commit.signatures)
        other = {
            v.validator
            for v in held
            if v.type == VoteType.PRECOMMIT
            and v.round == commit.round
            and v.block_hash != commit.block_hash
            and v.validator not in signed
        }
        self._last = _LastCommit(
            commit.height, commit.round, commit.block_hash, now_ms, validators, signed, other=other
        )
        self._height, self._height_at = commit.height, now_ms
        # Bounded: only validators of a recent set are remembered.
        self._heard = {k: h for k, h in self._heard.items() if k in validators}

    def wants_late(self, vote: Vote, now_ms: int) -> bool:
        """Whether ``vote`` is a precommit of the last commit's height and round, within the
        window, by a validator of that set not yet accounted for (then check its signature
        and call :meth:`late_precommit`)."""
        last = self._last
        return (
            last is not None
            and vote.type == VoteType.PRECOMMIT
            and vote.height == last.height
            and vote.round == last.round
            and now_ms - last.at_ms <= LATE_WINDOW_MS
            and vote.validator in last.validators
            and last.role(vote.validator) == "absent"
        )

    def late_precommit(self, vote: Vote, now_ms: int) -> None:
        """A precommit :meth:`wants_late` accepted, its signature checked."""
        last = self._last
        if last is None or not self.wants_late(vote, now_ms):
            return
        self.heard(vote, now_ms)
        if vote.block_hash == last.block_hash:
            last.late[vote.validator] = now_ms - last.at_ms
        else:
            last.other.add(vote.validator)

    # -- what people read --------------------------------------------------------------------
    def report(
        self,
        validators: ValidatorSet,
        me: bytes | None,
        connected: Collection[str],
        known: Collection[str],
        now_ms: int,
    ) -> list[dict[str, Any]]:
        """One entry per validator of ``validators`` (the set deciding now), by name:
        ``name, public_key, power, state, connected, height, last_heard_ms_ago, last_commit,
        note``. ``connected``/``known``: names of the peers connected now / ever seen."""
        out: list[dict[str, Any]] = []
        last = self._last
        for v in sorted(
            validators, key=lambda v: (validator_name(v.name, v.public_key), v.public_key)
        ):
            key = v.public_key
            heard = self._heard.get(key)
            entry: dict[str, Any] = {
                "name": validator_name(v.name, key),
                "public_key": key.hex(),
                "power": v.power,
                "state": "ok",
                "connected": None,
                "height": None,
                "last_heard_ms_ago": None if heard is None else max(0, now_ms - heard.at_ms),
                "last_commit": (
                    last.role(key) if last is not None and key in last.validators else None
                ),
                "note": "",
            }
            notes: list[str] = []
            if key == me:
                entry["state"] = "this node"
                entry["height"] = self._height
            else:
                is_peer = bool(v.name) and (v.name in known or v.name in connected)
                linked = is_peer and v.name in connected
                entry["connected"] = linked if is_peer else None
                reported = self._peers.get(v.name) if linked else None
                entry["height"] = reported
                if not linked:
                    quiet = heard is None or now_ms - heard.at_ms > OFFLINE_MS
                    if quiet or (heard is not None and heard.height < self._height):
                        entry["state"] = "offline"
                    where = "not connected" if is_peer else "no peer of this name"
                    if heard is None:
                        notes.append(f"{where}; no vote heard since this node started")
                    else:
                        ago = (now_ms - heard.at_ms) / 1000
                        notes.append(
                            f"{where}; last vote heard at height {heard.height}, {ago:.0f} s ago"
                            if entry["state"] == "offline"
                            else f"{where}; its votes reach this node through other peers"
                        )
                elif reported is not None and reported < self._height:
                    behind = self._height - reported
                    if behind >= 2 or now_ms - self._height_at > LAG_GRACE_MS:
                        entry["state"] = "lagging"
                        notes.append(f"at height {reported}; this node is at {self._height}")
            if last is not None and key in last.late:
                after = last.late[key]
                notes.append(
                    f"its precommit came {after} ms after the decision"
                    if after
                    else "its precommit came just after the decision"
                )
            entry["note"] = "; ".join(notes)
            out.append(entry)
        return out

    def last_commit(self) -> dict[str, Any] | None:
        """The last commit: height, round, and the validators that ``signed`` it, were
        ``late``, precommitted ``nil`` (or another block) or are ``absent``."""
        last = self._last
        if last is None:
            return None
        out: dict[str, Any] = {"height": last.height, "round": last.round}
        for role in ("signed", "late", "nil", "absent"):
            out[role] = sorted(
                validator_name(v.name, v.public_key)
                for v in last.validators
                if last.role(v.public_key) == role
            )
        return out
