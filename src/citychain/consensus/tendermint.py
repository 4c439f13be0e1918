"""The Tendermint engine: drives the pure state machine with the network, the WAL, the signer
and the chain.

Theory of operation
-------------------
All consensus decisions are made by :class:`~citychain.consensus.machine.Machine` (Algorithm 1
of "The latest gossip on BFT consensus", one machine per height). This module is its *host*:
it turns bytes from peers into checked inputs, and the machine's actions into effects.

One asyncio task (:meth:`TendermintEngine._loop`) takes events from one bounded inbox, so
the machine sees one input at a time in a definite order. P2P handlers only decode and
enqueue. Long work (building, re-executing and committing a block) is awaited in the loop on
a single execution thread, so inputs queue behind it rather than interleave.

Inputs and what is checked before the machine sees them:

* proposal: for our height, from ``proposer(h, r)``, signature valid. Its block arrives in
  parts whose hashes are in the signed proposal; when all are in, the block is decoded and
  re-executed (``Chain.check_block``: valid(v) of the paper, a pure function of the block
  and the committed state), and ``ProposalInput(valid=...)`` is fed.
* vote: for our height, by a member of the validator set, signature valid (chain id inside).
  Votes for the next two heights are buffered (bounded) and fed when we get there.
* timeout: the (height, round, step) it was scheduled for; the machine drops stale ones.

Write-ahead log: every input is written to the WAL before it is fed; our own proposals and
votes with ``write_sync`` (fsync) *before* they leave the node. The signer
(:class:`~citychain.consensus.privval.PrivValidator`) persists what it signed before it
returns a signature. On restart the current height's records are replayed through the same
path, so the machine regains its locks and the votes it sent (pitfall 5). Actions the
machine emits during replay are not repeated if the WAL shows they were carried out (our
vote or proposal is in a later record); the others (a vote signed but not logged before a
crash; a timeout) are carried out once replay is done. Re-signing an identical vote returns
the stored signature (pitfall 6).

Decision: the block decided was re-executed when it was validated, so committing is one
synced RocksDB batch (block, commit = the 2/3+ precommits, state, indexes), then
``EndHeight`` in the WAL, then the node is told. The next height starts ``block_interval_ms``
after the decided one *started*, or at once if deciding took longer than that. (Tendermint's
timeout commit counts from the commit instead: a height slowed by a large block or a slow
link then waited the whole interval on top. Here the interval only paces blocks, as the solo
engine's "interval since the previous block" does, and under load heights follow each other
with no pause, so a transaction's latency is the protocol's round trips plus execution, not
a timeout. Nothing is lost by not waiting: a commit holds the precommits it was decided
with, and a late precommit is still counted for the diagnostics at the next height.)

Idle heights (node.toml ``[consensus] create_empty_blocks``, ``empty_blocks_interval_ms``;
:class:`~citychain.consensus.interface.EmptyBlocks`; CometBFT's ``enterNewRound`` waiting for
``TxsAvailable``): a height starts by building its machine, but when nothing waits to be
committed (the mempool has no executable transaction and there is no pending evidence) it does
not call ``Machine.start`` (the paper's StartRound(0)) yet: the height is *idle*. An idle
height starts round 0 at the first of

* the mempool reporting transactions available (``notify_txs``: a client's transaction, or
  one gossiped from a peer, which is how every validator wakes when one of them gets one),
  or pending evidence arriving;
* ``empty_blocks_interval_ms`` after the height started (the empty block that shows the chain
  is alive; never, with ``create_empty_blocks = false``);
* a proposal or a vote of this height from a peer (checked as usual, and started *before*
  it is logged and fed, so the WAL holds inputs in the order the machine saw them).

Only the moment round 0 begins moves; everything after it is Algorithm 1 unchanged. Safety
does not depend on it: the machine records inputs before it starts and acts on them only
from the start on, which happens in every case above. Non-proposers wait too (their
timeoutPropose is scheduled only when round 0 begins), so they do not prevote nil while the
proposer legitimately waits; a node whose clock or mempool moves first merely starts its
timeoutPropose a little earlier, which a timeout already allows for. Liveness: an idle
proposer that is down is replaced in round 1 once the others' interval (or a transaction)
starts round 0 and its propose timeout passes. Rounds above 0 never wait, nor does the first
block of a chain. The wait leaves nothing in the WAL: a node restarted while idle is idle again
(its interval counted from the restart); one restarted after round 0 began finds the inputs in
the WAL, and replay starts the machine before feeding them, as the live path did.

Gossip: proposals, parts and our votes are broadcast; a vote from someone else that is new to
us is relayed once to the other peers (so equivocations reach every honest node). On every
step change and every ``GOSSIP_MS`` each node sends its :class:`RoundState` (height, round,
step, which proposals and votes it holds). A peer at our height gets the votes and
proposals it lacks (the quorum-gossip property Tendermint's liveness rests on, pitfall 4);
a peer that is ahead makes us start block sync; a peer behind us syncs from us.

The parts, one module each (one class, :class:`TendermintEngine`, is made of them):

* ``tendermint.py`` (this module): the loop, heights and idle heights, feeding the machine and
  carrying out its actions, votes (ours and peers'), the decision, block sync's blocks, the
  status;
* ``_proposals.py``: our proposals (building, signing, sending a block in parts) and peers'
  proposals and parts, assembled and re-executed into ``ProposalInput``;
* ``_gossip.py``: round-state gossip and catch-up (what a peer at our height lacks);
* ``_replay.py``: WAL replay on restart;
* ``_state.py``: what is kept for a height, the loop's events, the limits.

Misbehaviour is not part of it: tests that need a Byzantine validator subclass the engine
(``tests/e2e/byzantine.py``) through the hooks ``_sign``, ``_send_vote``, ``_before_proposal``
and ``_send_own_proposal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from citychain import codec
from citychain.chain import Chain, PendingBlock
from citychain.consensus import messages as m
from citychain.consensus._gossip import _Gossip
from citychain.consensus._proposals import _Proposals
from citychain.consensus._replay import _Replay
from citychain.consensus._state import (
    EVIDENCE_REGOSSIP_TICKS,
    GOSSIP_MS,
    INBOX,
    MAX_CONSENSUS_MSG,
    MAX_FUTURE_VOTES,
    MAX_ROUND_AHEAD,
    MAX_SYNC_MSG,
    MAX_VOTE_MSG,
    _Event,
    _Height,
    _timeouts,
    wall_clock_ms,
)
from citychain.consensus.evidence import EvidencePool
from citychain.consensus.interface import ConsensusStatus, EmptyBlocks, OnCommit
from citychain.consensus.machine import (
    Action,
    DecideAction,
    EquivocationAction,
    Input,
    Machine,
    ProposeAction,
    ScheduleTimeout,
    Step,
    TimeoutInput,
    VoteAction,
    VoteInput,
    short_key,
)
from citychain.consensus.participation import Participation, validator_name
from citychain.consensus.privval import PrivValidator, SignStep
from citychain.consensus.proposer import ProposerSchedule
from citychain.consensus.wal import WAL
from citychain.errors import CitychainError, DoubleSignRefused
from citychain.mempool import Mempool
from citychain.p2p import Switch
from citychain.sync import BlockSync
from citychain.sync import messages as sm
from citychain.types import (
    Commit,
    CommitSig,
    DuplicateVoteEvidence,
    ValidatorSet,
    Vote,
    VoteType,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "EVIDENCE_REGOSSIP_TICKS",
    "GOSSIP_MS",
    "INBOX",
    "MAX_CONSENSUS_MSG",
    "MAX_FUTURE_VOTES",
    "MAX_ROUND_AHEAD",
    "MAX_SYNC_MSG",
    "MAX_VOTE_MSG",
    "TendermintEngine",
    "wall_clock_ms",
]


class TendermintEngine(_Replay, _Proposals, _Gossip):
    """Tendermint consensus of a networked node (see "Theory of operation" above). Its parts
    (:class:`_Replay`, :class:`_Proposals`, :class:`_Gossip`) each declare the engine state
    they use; this class owns that state and the loop."""

    def __init__(
        self,
        chain: Chain,
        mempool: Mempool,
        privval: PrivValidator | None,
        switch: Switch,
        wal: WAL,
        on_commit: OnCommit,
        *,
        sync_window: int = 32,
        clock: Callable[[], int] = wall_clock_ms,
        empty_blocks: EmptyBlocks | None = None,
    ) -> None:
        self._chain = chain
        self._mempool = mempool
        self._privval = privval
        self._switch = switch
        self._wal = wal
        self._on_commit = on_commit
        self._clock = clock
        self._empty = empty_blocks if empty_blocks is not None else EmptyBlocks()
        self.me: bytes | None = privval.public_key if privval is not None else None
        self._timeouts = _timeouts(chain)
        self.evidence = EvidencePool(chain)
        self.sync = BlockSync(chain, self._send_sync, window=sync_window)
        self.sync.on_ready = lambda: self._post(_Event("sync_ready"))
        self._inbox: asyncio.Queue[_Event] = asyncio.Queue(INBOX)
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="consensus-exec")
        self._schedule: tuple[bytes, ProposerSchedule] | None = None
        self._h: _Height | None = None
        self._future_votes: list[Vote] = []
        self._future_proposals: list[tuple[str, m.Message]] = []
        self._stopping = False
        self._replaying = False
        self._deferred: list[Action] = []
        self._replay_own: tuple[set[bytes], set[int]] = (set(), set())
        self._timers: set[asyncio.TimerHandle] = set()
        self._ticks = 0
        self.dropped_msgs = 0
        self.bad_msgs = 0
        #: Rounds the last decided height needed (0 = decided in its first round).
        self.last_commit_round = 0
        self.last_commit_missing: list[str] = []
        #: Who takes part (offline, lagging, late for the last commit): diagnostics only.
        self.participation = Participation(chain.height, clock())
        #: When the next height starts after a decision (clock ms), for the status.
        self._next_height_ms = 0
        switch.add_channel(m.CH_CONSENSUS, self._on_consensus_bytes)
        switch.add_channel(m.CH_VOTES, self._on_vote_bytes)
        switch.add_channel(m.CH_EVIDENCE, self._on_evidence_bytes)
        switch.add_channel(sm.CH_SYNC, self._on_sync_bytes)

    # == ConsensusEngine ======================================================================

    def notify_txs(self) -> None:
        """Transactions available: an idle height starts round 0 now ("Idle heights")."""
        h = self._h
        if h is not None and h.idle and not h.wake_posted:
            h.wake_posted = True
            self._post(_Event("wake", payload=h.height), force=True)

    def stop(self) -> None:
        self._stopping = True
        self._post(_Event("stop"), force=True)

    async def run(self) -> None:
        # A crash between the block's commit and its EndHeight marker: the block is stored,
        # so the height is over (pitfall 7: replay exactly what is missing).
        if self._wal.last_end_height() < self._chain.height:
            self._wal.end_height(self._chain.height)
        ticker = asyncio.create_task(self._gossip_ticker())
        try:
            await self._start_height(replay=True)
            await self._loop()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            for t in self._timers:
                t.cancel()
            self._exec.shutdown(wait=True)

    # == p2p handlers (on the event loop; decode and enqueue only) ===========================

    def _post(self, ev: _Event, *, force: bool = False) -> None:
        try:
            self._inbox.put_nowait(ev)
        except asyncio.QueueFull:
            if force:
                self._inbox.get_nowait()
                self._inbox.put_nowait(ev)
            else:
                self.dropped_msgs += 1

    def _decode(self, peer: str, data: bytes, limit: int) -> m.Message | None:
        try:
            return m.decode(data, limit, self._chain.hash_new)
        except CitychainError as exc:
            self.bad_msgs += 1
            log.info("dropped a malformed consensus message from %s: %s", peer, exc.message)
            return None

    def _on_consensus_bytes(self, peer: str, data: bytes) -> None:
        msg = self._decode(peer, data, MAX_CONSENSUS_MSG)
        if msg is not None:
            self._post(_Event("msg", peer, msg))

    def _on_vote_bytes(self, peer: str, data: bytes) -> None:
        msg = self._decode(peer, data, MAX_VOTE_MSG)
        if msg is not None:
            self._post(_Event("msg", peer, msg))

    def _on_evidence_bytes(self, peer: str, data: bytes) -> None:
        msg = self._decode(peer, data, 16 * 1024)
        if isinstance(msg, m.EvidenceMsg) and self.evidence.add(msg.evidence):
            self._switch.broadcast(m.CH_EVIDENCE, data, exclude=peer)
            self.notify_txs()  # evidence to commit: an idle height starts too

    def _on_sync_bytes(self, peer: str, data: bytes) -> None:
        try:
            # A block a peer serves holds transactions our mempool may hold already (a node
            # catching up a few heights): those are reused, as for a proposal.
            msg = sm.decode(data, MAX_SYNC_MSG, self._chain.hash_new, self._mempool.get)
        except CitychainError as exc:
            self.bad_msgs += 1
            log.info("dropped a malformed sync message from %s: %s", peer, exc.message)
            return
        self.sync.on_message(peer, msg, self._clock())

    def _send_sync(self, peer: str, data: bytes) -> bool:
        return self._switch.send(peer, sm.CH_SYNC, data)

    def peer_connected(self, peer: str) -> None:
        self._send_sync(peer, sm.encode(sm.StatusRequest()))
        h = self._h
        if h is not None:
            self._switch.send(peer, m.CH_CONSENSUS, m.encode(self._round_state(h)))

    def peer_disconnected(self, peer: str) -> None:
        self.sync.peer_gone(peer)
        self.participation.peer_gone(peer)

    # == the loop =============================================================================

    async def _loop(self) -> None:
        while not self._stopping:
            ev = await self._inbox.get()
            if ev.kind == "stop":
                break
            try:
                if ev.kind == "msg":
                    await self._on_message(ev.peer, ev.payload)
                elif ev.kind == "timeout":
                    await self._feed(ev.payload)
                elif ev.kind == "sync_ready":
                    await self._apply_synced()
                elif ev.kind == "gossip":
                    self._ticks += 1
                    self._gossip(evidence=self._ticks % EVIDENCE_REGOSSIP_TICKS == 0)
                elif ev.kind == "next_height":
                    h = self._h
                    if h is None or h.decided:
                        await self._start_height(replay=True)
                elif ev.kind == "wake":
                    h = self._h
                    if h is not None and h.height == ev.payload:
                        await self._begin(h)
            except DoubleSignRefused as exc:
                log.error("refused to sign: %s", exc.message)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._exec, fn, *args)

    # == heights ==============================================================================

    def _proposer_schedule(self, validators: ValidatorSet) -> ProposerSchedule:
        if self._schedule is None or self._schedule[0] != validators.hash:
            self._schedule = (validators.hash, ProposerSchedule(validators, 1))
        return self._schedule[1]

    async def _start_height(self, *, replay: bool = False) -> None:
        chain = self._chain
        height = chain.height + 1
        validators = chain.validators(height)
        schedule = self._proposer_schedule(validators)
        self._timeouts = _timeouts(chain)  # governance may have changed them
        me = self.me if self.me is not None and self.me in validators else None
        machine = Machine(
            height, validators, me, self._timeouts, lambda r: schedule.proposer(height, r)
        )
        self._h = h = _Height(height, validators, machine, started_ms=self._clock())
        records = self._wal.records_for(height) if replay else []
        if records:
            await self._replay(records)
        elif not self._hold_if_idle(h):
            await self._act(machine.start())
        # Messages that arrived early for this height (a proposal or vote starts an idle one).
        votes, self._future_votes = self._future_votes, []
        props, self._future_proposals = self._future_proposals, []
        for v in votes:
            if v.height == height:
                await self._on_vote(v, "")
            elif v.height > height:
                self._future_votes.append(v)
        for peer, msg in props:
            await self._on_message(peer, msg)
        self._gossip()

    def _hold_if_idle(self, h: _Height) -> bool:
        """Hold back round 0 of a height with nothing to commit ("Idle heights"); True if
        held. Its empty block is due ``empty_blocks_interval_ms`` from now (or never)."""
        if (
            not self._empty.waits
            or self._chain.height == 0  # the first block shows the chain is live
            or self._mempool.has_executable()
            or self.evidence.pending(h.height, 1)
        ):
            return False
        h.idle = True
        h.empty_due_ms = self._empty.due_ms(h.started_ms)
        if h.empty_due_ms is not None:
            loop = asyncio.get_running_loop()
            wake = _Event("wake", payload=h.height)

            def fire() -> None:
                self._timers.discard(handle)
                self._post(wake, force=True)

            handle = loop.call_later(max(0, h.empty_due_ms - self._clock()) / 1000, fire)
            self._timers.add(handle)
        return True

    async def _begin(self, h: _Height) -> None:
        """Start round 0 of an idle height (transactions, its empty block, or a peer's
        proposal or vote for it); nothing if it already started."""
        if not h.idle or self._h is not h or h.decided:
            return
        h.idle = False
        await self._act(h.machine.start())

    # == feeding the machine ==================================================================

    def _wal_write(self, record: list[Any], *, sync: bool = False) -> None:
        h = self._h
        assert h is not None
        data = codec.encode_trusted(record)
        if sync:
            self._wal.write_sync(h.height, data)
        else:
            self._wal.write(h.height, data)

    async def _feed(self, inp: Input, *, log_it: bool = True) -> None:
        h = self._h
        if h is None or h.decided:
            return
        if log_it and isinstance(inp, TimeoutInput):
            if inp.height != h.height:
                return  # of an earlier height (the machine drops it): not in this height's WAL
            self._wal_write(["timeout", inp.height, inp.round, int(inp.step)])
        before = (h.machine.round, h.machine.step)
        actions = h.machine.handle(inp)
        await self._act(actions)
        if self._h is h and (h.machine.round, h.machine.step) != before and not self._replaying:
            self._switch.broadcast(m.CH_CONSENSUS, m.encode(self._round_state(h)))

    async def _act(self, actions: list[Action]) -> None:
        queue = deque(actions)
        while queue:
            a = queue.popleft()
            if self._replaying and not self._replay_keeps(a):
                continue
            if isinstance(a, ScheduleTimeout):
                self._schedule_timeout(a)
            elif isinstance(a, VoteAction):
                await self._cast_vote(a)
            elif isinstance(a, ProposeAction):
                await self._propose(a)
            elif isinstance(a, DecideAction):
                await self._decide(a)
                return  # the machine of this height is done
            elif isinstance(a, EquivocationAction):
                ev = DuplicateVoteEvidence.of(
                    self._chain.chain_id, a.vote_a, a.vote_b, hash_new=self._chain.hash_new
                )
                if self.evidence.add(ev):
                    self._switch.broadcast(m.CH_EVIDENCE, m.encode(m.EvidenceMsg(ev)))

    def _schedule_timeout(self, a: ScheduleTimeout) -> None:
        loop = asyncio.get_running_loop()
        inp = TimeoutInput(a.height, a.round, a.step)

        def fire() -> None:
            self._timers.discard(handle)
            self._post(_Event("timeout", "", inp), force=True)

        handle = loop.call_later(a.duration_ms / 1000, fire)
        self._timers.add(handle)

    # == our own messages =====================================================================

    def _sign(self, height: int, round_: int, step: SignStep, sign_bytes: bytes) -> bytes:
        assert self._privval is not None
        return self._privval.sign(height, round_, step, sign_bytes)

    async def _cast_vote(self, a: VoteAction) -> None:
        h = self._h
        if h is None or self.me is None:
            return
        chain_id = self._chain.chain_id
        unsigned = Vote(a.type, a.height, a.round, a.block_hash, self.me, b"")
        step = SignStep.PREVOTE if a.type == VoteType.PREVOTE else SignStep.PRECOMMIT
        try:
            sig = self._sign(a.height, a.round, step, unsigned.sign_bytes(chain_id))
        except DoubleSignRefused as exc:
            log.error("not voting: %s", exc.message)
            return
        vote = Vote(a.type, a.height, a.round, a.block_hash, self.me, sig)
        self._wal_write(["vote", vote.to_list(), True], sync=True)
        self._send_vote(vote)
        self._note_vote(h, vote)
        await self._feed(VoteInput(vote), log_it=False)

    def _send_vote(self, vote: Vote) -> None:
        """Send our vote, once it is in the WAL: to every peer."""
        self._switch.broadcast(m.CH_VOTES, m.encode(m.VoteMsg(vote)))

    # == messages from peers ==================================================================

    async def _on_message(self, peer: str, msg: m.Message) -> None:
        h = self._h
        if h is None:
            return
        if isinstance(msg, m.VoteMsg):
            vote = msg.vote
            if vote.height == h.height and not h.decided:
                await self._on_vote(vote, peer)
            elif vote.height <= h.height:
                # Late for a decided height (the commit is already stored): only counted.
                self._on_late_vote(vote)
            elif (
                h.height < vote.height <= h.height + 2
                and len(self._future_votes) < MAX_FUTURE_VOTES
            ):
                self._future_votes.append(vote)
        elif isinstance(msg, m.Proposal):
            await self._on_proposal(peer, msg)
        elif isinstance(msg, m.BlockPart):
            await self._on_part(peer, msg)
        elif isinstance(msg, m.RoundState):
            self._on_round_state(peer, msg)

    async def _on_vote(self, vote: Vote, peer: str) -> None:
        h = self._h
        assert h is not None
        if vote.validator not in h.validators:
            return
        if vote.round > h.machine.round + MAX_ROUND_AHEAD:
            return
        key = vote.sign_bytes(self._chain.chain_id) + vote.validator
        if key in h.votes_seen:
            return
        try:
            vote.verify(self._chain.suite, self._chain.chain_id)
        except CitychainError:
            self.bad_msgs += 1
            log.info("dropped %s from %s: bad signature", vote.describe(), peer or "buffer")
            return
        self.participation.heard(vote, self._clock())
        await self._begin(h)  # a vote of an idle height starts it, before it is logged
        self._note_vote(h, vote, key)
        self._wal_write(["vote", vote.to_list(), False])
        # Relay a vote new to us once, so every honest node sees every vote (and equivocations).
        self._switch.broadcast(m.CH_VOTES, m.encode(m.VoteMsg(vote)), exclude=peer or None)
        await self._feed(VoteInput(vote), log_it=False)

    def _on_late_vote(self, vote: Vote) -> None:
        """A precommit for the block just decided, arriving after the decision: counted for
        the diagnostics (who was merely late), never fed to the machine."""
        now = self._clock()
        if not self.participation.wants_late(vote, now):
            return
        try:
            vote.verify(self._chain.suite, self._chain.chain_id)
        except CitychainError:
            self.bad_msgs += 1
            return
        self.participation.late_precommit(vote, now)

    def _note_vote(self, h: _Height, vote: Vote, key: bytes | None = None) -> None:
        """Keep a vote of this height once (by what was signed and by whom, never by the
        signature bytes: pitfall 11)."""
        if key is None:
            key = vote.sign_bytes(self._chain.chain_id) + vote.validator
        if key not in h.votes_seen:
            h.votes_seen.add(key)
            h.votes.append(vote)

    # == deciding =============================================================================

    async def _decide(self, a: DecideAction) -> None:
        h = self._h
        if h is None or h.decided or a.height != h.height:
            return
        ps = self._proposal_for(a.block_hash)
        if ps is None or ps.block is None:
            log.error("decided block %s at %d is not at hand", a.block_hash.hex(), a.height)
            return
        h.decided = True
        pending = ps.pending
        if pending is None:
            pending = await self._run(self._chain.check_block, ps.block)
        commit = Commit(
            a.height,
            a.round,
            a.block_hash,
            tuple(CommitSig(v.validator, v.signature) for v in a.precommits),
        )
        await self._commit(pending, commit)
        self.last_commit_round = a.round
        signed = {s.validator for s in commit.signatures}
        self.last_commit_missing = [
            validator_name(v.name, v.public_key) for v in h.validators if v.public_key not in signed
        ]
        self.participation.committed(commit, h.validators, h.votes, self._clock())
        if self._replaying:
            return  # replay posts the next height when it is done
        # The next height starts block_interval_ms after this one started, or at once if this
        # one took longer ("Decision" above): the interval paces blocks, it never adds to a
        # height that was already slow.
        now = self._clock()
        self._next_height_ms = max(now, h.started_ms + self._chain.params.block_interval_ms)
        asyncio.get_running_loop().call_later(
            (self._next_height_ms - now) / 1000,
            lambda: self._post(_Event("next_height"), force=True),
        )

    async def _commit(self, pending: PendingBlock, commit: Commit) -> None:
        await self._run(self._chain.commit, pending, commit)
        self._wal.end_height(pending.block.height)
        self.evidence.committed(pending.block)
        self._on_commit(pending, commit)

    async def _apply_synced(self) -> None:
        """Apply blocks fetched by block sync, as many as are in order."""
        applied = False
        while True:
            h = self._h
            nxt = self._chain.height + 1
            got = self.sync.take(nxt)
            if got is None:
                break
            block, commit, peer = got
            try:
                self.sync.verify(block, commit)
                pending = await self._run(self._chain.check_block, block)
            except CitychainError as exc:
                self.sync.refused(nxt, peer, exc.message)
                continue
            if self._chain.height + 1 != nxt:
                continue
            if h is not None:
                h.decided = True
            await self._commit(pending, commit)
            self.participation.committed(commit, self._chain.validators(nxt), (), self._clock())
            self.sync.applied(nxt)
            applied = True
        if applied:
            log.info("block sync: now at height %d", self._chain.height)
            await self._start_height()
        self.sync.tick(self._clock())

    # == diagnostics ==========================================================================

    def validator_states(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        """Each validator of the deciding set as this node sees it (offline, lagging, ok;
        see :mod:`citychain.consensus.participation`); empty before consensus starts."""
        h = self._h
        if h is None:
            return []
        return self.participation.report(
            h.validators,
            self.me,
            set(self._switch.connected()),
            {p.name for p in self._switch.peers()},
            self._clock() if now_ms is None else now_ms,
        )

    def status(self) -> ConsensusStatus:
        h = self._h
        if h is None:
            return ConsensusStatus(
                "tendermint",
                self._chain.height + 1,
                0,
                "starting",
                "the node to start consensus (replaying its write-ahead log)",
            )
        st = h.machine.status()
        names = {v.public_key: validator_name(v.name, v.public_key) for v in h.validators}
        now = self._clock()

        def votes(d: dict[bytes, bytes]) -> dict[str, str | None]:
            return {names.get(k, k.hex()[:16]): (v.hex() or None) for k, v in sorted(d.items())}

        waiting = st.waiting_for
        for key, name in names.items():  # the machine names keys by hex prefix; people by name
            waiting = waiting.replace(short_key(key), name)
        if h.decided and st.step == Step.DECIDED:
            left_ms = self._next_height_ms - now
            waiting = f"block {h.height} committed; starting height {h.height + 1}" + (
                f" in {left_ms / 1000:.1f} s" if left_ms >= 50 else " now"
            )
        if h.idle:  # round 0 held back: nothing to commit ("Idle heights")
            waiting = EmptyBlocks.describe_idle(now, h.empty_due_ms)
        if self.sync.behind:
            waiting = (
                f"block sync: at height {self._chain.height}, peers are at height "
                f"{self.sync.best_peer_height}"
            )
        details: dict[str, Any] = {
            "proposer": names.get(st.proposer, st.proposer.hex()[:16]),
            "proposal": st.proposal.hex() if st.proposal else None,
            "locked_round": st.locked_round,
            "valid_round": st.valid_round,
            "prevotes": votes(st.prevotes),
            "precommits": votes(st.precommits),
            "prevote_power": st.prevote_power,
            "precommit_power": st.precommit_power,
            "total_power": st.total_power,
            "quorum_power": st.quorum,
            "validator": self.me.hex() if self.me is not None else None,
            "peers": sorted(self._switch.connected()),
            "sync": self.sync.status(),
            "evidence_pending": len(self.evidence),
            "last_commit_round": self.last_commit_round,
            # Not in the stored commit: see last_commit and validators for why (often merely
            # late: a commit holds the first precommits past 2/3).
            "last_commit_missing": self.last_commit_missing,
            "last_commit": self.participation.last_commit(),
            "validators": self.validator_states(now),
            "dropped_messages": self.dropped_msgs,
            "bad_messages": self.bad_msgs,
            "mempool_txs": self._mempool.size,
        }
        return ConsensusStatus(
            "tendermint", h.height, st.round, Step(st.step).name.lower(), waiting, details
        )
