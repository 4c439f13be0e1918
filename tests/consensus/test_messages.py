"""Consensus wire messages: one canonical encoding each; malformed peer bytes are refused
with the field named, never raised as anything but DecodeError."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.consensus import messages as m
from citychain.crypto import ED25519, Signer
from citychain.errors import DecodeError, ProofError
from citychain.sync import messages as sm
from citychain.types import NIL, DuplicateVoteEvidence, Vote, VoteType

CHAIN = "msg-chain"
SIGNER = Signer.generate(ED25519)
hashes = st.binary(min_size=32, max_size=32)
uints = st.integers(min_value=0, max_value=2**63 - 1)


def signed_vote(t: VoteType, h: int, r: int, block: bytes, s: Signer = SIGNER) -> Vote:
    v = Vote(t, h, r, block, s.public_key, b"")
    return Vote(t, h, r, block, s.public_key, s.sign(v.sign_bytes(CHAIN)))


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 2**40),
    r=st.integers(0, 1000),
    block=st.one_of(st.just(NIL), hashes),
    t=st.sampled_from(list(VoteType)),
)
def test_vote_round_trips_and_verifies(h: int, r: int, block: bytes, t: VoteType) -> None:
    v = signed_vote(t, h, r, block)
    back = m.decode(m.encode(m.VoteMsg(v)), 1024)
    assert isinstance(back, m.VoteMsg) and back.vote == v
    back.vote.verify(ED25519, CHAIN)
    with pytest.raises(ProofError):
        back.vote.verify(ED25519, "another-chain")  # the chain id is inside what is signed


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 2**40),
    r=st.integers(1, 100),
    parts=st.lists(hashes, min_size=1, max_size=8),
    block=hashes,
    data=st.data(),
)
def test_proposal_round_trips(
    h: int, r: int, parts: list[bytes], block: bytes, data: st.DataObject
) -> None:
    pol = data.draw(st.integers(-1, r - 1))
    p = m.Proposal(h, r, pol, block, tuple(parts), SIGNER.public_key)
    p = m.Proposal(
        h, r, pol, block, tuple(parts), SIGNER.public_key, SIGNER.sign(p.sign_bytes(CHAIN))
    )
    back = m.decode(m.encode(p), 1 << 20)
    assert back == p
    assert isinstance(back, m.Proposal)
    back.verify(ED25519, CHAIN)


def test_block_parts_cover_the_block_and_are_bounded() -> None:
    data = bytes(range(256)) * 1000
    parts = m.split_parts(data)
    assert b"".join(parts) == data
    assert all(len(p) <= m.PART_SIZE for p in parts)
    part = m.BlockPart(3, 0, 1, parts[1])
    assert m.decode(m.encode(part), m.PART_SIZE + 1024) == part
    too_big = codec.encode(["part", 3, 0, 1, b"x" * (m.PART_SIZE + 1)])
    with pytest.raises(DecodeError, match="at most"):
        m.decode(too_big, 2 * m.PART_SIZE)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (["proposal", 1, 0, -2, b"h" * 32, [b"p" * 32], b"k", b"s"], "pol_round"),
        (["proposal", 1, 0, -1, b"h" * 31, [b"p" * 32], b"k", b"s"], "32 bytes"),
        (["proposal", 1, 0, -1, b"h" * 32, [], b"k", b"s"], "part hashes"),
        (["proposal", 1, 0, 0, b"h" * 32, [b"p" * 32], b"k", b"s"], "pol_round"),
        (["vote", [1, 0, 0, b"", b"k", b"s"]], "height"),
        (["vote", [3, 1, 0, b"", b"k", b"s"]], "neither prevote"),
        (["vote", [1, 1, 0, b"abc", b"k", b"s"]], "nil"),
        (["round_state", 1, 0, 1, [], [[0, 1]]], "round, type, mask"),
        (["txs", [1, 2]], "byte strings"),
        (["nonsense"], "unknown message kind"),
        ([], "starting with its kind"),
    ],
)
def test_malformed_messages_are_refused_with_the_reason(raw: list[Any], match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        m.decode(codec.encode(raw), 1 << 20)


def test_oversize_message_refused_before_decoding() -> None:
    data = m.encode(m.TxBatch((b"x" * 5000,)))
    with pytest.raises(DecodeError):
        m.decode(data, 100)


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_random_bytes_never_raise_anything_but_decode_error(data: bytes) -> None:
    for dec in (lambda d: m.decode(d, 1 << 16), lambda d: sm.decode(d, 1 << 16)):
        with contextlib.suppress(DecodeError):
            dec(data)


def test_round_state_and_sync_messages_round_trip() -> None:
    rs = m.RoundState(5, 2, 3, (0, 1), ((0, 1, 0b1011), (1, 2, 1)))
    assert m.decode(m.encode(rs), 4096) == rs
    for msg in (sm.StatusRequest(), sm.StatusResponse(9, 1), sm.BlockRequest(4), sm.NoBlock(4)):
        assert sm.decode(sm.encode(msg), 4096) == msg


def test_duplicate_vote_evidence_is_canonical_and_verified() -> None:
    a = signed_vote(VoteType.PREVOTE, 4, 1, b"a" * 32)
    b = signed_vote(VoteType.PREVOTE, 4, 1, NIL)
    e1 = DuplicateVoteEvidence.of(CHAIN, a, b)
    e2 = DuplicateVoteEvidence.of(CHAIN, b, a)
    assert e1 == e2 and e1.hash == e2.hash
    from citychain.types import Validator, ValidatorSet

    vs = ValidatorSet([Validator(SIGNER.public_key, 1)])
    e1.verify(ED25519, CHAIN, vs)
    back = m.decode(m.encode(m.EvidenceMsg(e1)), 4096)
    assert isinstance(back, m.EvidenceMsg) and back.evidence == e1
    with pytest.raises(ProofError, match="same block"):
        DuplicateVoteEvidence(a, a).verify(ED25519, CHAIN, vs)
    other = Signer.generate(ED25519)
    with pytest.raises(ProofError, match="not a validator"):
        DuplicateVoteEvidence.of(
            CHAIN,
            signed_vote(VoteType.PREVOTE, 4, 1, b"a" * 32, other),
            signed_vote(VoteType.PREVOTE, 4, 1, NIL, other),
        ).verify(ED25519, CHAIN, vs)
    c = signed_vote(VoteType.PRECOMMIT, 4, 1, NIL)
    with pytest.raises(ProofError, match="one height, round and type"):
        DuplicateVoteEvidence.of(CHAIN, a, c).verify(ED25519, CHAIN, vs)
    forged = DuplicateVoteEvidence.of(CHAIN, a, Vote(b.type, 4, 1, NIL, b.validator, b"\0" * 64))
    with pytest.raises(ProofError, match="bad signature"):
        forged.verify(ED25519, CHAIN, vs)
