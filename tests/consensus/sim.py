"""A deterministic network simulator for :class:`citychain.consensus.machine.Machine` (tests only).

Each simulated node runs a tiny driver around one machine per height, the way the asyncio
driver will: it signs the votes the machine asks for (real Ed25519 signatures, with keys
derived from the seed so that runs are reproducible), broadcasts them and feeds them back,
builds fake 32-byte blocks when asked to propose, keeps timers on a virtual clock, buffers
messages of later heights and starts a new machine after each decision.

The network is a seeded scheduler. Before GST (global stabilisation time) it drops,
duplicates and delays messages at random and can partition the nodes per (height, round) of
the message. At GST it re-delivers every message ever sent to everyone (the catch-up gossip
that Tendermint's liveness needs: a quorum one correct node saw reaches every correct node,
research notes pitfall 4); after GST nothing is dropped or partitioned and every delay is at
most ``delta_ms``.

Faults: *twins* (Twins, Bano et al. 2021) are extra nodes that share a validator's key and run
the same correct code, which yields equivocating proposals and votes; *silent* validators
never start (crashed); *bad-block* validators propose blocks that every node finds invalid.
Validity of a block is a global truth (``Sim.validity``) so every node's ``valid(v)`` agrees.

Checks: agreement and validity per height over honest nodes, commit certificates on every
decision, and the rounds honest nodes needed after GST (for liveness).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from citychain.consensus.machine import (
    Action,
    DecideAction,
    EquivocationAction,
    Input,
    Machine,
    ProposalInput,
    ProposeAction,
    ScheduleTimeout,
    TimeoutInput,
    Timeouts,
    VoteAction,
    VoteInput,
)
from citychain.consensus.proposer import ProposerSchedule
from citychain.crypto import ED25519, Signer
from citychain.types import Validator, ValidatorSet, Vote, VoteType, vote_signing_bytes

CHAIN_ID = "citychain-sim"
TIMEOUTS = Timeouts(propose_ms=200, prevote_ms=100, precommit_ms=100, delta_ms=50)


def sim_signer(seed: int, index: int) -> Signer:
    """A deterministic key: the same seed gives the same validator set and proposer order."""
    return Signer(ED25519, hashlib.sha256(b"sim-key|%d|%d" % (seed, index)).digest())


@dataclass(frozen=True, slots=True)
class ProposalMsg:
    height: int
    round: int
    block_hash: bytes
    pol_round: int
    sender: bytes


Msg = ProposalMsg | Vote


@dataclass(frozen=True)
class Net:
    """How the network misbehaves before GST (per-mille probabilities: no floats)."""

    drop_permille: int = 0
    dup_permille: int = 0
    max_delay_ms: int = 100
    gst_ms: int = 0
    delta_ms: int = 20  # the delay bound after GST
    #: (height, round) of a message -> groups of node indices that can talk, before GST.
    partitions: Mapping[tuple[int, int], Sequence[Sequence[int]]] = field(default_factory=dict)
    #: the groups for every (height, round) not in ``partitions``; None = fully connected.
    default_groups: Sequence[Sequence[int]] | None = None
    #: (height, round, kind) -> directed (sender, receiver) links that drop that kind of
    #: message ("proposal", "prevote", "precommit") before GST: one-way faults per step.
    cuts: Mapping[tuple[int, int, str], Collection[tuple[int, int]]] = field(default_factory=dict)
    commit_ms: int = 5  # pause between deciding a height and starting the next


@dataclass
class SimNode:
    index: int
    signer: Signer
    key: bytes
    validator_index: int
    honest: bool = True  # False for both copies of a twinned validator
    silent: bool = False
    bad_blocks: bool = False
    height: int = 0
    machine: Machine | None = None
    decisions: dict[int, bytes] = field(default_factory=dict)
    decide_round: dict[int, int] = field(default_factory=dict)  # the node's round then
    commit_round: dict[int, int] = field(default_factory=dict)
    decided_after_gst: list[int] = field(default_factory=list)
    evidence: list[tuple[Vote, Vote]] = field(default_factory=list)
    buffer: dict[int, list[Msg]] = field(default_factory=dict)
    blocks_built: int = 0


@dataclass(order=True)
class _Event:
    time: int
    seq: int
    kind: str = field(compare=False)
    node: int = field(compare=False)
    payload: object = field(compare=False, default=None)


class Sim:
    def __init__(
        self,
        powers: Sequence[int],
        *,
        seed: int,
        net: Net | None = None,
        twins: Sequence[int] = (),
        silent: Sequence[int] = (),
        bad_blocks: Sequence[int] = (),
        heights: int = 1,
        timeouts: Timeouts = TIMEOUTS,
    ) -> None:
        self.rng = random.Random(seed)
        self.net = net or Net()
        self.heights = heights
        self.timeouts = timeouts
        signers = [sim_signer(seed, i) for i in range(len(powers))]
        keys = [s.public_key for s in signers]
        self.validators = ValidatorSet(
            Validator(k, p, f"v{i}") for i, (k, p) in enumerate(zip(keys, powers, strict=True))
        )
        self.schedule = ProposerSchedule(self.validators, start_height=1)
        self.nodes: list[SimNode] = []
        for i, (s, k) in enumerate(zip(signers, keys, strict=True)):
            self.nodes.append(
                SimNode(
                    i,
                    s,
                    k,
                    i,
                    honest=i not in twins,
                    silent=i in silent,
                    bad_blocks=i in bad_blocks,
                )
            )
        for v in twins:  # the twin of validator v: same key, another endpoint
            twin = SimNode(len(self.nodes), signers[v], keys[v], v, honest=False)
            self.nodes.append(twin)
        self.now = 0
        self.gst_passed = False
        self.validity: dict[bytes, bool] = {}
        self.proposed_by: dict[bytes, int] = {}  # block -> the node that built it
        self.log: list[tuple[int, Msg]] = []  # every message ever broadcast: (sender, msg)
        self.round_at_gst: dict[int, int] = {}  # height -> max round of honest nodes at GST
        self.trace: list[tuple[int, int, str]] = []
        self.sent = 0
        self.delivered = 0
        self._queue: list[_Event] = []
        self._seq = 0

    # -- running -----------------------------------------------------------------------------

    def run(self, until_ms: int = 600_000, *, stop_when_done: bool = True) -> Sim:
        """Run until every honest node decided every height (or ``until_ms`` of virtual time)."""
        for node in self.nodes:
            if not node.silent:
                self._push(0, "start", node.index, 1)
        self._push(self.net.gst_ms, "gst", -1)
        while self._queue and not (stop_when_done and self.done()):
            ev = heapq.heappop(self._queue)
            if ev.time > until_ms:
                break
            self.now = ev.time
            if ev.kind == "gst":
                self._gst()
            elif ev.kind == "start":
                assert isinstance(ev.payload, int)
                self._start_height(self.nodes[ev.node], ev.payload)
            elif ev.kind == "deliver":
                self._deliver(self.nodes[ev.node], ev.payload)
            elif ev.kind == "timer":
                node = self.nodes[ev.node]
                assert isinstance(ev.payload, TimeoutInput)
                if node.machine is not None and ev.payload.height == node.height:
                    self._feed(node, ev.payload)
        return self

    def honest_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes if n.honest and not n.silent]

    def done(self) -> bool:
        return all(len(n.decisions) >= self.heights for n in self.honest_nodes())

    # -- checks ------------------------------------------------------------------------------

    def disagreements(self, honest_only: bool = True) -> dict[int, list[bytes]]:
        """Heights at which (honest) nodes decided different values."""
        by_height: dict[int, list[bytes]] = {}
        for node in self.nodes:
            if honest_only and not node.honest:
                continue
            for h, v in node.decisions.items():
                values = by_height.setdefault(h, [])
                if v not in values:
                    values.append(v)
        return {h: vs for h, vs in sorted(by_height.items()) if len(vs) > 1}

    def invalid_decisions(self) -> list[tuple[int, int, bytes]]:
        """(node, height, value) decided although nobody proposed it or it is not valid."""
        return [
            (n.index, h, v)
            for n in self.honest_nodes()
            for h, v in sorted(n.decisions.items())
            if v not in self.proposed_by or not self.validity[v]
        ]

    def rounds_after_gst(self) -> int:
        """How many rounds past the honest maximum at GST honest nodes needed to decide.

        For each height an honest node decided after GST: its round at the decision minus the
        highest round any honest node had reached at that height when GST came (0 for heights
        started after GST).
        """
        worst = 0
        for n in self.honest_nodes():
            for h in n.decided_after_gst:
                worst = max(worst, n.decide_round[h] - self.round_at_gst.get(h, 0))
        return worst

    def evidence(self) -> list[tuple[Vote, Vote]]:
        return [e for n in self.honest_nodes() for e in n.evidence]

    # -- the driver of one node ---------------------------------------------------------------

    def _start_height(self, node: SimNode, height: int) -> None:
        node.height = height
        node.machine = Machine(
            height,
            self.validators,
            node.key,
            self.timeouts,
            functools.partial(self.schedule.proposer, height),
        )
        for msg in node.buffer.pop(height, []):  # inputs before start are recorded
            self._feed(node, self._input(msg))
        self._run(node, node.machine.start())

    def _deliver(self, node: SimNode, msg: object) -> None:
        assert isinstance(msg, ProposalMsg | Vote)
        self.delivered += 1
        if node.silent:
            return
        if msg.height > node.height:
            node.buffer.setdefault(msg.height, []).append(msg)
        elif msg.height == node.height:
            if isinstance(msg, ProposalMsg) and msg.sender != self.schedule.proposer(
                msg.height, msg.round
            ):
                return  # the driver drops proposals from anyone but the proposer
            self._feed(node, self._input(msg))

    def _input(self, msg: Msg) -> Input:
        if isinstance(msg, Vote):
            return VoteInput(msg)
        return ProposalInput(
            msg.round, msg.block_hash, msg.pol_round, self.validity[msg.block_hash]
        )

    def _feed(self, node: SimNode, inp: Input) -> None:
        machine = node.machine
        assert machine is not None
        self._run(node, machine.handle(inp))

    def _run(self, node: SimNode, actions: list[Action]) -> None:
        pending = list(actions)
        while pending:
            action = pending.pop(0)
            self.trace.append((self.now, node.index, repr(action)))
            machine = node.machine
            assert machine is not None
            own = self._act(node, action)
            if own is not None and node.machine is machine:
                pending.extend(machine.handle(own))

    def _act(self, node: SimNode, action: Action) -> Input | None:
        if isinstance(action, ProposeAction):
            if action.value is None:
                block = hashlib.sha256(
                    b"block|%d|%d|%d|%d"
                    % (node.index, action.height, action.round, node.blocks_built)
                ).digest()
                node.blocks_built += 1
                self.validity[block] = not node.bad_blocks
                self.proposed_by[block] = node.index
            else:
                block = action.value
            msg = ProposalMsg(action.height, action.round, block, action.valid_round, node.key)
            self._broadcast(node, msg)
            return self._input(msg)
        if isinstance(action, VoteAction):
            sign_bytes = vote_signing_bytes(
                CHAIN_ID, action.type, action.height, action.round, action.block_hash
            )
            vote = Vote(
                action.type,
                action.height,
                action.round,
                action.block_hash,
                node.key,
                node.signer.sign(sign_bytes),
            )
            self._broadcast(node, vote)
            return VoteInput(vote)
        if isinstance(action, ScheduleTimeout):
            self._push(
                self.now + action.duration_ms,
                "timer",
                node.index,
                TimeoutInput(action.height, action.round, action.step),
            )
            return None
        if isinstance(action, DecideAction):
            self._check_commit(action)
            assert action.height not in node.decisions, "decided twice"
            machine = node.machine
            assert machine is not None
            node.decisions[action.height] = action.block_hash
            node.decide_round[action.height] = machine.round
            node.commit_round[action.height] = action.round
            if self.gst_passed:
                node.decided_after_gst.append(action.height)
            if action.height < self.heights:
                self._push(self.now + self.net.commit_ms, "start", node.index, action.height + 1)
            return None
        assert isinstance(action, EquivocationAction)
        node.evidence.append((action.vote_a, action.vote_b))
        return None

    def _check_commit(self, d: DecideAction) -> None:
        seen: list[bytes] = []
        power = 0
        for v in d.precommits:
            assert v.type == VoteType.PRECOMMIT
            assert (v.height, v.round, v.block_hash) == (d.height, d.round, d.block_hash)
            assert v.validator not in seen
            seen.append(v.validator)
            power += self.validators.power_of(v.validator)
        assert seen == sorted(seen)
        assert self.validators.has_quorum(power), "a decision without 2/3 precommits"

    # -- the network -------------------------------------------------------------------------

    def _broadcast(self, sender: SimNode, msg: Msg) -> None:
        self.log.append((sender.index, msg))
        self.sent += 1
        for node in self.nodes:
            if node.index == sender.index:
                continue
            if not self.gst_passed:
                if not self._connected(sender.index, node.index, msg):
                    continue
                if self.rng.randrange(1000) < self.net.drop_permille:
                    continue
            copies = 2 if self.rng.randrange(1000) < self.net.dup_permille else 1
            for _ in range(copies):
                self._push(self.now + self._delay(), "deliver", node.index, msg)

    def _connected(self, a: int, b: int, msg: Msg) -> bool:
        kind = "proposal" if isinstance(msg, ProposalMsg) else msg.type.name.lower()
        if (a, b) in self.net.cuts.get((msg.height, msg.round, kind), ()):
            return False
        groups = self.net.partitions.get((msg.height, msg.round), self.net.default_groups)
        if groups is None:
            return True
        return any(a in g and b in g for g in groups)

    def _delay(self) -> int:
        if self.gst_passed:
            return self.rng.randint(1, self.net.delta_ms)
        return self.rng.randint(1, self.net.max_delay_ms)

    def _gst(self) -> None:
        self.gst_passed = True
        for n in self.honest_nodes():
            if n.machine is not None and n.height not in n.decisions:
                r = self.round_at_gst.get(n.height, 0)
                self.round_at_gst[n.height] = max(r, n.machine.round)
        for sender, msg in self.log:
            for node in self.nodes:
                if node.index != sender:
                    self._push(self.now + self._delay(), "deliver", node.index, msg)

    def _push(self, time: int, kind: str, node: int, payload: object = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Event(time, self._seq, kind, node, payload))
