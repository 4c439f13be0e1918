"""The Tendermint engine on its own (``consensus/tendermint.py`` and its parts): four engines in
one asyncio loop over the in-memory network of ``test_idle_heights`` (no sockets), on real
chains (RocksDB), WALs and signers.

* proposal, prevotes, precommits, commit: every node stores the same blocks, each with a
  commit of 2/3+ precommits, and a transaction sent to one node is in the chain of all;
* WAL replay: a validator killed after it prevoted (no quorum yet) comes back with that vote
  from its WAL, signs nothing new for it, and the height then decides with it;
* catch-up gossip: a peer at our height whose round state lacks votes is sent exactly the
  votes it lacks, and nothing once it has them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import cast

from test_idle_heights import (  # type: ignore[import-not-found]
    TmNode,
    block,
    start,
    stop,
    tm_nodes,
    transfer,
    until,
)

from citychain import codec
from citychain.chain import Chain
from citychain.consensus import messages as m
from citychain.consensus.interface import EmptyBlocks
from citychain.consensus.privval import PrivValidator
from citychain.consensus.tendermint import TendermintEngine
from citychain.consensus.wal import WAL
from citychain.crypto import ED25519, Signer
from citychain.execution import default_registry
from citychain.p2p import Switch
from citychain.types import Vote, VoteType

ALWAYS = EmptyBlocks(True, 0)  # never idle: every height starts at once


def own_votes(n: TmNode, height: int) -> list[Vote]:
    """The votes ``n`` signed itself at ``height``, as its WAL holds them."""
    recs = [codec.decode(r) for r in n.wal.records_for(height)]
    return [Vote.from_list(r[1]) for r in recs if r[0] == "vote" and r[2]]


def test_four_engines_commit_the_same_blocks_with_two_thirds_precommits(tmp_path: Path) -> None:
    nodes, g = tm_nodes(tmp_path, [ALWAYS] * 4)
    tx = transfer(0)

    async def main() -> None:
        await start(nodes)
        try:
            assert nodes[2].mempool.add([tx.encode()])[0].ok
            # on_commit runs once the block is stored: count what it was told.
            await until("height 4 everywhere", lambda: all(len(n.commits) >= 4 for n in nodes))
            await until(
                "the transaction committed everywhere",
                lambda: all(n.mempool.size == 0 for n in nodes),
            )
            top = min(len(n.commits) for n in nodes)
            power = {v.public_key: v.power for v in g.validators}
            total = sum(power.values())
            included: set[bytes] = set()
            for h in range(1, top + 1):
                hashes = {block(n.chain, h).hash for n in nodes}
                assert len(hashes) == 1, f"height {h}: nodes disagree"
                for n in nodes:
                    c = n.commits[h - 1]
                    assert c.height == h and c.block_hash in hashes
                    signed = sum(power[s.validator] for s in c.signatures)
                    assert 3 * signed > 2 * total, (h, signed, total)
                included |= {t.hash for t in block(nodes[0].chain, h).txs}
            assert tx.hash in included
        finally:
            await stop(nodes)

    asyncio.run(main())


def test_a_validator_killed_after_prevoting_replays_its_vote_from_the_wal(tmp_path: Path) -> None:
    nodes, g = tm_nodes(tmp_path, [ALWAYS] * 4)
    v0 = nodes[0]

    async def main() -> None:
        # Only v0 and v1 run: 20 of 40 power, no quorum, so height 1 stays open.
        await start(nodes[:2])
        await until("v0 prevoted at height 1", lambda: len(own_votes(v0, 1)) == 1)
        before = own_votes(v0, 1)
        assert before[0].type == VoteType.PREVOTE
        # The crash: the task dies mid-height, nothing is stopped cleanly.
        assert v0.task is not None
        v0.task.cancel()
        await asyncio.gather(v0.task, return_exceptions=True)
        switch = v0.engine._switch
        v0.wal.close()
        v0.chain.close()

        home = tmp_path / v0.name
        chain = Chain.open(home / "data", g, default_registry())
        wal = WAL.open(home / "wal")
        signer = Signer(ED25519, bytes([1]) * 32)
        engine = TendermintEngine(
            chain,
            v0.mempool,
            PrivValidator(signer, home / "privval.json"),
            cast(Switch, switch),
            wal,
            lambda pending, commit: v0.commits.append(commit),
            empty_blocks=ALWAYS,
        )
        nodes[0] = v0r = TmNode(v0.name, chain, v0.mempool, wal, engine, v0.commits)
        v0r.task = asyncio.create_task(engine.run())
        # Replay gives the machine back the vote it sent before the crash.
        name = g.validators[0].name

        def replayed() -> bool:
            st = engine.status()
            return st.height == 1 and name in st.details.get("prevotes", {})

        await until("the prevote replayed", replayed)
        assert engine.status().details["prevotes"][name] == (before[0].block_hash.hex() or None)
        # Then v2 and v3 come: height 1 decides, and v0 never signed another prevote.
        rest = nodes[2:]
        for n in rest:
            n.task = asyncio.create_task(n.engine.run())
        await asyncio.sleep(0)
        for n in nodes:
            for p in nodes:
                if p is not n:
                    n.engine.peer_connected(p.name)
        try:
            await until("height 1 everywhere", lambda: all(n.chain.height >= 1 for n in nodes))
            prevotes_r0 = [
                v for v in own_votes(v0r, 1) if v.type == VoteType.PREVOTE and v.round == 0
            ]
            assert prevotes_r0 == before
            assert len({block(n.chain, 1).hash for n in nodes}) == 1
        finally:
            await stop(nodes)

    asyncio.run(main())


def test_catch_up_gossip_sends_a_lagging_peer_exactly_the_votes_it_lacks(tmp_path: Path) -> None:
    nodes, g = tm_nodes(tmp_path, [ALWAYS] * 4)
    got: list[tuple[str, m.Message]] = []
    # v3 is a peer that runs no engine: what v0 sends it is recorded.
    v3 = nodes[3].engine._switch
    recorder: Callable[[int], Callable[[str, bytes], None]] = lambda ch: (  # noqa: E731
        lambda peer, data: got.append((peer, m.decode(data, 1 << 24)))
    )
    v3.handlers = {ch: recorder(ch) for ch in v3.handlers}

    async def main() -> None:
        await start(nodes[:2])  # no quorum: height 1 keeps its prevotes
        try:
            await until("v0 holds both prevotes", lambda: len(nodes[0].engine._h.votes) == 2)
            await asyncio.sleep(0.05)
            held: list[Vote] = list(nodes[0].engine._h.votes)
            got.clear()
            # v3 says: at height 1, round 0, holding no votes.
            nodes[0].engine._on_consensus_bytes("v3", m.encode(m.RoundState(1, 0, 1, (), ())))
            await until(
                "the votes sent to v3",
                lambda: len([x for x in got if isinstance(x[1], m.VoteMsg)]) >= 2,
            )
            await asyncio.sleep(0.05)
            sent = [x[1].vote for x in got if x[0] == "v0" and isinstance(x[1], m.VoteMsg)]
            assert sorted(v.validator for v in sent) == sorted(v.validator for v in held)
            # Once v3 reports them, v0 sends none again.
            index = {v.public_key: i for i, v in enumerate(g.validators)}
            mask = sum(1 << index[v.validator] for v in held)
            got.clear()
            rs = m.RoundState(1, 0, 1, (), ((0, int(VoteType.PREVOTE), mask),))
            nodes[0].engine._on_consensus_bytes("v3", m.encode(rs))
            await asyncio.sleep(0.2)
            assert not [x for x in got if x[0] == "v0" and isinstance(x[1], m.VoteMsg)]
        finally:
            await stop(nodes[:2])
            for n in nodes[2:]:
                n.wal.close()
                n.chain.close()

    asyncio.run(main())
