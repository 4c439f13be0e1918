"""citychain's own conformance vectors (tests/vectors/canonical/*.json): fixed canonical bytes.

Each file holds the cases of one shape (transaction, header, vote, ...): the fields as JSON,
the canonical encoding, the signing bytes, the hash and Ed25519 signatures by fixed keys. The
tests here hold the code to those bytes, so a change of wire format cannot pass unnoticed:

* the bytes decode, and the decoded object re-encodes to the same bytes;
* the JSON fields build the same object, encoding, signing bytes and hash, and signing with
  the file's seeds gives the file's signatures (Ed25519 is deterministic);
* every signature verifies, with citychain's checks and with plain libsodium over the file's
  bytes;
* a one-byte change of an encoding is refused, or decodes to a different value (re-encoding
  gives the changed bytes, never the original) whose hash changed or whose signatures fail;
* the files are exactly what generate.py writes from its fixed inputs, and they fit together
  (a block's roots are the Merkle roots of the other files' encodings).

The shapes are read through one small adapter each (:class:`Shape`), written from the wire
descriptions in the files rather than from the generator, so the generator and these tests do
not share a mistake.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from citychain import codec
from citychain.consensus import messages
from citychain.crypto import ED25519, Signer
from citychain.errors import CitychainError, DecodeError, ProofError
from citychain.proof import merkle
from citychain.types import (
    Block,
    Commit,
    CommitSig,
    DuplicateVoteEvidence,
    Event,
    Header,
    Receipt,
    Transaction,
    Validator,
    ValidatorSet,
    Vote,
    VoteType,
    vote_signing_bytes,
)
from citychain.types.tx import json_to_codec

HERE = Path(__file__).resolve().parent / "canonical"

#: The public keys RFC 8032 section 7.1 gives for the secret keys used as seeds: checks the
#: seeds in the files independently of the Ed25519 code under test.
RFC8032_PUBLIC_KEYS = {
    "alice": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "bob": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "carol": "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
    "dave": "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
}


def hx(s: str) -> bytes:
    return bytes.fromhex(s)


@cache
def load(file: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HERE / file).read_text(encoding="utf-8"))
    return data


def case_named(file: str, name: str) -> dict[str, Any]:
    return next(c for c in load(file)["cases"] if c["name"] == name)


# -- objects from the JSON fields ---------------------------------------------------------------
def tx_from(f: dict[str, Any]) -> Transaction:
    return Transaction(
        f["chain_id"],
        hx(f["sender"]),
        f["nonce"],
        f["expiry"],
        f["contract"],
        f["method"],
        json_to_codec(f["args"]),
        f["gas_limit"],
        hx(f["signature"]),
        tuple((hx(e["public_key"]), hx(e["signature"])) for e in f["endorsements"]),
    )


def header_from(f: dict[str, Any]) -> Header:
    return Header(
        chain_id=f["chain_id"],
        height=f["height"],
        time=f["time"],
        prev_hash=hx(f["prev_hash"]),
        tx_root=hx(f["tx_root"]),
        results_root=hx(f["results_root"]),
        state_root=hx(f["state_root"]),
        validators_hash=hx(f["validators_hash"]),
        proposer=hx(f["proposer"]),
        version=f["version"],
        evidence_root=hx(f["evidence_root"]),
    )


def vote_from(f: dict[str, Any]) -> Vote:
    return Vote(
        VoteType(f["type"]),
        f["height"],
        f["round"],
        hx(f["block_hash"]),
        hx(f["validator"]),
        hx(f["signature"]),
    )


def evidence_from(f: dict[str, Any]) -> DuplicateVoteEvidence:
    return DuplicateVoteEvidence(vote_from(f["vote_a"]), vote_from(f["vote_b"]))


def validators_from(raw: list[dict[str, Any]]) -> ValidatorSet:
    return ValidatorSet(Validator(hx(v["public_key"]), v["power"], v["name"]) for v in raw)


def commit_from(f: dict[str, Any]) -> Commit:
    return Commit(
        f["height"],
        f["round"],
        hx(f["block_hash"]),
        tuple(CommitSig(hx(s["validator"]), hx(s["signature"])) for s in f["signatures"]),
    )


def receipt_from(f: dict[str, Any]) -> Receipt:
    return Receipt(
        hx(f["tx_hash"]),
        f["code"],
        f["message"],
        f["gas_used"],
        json_to_codec(f["result"]),
        tuple(Event(e["contract"], e["type"], json_to_codec(e["attributes"])) for e in f["events"]),
    )


def block_from(f: dict[str, Any]) -> Block:
    return Block(
        header_from(f["header"]),
        tuple(Transaction.decode(hx(t)) for t in f["txs"]),
        tuple(evidence_from(e) for e in f["evidence"]),
    )


def proposal_from(f: dict[str, Any]) -> messages.Proposal:
    return messages.Proposal(
        f["height"],
        f["round"],
        f["pol_round"],
        hx(f["block_hash"]),
        tuple(hx(h) for h in f["part_hashes"]),
        hx(f["proposer"]),
        hx(f["signature"]),
    )


def decode_proposal(data: bytes) -> messages.Proposal:
    msg = messages.decode(data, max_size=1 << 20)
    if not isinstance(msg, messages.Proposal):
        raise DecodeError(f"not a proposal: {type(msg).__name__}")
    return msg


def own_sign_bytes(case: dict[str, Any], obj: Any) -> list[bytes]:
    """Votes and proposals: the chain id comes from the case (it is not in the wire form)."""
    return [obj.sign_bytes(case["chain_id"])]


def precommit_sign_bytes(case: dict[str, Any], c: Commit) -> list[bytes]:
    return [
        vote_signing_bytes(case["chain_id"], VoteType.PRECOMMIT, c.height, c.round, c.block_hash)
    ]


def verify_commit(case: dict[str, Any], c: Commit) -> None:
    c.verify(
        ED25519, case["chain_id"], header_from(case["header"]), validators_from(case["validators"])
    )


def verify_evidence(case: dict[str, Any], e: DuplicateVoteEvidence) -> None:
    e.verify(ED25519, case["chain_id"], validators_from(case["validators"]))


def verify_tx(case: dict[str, Any], tx: Transaction) -> None:
    if not tx.verify_signature(ED25519):
        raise ProofError("a transaction signature does not verify")


def fresh_tx_encoding(tx: Transaction) -> bytes:
    # replace() drops the bytes decode() cached, so this really re-encodes the fields.
    return dataclasses.replace(tx).encode()


@dataclass(frozen=True)
class Shape:
    """How the tests read one vector file."""

    file: str
    tag: str | None  # the domain-separation string of the signing bytes
    from_fields: Callable[[dict[str, Any]], Any]
    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes] = lambda obj: obj.encode()
    hash: Callable[[Any], bytes] | None = lambda obj: obj.hash
    signing_bytes: Callable[[dict[str, Any], Any], list[bytes]] | None = None
    #: Raises CitychainError unless the object's signatures (and what they vouch for) hold.
    verify: Callable[[dict[str, Any], Any], None] | None = None


SHAPES = [
    Shape(
        "transaction.json",
        "citychain/tx/v1",
        tx_from,
        Transaction.decode,
        encode=fresh_tx_encoding,
        signing_bytes=lambda case, tx: [tx.signing_bytes()],
        verify=verify_tx,
    ),
    Shape("header.json", None, header_from, Header.decode),
    Shape(
        "block.json",
        None,
        block_from,
        Block.decode,
        verify=lambda case, b: b.check_tx_root(),
    ),
    Shape(
        "vote.json",
        "citychain/vote/v1",
        vote_from,
        Vote.decode,
        hash=None,
        signing_bytes=own_sign_bytes,
        verify=lambda case, v: v.verify(ED25519, case["chain_id"]),
    ),
    Shape(
        "commit.json",
        "citychain/vote/v1",
        commit_from,
        Commit.decode,
        hash=None,
        signing_bytes=precommit_sign_bytes,
        verify=verify_commit,
    ),
    Shape(
        "evidence.json",
        "citychain/vote/v1",
        evidence_from,
        DuplicateVoteEvidence.decode,
        signing_bytes=lambda case, e: [
            e.vote_a.sign_bytes(case["chain_id"]),
            e.vote_b.sign_bytes(case["chain_id"]),
        ],
        verify=verify_evidence,
    ),
    Shape(
        "receipt.json",
        None,
        receipt_from,
        Receipt.decode,
        hash=lambda r: merkle.leaf_hash(r.encode()),
    ),
    Shape(
        "proposal.json",
        "citychain/proposal/v1",
        proposal_from,
        decode_proposal,
        encode=messages.encode,
        hash=None,
        signing_bytes=own_sign_bytes,
        verify=lambda case, p: p.verify(ED25519, case["chain_id"]),
    ),
]
BY_FILE = {s.file: s for s in SHAPES}
#: Validator sets have no wire decoder (they come from genesis and governance state); their
#: file is checked by its own tests below.
ALL_FILES = sorted([*BY_FILE, "validator_set.json"])


def expected_hash(shape: Shape, case: dict[str, Any]) -> str:
    return str(case["leaf_hash"] if shape.file == "receipt.json" else case["hash"])


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


#: The hash rules as the files state them, computed from the encoding alone.
HASH_RULES: dict[str, Callable[[bytes], bytes]] = {
    "transaction.json": sha256,
    "header.json": sha256,
    "evidence.json": sha256,
    "block.json": lambda enc: sha256(codec.encode(codec.decode(enc)[0])),  # its header's hash
    "receipt.json": lambda enc: sha256(b"\x00" + enc),  # its Merkle leaf
}


def expected_signing_bytes(case: dict[str, Any]) -> list[str]:
    sb = case["signing_bytes"]
    return list(sb) if isinstance(sb, list) else [sb]


def shape_cases(*, signed: bool = False) -> list[Any]:
    return [
        pytest.param(shape, case, id=f"{shape.file.removesuffix('.json')}-{case['name']}")
        for shape in SHAPES
        if not signed or shape.signing_bytes is not None
        for case in load(shape.file)["cases"]
    ]


# -- the files ----------------------------------------------------------------------------------
def test_the_files_are_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("canonical_generate", HERE / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    written = generate.build()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in sorted(HERE.glob("*.json"))}
    assert sorted(written) == sorted(on_disk) == ALL_FILES
    for name in ALL_FILES:
        assert written[name] == on_disk[name], (
            f"{name} differs from what generate.py writes now: the canonical bytes changed. "
            "If the change of format is intended, run tests/vectors/canonical/generate.py "
            "and commit the new vectors with it."
        )


@pytest.mark.parametrize("file", ALL_FILES)
def test_every_file_documents_its_format_and_keys(file: str) -> None:
    data = load(file)
    assert data["format"] == "citychain/canonical-vectors/v1"
    assert {"shape", "wire", "signing_bytes", "hash", "keys", "cases"} <= set(data)
    assert len(data["cases"]) >= 2
    names = [c["name"] for c in data["cases"]]
    assert len(set(names)) == len(names)
    for name, key in data["keys"].items():
        seed = hx(key["seed"])
        assert len(seed) == 32
        assert key["public_key"] == RFC8032_PUBLIC_KEYS[name]
        assert ED25519.public_key(seed).hex() == key["public_key"]
        assert ED25519.address(hx(key["public_key"])).hex() == key["address"]
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    assert f"`{file}`" in readme


# -- (a) bytes -> object -> the same bytes ---------------------------------------------------
@pytest.mark.parametrize(("shape", "case"), shape_cases())
def test_encoding_decodes_and_re_encodes_to_the_same_bytes(
    shape: Shape, case: dict[str, Any]
) -> None:
    data = hx(case["encoding"])
    assert codec.encode(codec.decode(data)) == data
    obj = shape.decode(data)
    assert shape.encode(obj) == data
    if shape.hash is not None:
        assert shape.hash(obj).hex() == expected_hash(shape, case)


# -- (b) JSON fields -> object -> the same bytes, signing bytes and hash -----------------------
@pytest.mark.parametrize(("shape", "case"), shape_cases())
def test_fields_build_the_same_bytes_signing_bytes_and_hash(
    shape: Shape, case: dict[str, Any]
) -> None:
    obj = shape.from_fields(case["fields"])
    assert shape.encode(obj).hex() == case["encoding"]
    assert obj == shape.decode(hx(case["encoding"]))
    if shape.hash is not None:
        assert shape.hash(obj).hex() == expected_hash(shape, case)
        assert HASH_RULES[shape.file](hx(case["encoding"])).hex() == expected_hash(shape, case)
    else:
        assert "hash" not in case
    if shape.signing_bytes is None:
        assert "signing_bytes" not in case and "signatures" not in case
    else:
        assert [b.hex() for b in shape.signing_bytes(case, obj)] == expected_signing_bytes(case)


@pytest.mark.parametrize(("shape", "case"), shape_cases(signed=True))
def test_signing_bytes_name_the_kind_of_message_and_the_chain(
    shape: Shape, case: dict[str, Any]
) -> None:
    chain_id = case.get("chain_id") or case["fields"]["chain_id"]
    for sb in expected_signing_bytes(case):
        items = codec.decode(hx(sb))
        assert items[:2] == [shape.tag, chain_id]


# -- (c) signatures -----------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "case"), shape_cases(signed=True))
def test_signatures_verify_and_are_what_the_fixed_keys_sign(
    shape: Shape, case: dict[str, Any]
) -> None:
    keys = load(shape.file)["keys"]
    messages_ = expected_signing_bytes(case)
    sigs = case["signatures"]
    # Evidence: one message per vote; everything else: all signatures over one message.
    pairs = (
        zip(messages_, sigs, strict=True)
        if len(messages_) > 1
        else ((messages_[0], s) for s in sigs)
    )
    for message, sig in pairs:
        key = keys[sig["key"]]
        assert sig["public_key"] == key["public_key"]
        # Plain libsodium over the file's bytes: what an implementer in any language checks.
        VerifyKey(hx(sig["public_key"])).verify(hx(message), hx(sig["signature"]))
        with pytest.raises(BadSignatureError):
            VerifyKey(hx(sig["public_key"])).verify(hx(message) + b"\x00", hx(sig["signature"]))
        assert Signer(ED25519, hx(key["seed"])).sign(hx(message)).hex() == sig["signature"]
    assert shape.verify is not None
    shape.verify(case, shape.decode(hx(case["encoding"])))


def test_a_signature_is_valid_on_one_chain_only() -> None:
    here = case_named("transaction.json", "token_transfer")
    there = case_named("transaction.json", "token_transfer_other_chain")
    moved = dataclasses.replace(tx_from(here["fields"]), chain_id=there["fields"]["chain_id"])
    assert not moved.verify_signature(ED25519)
    assert here["signing_bytes"] != there["signing_bytes"] and here["hash"] != there["hash"]
    vote = vote_from(case_named("vote.json", "prevote")["fields"])
    vote.verify(ED25519, "city-test-1")
    with pytest.raises(ProofError):
        vote.verify(ED25519, "city-test-2")


# -- (d) one-byte changes -----------------------------------------------------------------------
def fails_verify(shape: Shape, case: dict[str, Any], obj: Any) -> bool:
    assert shape.verify is not None
    try:
        shape.verify(case, obj)
    except CitychainError:
        return True
    return False


def change_is_visible(shape: Shape, case: dict[str, Any], obj: Any) -> bool:
    """True if the value decoded from changed bytes shows the change: signatures that no
    longer verify (signed shapes; and another hash where the shape has one), else another
    hash (or, for a block, roots that no longer match its contents)."""
    other_hash = shape.hash is not None and shape.hash(obj).hex() != expected_hash(shape, case)
    if shape.signing_bytes is not None:
        return fails_verify(shape, case, obj) and (shape.hash is None or other_hash)
    return other_hash or (shape.verify is not None and fails_verify(shape, case, obj))


@pytest.mark.parametrize(("shape", "case"), shape_cases())
def test_one_byte_changes_are_refused_or_change_the_value(
    shape: Shape, case: dict[str, Any]
) -> None:
    data = hx(case["encoding"])
    n = len(data)
    for index in sorted({0, 1, n // 3, n // 2, n - 2, n - 1}):
        for value in range(256):
            if value == data[index]:
                continue
            changed = data[:index] + bytes([value]) + data[index + 1 :]
            try:
                obj = shape.decode(changed)
            except CitychainError:
                continue
            # Another value, never a second encoding of the same one ...
            assert shape.encode(obj) == changed, (index, value)
            # ... and a visible one: another hash, or signatures that fail.
            assert change_is_visible(shape, case, obj), (index, value)


@pytest.mark.parametrize("file", ["transaction.json", "header.json"])
def test_the_version_item_must_be_the_integer_1(file: str) -> None:
    shape = BY_FILE[file]
    data = hx(load(file)["cases"][0]["encoding"])
    assert data[1] == 0x01  # the version item follows the array head
    try:
        shape.decode(data[:1] + b"\xf5" + data[2:])
    except DecodeError:
        return
    raise AssertionError("true was accepted as the version item")


@pytest.mark.parametrize(
    ("file", "case", "tagged"),
    [
        # RFC 8949 self-described CBOR (tag 55799) around a whole transaction
        ("transaction.json", "token_transfer", lambda data: b"\xd9\xd9\xf7" + data),
        # a stringref namespace (tag 256): decodes to the very same value
        ("header.json", "first_block", lambda data: b"\xd9\x01\x00" + data),
        # height 1 as a tag 2 bignum
        ("vote.json", "prevote", lambda data: data[:2] + b"\xc2\x41\x01" + data[3:]),
    ],
)
def test_tags_around_or_inside_a_vector_are_refused(
    file: str, case: str, tagged: Callable[[bytes], bytes]
) -> None:
    # Tags carry no meaning in citychain's data: a decoder refuses them outright, even those a
    # general CBOR library would unwrap to the very same value.
    with pytest.raises(DecodeError):
        BY_FILE[file].decode(tagged(hx(case_named(file, case)["encoding"])))


# -- the files fit together ---------------------------------------------------------------------
def test_the_block_vectors_commit_to_the_other_vectors() -> None:
    for case in load("block.json")["cases"]:
        block = block_from(case["fields"])
        block.check_tx_root()
        assert [t.encode().hex() for t in block.txs] == [
            case_named("transaction.json", n)["encoding"] for n in case["transactions"]
        ]
        assert [e.encode().hex() for e in block.evidence] == [
            case_named("evidence.json", n)["encoding"] for n in case["evidence"]
        ]
        receipts = [hx(case_named("receipt.json", n)["encoding"]) for n in case["receipts"]]
        assert merkle.root(receipts) == block.header.results_root
        for tx, name in zip(block.txs, case["receipts"], strict=True):
            assert case_named("receipt.json", name)["fields"]["tx_hash"] == tx.hash.hex()
    first = case_named("header.json", "first_block")
    second = case_named("block.json", "with_transactions_and_evidence")
    assert second["fields"]["header"]["prev_hash"] == first["hash"]
    assert first["fields"]["validators_hash"] == case_named("validator_set.json", "four")["hash"]
    for p in load("proposal.json")["cases"]:
        block_bytes = hx(case_named("block.json", p["block"])["encoding"])
        parts = [messages.part_hash(x).hex() for x in messages.split_parts(block_bytes)]
        assert p["fields"]["part_hashes"] == parts
        assert p["fields"]["block_hash"] == case_named("block.json", p["block"])["hash"]


def test_receipts_name_their_transactions() -> None:
    for case in load("receipt.json")["cases"]:
        tx = case_named("transaction.json", case["transaction"])
        assert case["fields"]["tx_hash"] == tx["hash"]
        if case["fields"]["code"] != "ok":  # a failed transaction's events are dropped
            assert case["fields"]["events"] == [] and case["fields"]["result"] is None


@pytest.mark.parametrize("case", load("validator_set.json")["cases"], ids=lambda c: c["name"])
def test_validator_set_encodings_order_and_hash(case: dict[str, Any]) -> None:
    vset = validators_from(case["fields"]["validators"])
    assert [v.encode().hex() for v in vset] == case["encodings"]
    assert vset.hash.hex() == case["hash"]
    assert merkle.root([hx(e) for e in case["encodings"]]).hex() == case["hash"]
    keys = []
    for e in case["encodings"]:
        item = codec.decode(hx(e))
        assert codec.encode(item).hex() == e
        assert [type(x) for x in item] == [bytes, int, str]
        keys.append(item[0])
    assert keys == sorted(keys)  # set order: by public key, bytewise


# -- a property beyond the fixed vectors ----------------------------------------------------------
SIGNERS = [Signer(ED25519, hx(k["seed"])) for k in load("transaction.json")["keys"].values()]
texts = st.text(st.characters(codec="utf-8"), max_size=12)


@st.composite
def endorsed_transactions(draw: st.DrawFn) -> Transaction:
    people = draw(st.permutations(SIGNERS))
    return Transaction.create(
        people[0],
        chain_id=draw(texts.filter(bool)),
        nonce=draw(st.integers(0, 2**64 - 1)),
        expiry=draw(st.integers(0, 2**64 - 1)),
        contract=draw(st.sampled_from(["token", "gov", "registry"])),
        method=draw(texts.filter(bool)),
        args=draw(
            st.dictionaries(
                texts,
                st.none() | st.integers(-(2**70), 2**70) | st.binary(max_size=24) | texts,
                max_size=4,
            )
        ),
        gas_limit=draw(st.integers(0, 2**64 - 1)),
        endorsers=people[1 : 1 + draw(st.integers(0, 3))],
    )


@settings(max_examples=150, deadline=None)
@given(endorsed_transactions(), st.data())
def test_no_one_byte_change_of_a_signed_transaction_keeps_it_valid(
    tx: Transaction, data: st.DataObject
) -> None:
    # tests/types covers round trips without endorsers and garbage input; this covers what a
    # relay could do to a signed, endorsed transaction: change any one byte.
    wire = tx.encode()
    index = data.draw(st.integers(0, len(wire) - 1), label="index")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != wire[index]), label="value")
    changed = wire[:index] + bytes([value]) + wire[index + 1 :]
    try:
        back = Transaction.decode(changed)
    except CitychainError:
        return
    assert fresh_tx_encoding(back) == changed
    assert back.hash != tx.hash
    assert not back.verify_signature(ED25519)
