"""A double-signing validator, for tests only: :class:`DoubleSigningEngine` and the entry point
that runs a node with it as a real process (``python tests/e2e/byzantine.py --home HOME``).

The engine signs with its raw key, bypassing the signer's guard
(:class:`~citychain.consensus.privval.PrivValidator`), proposes two different blocks to the two
halves of its peers and sends each half a different vote: in a round it proposed in, each half
a vote for the block that half was proposed; else its own vote to one half and a conflicting
one (nil, or a made-up hash for a nil vote) to the other. Honest nodes must still agree, and
commit the evidence. Production code knows nothing of this: the node is given the engine
through ``Node(..., tendermint=...)``, and node.toml has no key for it.

:func:`start_as_double_signer` makes :class:`netproc.LocalNet` start one node through this entry
point instead of ``citychain start``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from citychain.api.server import bind_api, serve
from citychain.chain import PendingBlock
from citychain.consensus import messages as m
from citychain.consensus.machine import ProposeAction
from citychain.consensus.privval import SignStep
from citychain.consensus.tendermint import TendermintEngine
from citychain.crypto import Signer
from citychain.node import Node, processes
from citychain.node.config import NodeConfig
from citychain.node.home import remove_pid_file, write_pid_file
from citychain.node.node import load_validator_key
from citychain.types import NIL, Vote

log = logging.getLogger("citychain.node.node")


class DoubleSigningEngine(TendermintEngine):
    """A :class:`TendermintEngine` that double-signs on purpose (see the module docstring)."""

    def __init__(self, *args: Any, raw_signer: Signer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._raw_signer = raw_signer
        #: (height, round) -> the second block proposed to the odd half.
        self._byz_blocks: dict[tuple[int, int], bytes] = {}

    def _sign(self, height: int, round_: int, step: SignStep, sign_bytes: bytes) -> bytes:
        return self._raw_signer.sign(sign_bytes)

    def _send_vote(self, vote: Vote) -> None:
        """Half the peers get ``vote``, the other half a conflicting one: for the second block
        we proposed to that half in this round, if any, else nil (or, for a nil ``vote``, a
        made-up block hash)."""
        second = self._byz_blocks.get((vote.height, vote.round))
        if second is not None and second != vote.block_hash:
            other_hash = second
        else:
            other_hash = NIL if not vote.is_nil else bytes(32)
        other = Vote(vote.type, vote.height, vote.round, other_hash, vote.validator, b"")
        other = Vote(
            other.type,
            other.height,
            other.round,
            other.block_hash,
            other.validator,
            self._raw_signer.sign(other.sign_bytes(self._chain.chain_id)),
        )
        peers = sorted(self._switch.connected())
        for i, p in enumerate(peers):
            self._switch.send(p, m.CH_VOTES, m.encode(m.VoteMsg(vote if i % 2 == 0 else other)))

    async def _before_proposal(self, h: Any, a: ProposeAction) -> None:
        # Before the first proposal is fed: our votes of this round name both blocks.
        if a.value is None:
            await self._second_proposal(h, a.round)

    async def _second_proposal(self, h: Any, round_: int) -> None:
        """A second, different block for the same round to the odd half of the peers."""
        txs = self._mempool.reap(1, self._chain.params.block_max_bytes, 10**12)
        other: PendingBlock = await self._run(
            self._chain.build_block, txs[:0], self._clock() + 1, self.me or b""
        )
        if self._h is not h or h.decided:
            return
        self._byz_blocks = {k: v for k, v in self._byz_blocks.items() if k[0] == h.height}
        self._byz_blocks[(h.height, round_)] = other.block.hash
        ps = await self._send_proposal(h, round_, -1, other, feed=False)
        peers = sorted(self._switch.connected())
        for p in peers[1::2]:
            self._send_proposal_to(p, ps)

    def _send_own_proposal(self, ps: Any) -> None:
        """The first block goes to the even half of the peers only."""
        peers = sorted(self._switch.connected())
        for p in peers[0::2]:
            self._send_proposal_to(p, ps)


def command(home: Path) -> list[str]:
    """The command that runs the node of ``home`` as a double signer."""
    return [sys.executable, str(Path(__file__).resolve()), "--home", str(home.resolve())]


def start_as_double_signer(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """From now on, starting the node of ``home`` (``LocalNet.start``) runs this module's entry
    point instead of ``citychain start``; other nodes start as usual."""
    usual = processes.node_command
    target = home.resolve()

    def node_command(h: Path) -> list[str]:
        return command(h) if h.resolve() == target else usual(h)

    monkeypatch.setattr(processes, "node_command", node_command)


def main(home: Path) -> None:
    """What ``citychain start --home HOME`` does (api/server.run_node), with the engine
    replaced by :class:`DoubleSigningEngine`."""
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = NodeConfig.load(home)
    signer = load_validator_key(config)
    log.warning("BYZANTINE TEST MODE (double_sign): this node misbehaves on purpose")
    sock = bind_api(config.api.host, config.api.port)
    try:
        node = Node(
            config,
            signer=signer,
            tendermint=functools.partial(DoubleSigningEngine, raw_signer=signer),
        )
        try:
            write_pid_file(home)
            try:
                asyncio.run(serve(node, sock=sock, max_body_bytes=config.api.max_body_bytes))
            finally:
                remove_pid_file(home)
        finally:
            node.close()
    finally:
        sock.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) != 2 or args[0] != "--home":
        sys.exit("usage: byzantine.py --home HOME")
    main(Path(args[1]))
