"""Core types: canonical round trips, what signatures cover, decoders' refusals, commits."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.crypto import ED25519, Signer
from citychain.errors import (
    CitychainError,
    ConfigError,
    DecodeError,
    ErrorCode,
    InvalidInput,
    ProofError,
)
from citychain.types import (
    Block,
    Commit,
    CommitSig,
    Event,
    Header,
    Receipt,
    Transaction,
    Validator,
    ValidatorSet,
    VoteType,
    tx_root,
    vote_signing_bytes,
)
from citychain.types.tx import MAX_TX_BYTES, TX_SIGN_TAG

SIGNERS = [Signer(ED25519, bytes([0x10 + i]) * 32) for i in range(5)]
U64 = st.integers(0, 2**64 - 1)
names = st.text(min_size=1, max_size=64)
leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.binary(max_size=16)
    | st.text(max_size=10)
)
arg_values = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
args_maps = st.dictionaries(st.text(max_size=8), arg_values, max_size=4)
hashes = st.binary(min_size=32, max_size=32)
examples = settings(max_examples=100, deadline=None)

TX_FIELDS = ["chain_id", "sender", "nonce", "expiry", "contract", "method", "args", "gas_limit"]


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    return Transaction.create(
        draw(st.sampled_from(SIGNERS)),
        chain_id=draw(names),
        nonce=draw(U64),
        expiry=draw(U64),
        contract=draw(names),
        method=draw(names),
        args=draw(args_maps),
        gas_limit=draw(U64),
    )


def canon(v: Any) -> bytes:
    return codec.encode(v)


def other_value(data: st.DataObject, tx: Transaction, name: str) -> Any:
    """A value for field ``name`` that differs canonically from the transaction's."""
    current = getattr(tx, name)
    strategy: st.SearchStrategy[Any] = {
        "chain_id": names,
        "sender": st.sampled_from([s.public_key for s in SIGNERS]),
        "nonce": U64,
        "expiry": U64,
        "contract": names,
        "method": names,
        "args": args_maps,
        "gas_limit": U64,
        "signature": st.binary(min_size=64, max_size=64),
    }[name]
    return data.draw(strategy.filter(lambda v: canon(v) != canon(current)))


# -- transactions -----------------------------------------------------------------------------
@examples
@given(transactions())
def test_transaction_round_trip(tx: Transaction) -> None:
    wire = tx.encode()
    back = Transaction.decode(wire)
    assert back == tx and back.encode() == wire and back.hash == tx.hash
    assert back.signing_bytes() == tx.signing_bytes()
    assert back.verify_signature(ED25519)
    assert tx.to_json()["hash"] == tx.hash.hex()


@examples
@given(transactions(), st.binary(max_size=300))
def test_signing_bytes_cut_from_the_wire_equal_the_encoded_ones(
    tx: Transaction, sig: bytes
) -> None:
    """Decode cuts the signing bytes from the wire instead of encoding them again: they must
    be the very bytes a fresh encoding gives, whatever the signature's length."""
    raw = codec.decode(tx.encode())
    raw[9] = sig
    try:
        back = Transaction.decode(codec.encode(raw))
    except InvalidInput:
        return  # a signature length the shape check refuses: nothing to sign over
    fresh = Transaction(*raw[1:10])
    assert back.signing_bytes() == fresh.signing_bytes()


@examples
@given(transactions(), st.data())
def test_every_field_is_in_the_bytes_and_under_the_signature(
    tx: Transaction, data: st.DataObject
) -> None:
    for name in TX_FIELDS:
        changed = dataclasses.replace(tx, **{name: other_value(data, tx, name)})
        assert changed.encode() != tx.encode(), name
        assert changed.hash != tx.hash, name
        assert changed.signing_bytes() != tx.signing_bytes(), name
        assert not changed.verify_signature(ED25519), name
    resigned = dataclasses.replace(tx, signature=other_value(data, tx, "signature"))
    assert resigned.encode() != tx.encode() and resigned.hash != tx.hash
    assert resigned.signing_bytes() == tx.signing_bytes()
    assert not resigned.verify_signature(ED25519)


@examples
@given(transactions(), names)
def test_signing_bytes_are_domain_separated_by_chain_and_type(tx: Transaction, chain: str) -> None:
    decoded = codec.decode(tx.signing_bytes())
    assert decoded[0] == TX_SIGN_TAG and decoded[1] == tx.chain_id
    if chain != tx.chain_id:
        elsewhere = dataclasses.replace(tx, chain_id=chain)
        assert elsewhere.signing_bytes() != tx.signing_bytes()
        assert not elsewhere.verify_signature(ED25519)  # no replay on another chain
    vote = vote_signing_bytes(tx.chain_id, VoteType.PRECOMMIT, tx.nonce, 0, tx.hash)
    assert codec.decode(vote)[0] != TX_SIGN_TAG


