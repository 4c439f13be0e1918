"""Writes citychain's canonical-bytes conformance vectors (the ``*.json`` files beside this one).

Run it ONLY when the wire format changes on purpose, then review and commit the diff together
with the change of format::

    .venv/bin/python tests/vectors/canonical/generate.py

Every test run checks the committed files against the code (``tests/vectors/
test_canonical_vectors.py``): it rebuilds each object from the JSON fields and compares the
bytes, decodes the bytes, verifies the signatures, and compares the files with what this
script would write now. So a change of format that was not meant fails the suite, and
implementers in other languages have fixed bytes to check against.

Theory of operation: the inputs are fixed below (fixed Ed25519 seeds, fixed field values);
objects are built with citychain's own types, signed with the fixed keys (Ed25519 signing is
deterministic, RFC 8032), and written out as JSON with their canonical encoding, signing
bytes, hash and signatures in hex. The files reference each other by case name (a receipt
names the transaction it belongs to; a block embeds transactions, receipts and evidence of the
other files), so the whole set is one consistent small chain history. The file format is
described in README.md beside this file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from citychain.consensus import messages
from citychain.crypto import ED25519, Signer
from citychain.proof import merkle
from citychain.types import (
    NIL,
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
    evidence_root,
    tx_root,
    vote_signing_bytes,
)
from citychain.types.tx import codec_to_json

HERE = Path(__file__).resolve().parent
FORMAT = "citychain/canonical-vectors/v1"
CHAIN = "city-test-1"
OTHER_CHAIN = "city-test-2"

#: The test keys: the secret keys (seeds) of RFC 8032 section 7.1, so an implementer can first
#: check their Ed25519 against the RFC's own vectors.
SEEDS = {
    "alice": ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "TEST 1"),
    "bob": ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "TEST 2"),
    "carol": ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "TEST 3"),
    "dave": ("f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5", "TEST 1024"),
}
SIGNERS = {name: Signer(ED25519, bytes.fromhex(seed)) for name, (seed, _) in SEEDS.items()}
ALICE, BOB, CAROL, DAVE = (SIGNERS[n] for n in ("alice", "bob", "carol", "dave"))
KEY_NAMES = {s.public_key: name for name, s in SIGNERS.items()}

#: 2026-01-01T00:00:00Z in milliseconds: block times are milliseconds since the Unix epoch.
T0 = 1_767_225_600_000


def fixed_hash(label: str) -> bytes:
    """A stand-in 32-byte hash for a root these vectors do not compute (the state root)."""
    return hashlib.sha256(label.encode()).digest()


# -- JSON views ---------------------------------------------------------------------------------
def keys_json() -> dict[str, Any]:
    return {
        name: {
            "seed": seed,
            "public_key": SIGNERS[name].public_key.hex(),
            "address": SIGNERS[name].address.hex(),
            "source": f"RFC 8032 section 7.1, {test}: its SECRET KEY is the seed",
        }
        for name, (seed, test) in SEEDS.items()
    }


def sig_json(public_key: bytes, signature: bytes) -> dict[str, str]:
    return {
        "key": KEY_NAMES[public_key],
        "public_key": public_key.hex(),
        "signature": signature.hex(),
    }


def tx_fields(tx: Transaction) -> dict[str, Any]:
    return {
        "chain_id": tx.chain_id,
        "sender": tx.sender.hex(),
        "nonce": tx.nonce,
        "expiry": tx.expiry,
        "contract": tx.contract,
        "method": tx.method,
        "args": codec_to_json(tx.args),
        "gas_limit": tx.gas_limit,
        "signature": tx.signature.hex(),
        "endorsements": [
            {"public_key": pk.hex(), "signature": sig.hex()} for pk, sig in tx.endorsements
        ],
    }


def header_fields(h: Header) -> dict[str, Any]:
    return {
        "version": h.version,
        "chain_id": h.chain_id,
        "height": h.height,
        "time": h.time,
        "prev_hash": h.prev_hash.hex(),
        "tx_root": h.tx_root.hex(),
        "results_root": h.results_root.hex(),
        "state_root": h.state_root.hex(),
        "validators_hash": h.validators_hash.hex(),
        "proposer": h.proposer.hex(),
        "evidence_root": h.evidence_root.hex(),
    }


def vote_fields(v: Vote) -> dict[str, Any]:
    return {
        "type": int(v.type),
        "height": v.height,
        "round": v.round,
        "block_hash": v.block_hash.hex(),
        "validator": v.validator.hex(),
        "signature": v.signature.hex(),
    }


def evidence_fields(e: DuplicateVoteEvidence) -> dict[str, Any]:
    return {"vote_a": vote_fields(e.vote_a), "vote_b": vote_fields(e.vote_b)}


def validators_json(validators: Sequence[Validator]) -> list[dict[str, Any]]:
    return [
        {"public_key": v.public_key.hex(), "power": v.power, "name": v.name} for v in validators
    ]


def shape_file(shape: str, about: dict[str, Any], cases: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "shape": shape,
        "generated_by": "tests/vectors/canonical/generate.py (do not edit by hand)",
        **about,
        "keys": keys_json(),
        "cases": cases,
    }


# -- the fixed inputs -----------------------------------------------------------------------------
def transactions() -> dict[str, tuple[str, Transaction]]:
    transfer_args = {"to": BOB.address, "amount": 250}
    return {
        "token_transfer": (
            "A token transfer from alice to bob's address, no endorsements: 10 items.",
            Transaction.create(
                ALICE,
                chain_id=CHAIN,
                nonce=0,
                expiry=1000,
                contract="token",
                method="transfer",
                args=transfer_args,
                gas_limit=100_000,
            ),
        ),
        "token_transfer_other_chain": (
            "The same fields as token_transfer on another chain: the chain id is in the wire "
            "form and in the signing bytes, so signing bytes, signature and hash all differ.",
            Transaction.create(
                ALICE,
                chain_id=OTHER_CHAIN,
                nonce=0,
                expiry=1000,
                contract="token",
                method="transfer",
                args=transfer_args,
                gas_limit=100_000,
            ),
        ),
        "every_value_kind": (
            "Arguments holding every kind of value the codec allows: null, booleans, integers "
            "at the width boundaries of the CBOR head (23/24, 255/256, 65535/65536, 2^32, "
            "2^64-1) and beyond 64 bits (tag 2 and tag 3 bignums), negative integers, byte "
            "and text strings (one non-ASCII), nested arrays and maps. Map keys of different "
            "lengths and non-ASCII keys show the key order: by the bytes of each key's "
            "encoding. Maximal expiry 2^63-1 (the default of Transaction.create).",
            Transaction.create(
                BOB,
                chain_id=CHAIN,
                nonce=7,
                contract="registry",
                method="put",
                args={
                    "zz": None,
                    "b": True,
                    "a": False,
                    "\u00e9": "\u00e9t\u00e9",
                    "ints": [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1],
                    "neg": [-1, -24, -25, -256, -257, -(2**64)],
                    "big": [2**64, -(2**64) - 1],
                    "bytes": [b"", bytes(range(24))],
                    "nested": {"list": [[], {}], "map": {"k": "v"}},
                    "longer_key_sorts_after_shorter": 1,
                },
                gas_limit=2**32,
            ),
        ),
        "empty_args": (
            "An empty argument map (one byte, 0xa0) and small gas limit.",
            Transaction.create(
                CAROL,
                chain_id=CHAIN,
                nonce=1,
                expiry=24,
                contract="token",
                method="issuers",
                args={},
                gas_limit=23,
            ),
        ),
        "one_endorser": (
            "alice sends, bob endorses: an 11th item [[bob_public_key, bob_signature]]; the "
            "signing bytes end with [bob_public_key], and both signatures cover them.",
            Transaction.create(
                ALICE,
                chain_id=CHAIN,
                nonce=1,
                expiry=1000,
                contract="token",
                method="mint",
                args={"to": CAROL.address, "amount": 1_000_000},
                gas_limit=100_000,
                endorsers=[BOB],
            ),
        ),
        "two_endorsers": (
            "alice sends, carol then bob endorse (endorsements keep the order the sender "
            "listed, which need not be sorted): the signing bytes end with [carol_key, "
            "bob_key] and all three signatures cover them.",
            Transaction.create(
                ALICE,
                chain_id=CHAIN,
                nonce=2,
                expiry=1000,
                contract="gov",
                method="vote",
                args={"proposal": 1, "approve": True},
                gas_limit=200_000,
                endorsers=[CAROL, BOB],
            ),
        ),
    }


def validator_sets() -> dict[str, tuple[str, list[Validator]]]:
    return {
        "single": (
            "One validator: the set hash is the Merkle leaf hash of its encoding.",
            [
                Validator(ALICE.public_key, 1, "org1-node1"),
            ],
        ),
        "four": (
            "Four validators listed in an order that is not the set's: the set is ordered by "
            "public key (bytewise), whatever order the input lists them in.",
            [
                Validator(ALICE.public_key, 10, "org1-node1"),
                Validator(BOB.public_key, 10, "org2-node1"),
                Validator(CAROL.public_key, 10, "org3-node1"),
                Validator(DAVE.public_key, 10, ""),
            ],
        ),
    }


def headers(vsets: dict[str, ValidatorSet]) -> dict[str, tuple[str, Header]]:
    first = Header(
        chain_id=CHAIN,
        height=1,
        time=T0,
        prev_hash=bytes(32),
        tx_root=tx_root([]),
        results_root=merkle.root([]),
        state_root=fixed_hash("state after block 1"),
        validators_hash=vsets["four"].hash,
        proposer=ALICE.public_key,
    )
    return {
        "first_block": (
            "Height 1: prev_hash is 32 zero bytes; no transactions, receipts or evidence, so "
            "tx_root, results_root and evidence_root are sha256 of the empty string.",
            first,
        ),
        "large_numbers": (
            "Height 65536 and a time past 2^40 ms (multi-byte integer heads); solo chain.",
            Header(
                chain_id=CHAIN,
                height=65536,
                time=2**40 + 1,
                prev_hash=fixed_hash("block 65535"),
                tx_root=tx_root([]),
                results_root=merkle.root([]),
                state_root=fixed_hash("state after block 65536"),
                validators_hash=vsets["single"].hash,
                proposer=ALICE.public_key,
            ),
        ),
    }


def signed_vote(
    signer: Signer, vote_type: VoteType, height: int, round_: int, block_hash: bytes
) -> Vote:
    unsigned = Vote(vote_type, height, round_, block_hash, signer.public_key, b"")
    sig = signer.sign(unsigned.sign_bytes(CHAIN))
    return Vote(vote_type, height, round_, block_hash, signer.public_key, sig)


def votes(block: bytes) -> dict[str, tuple[str, Vote]]:
    return {
        "prevote": (
            "alice prevotes the first_block header at height 1, round 0.",
            signed_vote(ALICE, VoteType.PREVOTE, 1, 0, block),
        ),
        "precommit": (
            "bob precommits the first_block header at height 1, round 0.",
            signed_vote(BOB, VoteType.PRECOMMIT, 1, 0, block),
        ),
        "nil_prevote": (
            "carol prevotes nil (an empty block hash) at height 300, round 3.",
            signed_vote(CAROL, VoteType.PREVOTE, 300, 3, NIL),
        ),
        "nil_precommit": (
            "dave precommits nil at height 300, round 24.",
            signed_vote(DAVE, VoteType.PRECOMMIT, 300, 24, NIL),
        ),
    }


def evidences(block: bytes) -> dict[str, tuple[str, DuplicateVoteEvidence]]:
    other = fixed_hash("a conflicting block at height 5")
    return {
        "double_prevote": (
            "alice prevoted a block and nil at height 5, round 0. The two votes are in "
            "canonical order: by their signing bytes, bytewise.",
            DuplicateVoteEvidence.of(
                CHAIN,
                signed_vote(ALICE, VoteType.PREVOTE, 5, 0, block),
                signed_vote(ALICE, VoteType.PREVOTE, 5, 0, NIL),
            ),
        ),
        "double_precommit": (
            "bob precommitted two different blocks at height 5, round 1.",
            DuplicateVoteEvidence.of(
                CHAIN,
                signed_vote(BOB, VoteType.PRECOMMIT, 5, 1, block),
                signed_vote(BOB, VoteType.PRECOMMIT, 5, 1, other),
            ),
        ),
    }


def receipts(txs: dict[str, Transaction]) -> dict[str, tuple[str, str, Receipt]]:
    """name -> (description, transaction case name, receipt)."""
    transfer = txs["token_transfer"]
    failed = txs["one_endorser"]
    return {
        "transfer_ok": (
            "Success with one event: the token_transfer transaction's receipt.",
            "token_transfer",
            Receipt(
                transfer.hash,
                "ok",
                "",
                1843,
                None,
                (
                    Event(
                        "token",
                        "transfer",
                        {"from": ALICE.address, "to": BOB.address, "amount": 250},
                    ),
                ),
            ),
        ),
        "ok_with_result_and_events": (
            "Success with a result value and two events (events keep emission order).",
            "every_value_kind",
            Receipt(
                txs["every_value_kind"].hash,
                "ok",
                "",
                70_000,
                {"id": 12, "key": b"\x00\xff", "created": True},
                (
                    Event("registry", "put", {"id": 12}),
                    Event("registry", "indexed", {"tags": ["a", "b"], "count": 2}),
                ),
            ),
        ),
        "failed_unauthorized": (
            "Failure: an error code and message, the gas used, no result and no events (a "
            "failed transaction's events are dropped with its writes): the one_endorser mint "
            "by an account that is not an issuer.",
            "one_endorser",
            Receipt(
                failed.hash,
                "unauthorized",
                f"only an issuer may mint; {ALICE.address.hex()} is not one",
                912,
                None,
                (),
            ),
        ),
    }


def proposal(
    signer: Signer, height: int, round_: int, pol_round: int, block: Block
) -> messages.Proposal:
    parts = tuple(messages.part_hash(p) for p in messages.split_parts(block.encode()))
    unsigned = messages.Proposal(height, round_, pol_round, block.hash, parts, signer.public_key)
    return messages.Proposal(
        height,
        round_,
        pol_round,
        block.hash,
        parts,
        signer.public_key,
        signer.sign(unsigned.sign_bytes(CHAIN)),
    )


# -- the files ----------------------------------------------------------------------------------
def build() -> dict[str, str]:
    """File name -> the exact text this generator writes."""
    files: dict[str, dict[str, Any]] = {}

    tx_cases = transactions()
    txs = {name: tx for name, (_, tx) in tx_cases.items()}
    files["transaction.json"] = shape_file(
        "transaction",
        {
            "wire": "[1, chain_id, sender, nonce, expiry, contract, method, args, gas_limit, "
            "signature] plus an 11th item [[public_key, signature], ...] with endorsements",
            "signing_bytes": '["citychain/tx/v1", chain_id, sender, nonce, expiry, contract, '
            "method, args, gas_limit] plus a 10th item [endorser public_key, ...] with "
            "endorsements; the sender and every endorser sign these same bytes",
            "hash": "sha256(encoding): the transaction hash",
        },
        [
            {
                "name": name,
                "description": about,
                "fields": tx_fields(tx),
                "encoding": tx.encode().hex(),
                "signing_bytes": tx.signing_bytes().hex(),
                "signatures": [
                    sig_json(tx.sender, tx.signature),
                    *(sig_json(pk, sig) for pk, sig in tx.endorsements),
                ],
                "hash": tx.hash.hex(),
            }
            for name, (about, tx) in tx_cases.items()
        ],
    )

    vset_cases = validator_sets()
    vsets = {name: ValidatorSet(vals) for name, (_, vals) in vset_cases.items()}
    files["validator_set.json"] = shape_file(
        "validator_set",
        {
            "wire": "each validator is [public_key, power, name]; the set is ordered by "
            "public key, bytewise",
            "signing_bytes": None,
            "hash": "the Merkle root (RFC 6962 shape, see README.md) of the validators' "
            "encodings in set order: a header's validators_hash",
        },
        [
            {
                "name": name,
                "description": about,
                "fields": {"validators": validators_json(vals)},
                "encodings": [v.encode().hex() for v in vsets[name]],
                "hash": vsets[name].hash.hex(),
            }
            for name, (about, vals) in vset_cases.items()
        ],
    )

    header_cases = headers(vsets)
    first = header_cases["first_block"][1]
    files["header.json"] = shape_file(
        "header",
        {
            "wire": "[version, chain_id, height, time, prev_hash, tx_root, results_root, "
            "state_root, validators_hash, proposer, evidence_root]; version is 1",
            "signing_bytes": None,
            "hash": "sha256(encoding): the block hash (what votes and commits sign)",
        },
        [
            {
                "name": name,
                "description": about,
                "fields": header_fields(h),
                "encoding": h.encode().hex(),
                "hash": h.hash.hex(),
            }
            for name, (about, h) in header_cases.items()
        ],
    )

    vote_cases = votes(first.hash)
    files["vote.json"] = shape_file(
        "vote",
        {
            "wire": "[type, height, round, block_hash, validator, signature]; type 1 is a "
            "prevote, 2 a precommit; block_hash is empty for nil. On the p2p channel a vote "
            'travels as ["vote", <this array>]',
            "signing_bytes": '["citychain/vote/v1", chain_id, type, height, round, '
            "block_hash]; the chain id (the case's chain_id) is not in the wire form",
            "hash": None,
        },
        [
            {
                "name": name,
                "description": about,
                "chain_id": CHAIN,
                "fields": vote_fields(v),
                "encoding": v.encode().hex(),
                "signing_bytes": v.sign_bytes(CHAIN).hex(),
                "signatures": [sig_json(v.validator, v.signature)],
            }
            for name, (about, v) in vote_cases.items()
        ],
    )

    commits = {
        "solo": (
            "A single validator's commit (solo mode): its one precommit, over the "
            "large_numbers header, whose validator set is the single one.",
            header_cases["large_numbers"][1],
            vsets["single"],
            vset_cases["single"][1],
            Commit.sign_single(ALICE, CHAIN, header_cases["large_numbers"][1]),
        ),
        "three_of_four": (
            "Three of four equal validators precommit the first_block header in round 1: "
            "30 of 40 power, more than two thirds. Signatures may come in any order.",
            first,
            vsets["four"],
            vset_cases["four"][1],
            Commit(
                first.height,
                1,
                first.hash,
                tuple(
                    CommitSig(
                        s.public_key,
                        s.sign(vote_signing_bytes(CHAIN, VoteType.PRECOMMIT, 1, 1, first.hash)),
                    )
                    for s in (CAROL, ALICE, DAVE)
                ),
            ),
        ),
    }
    files["commit.json"] = shape_file(
        "commit",
        {
            "wire": "[height, round, block_hash, [[validator, signature], ...]]",
            "signing_bytes": "every signature is a precommit for block_hash: "
            '["citychain/vote/v1", chain_id, 2, height, round, block_hash]',
            "hash": None,
            "verify": "the commit finalises the case's header when height and block_hash "
            "match it, the header's validators_hash is the hash of the case's validators, "
            "every signer is a distinct validator, every signature verifies, and the signers' "
            "power is more than 2/3 of the total",
        },
        [
            {
                "name": name,
                "description": about,
                "chain_id": CHAIN,
                "header": {**header_fields(h), "hash": h.hash.hex()},
                "validators": validators_json(vals),
                "fields": {
                    "height": c.height,
                    "round": c.round,
                    "block_hash": c.block_hash.hex(),
                    "signatures": [
                        {"validator": s.validator.hex(), "signature": s.signature.hex()}
                        for s in c.signatures
                    ],
                },
                "encoding": c.encode().hex(),
                "signing_bytes": vote_signing_bytes(
                    CHAIN, VoteType.PRECOMMIT, c.height, c.round, c.block_hash
                ).hex(),
                "signatures": [sig_json(s.validator, s.signature) for s in c.signatures],
            }
            for name, (about, h, vset, vals, c) in commits.items()
        ],
    )

    evidence_cases = evidences(fixed_hash("block at height 5"))
    files["evidence.json"] = shape_file(
        "duplicate_vote_evidence",
        {
            "wire": "[vote_a, vote_b]: two votes (each as in vote.json) by one validator for "
            "one height, round and type but different block hashes, ordered by their signing "
            "bytes (bytewise, vote_a first)",
            "signing_bytes": "a list of two: the signing bytes of vote_a and of vote_b",
            "hash": "sha256(encoding): the evidence hash (its Merkle leaf in evidence_root)",
        },
        [
            {
                "name": name,
                "description": about,
                "chain_id": CHAIN,
                "validators": validators_json([Validator(e.validator, 10, "")]),
                "fields": evidence_fields(e),
                "encoding": e.encode().hex(),
                "signing_bytes": [
                    e.vote_a.sign_bytes(CHAIN).hex(),
                    e.vote_b.sign_bytes(CHAIN).hex(),
                ],
                "signatures": [
                    sig_json(e.vote_a.validator, e.vote_a.signature),
                    sig_json(e.vote_b.validator, e.vote_b.signature),
                ],
                "hash": e.hash.hex(),
            }
            for name, (about, e) in evidence_cases.items()
        ],
    )

    receipt_cases = receipts(txs)
    files["receipt.json"] = shape_file(
        "receipt",
        {
            "wire": "[tx_hash, code, message, gas_used, result, [[contract, type, "
            'attributes], ...]]; code is "ok" or an error code',
            "signing_bytes": None,
            "hash": None,
            "leaf_hash": "sha256(0x00 || encoding): the receipt's Merkle leaf; a header's "
            "results_root is the Merkle root of its block's receipts in block order",
        },
        [
            {
                "name": name,
                "description": about,
                "transaction": tx_name,
                "fields": {
                    "tx_hash": r.tx_hash.hex(),
                    "code": r.code,
                    "message": r.message,
                    "gas_used": r.gas_used,
                    "result": codec_to_json(r.result),
                    "events": [e.to_json() for e in r.events],
                },
                "encoding": r.encode().hex(),
                "leaf_hash": merkle.leaf_hash(r.encode()).hex(),
            }
            for name, (about, tx_name, r) in receipt_cases.items()
        ],
    )

    in_block = ["token_transfer", "one_endorser"]
    block_receipts = ["transfer_ok", "failed_unauthorized"]
    block_evidence = ["double_prevote"]
    ev = tuple(evidence_cases[n][1] for n in block_evidence)
    block_txs = tuple(txs[n] for n in in_block)
    second = Header(
        chain_id=CHAIN,
        height=2,
        time=T0 + 1_000,
        prev_hash=first.hash,
        tx_root=tx_root(block_txs),
        results_root=merkle.root([receipt_cases[n][2].encode() for n in block_receipts]),
        state_root=fixed_hash("state after block 2"),
        validators_hash=vsets["four"].hash,
        proposer=BOB.public_key,
        evidence_root=evidence_root(ev),
    )
    blocks = {
        "empty": (
            "A block without transactions or evidence: [header, [], []].",
            [],
            [],
            [],
            Block(
                Header(
                    chain_id=CHAIN,
                    height=3,
                    time=T0 + 2_000,
                    prev_hash=second.hash,
                    tx_root=tx_root([]),
                    results_root=merkle.root([]),
                    state_root=fixed_hash("state after block 3"),
                    validators_hash=vsets["four"].hash,
                    proposer=CAROL.public_key,
                ),
                (),
            ),
        ),
        "with_transactions_and_evidence": (
            "Height 2 after first_block: the token_transfer and one_endorser transactions "
            "(embedded as their wire bytes), whose receipts are transfer_ok and "
            "failed_unauthorized, and the double_prevote evidence. tx_root, "
            "results_root and evidence_root are the Merkle roots of those encodings.",
            in_block,
            block_receipts,
            block_evidence,
            Block(second, block_txs, ev),
        ),
    }
    files["block.json"] = shape_file(
        "block",
        {
            "wire": "[header, [transaction wire bytes as byte strings, ...], [evidence, ...]]; "
            "the header as in header.json, each evidence as in evidence.json",
            "signing_bytes": None,
            "hash": "the header's hash",
        },
        [
            {
                "name": name,
                "description": about,
                "transactions": tx_names,
                "receipts": receipt_names,
                "evidence": evidence_names,
                "fields": {
                    "header": header_fields(b.header),
                    "txs": [t.encode().hex() for t in b.txs],
                    "evidence": [evidence_fields(e) for e in b.evidence],
                },
                "encoding": b.encode().hex(),
                "hash": b.hash.hex(),
            }
            for name, (about, tx_names, receipt_names, evidence_names, b) in blocks.items()
        ],
    )

    block2 = blocks["with_transactions_and_evidence"][4]
    proposals = {
        "round_0": (
            "bob proposes block with_transactions_and_evidence at height 2, round 0 "
            "(pol_round -1: no earlier round). One part: the block is under 64 KiB.",
            proposal(BOB, 2, 0, -1, block2),
        ),
        "round_2_with_pol": (
            "carol re-proposes the same block in round 2 with pol_round 1 (it saw a polka in "
            "round 1).",
            proposal(CAROL, 2, 2, 1, block2),
        ),
    }
    files["proposal.json"] = shape_file(
        "proposal",
        {
            "wire": '["proposal", height, round, pol_round, block_hash, [part_hash, ...], '
            "proposer, signature]: the consensus message; pol_round is -1 or an earlier "
            "round; part_hash is sha256 of each 65536-byte part of the block's encoding",
            "signing_bytes": '["citychain/proposal/v1", chain_id, height, round, pol_round, '
            "block_hash, [part_hash, ...]]",
            "hash": None,
        },
        [
            {
                "name": name,
                "description": about,
                "chain_id": CHAIN,
                "block": "with_transactions_and_evidence",
                "fields": {
                    "height": p.height,
                    "round": p.round,
                    "pol_round": p.pol_round,
                    "block_hash": p.block_hash.hex(),
                    "part_hashes": [h.hex() for h in p.part_hashes],
                    "proposer": p.proposer.hex(),
                    "signature": p.signature.hex(),
                },
                "encoding": messages.encode(p).hex(),
                "signing_bytes": p.sign_bytes(CHAIN).hex(),
                "signatures": [sig_json(p.proposer, p.signature)],
            }
            for name, (about, p) in proposals.items()
        ],
    )

    return {
        name: json.dumps(content, indent=2, ensure_ascii=True) + "\n"
        for name, content in sorted(files.items())
    }


def main() -> None:
    for name, text in build().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
