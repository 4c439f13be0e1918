"""The node's JSON answers back into :mod:`citychain.types` values, checked as they go.

A node is not trusted to answer well: anything missing, mistyped or inconsistent (a header
that does not hash to the hash it came with) raises :class:`DecodeError` naming what was
wrong, never a ``KeyError`` or ``TypeError``.

Hashes are the chain's: every parser of a hashed value takes ``hash_new``, the chain's hash as
a hashlib-style constructor (its suite's ``hash_new``; SHA-256 unless given), and the values it
returns carry it, so their ``hash`` is what the node computed on its side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from citychain.crypto import HashNew, suite_for
from citychain.errors import CitychainError, DecodeError, ErrorCode
from citychain.proof import merkle
from citychain.sdk._types import (
    AccountInfo,
    BlockInfo,
    CommittedEvent,
    EvidenceInfo,
    NodeStatus,
    StateProof,
    SubmitResult,
    TxInfo,
    TxStatus,
    WithheldTx,
)
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
)
from citychain.types.tx import json_to_codec

T = TypeVar("T")


def bad_answer(what: str) -> DecodeError:
    return DecodeError(f"unexpected answer from the node: {what}", ErrorCode.MALFORMED)


def parsed(what: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; any shape error inside becomes a :class:`DecodeError` about ``what``."""
    try:
        return fn()
    except CitychainError as exc:
        if exc.code == ErrorCode.MALFORMED and exc.message.startswith("unexpected answer"):
            raise
        raise bad_answer(f"{what}: {exc.message}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise bad_answer(f"{what} is malformed ({type(exc).__name__}: {exc})") from None


def obj(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def hexb(value: Any, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected a hex string, got {type(value).__name__}")
    data = bytes.fromhex(value)
    if size is not None and len(data) != size:
        raise ValueError(f"expected {size} bytes, got {len(data)}")
    return data


def integer(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def opt_int(value: Any) -> int | None:
    return None if value is None else integer(value)


# -- types ----------------------------------------------------------------------------------


_SHA256: HashNew = hashlib.sha256


def header(raw: Any, hash_new: HashNew = _SHA256) -> Header:
    d = obj(raw)
    h = Header(
        chain_id=text(d["chain_id"]),
        height=integer(d["height"]),
        time=integer(d["time"]),
        prev_hash=hexb(d["prev_hash"], 32),
        tx_root=hexb(d["tx_root"], 32),
        results_root=hexb(d["results_root"], 32),
        state_root=hexb(d["state_root"], 32),
        validators_hash=hexb(d["validators_hash"], 32),
        proposer=hexb(d["proposer"]),
        version=integer(d["version"]),
        evidence_root=hexb(d["evidence_root"], 32),
        hash_new=hash_new,
    )
    if "hash" in d and hexb(d["hash"], 32) != h.hash:
        raise ValueError("the header does not hash to its reported hash")
    return h


def commit(raw: Any) -> Commit:
    d = obj(raw)
    sigs = tuple(
        CommitSig(hexb(obj(s)["validator"]), hexb(obj(s)["signature"])) for s in d["signatures"]
    )
    return Commit(integer(d["height"]), integer(d["round"]), hexb(d["block_hash"], 32), sigs)


def transaction(raw: Any, hash_new: HashNew = _SHA256) -> Transaction:
    d = obj(raw)
    args = json_to_codec(obj(d["args"]))
    tx = Transaction(
        chain_id=text(d["chain_id"]),
        sender=hexb(d["sender"]),
        nonce=integer(d["nonce"]),
        expiry=integer(d["expiry"]),
        contract=text(d["contract"]),
        method=text(d["method"]),
        args=args,
        gas_limit=integer(d["gas_limit"]),
        signature=hexb(d["signature"]),
        endorsements=tuple(
            (hexb(obj(e)["public_key"]), hexb(obj(e)["signature"]))
            for e in d.get("endorsements", [])
        ),
        hash_new=hash_new,
    )
    if "hash" in d and hexb(d["hash"], 32) != tx.hash:
        raise ValueError("a transaction does not hash to its reported hash")
    return tx


def withheld_tx(raw: Any) -> WithheldTx:
    """A transaction the node withheld from this reader (``"withheld": true``)."""
    d = obj(raw)
    if d.get("withheld") is not True:
        raise ValueError("a withheld transaction must say so ('withheld': true)")
    return WithheldTx(
        hexb(d["hash"], 32), text(d["contract"]), text(d["method"]), hexb(d["leaf"], 32)
    )


def _is_withheld(raw: Any) -> bool:
    return isinstance(raw, dict) and "withheld" in raw


def event(raw: Any) -> Event:
    d = obj(raw)
    return Event(text(d["contract"]), text(d["type"]), json_to_codec(obj(d["attributes"])))


def receipt(raw: Any) -> Receipt:
    d = obj(raw)
    return Receipt(
        tx_hash=hexb(d["tx_hash"], 32),
        code=text(d["code"]),
        message=text(d["message"]),
        gas_used=integer(d["gas_used"]),
        result=json_to_codec(d["result"]),
        events=tuple(event(e) for e in d["events"]),
    )


def validator_set(raw: Any, hash_new: HashNew = _SHA256) -> ValidatorSet:
    d = obj(raw)
    vs = ValidatorSet(
        (
            Validator(hexb(obj(v)["public_key"]), integer(v["power"]), text(v.get("name", "")))
            for v in d["validators"]
        ),
        hash_new=hash_new,
    )
    if "hash" in d and hexb(d["hash"], 32) != vs.hash:
        raise ValueError("the validator set does not hash to its reported hash")
    return vs


def vote(raw: Any) -> Vote:
    d = obj(raw)
    kinds = {"prevote": VoteType.PREVOTE, "precommit": VoteType.PRECOMMIT}
    kind = text(d["type"])
    if kind not in kinds:
        raise ValueError(f"unknown vote type {kind!r}")
    block_hash = d["block_hash"]
    return Vote(
        kinds[kind],
        integer(d["height"]),
        integer(d["round"]),
        b"" if block_hash is None else hexb(block_hash, 32),
        hexb(d["validator"]),
        hexb(d["signature"]),
    )


def evidence(raw: Any, hash_new: HashNew = _SHA256) -> DuplicateVoteEvidence:
    d = obj(raw)
    if text(d["kind"]) != "duplicate_vote":
        raise ValueError(f"unknown evidence kind {d['kind']!r}")
    ev = DuplicateVoteEvidence(vote(d["vote_a"]), vote(d["vote_b"]), hash_new=hash_new)
    if "hash" in d and hexb(d["hash"], 32) != ev.hash:
        raise ValueError("evidence does not hash to its reported hash")
    return ev


def block_info(raw: Any, hash_new: HashNew = _SHA256) -> BlockInfo:
    d = obj(raw)
    items = d["txs"]
    if not isinstance(items, list):
        raise ValueError("'txs' must be a list")
    withheld = tuple((i, withheld_tx(t)) for i, t in enumerate(items) if _is_withheld(t))
    by_index = dict(withheld)
    b = Block(
        header(d["header"], hash_new),
        tuple(transaction(t, hash_new) for i, t in enumerate(items) if i not in by_index),
        tuple(evidence(e, hash_new) for e in d.get("evidence", [])),
    )
    # The header commits to every transaction: the shown ones by their bytes, the withheld
    # ones by the leaf the node gave, which must sit where the root says.
    shown = iter(b.txs)
    leaves = [
        by_index[i].leaf if i in by_index else merkle.leaf_hash(next(shown).encode(), hash_new)
        for i in range(len(items))
    ]
    if merkle.root_of_leaves(leaves, hash_new) != b.header.tx_root:
        raise ValueError("transactions do not match the header's tx_root")
    c = commit(d["commit"])
    if c.block_hash != b.hash or c.height != b.height:
        raise ValueError("the commit is for another block")
    return BlockInfo(b, c, withheld)


def tx_info(raw: Any, hash_new: HashNew = _SHA256) -> TxInfo:
    d = obj(raw)
    status = text(d["status"])
    if status not in (TxStatus.PENDING, TxStatus.COMMITTED):
        raise ValueError(f"unknown transaction status {status!r}")
    if _is_withheld(d["tx"]):
        w = withheld_tx(d["tx"])
        if "hash" in d and hexb(d["hash"], 32) != w.hash:
            raise ValueError("the transaction is not the one asked for")
        if d.get("receipt") is not None:
            raise ValueError("a withheld transaction comes without its receipt")
        height, index = opt_int(d.get("height")), opt_int(d.get("index"))
        return TxInfo(TxStatus(status), None, height, index, None, w)
    tx = transaction(d["tx"], hash_new)
    if "hash" in d and hexb(d["hash"], 32) != tx.hash:
        raise ValueError("the transaction does not hash to its reported hash")
    r = receipt(d["receipt"]) if d.get("receipt") is not None else None
    if r is not None and r.tx_hash != tx.hash:
        raise ValueError("the receipt is for another transaction")
    return TxInfo(TxStatus(status), tx, opt_int(d.get("height")), opt_int(d.get("index")), r)


def submit_result(raw: Any) -> SubmitResult:
    """One item of a batch's ``results``. A code this SDK does not know (a newer node) reads
    as ``INTERNAL`` with the node's code in the message, as error answers do."""
    d = obj(raw)
    h = d.get("hash")
    code, message = text(d["code"]), text(d["message"])
    try:
        known = ErrorCode(code)
    except ValueError:
        known, message = ErrorCode.INTERNAL, f"{message} (node error code {code!r})"
    return SubmitResult(None if h is None else hexb(h, 32), known, message)


def account(raw: Any) -> AccountInfo:
    d = obj(raw)
    return AccountInfo(hexb(d["address"]), integer(d["nonce"]), integer(d["pending_nonce"]))


def status(raw: Any) -> NodeStatus:
    d = obj(raw)
    mempool = obj(d["mempool"])
    suite = text(d["crypto_suite"])
    params_raw = obj(d.get("crypto_params") or {})
    params = {text(k): text(v) for k, v in params_raw.items()}
    try:  # the validator set's hash is the chain's: the suite the status names
        new = suite_for(suite, params).hash_new
    except CitychainError as exc:
        raise ValueError(f"the chain's crypto suite {suite!r}: {exc.message}") from None
    return NodeStatus(
        chain_id=text(d["chain_id"]),
        crypto_suite=suite,
        node_id=text(d["node_id"]),
        public_key=hexb(d["public_key"]),
        height=integer(d["height"]),
        latest_hash=hexb(d["latest_block_hash"], 32),
        state_root=hexb(d["state_root"], 32),
        latest_time=integer(d["latest_block_time"]),
        mempool_txs=integer(mempool["txs"]),
        mempool_bytes=integer(mempool["bytes"]),
        validators=validator_set(d["validators"], new),
        syncing=bool(d["syncing"]),
        version=text(d["version"]),
        crypto_params=params,
    )


def state_proof(raw: Any, hash_new: HashNew = _SHA256) -> StateProof:
    """A state answer as the node sent it; nothing is verified here (``get_state`` does)."""
    d = obj(raw)
    return StateProof(
        key=hexb(d["key"]),
        value=None if d["value"] is None else hexb(d["value"]),
        height=integer(d["height"]),
        proof=hexb(d["proof"]),
        header=header(d["header"], hash_new),
        commit=commit(d["commit"]),
    )


def committed_event(raw: Any) -> CommittedEvent:
    d = obj(raw)
    return CommittedEvent(
        integer(d["height"]), hexb(d["tx_hash"], 32), integer(d["tx_index"]), event(d["event"])
    )


def evidence_info(raw: Any, hash_new: HashNew = _SHA256) -> EvidenceInfo:
    d = obj(raw)
    committed = tuple(
        (integer(obj(c)["committed_height"]), evidence(obj(c)["evidence"], hash_new))
        for c in d["committed"]
    )
    return EvidenceInfo(committed, tuple(evidence(e, hash_new) for e in d["pending"]))