def _wire(**overrides: Any) -> list[Any]:
    tx = Transaction.create(SIGNERS[0], chain_id="c", nonce=1, contract="k", method="m")
    fields = dict(
        version=1,
        chain_id=tx.chain_id,
        sender=tx.sender,
        nonce=tx.nonce,
        expiry=tx.expiry,
        contract=tx.contract,
        method=tx.method,
        args=tx.args,
        gas_limit=tx.gas_limit,
        signature=tx.signature,
    )
    fields.update(overrides)
    return list(fields.values())


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"a": 1}, "a CBOR array of 10 items"),
        (_wire()[:9], "a CBOR array of 10 items"),
        ([*_wire(), 0], "endorsements must be a non-empty list"),
        (_wire(version=2), "unsupported transaction version 2"),
        (_wire(chain_id=7), "chain_id must be a non-empty text string"),
        (_wire(chain_id=""), "chain_id must be a non-empty text string"),
        (_wire(chain_id="x" * 65), "chain_id must be a non-empty text string of at most 64"),
        (_wire(sender="ab"), "sender must be a public key"),
        (_wire(sender=b""), "sender must be a public key"),
        (_wire(nonce=-1), "nonce must be an unsigned 64-bit integer"),
        (_wire(nonce=2**64), "nonce must be an unsigned 64-bit integer"),
        (_wire(nonce=True), "nonce must be an unsigned 64-bit integer"),
        (_wire(expiry="1"), "expiry must be an unsigned 64-bit integer"),
        (_wire(contract=""), "contract must be a non-empty text string"),
        (_wire(method="m" * 65), "method must be a non-empty text string"),
        (_wire(args=[1]), "args must be a map"),
        (_wire(gas_limit=-5), "gas_limit must be an unsigned 64-bit integer"),
        (_wire(signature="sig"), "signature must be a byte string"),
        (_wire(signature=b"s" * 257), "signature must be a byte string"),
    ],
)
def test_transaction_decode_names_what_is_wrong(raw: Any, match: str) -> None:
    with pytest.raises(DecodeError, match=match) as info:
        Transaction.decode(codec.encode(raw))
    assert info.value.code == ErrorCode.MALFORMED


def test_transaction_decode_refuses_too_large_and_non_canonical() -> None:
    big = Transaction.create(
        SIGNERS[0], chain_id="c", nonce=0, contract="k", method="m", args={"b": b"x" * MAX_TX_BYTES}
    )
    with pytest.raises(CitychainError, match=f"the limit is {MAX_TX_BYTES}") as info:
        Transaction.decode(big.encode())
    assert info.value.code == ErrorCode.TOO_LARGE
    wire = _wire()
    small = codec.encode(wire)
    with pytest.raises(CitychainError) as info:
        Transaction.decode(small, max_size=len(small) - 1)
    assert info.value.code == ErrorCode.TOO_LARGE
    assert Transaction.decode(small, max_size=len(small)).nonce == 1
    # The version as a non-shortest integer (0x18 0x01): same value, other bytes.
    non_canonical = b"\x8a\x18\x01" + b"".join(codec.encode(v) for v in wire[1:])
    with pytest.raises(DecodeError) as info:
        Transaction.decode(non_canonical)
    assert info.value.code == ErrorCode.NON_CANONICAL


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_transaction_decode_of_garbage_raises_only_citychain_errors(data: bytes) -> None:
    try:
        tx = Transaction.decode(data)
    except CitychainError as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.NON_CANONICAL, ErrorCode.TOO_LARGE)
    else:
        assert tx.encode() == data
        # decode keeps the input bytes; a copy re-encodes from the fields, so this shows the
        # accepted bytes are the one canonical encoding of the value (not merely cached).
        assert dataclasses.replace(tx).encode() == data


# -- headers, commits, receipts, blocks -------------------------------------------------------
@st.composite
def headers(draw: st.DrawFn) -> Header:
    return Header(
        chain_id=draw(names),
        height=draw(U64),
        time=draw(U64),
        prev_hash=draw(hashes),
        tx_root=draw(hashes),
        results_root=draw(hashes),
        state_root=draw(hashes),
        validators_hash=draw(hashes),
        proposer=draw(st.binary(min_size=32, max_size=32)),
    )


