"""The light client's rule and bisection, on synthetic chains with real Ed25519 commits.

No network: a :class:`SynthChain` answers the light client's fetches from a schedule of
validator sets, signing each header's commit (``vote_signing_bytes``, as the node does) with
the keys of the set in force at that height. Property tests (hypothesis) check the rule against
an independent count of the powers, that bisection follows every change a sequence of
verifiable steps makes, and that a forged set is never accepted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode, InsufficientTrust, ProofError
from citychain.sdk import (
    TRUST_LEVEL,
    Fetch,
    LightBlock,
    LightClient,
    verify_skipping,
)
from citychain.sdk._light import Answer, exceeds, signed_power
from citychain.types import (
    Commit,
    CommitSig,
    Header,
    Validator,
    ValidatorSet,
    VoteType,
    vote_signing_bytes,
)

CHAIN = "light-test"
POOL = [Signer(ED25519, hashlib.sha256(b"light-pool-%d" % i).digest()) for i in range(10)]
IMPOSTORS = [Signer(ED25519, hashlib.sha256(b"light-impostor-%d" % i).digest()) for i in range(4)]
KEYS = {s.public_key: s for s in POOL + IMPOSTORS}
Members = Mapping[int, int]  # pool index -> power


def vset(members: Members, pool: Sequence[Signer] = POOL) -> ValidatorSet:
    return ValidatorSet(Validator(pool[i].public_key, p, f"v{i}") for i, p in members.items())


def header(
    height: int,
    vs: ValidatorSet,
    chain_id: str = CHAIN,
    salt: bytes = b"",
    prev_hash: bytes | None = None,
) -> Header:
    digest = hashlib.sha256(b"root-%d" % height + salt).digest()
    return Header(
        chain_id=chain_id,
        height=height,
        time=1_767_225_600_000 + 1000 * height,
        prev_hash=prev_hash if prev_hash is not None else bytes(32),
        tx_root=digest,
        results_root=digest,
        state_root=digest,
        validators_hash=vs.hash,
        proposer=vs.validators[0].public_key,
    )


def sign(h: Header, signers: Iterable[Signer], round_: int = 0) -> Commit:
    msg = vote_signing_bytes(h.chain_id, VoteType.PRECOMMIT, h.height, round_, h.hash)
    return Commit(
        h.height, round_, h.hash, tuple(CommitSig(s.public_key, s.sign(msg)) for s in signers)
    )


def block(
    height: int,
    vs: ValidatorSet,
    signers: Iterable[Signer] | None = None,
    prev_hash: bytes | None = None,
) -> LightBlock:
    h = header(height, vs, prev_hash=prev_hash)
    chosen = [KEYS[v.public_key] for v in vs] if signers is None else list(signers)
    return LightBlock(h, sign(h, chosen), vs)


class SynthChain:
    """Heights 1..top; ``schedule`` lists (from_height, members), the first from height 1.
    Every block is signed by every member of its set and names its predecessor's hash.
    ``fetches`` records what was asked; ``forged`` replaces answers (a lying node)."""

    def __init__(self, schedule: Sequence[tuple[int, Members]], top: int) -> None:
        assert schedule[0][0] == 1
        self.schedule = [(h, vset(m)) for h, m in schedule]
        self.top = top
        self.fetches: list[Fetch] = []
        self._blocks: dict[int, LightBlock] = {}
        #: Heights whose answers are replaced (a lying node).
        self.forged: dict[int, LightBlock] = {}

    def set_at(self, height: int) -> ValidatorSet:
        return [vs for h, vs in self.schedule if h <= height][-1]

    def genuine(self, height: int) -> LightBlock:
        for h in range(len(self._blocks) + 1, height + 1):
            prev = self._blocks[h - 1].header.hash if h > 1 else bytes(32)
            self._blocks[h] = block(h, self.set_at(h), prev_hash=prev)
        return self._blocks[height]

    def block(self, height: int) -> LightBlock:
        return self.forged[height] if height in self.forged else self.genuine(height)

    def fetch(self, need: Fetch) -> Answer:
        assert 1 <= need.height <= self.top, need
        self.fetches.append(need)
        b = self.block(need.height)
        return b if need.block else b.validators

    def verify(self, light: LightClient, height: int) -> ValidatorSet:
        b = self.block(height)
        return light.verify_with(b.header, b.commit, self.fetch)


def light_for(chain: SynthChain, height: int = 1, with_header: bool = True) -> LightClient:
    """A light client anchored at ``height`` (with that verified header, unless told not)."""
    h = chain.genuine(height).header if with_header else None
    return LightClient(ED25519, CHAIN, chain.set_at(height), height, header=h)


# -- the rule -------------------------------------------------------------------------------------


def test_a_new_set_signed_by_enough_of_the_trusted_one_is_accepted() -> None:
    trusted = vset({0: 10, 1: 10, 2: 10})
    verify_skipping(ED25519, CHAIN, trusted, block(5, vset({1: 10, 2: 10, 3: 10})))


def test_exactly_the_trust_level_is_not_enough() -> None:
    trusted = vset({0: 10, 1: 10, 2: 10})
    new = vset({2: 10, 3: 10, 4: 10})  # only v2 of the trusted set signs: exactly 1/3
    with pytest.raises(InsufficientTrust) as info:
        verify_skipping(ED25519, CHAIN, trusted, block(5, new))
    assert (info.value.signed_power, info.value.total_power) == (10, 30)
    assert info.value.code == ErrorCode.BAD_PROOF
    assert "only 10 of the 30 power of the trusted set" in info.value.message


def test_the_new_set_needs_more_than_two_thirds() -> None:
    trusted = vset({0: 10, 1: 10, 2: 10})
    b = block(5, trusted, [POOL[0], POOL[1]])  # 20 of 30
    with pytest.raises(ProofError, match=r"header 5 is not final: commit has 20 of 30 power"):
        verify_skipping(ED25519, CHAIN, trusted, b)


def test_a_set_that_does_not_hash_to_the_header_is_refused() -> None:
    b = block(5, vset({0: 10}))
    lying = LightBlock(b.header, b.commit, vset({0: 11}))
    with pytest.raises(ProofError, match=r"header 5 names validator set .* hashes to"):
        verify_skipping(ED25519, CHAIN, vset({0: 10}), lying)


def test_another_chains_header_is_refused() -> None:
    vs = vset({0: 10})
    h = header(5, vs, chain_id="elsewhere")
    with pytest.raises(ProofError, match="is for chain 'elsewhere'"):
        verify_skipping(ED25519, CHAIN, vs, LightBlock(h, sign(h, [POOL[0]]), vs))


def test_a_bad_signature_is_refused_not_bisected() -> None:
    b = block(5, vset({1: 10, 2: 10}))
    sigs = list(b.commit.signatures)
    sigs[0] = CommitSig(sigs[0].validator, bytes(64))
    forged = LightBlock(b.header, Commit(5, 0, b.header.hash, tuple(sigs)), b.validators)
    with pytest.raises(ProofError, match="signature does not verify"):
        verify_skipping(ED25519, CHAIN, vset({0: 10, 1: 10}), forged)


def test_the_trust_level_cannot_be_below_a_third() -> None:
    with pytest.raises(ValueError, match="trust level"):
        LightClient(ED25519, CHAIN, vset({0: 1}), trust_level=Fraction(1, 4))


# -- the light client -----------------------------------------------------------------------------


def test_a_header_naming_the_trusted_set_needs_no_fetch() -> None:
    chain = SynthChain([(1, {0: 10, 1: 10})], top=20)
    light = light_for(chain)
    assert chain.verify(light, 20).hash == chain.set_at(1).hash
    assert chain.fetches == []
    assert [(t.low, t.high) for t in light.trusted] == [(1, 20)]


def test_a_change_is_followed_and_old_heights_still_verify() -> None:
    chain = SynthChain([(1, {0: 10, 1: 10, 2: 10}), (8, {0: 10, 1: 10, 2: 10, 3: 10})], top=20)
    light = light_for(chain)
    assert chain.verify(light, 15).hash == chain.set_at(15).hash
    assert chain.fetches == [Fetch(15, block=False)]  # one step: only the new set was needed
    assert light.latest.hash == chain.set_at(15).hash
    chain.fetches.clear()
    assert chain.verify(light, 3).hash == chain.set_at(1).hash  # an old height, against its own set
    assert chain.verify(light, 20).hash == chain.set_at(20).hash
    assert chain.fetches == []
    assert [(t.low, t.high) for t in light.trusted] == [(1, 3), (15, 20)]


def test_a_large_change_is_bridged_by_bisection() -> None:
    # Every step keeps 2 of 3 validators; from height 1 to 40 nothing of the first set remains.
    schedule = [
        (1, {0: 10, 1: 10, 2: 10}),
        (10, {1: 10, 2: 10, 3: 10}),
        (20, {2: 10, 3: 10, 4: 10}),
        (30, {3: 10, 4: 10, 5: 10}),
    ]
    chain = SynthChain(schedule, top=40)
    light = light_for(chain)
    assert chain.verify(light, 40).hash == chain.set_at(40).hash
    pivots = [f.height for f in chain.fetches if f.block]
    assert pivots and all(1 < p < 40 for p in pivots)
    assert {t.hash for t in light.trusted} == {vs.hash for _, vs in chain.schedule}
    for t in light.trusted:  # what it learnt is the real history
        assert chain.set_at(t.low).hash == t.hash == chain.set_at(t.high).hash


def test_headers_below_the_anchor_are_verified_backwards() -> None:
    schedule = [(1, {0: 10, 1: 10, 2: 10}), (10, {1: 10, 2: 10, 3: 10}), (20, {2: 10, 3: 10})]
    chain = SynthChain(schedule, top=30)
    light = light_for(chain, 30)  # trusted on first use at 30
    assert chain.verify(light, 2).hash == chain.set_at(2).hash
    assert light.trusted[0].low == 2


def test_a_large_change_below_a_verified_header_is_bridged_by_its_hash_link() -> None:
    # Adding a validator with 100 of 110 is easy forward (v0 signs both) but not backwards: the
    # set trusted above holds 10 of 110 in header 10. Header 11 names header 10 as its parent.
    chain = SynthChain([(1, {0: 10}), (11, {0: 10, 1: 100})], top=20)
    light = light_for(chain, 20)
    assert chain.verify(light, 5).hash == chain.set_at(5).hash
    assert [(t.low, t.high) for t in light.trusted] == [(5, 10), (11, 20)]
    # Without a verified header above it, nothing vouches for header 10.
    bare = light_for(chain, 11, with_header=False)
    with pytest.raises(ProofError, match="changed by more than the trust level allows between"):
        chain.verify(bare, 10)


def test_a_forged_header_below_a_verified_one_is_not_linked() -> None:
    chain = SynthChain([(1, {0: 10}), (11, {0: 10, 1: 100})], top=20)
    light = light_for(chain, 11)
    forged_set = vset({0: 10}, IMPOSTORS)
    chain.forged[10] = block(10, forged_set, [IMPOSTORS[0]], prev_hash=bytes(32))
    with pytest.raises(ProofError, match="between heights 10 and 11"):
        chain.verify(light, 10)


def test_a_change_beyond_the_trust_level_between_adjacent_heights_is_explained() -> None:
    # The validator holding 100 of 110 is removed at height 11: v0's 10 cannot vouch for it.
    chain = SynthChain([(1, {0: 10, 1: 100}), (11, {0: 10})], top=20)
    light = light_for(chain)
    with pytest.raises(ProofError) as info:
        chain.verify(light, 20)
    msg = info.value.message
    assert info.value.code == ErrorCode.BAD_PROOF
    assert (
        "header 20 could not be verified: intermediate header 11 was signed by a validator " in msg
    )
    assert "changed by more than the trust level allows between heights 10 and 11" in msg
    assert "only 10 of the 110 power trusted at height 10 signed header 11" in msg
    assert "trust_height=11" in msg
    # Once the new set is checked out of band and passed in, it verifies.
    fresh = LightClient(ED25519, CHAIN, chain.set_at(11), 11)
    assert chain.verify(fresh, 20).hash == chain.set_at(20).hash


def test_the_target_itself_adjacent_to_the_anchor() -> None:
    chain = SynthChain([(1, {0: 10, 1: 100}), (2, {0: 10})], top=2)
    with pytest.raises(
        ProofError, match=r"^bad_proof: header 2 was signed by a validator set this client"
    ):
        chain.verify(light_for(chain), 2)


def test_a_header_conflicting_with_a_trusted_height_is_refused() -> None:
    chain = SynthChain([(1, {0: 10, 1: 10})], top=10)
    light = light_for(chain)
    chain.verify(light, 5)
    other = block(5, vset({0: 10, 1: 10, 2: 10}))  # a different set at a height already known
    with pytest.raises(ProofError, match=r"already trusts set .* for height 5"):
        light.verify_with(other.header, other.commit, chain.fetch)


def test_a_lying_answer_to_a_pivot_request_is_refused() -> None:
    schedule = [(1, {0: 10, 1: 10, 2: 10}), (10, {1: 10, 2: 10, 3: 10}), (20, {3: 10, 4: 10})]
    chain = SynthChain(schedule, top=30)
    chain.forged[15] = block(14, chain.set_at(14))  # asked for 15, answers 14
    with pytest.raises(ProofError, match="asked the node for header 15"):
        chain.verify(light_for(chain), 30)


def test_an_intermediate_header_that_is_not_final_is_named() -> None:
    schedule = [(1, {0: 10, 1: 10, 2: 10}), (10, {1: 10, 2: 10, 3: 10}), (20, {3: 10, 4: 10})]
    chain = SynthChain(schedule, top=30)
    vs = chain.set_at(15)
    chain.forged[15] = block(15, vs, [POOL[1]])  # 10 of 30
    with pytest.raises(ProofError, match="intermediate header 15 is not final: commit has 10"):
        chain.verify(light_for(chain), 30)


def test_bisection_gives_up_after_max_fetches() -> None:
    schedule = [(1, {0: 10, 1: 10, 2: 10}), (10, {1: 10, 2: 10, 3: 10}), (20, {3: 10, 4: 10})]
    chain = SynthChain(schedule, top=1000)
    light = LightClient(ED25519, CHAIN, chain.set_at(1), 1, max_fetches=2)
    with pytest.raises(ProofError, match="gave up after verifying 2 intermediate headers"):
        chain.verify(light, 1000)


def test_a_commit_for_another_block_is_refused_first() -> None:
    chain = SynthChain([(1, {0: 10})], top=5)
    b, other = chain.block(4), chain.block(5)
    with pytest.raises(ProofError, match="header 4 is not final: commit is for a different block"):
        light_for(chain).verify_with(b.header, other.commit, chain.fetch)


# -- properties -----------------------------------------------------------------------------------

powers = st.integers(min_value=1, max_value=100)
member_maps = st.dictionaries(st.integers(0, len(POOL) - 1), powers, min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trusted=member_maps, new=member_maps, data=st.data())
def test_the_rule_is_exactly_one_third_of_trusted_and_two_thirds_of_new(
    trusted: dict[int, int], new: dict[int, int], data: st.DataObject
) -> None:
    signers = data.draw(st.sets(st.sampled_from(sorted(new))), label="signers")
    t, n = vset(trusted), vset(new)
    b = block(7, n, [POOL[i] for i in sorted(signers)])
    trusted_signed = sum(trusted.get(i, 0) for i in signers)
    new_signed = sum(new[i] for i in signers)
    expect_final = new_signed * 3 > 2 * sum(new.values())
    expect_trusted = trusted_signed * 3 > sum(trusted.values())
    try:
        verify_skipping(ED25519, CHAIN, t, b)
    except InsufficientTrust as exc:
        assert expect_final and not expect_trusted
        assert exc.signed_power == trusted_signed
    except ProofError as exc:
        assert not expect_final, exc.message
        assert "is not final" in exc.message
    else:
        assert expect_final and expect_trusted
    assert signed_power(b.commit, t) == trusted_signed
    assert exceeds(trusted_signed, t.total_power, TRUST_LEVEL) == expect_trusted


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trusted=member_maps, new=member_maps, outsider=st.integers(0, len(IMPOSTORS) - 1))
def test_a_signature_by_a_non_member_of_the_new_set_is_never_accepted(
    trusted: dict[int, int], new: dict[int, int], outsider: int
) -> None:
    n = vset(new)
    signers = [*(POOL[i] for i in new), IMPOSTORS[outsider]]
    with pytest.raises(ProofError, match="commit signed by a non-validator"):
        verify_skipping(ED25519, CHAIN, vset(trusted), block(7, n, signers))


def _verifiable_step(prev: Members, proposal: Members) -> dict[int, int]:
    """``proposal`` repaired so that members of ``prev`` in it hold more than 1/3 of ``prev``'s
    power (so the step is verifiable from ``prev`` when the whole new set signs)."""
    new = dict(proposal)
    total = sum(prev.values())
    for i in sorted(prev, key=lambda k: -prev[k]):
        if sum(prev[k] for k in new if k in prev) * 3 > total:
            break
        new.setdefault(i, prev[i])
    return new


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[int, dict[int, int]]], int]:
    sets = [draw(member_maps, label="genesis set")]
    heights = [1]
    for _ in range(draw(st.integers(0, 5), label="changes")):
        heights.append(heights[-1] + draw(st.integers(1, 8), label="gap"))
        sets.append(_verifiable_step(sets[-1], draw(member_maps, label="proposal")))
    top = heights[-1] + draw(st.integers(0, 8), label="tail")
    return list(zip(heights, sets, strict=True)), top


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_bisection_follows_any_history_of_verifiable_steps(
    history: tuple[list[tuple[int, dict[int, int]]], int], data: st.DataObject
) -> None:
    schedule, top = history
    chain = SynthChain(schedule, top)
    anchor = data.draw(st.integers(1, top), label="anchor height")
    # Backwards past a change needs a verified header above it (its hash link); a bare anchor
    # (a set passed in without its header) is followed forwards only.
    with_header = data.draw(st.booleans(), label="anchor header")
    light = light_for(chain, anchor, with_header)
    lowest = 1 if with_header else anchor
    targets = data.draw(st.lists(st.integers(lowest, top), min_size=1, max_size=4), label="targets")
    for target in targets:
        assert chain.verify(light, target).hash == chain.set_at(target).hash
    for t in light.trusted:  # every set it trusts is the real one at the heights it claims
        assert chain.set_at(t.low).hash == t.hash == chain.set_at(t.high).hash
    pivots = [f for f in chain.fetches if f.block]
    assert len(pivots) <= len(targets) * 2 * top.bit_length() ** 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=histories(),
    corrupted=st.sets(st.integers(0, len(POOL) - 1), max_size=3),
    impostors=st.sets(st.integers(0, len(IMPOSTORS) - 1), min_size=1),
    data=st.data(),
)
def test_a_forged_set_is_never_accepted(
    history: tuple[list[tuple[int, dict[int, int]]], int],
    corrupted: set[int],
    impostors: set[int],
    data: st.DataObject,
) -> None:
    # The attacker holds the impostor keys and some genuine keys, never more than 1/3 of the
    # power of any genuine set (the security assumption), and forges the header at one height.
    schedule, top = history
    for _, members in schedule:
        assume(sum(p for i, p in members.items() if i in corrupted) * 3 <= sum(members.values()))
    chain = SynthChain(schedule, top)
    light = light_for(chain, data.draw(st.integers(1, top), label="anchor height"))
    target = data.draw(st.integers(1, top), label="forged height")
    keys = [IMPOSTORS[i] for i in sorted(impostors)] + [POOL[i] for i in sorted(corrupted)]
    forged_set = ValidatorSet(Validator(k.public_key, 10) for k in keys)
    h = header(target, forged_set, salt=b"forged")
    chain.forged[target] = LightBlock(h, sign(h, keys), forged_set)
    with pytest.raises(ProofError):
        chain.verify(light, target)
    for t in light.trusted:
        assert t.hash != forged_set.hash
