"""Many machines in the deterministic simulator (sim.py): agreement, validity, liveness, Twins.

* AGREEMENT: no two honest nodes decide different values at a height, whatever the delivery
  order, drops, duplicates, delays and per-round partitions before GST.
* VALIDITY: a decided value was proposed by some node and is valid.
* LIVENESS after GST: once the network is synchronous and connected, every honest node decides
  every height within a bounded number of rounds past the rounds reached before GST.
* Twins (research notes 2.2): a validator run twice with one key, each copy in another
  partition, equivocates on proposals and votes. With under 1/3 of the power it cannot break
  agreement; with more it can, and the harness sees the fork and the evidence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from sim import CHAIN_ID, Net, Sim, sim_signer

from citychain.crypto import ED25519
from citychain.types import DuplicateVoteEvidence

HEIGHTS = 3


@dataclass(frozen=True)
class Scenario:
    powers: tuple[int, ...]
    seed: int
    net: Net
    twins: tuple[int, ...]
    silent: tuple[int, ...]
    bad_blocks: tuple[int, ...]

    def run(self) -> Sim:
        return Sim(
            self.powers,
            seed=self.seed,
            net=self.net,
            twins=self.twins,
            silent=self.silent,
            bad_blocks=self.bad_blocks,
            heights=HEIGHTS,
        ).run()


@st.composite
def scenarios(draw: st.DrawFn, *, twin: bool) -> Scenario:
    n = draw(st.integers(4, 6))
    powers = tuple(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)))
    total = sum(powers)
    order = draw(st.permutations(range(n)))
    # faulty validators (silent, or twinned) hold less than a third of the power
    faulty: list[int] = []
    for i in order:
        if 3 * (sum(powers[j] for j in faulty) + powers[i]) < total and draw(st.booleans()):
            faulty.append(i)
    twins = tuple(faulty[:1]) if twin else ()
    if twin and not twins:  # make room for one twin: the least powerful validator, if allowed
        least = min(range(n), key=lambda i: powers[i])
        twins = (least,) if 3 * powers[least] < total else ()
    silent = tuple(i for i in faulty if i not in twins)
    bad_blocks = tuple(draw(st.lists(st.sampled_from(range(n)), max_size=1)))
    nodes = n + len(twins)
    partitions: dict[tuple[int, int], list[list[int]]] = {}
    for h in range(1, HEIGHTS + 1):
        for r in range(5):
            groups = draw(st.none() | st.lists(st.integers(0, 2), min_size=nodes, max_size=nodes))
            if groups is None:
                continue
            if twins and groups[twins[0]] == groups[n]:  # each twin in another partition
                groups[n] = (groups[n] + 1) % 3
            partitions[(h, r)] = [[i for i in range(nodes) if groups[i] == g] for g in range(3)]
    # one-way faults for single steps: lock scenarios need "A hears B, B does not hear A"
    kinds = st.sampled_from(["proposal", "prevote", "precommit"])
    cuts: dict[tuple[int, int, str], set[tuple[int, int]]] = {}
    links = st.tuples(st.integers(0, nodes - 1), st.integers(0, nodes - 1))
    for r, kind, pairs in draw(
        st.lists(st.tuples(st.integers(0, 3), kinds, st.sets(links, max_size=12)), max_size=6)
    ):
        cuts.setdefault((1, r, kind), set()).update(pairs)
    net = Net(
        cuts=cuts,
        drop_permille=draw(st.integers(0, 400)),
        dup_permille=draw(st.integers(0, 200)),
        max_delay_ms=draw(st.integers(1, 500)),
        gst_ms=draw(st.integers(0, 5000)),
        delta_ms=20,
        partitions=partitions,
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return Scenario(powers, seed, net, twins, silent, bad_blocks)


def check_safety_and_liveness(sim: Sim) -> None:
    assert sim.disagreements() == {}, "AGREEMENT violated"
    assert sim.invalid_decisions() == [], "VALIDITY violated"
    assert sim.done(), "LIVENESS: some honest node did not decide every height after GST"
    # one period of the proposer schedule holds every proposer; a few more rounds re-sync
    assert sim.rounds_after_gst() <= sim.schedule.period + 2, "LIVENESS: too many rounds"


@settings(max_examples=60, deadline=None)
@given(scenarios(twin=False))
def test_agreement_validity_and_liveness_after_gst(scenario: Scenario) -> None:
    check_safety_and_liveness(scenario.run())


@settings(max_examples=60, deadline=None)
@given(scenarios(twin=True))
def test_twins_under_a_third_never_break_agreement(scenario: Scenario) -> None:
    sim = scenario.run()
    check_safety_and_liveness(sim)
    for a, b in sim.evidence():  # whatever the twins did, the evidence is valid evidence
        DuplicateVoteEvidence.of(CHAIN_ID, a, b).verify(ED25519, CHAIN_ID, sim.validators)


def lock_scenario(seed: int) -> Sim:
    """The scenario that locks exist for, with one twin T (the round-0 proposer):

    round 0: T shows v to A and B (its twin's w reaches nobody, C gets no proposal); A, B, T
    prevote v, so A and B lock on v and precommit it. A receives B's and T's precommits and
    decides v; B and C never see A's or T's precommit before GST.
    round 1: A and T are cut off. C proposes w to B and the twin T'. Locked on v, B must prevote
    nil; if it prevoted w, B, C and T' would hold 3 of 4 and decide w: a fork.
    """
    keys = [sim_signer(seed, i).public_key for i in range(4)]
    t, c, a, b = sorted(range(4), key=lambda i: keys[i])  # equal powers: proposer(1, r) = r-th
    t2 = 4  # the twin's second copy
    everyone = range(5)
    cuts = {
        (1, 0, "proposal"): {(t, c)} | {(t2, x) for x in everyone},
        (1, 0, "precommit"): {(a, b), (t, b), (a, c), (t, c), (a, t2), (t, t2)},
        (1, 1, "proposal"): {(x, y) for x in (a, t) for y in everyone} | {(c, a), (c, t)},
        (1, 1, "prevote"): {(x, y) for x in (a, t) for y in everyone},
        (1, 1, "precommit"): {(x, y) for x in (a, t) for y in everyone},
    }
    net = Net(gst_ms=5000, max_delay_ms=10, cuts=cuts)
    return Sim([1, 1, 1, 1], seed=seed, twins=[t], net=net).run()


def test_twins_lock_scenario_keeps_agreement() -> None:
    """Without the lock of lines 36-41 (or its check in line 23) this forks; with it, the
    honest nodes all end on v (after GST, by line 49 or a re-proposal of validValue)."""
    for seed in range(3):
        sim = lock_scenario(seed)
        check_safety_and_liveness(sim)
        a_decided = {n.decisions[1] for n in sim.honest_nodes() if n.commit_round[1] == 0}
        assert a_decided  # somebody did decide in round 0 ...
        assert {n.decisions[1] for n in sim.honest_nodes()} == a_decided  # ... and all agree
        assert sim.evidence()  # the twin was caught after GST


@st.composite
def one_way_twins(draw: st.DrawFn) -> Sim:
    """n = 4 with one twin; random one-way cuts per (round, step) of height 1, no other faults.
    Removing the lock makes about 1 run in 120 of these fork."""
    cut_seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(cut_seed)
    cuts: dict[tuple[int, int, str], set[tuple[int, int]]] = {}
    for r in range(3):
        for kind in ("proposal", "prevote", "precommit"):
            if rng.randrange(10) < 6:
                pairs = {(x, y) for x in range(5) for y in range(5) if rng.randrange(100) < 35}
                cuts[(1, r, kind)] = pairs
    net = Net(
        gst_ms=draw(st.integers(1000, 5000)), max_delay_ms=draw(st.integers(1, 100)), cuts=cuts
    )
    return Sim([1, 1, 1, 1], seed=draw(st.integers(0, 6)), twins=[draw(st.integers(0, 3))], net=net)


@settings(max_examples=400, deadline=None)
@given(one_way_twins())
def test_twins_with_one_way_faults_never_break_agreement(sim: Sim) -> None:
    check_safety_and_liveness(sim.run())


def test_twins_over_a_third_can_fork_and_the_harness_sees_it() -> None:
    """Two of four validators twinned (1/2 of the power): each half of the network, with one
    honest node and one copy of each twin, holds 3/4 of the power and decides on its own."""
    forked = 0
    evidence = 0
    for seed in range(6):
        net = Net(gst_ms=3000, default_groups=[[0, 2, 3], [1, 4, 5]], max_delay_ms=50)
        sim = Sim([1, 1, 1, 1], seed=seed, twins=[2, 3], net=net)
        sim.run(until_ms=6000, stop_when_done=False)
        if sim.disagreements():
            forked += 1
            assert 1 in sim.disagreements()
        for a, b in sim.evidence():  # after GST the honest nodes see both halves' votes
            DuplicateVoteEvidence.of(CHAIN_ID, a, b).verify(ED25519, CHAIN_ID, sim.validators)
            evidence += 1
    assert forked >= 1
    assert evidence >= 1


def test_one_twin_in_a_split_network_is_caught_but_harmless() -> None:
    """The f = 1 Twins scenario with a fixed split: the twin equivocates, the honest nodes
    report it, and they agree."""
    seen = 0
    for seed in range(6):
        net = Net(gst_ms=2000, default_groups=[[0, 1, 3], [2, 4]], max_delay_ms=50)
        sim = Sim([1, 1, 1, 1], seed=seed, twins=[3], net=net, heights=2).run()
        check_safety_and_liveness(sim)
        seen += len(sim.evidence())
    assert seen >= 1


def test_several_heights_on_a_good_network_decide_in_round_0() -> None:
    sim = Sim([1, 2, 3, 4], seed=7, heights=6, net=Net(max_delay_ms=40)).run()
    check_safety_and_liveness(sim)
    first = sim.nodes[0]
    for node in sim.nodes:
        assert node.decisions == first.decisions
        assert set(node.commit_round.values()) == {0}
    key_of = {n.index: n.key for n in sim.nodes}
    for h, block in first.decisions.items():  # the proposer rotates with the schedule
        assert key_of[sim.proposed_by[block]] == sim.schedule.proposer(h, 0)


def test_a_crashed_validator_and_a_bad_block_builder_do_not_stop_the_chain() -> None:
    net = Net(drop_permille=100, max_delay_ms=150, gst_ms=1500)
    sim = Sim([1, 1, 1, 1], seed=3, silent=[0], bad_blocks=[1], heights=4, net=net).run()
    check_safety_and_liveness(sim)
    for node in sim.honest_nodes():
        assert all(sim.proposed_by[v] != 1 for v in node.decisions.values())


def test_the_simulator_is_deterministic() -> None:
    def trace(seed: int) -> list[tuple[int, int, str]]:
        net = Net(drop_permille=200, dup_permille=100, max_delay_ms=300, gst_ms=2000)
        return Sim([1, 1, 2, 3], seed=seed, twins=[0], net=net, heights=2).run().trace

    assert trace(11) == trace(11)
    assert trace(11) != trace(12)