@examples
@given(headers(), st.data())
def test_header_round_trip_and_hash_covers_every_field(h: Header, data: st.DataObject) -> None:
    assert Header.decode(h.encode()) == h
    assert Header.decode(h.encode()).hash == h.hash
    for f in dataclasses.fields(Header):
        if f.name in ("version", "hash_new"):  # hash_new is the chain's hash, not data
            continue
        current = getattr(h, f.name)
        new = data.draw(
            (names if isinstance(current, str) else U64 if isinstance(current, int) else hashes)
            .filter(lambda v, current=current: v != current)
        )  # fmt: skip
        assert dataclasses.replace(h, **{f.name: new}).hash != h.hash, f.name


@pytest.mark.parametrize(
    ("index", "value", "match"),
    [
        (0, 2, "unsupported header version 2"),
        (1, b"c", "header field chain_id must be a text string"),
        (2, "1", "header field height must be an unsigned 64-bit integer"),
        (3, -1, "header field time must be an unsigned 64-bit integer"),
        (4, "h", "header field prev_hash must be a byte string"),
        (8, 5, "header field validators_hash must be a byte string"),
        (9, None, "header field proposer must be a byte string"),
    ],
)
def test_header_decode_names_the_bad_field(index: int, value: Any, match: str) -> None:
    raw = Header("c", 1, 0, b"", b"t", b"r", b"s", b"v", b"p").to_list()
    raw[index] = value
    with pytest.raises(DecodeError, match=match):
        Header.decode(codec.encode(raw))
    with pytest.raises(DecodeError, match="array of 11"):
        Header.decode(codec.encode(raw[:9]))


@examples
@given(
    U64,
    st.integers(0, 1000),
    hashes,
    st.lists(st.tuples(st.binary(max_size=32), st.binary(max_size=64)), max_size=5),
)
def test_commit_round_trip(
    height: int, rnd: int, h: bytes, sigs: list[tuple[bytes, bytes]]
) -> None:
    c = Commit(height, rnd, h, tuple(CommitSig(v, s) for v, s in sigs))
    assert Commit.decode(c.encode()) == c


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ([1, 0, b"h"], "array of 4 items"),
        (["1", 0, b"h", []], "commit field height"),
        ([1, -1, b"h", []], "commit field round"),
        ([1, 0, "h", []], "commit field block_hash"),
        ([1, 0, b"h", [[2**40, b"s"]]], r"\[validator, signature\]"),  # not 2**40 zero bytes
        ([1, 0, b"h", [1]], r"\[validator, signature\]"),
        ([1, 0, b"h", [[b"v", b"s", b"x"]]], r"\[validator, signature\]"),
    ],
)
def test_commit_decode_refuses_wrong_shapes(raw: Any, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        Commit.decode(codec.encode(raw))


@examples
@given(
    hashes,
    st.sampled_from([c.value for c in ErrorCode]),
    st.text(max_size=30),
    U64,
    arg_values,
    st.lists(st.tuples(names, names, args_maps), max_size=3),
)
def test_receipt_round_trip(
    h: bytes, code: str, message: str, gas: int, result: Any, events: list[tuple[str, str, Any]]
) -> None:
    r = Receipt(h, code, message, gas, result, tuple(Event(*e) for e in events))
    first = r.encode()
    back = Receipt.decode(first)
    assert back == r and back.ok == (code == "ok")
    # Encoded once: a block's results root and its stored receipts share the bytes, which are
    # what a fresh encoding gives, and a changed copy does not inherit them.
    assert r.encode() is first and back.encode() == first
    assert dataclasses.replace(r, gas_used=gas + 1).encode() != first
    # Execution's receipts (checked=True) skip the type walk, not the canonical form.
    checked = Receipt(h, code, message, gas, result, r.events, checked=True)
    assert checked == r and checked.encode() == first
    assert first == codec.encode([h, code, message, gas, result, [list(e) for e in events]])


def test_an_unchecked_receipt_with_a_float_is_refused() -> None:
    # A receipt made outside execution (a client's own) is checked as it is encoded.
    with pytest.raises(DecodeError, match="floats"):
        Receipt(bytes(32), "ok", "", 1, 1.5, ()).encode()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ([b"h", "ok", "", 0, None], "array of 6 items"),
        ([1, "ok", "", 0, None, []], "receipt field tx_hash"),
        ([b"h", 1, "", 0, None, []], "receipt field code"),
        ([b"h", "ok", "", "0", None, []], "receipt field gas_used"),
        ([b"h", "ok", "", 0, None, {}], "receipt field events"),
        ([b"h", "ok", "", 0, None, [1]], "each event"),
        ([b"h", "ok", "", 0, None, [["c", "t"]]], "each event"),
        ([b"h", "ok", "", 0, None, [["c", "t", []]]], "each event"),
    ],
)
def test_receipt_decode_refuses_wrong_shapes(raw: Any, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        Receipt.decode(codec.encode(raw))


@settings(max_examples=30, deadline=None)
@given(headers(), st.lists(transactions(), max_size=4))
def test_block_round_trip(h: Header, txs: list[Transaction]) -> None:
    header = dataclasses.replace(h, tx_root=tx_root(txs))
    block = Block(header, tuple(txs))
    back = Block.decode(block.encode())
    assert back == block and back.hash == header.hash
    assert [t.hash for t in back.txs] == [t.hash for t in txs]
    back.check_tx_root()
    if len(txs) >= 2 and txs[0].encode() != txs[-1].encode():
        with pytest.raises(ProofError, match="tx_root"):
            Block(header, tuple(reversed(txs))).check_tx_root()


@settings(max_examples=30, deadline=None)
@given(headers(), st.lists(transactions(), min_size=1, max_size=5), st.data())
def test_block_decode_reuses_the_transactions_it_is_told_of(
    h: Header, txs: list[Transaction], data: st.DataObject
) -> None:
    """A proposal's transactions already in the mempool are reused, not decoded again; the
    others are decoded; the block is the same either way."""
    block = Block(dataclasses.replace(h, tx_root=tx_root(txs)), tuple(txs))
    pooled = {t.hash: t for t in data.draw(st.lists(st.sampled_from(txs), unique_by=id))}
    asked: list[bytes] = []

    def known(tx_hash: bytes) -> Transaction | None:
        asked.append(tx_hash)
        return pooled.get(tx_hash)

    back = Block.decode(block.encode(), known=known)
    assert back == block
    assert asked == [t.hash for t in txs]
    for got, original in zip(back.txs, txs, strict=True):
        if got.hash in pooled:
            assert got is pooled[got.hash]  # the mempool's object itself
        else:
            assert got is not original and got == original  # decoded afresh


@settings(max_examples=30, deadline=None)
@given(headers(), st.lists(transactions(), max_size=5), st.integers(-2, 7))
def test_one_transaction_of_a_block_decodes_alone(
    h: Header, txs: list[Transaction], index: int
) -> None:
    """A committed transaction's lookup reads the one it names: the same transaction (same
    hash) as a whole decode gives at that index, None past either end."""
    data = Block(dataclasses.replace(h, tx_root=tx_root(txs)), tuple(txs)).encode()
    got = Block.decode_tx(data, index)
    if 0 <= index < len(txs):
        assert got == Block.decode(data).txs[index] and got is not None
        assert got.hash == txs[index].hash
    else:
        assert got is None
    header = h.to_list()
    with pytest.raises(DecodeError, match="embedded as byte strings"):
        Block.decode_tx(codec.encode([header, [5], []]), 0)
    with pytest.raises(DecodeError, match=r"\[header, \[tx bytes"):
        Block.decode_tx(codec.encode([header, b"", []]), 0)


def test_block_decode_refusals() -> None:
    header = Header("c", 1, 0, b"", tx_root([]), b"r", b"s", b"v", b"p")
    data = Block(header, ()).encode()
    with pytest.raises(DecodeError) as info:
        Block.decode(data, max_size=len(data) - 1)
    assert info.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(DecodeError, match="embedded as byte strings"):
        Block.decode(codec.encode([header.to_list(), [5], []]))
    with pytest.raises(DecodeError, match=r"\[header, \[tx bytes"):
        Block.decode(codec.encode([header.to_list()]))
    with pytest.raises(DecodeError, match=r"\[evidence"):
        Block.decode(codec.encode([header.to_list(), []]))


# -- commit verification ----------------------------------------------------------------------
CHAIN = "commit-chain"


def _setup(powers: list[int]) -> tuple[list[Signer], ValidatorSet, Header]:
    signers = SIGNERS[: len(powers)]
    vset = ValidatorSet(Validator(s.public_key, p) for s, p in zip(signers, powers, strict=True))
    header = Header(CHAIN, 7, 1000, b"p" * 32, b"t" * 32, b"r" * 32, b"s" * 32, vset.hash, b"x")
    return signers, vset, header


def _commit(header: Header, signers: list[Signer], *, rnd: int = 0, chain: str = CHAIN) -> Commit:
    msg = vote_signing_bytes(chain, VoteType.PRECOMMIT, header.height, rnd, header.hash)
    return Commit(
        header.height, 0, header.hash, tuple(CommitSig(s.public_key, s.sign(msg)) for s in signers)
    )


def _refused(commit: Commit, header: Header, vset: ValidatorSet, match: str) -> None:
    with pytest.raises(ProofError, match=match) as info:
        commit.verify(ED25519, CHAIN, header, vset)
    assert info.value.code == ErrorCode.BAD_PROOF


def test_commit_with_a_quorum_verifies() -> None:
    signers, vset, header = _setup([1, 1, 1, 1])
    _commit(header, signers[:3]).verify(ED25519, CHAIN, header, vset)
    _commit(header, signers).verify(ED25519, CHAIN, header, vset)
    _commit(header, list(reversed(signers[1:]))).verify(ED25519, CHAIN, header, vset)


def test_commit_refusals() -> None:
    signers, vset, header = _setup([1, 1, 1, 1])
    good = _commit(header, signers[:3])
    other = dataclasses.replace(header, state_root=b"S" * 32)
    _refused(good, other, vset, "different block")
    _refused(dataclasses.replace(good, height=8), header, vset, "different block")
    _refused(_commit(header, signers[:2]), header, vset, r"has 2 of 4 power; needs more than 2/3")
    outsider = _commit(header, [*signers[:3], SIGNERS[4]])
    _refused(outsider, header, vset, "non-validator")
    twice = dataclasses.replace(good, signatures=(*good.signatures, good.signatures[0]))
    _refused(twice, header, vset, "twice")
    s0 = good.signatures[0]
    forged = dataclasses.replace(
        good, signatures=(CommitSig(s0.validator, bytes(64)), *good.signatures[1:])
    )
    _refused(forged, header, vset, "does not verify")
    _refused(_commit(header, signers[:3], rnd=1), header, vset, "does not verify")
    _refused(_commit(header, signers[:3], chain="elsewhere"), header, vset, "does not verify")
    _, other_set, _ = _setup([1, 1, 1])
    _refused(good, header, other_set, "different validator set")


def test_commit_quorum_counts_power_not_heads() -> None:
    signers, vset, header = _setup([10, 1, 1, 1])  # total 13: more than 2/3 needs 9
    _commit(header, signers[:1]).verify(ED25519, CHAIN, header, vset)
    _refused(_commit(header, signers[1:]), header, vset, "has 3 of 13 power")


def test_single_validator_commit() -> None:
    signers, vset, header = _setup([5])
    Commit.sign_single(signers[0], CHAIN, header).verify(ED25519, CHAIN, header, vset)


# -- validator sets ---------------------------------------------------------------------------
validator_lists = st.lists(
    st.tuples(st.binary(min_size=32, max_size=32), st.integers(1, 10**6)),
    min_size=1,
    max_size=8,
    unique_by=lambda t: t[0],
)


@examples
@given(validator_lists, st.data())
def test_validator_set_hash_ignores_input_order(vals: list[tuple[bytes, int]], data: Any) -> None:
    a = ValidatorSet(Validator(k, p) for k, p in vals)
    b = ValidatorSet(Validator(k, p) for k, p in data.draw(st.permutations(vals)))
    assert a.hash == b.hash and a.validators == b.validators
    assert [v.public_key for v in a] == sorted(k for k, _ in vals)
    k0, p0 = vals[0]
    changed = ValidatorSet(Validator(k, p + 1 if k == k0 else p) for k, p in vals)
    assert changed.hash != a.hash
    assert a.power_of(k0) == p0 and k0 in a and a.get(k0) == Validator(k0, p0)
    assert a.power_of(b"nobody") == 0 and b"nobody" not in a


@examples
@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=10))
def test_quorum_is_the_least_power_above_two_thirds(powers: list[int]) -> None:
    vset = ValidatorSet(Validator(i.to_bytes(32, "big"), p) for i, p in enumerate(powers))
    total = sum(powers)
    q = vset.quorum()
    assert vset.total_power == total
    assert 3 * q > 2 * total and 3 * (q - 1) <= 2 * total
    assert vset.has_quorum(q) and not vset.has_quorum(q - 1)


@pytest.mark.parametrize(("total", "quorum"), [(1, 1), (3, 3), (4, 3), (6, 5), (7, 5), (100, 67)])
def test_quorum_examples(total: int, quorum: int) -> None:
    vset = ValidatorSet([Validator(b"k" * 32, total)])
    assert vset.quorum() == quorum


def test_validator_set_refusals() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        ValidatorSet([])
    with pytest.raises(ConfigError, match="twice"):
        ValidatorSet([Validator(b"a" * 32, 1), Validator(b"a" * 32, 2)])
    with pytest.raises(ConfigError, match="non-positive power"):
        ValidatorSet([Validator(b"a" * 32, 0)])
