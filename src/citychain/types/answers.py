"""The node's answers about its chain, each defined once.

A node builds these (:mod:`citychain.api.node_service`, the mempool's admission), the API
renders them with their ``to_json`` (the bytes ``/v1/...`` answers), and the SDK parses that
JSON back into the same classes (:mod:`citychain.sdk._parse`). :mod:`citychain.api.models`
only describes the JSON for ``/openapi.json``; a test checks that its models name exactly the
keys ``to_json`` writes, so the document, the node and the SDK cannot drift apart.

Conventions of the JSON: byte strings are lowercase hex; times are milliseconds since the Unix
epoch; contract values are canonical values with byte strings as ``{"hex": "..."}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from citychain.errors import ErrorCode
from citychain.proof import merkle
from citychain.types.block import Block, Commit, Header
from citychain.types.evidence import DuplicateVoteEvidence
from citychain.types.receipt import CommittedEvent, Receipt
from citychain.types.tx import Transaction, codec_to_json
from citychain.types.validator import ValidatorSet

__all__ = [
    "AccountInfo",
    "BlockInfo",
    "EvidenceInfo",
    "NodeStatus",
    "StateProof",
    "SubmitResult",
    "TxInfo",
    "TxStatus",
    "WithheldTx",
    "closed_message_json",
    "event_message_json",
    "query_json",
    "validators_json",
]


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What happened to one submitted transaction.

    ``code`` is ``ErrorCode.OK`` when the transaction entered the mempool, else why it was
    refused (the code its receipt would carry). ``tx_hash`` is None only when the bytes did not
    decode as a transaction (or, from ``Mempool.insert``, when ``Mempool.check`` already
    refused it).
    """

    tx_hash: bytes | None
    code: ErrorCode
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == ErrorCode.OK

    def to_json(self, index: int) -> dict[str, Any]:
        """One item of ``POST /v1/txs``'s ``results``: ``index`` is its place in the batch."""
        return {
            "index": index,
            "hash": self.tx_hash.hex() if self.tx_hash is not None else None,
            "code": self.code.value,
            "message": self.message,
        }

    def to_dict(self) -> dict[str, str | None]:
        """A plain form for logs: ``tx_hash``, ``code`` and ``message``."""
        return {
            "tx_hash": self.tx_hash.hex() if self.tx_hash is not None else None,
            "code": self.code.value,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class WithheldTx:
    """A transaction whose content the node did not show this reader.

    A call of a method whose calls are not public (a contract's ``private_methods``: a data
    request's purpose, the people a dataset version is about...) is shown whole only to its
    sender, its endorsers and members in good standing of an organisation, by a signed read
    (RFC 9421); anyone else is told only what is here: its hash, the contract and method it
    called, and its ``leaf`` in the block's ``tx_root`` (the Merkle leaf hash of its
    encoding), so the header's commitment to the block's transactions still checks.
    """

    hash: bytes
    contract: str
    method: str
    leaf: bytes

    @classmethod
    def of(cls, tx: Transaction) -> WithheldTx:
        return cls(tx.hash, tx.contract, tx.method, merkle.leaf_hash(tx.encode(), tx.hash_new))

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.hash.hex(),
            "contract": self.contract,
            "method": self.method,
            "leaf": self.leaf.hex(),
            "withheld": True,
        }


#: Picks transactions: which ones an answer withholds from its reader (see
#: :class:`WithheldTx`), or which private calls a reader or subscriber may see.
TxFilter = Callable[[Transaction], bool]


class TxStatus(StrEnum):
    PENDING = "pending"  # in the node's mempool
    COMMITTED = "committed"  # in a committed block, with a receipt
    UNKNOWN = "unknown"  # neither (never seen, dropped, or expired); the API answers 404


@dataclass(frozen=True, slots=True)
class TxInfo:
    """Where a transaction is. ``tx`` is set unless the status is ``UNKNOWN`` (the API answers
    404 then, so the SDK only ever returns ``pending`` or ``committed``) or the node withheld
    it from this reader (``withheld`` is set instead, and ``receipt`` stays None);
    ``height``, ``index`` (its position in the block) and ``receipt`` are set only when
    ``COMMITTED``."""

    status: TxStatus
    tx: Transaction | None = None
    height: int | None = None
    index: int | None = None
    receipt: Receipt | None = None
    withheld: WithheldTx | None = None

    @property
    def tx_hash(self) -> bytes:
        """The transaction's hash (an unknown transaction has none here: ``ValueError``)."""
        if self.tx is not None:
            return self.tx.hash
        if self.withheld is not None:
            return self.withheld.hash
        raise ValueError("an unknown transaction carries no hash")

    @property
    def committed(self) -> bool:
        return self.status == TxStatus.COMMITTED

    def to_json(self, withhold: TxFilter | None = None) -> dict[str, Any]:
        """``GET /v1/txs/{hash}``: the transaction, and once committed its place and receipt;
        only its :class:`WithheldTx` form, and no receipt, if ``withhold`` says so."""
        withheld = self.withheld
        if self.tx is not None and withhold is not None and withhold(self.tx):
            withheld = WithheldTx.of(self.tx)
        if withheld is not None:
            tx, receipt = withheld.to_json(), None
        elif self.tx is not None:
            tx = self.tx.to_json()
            receipt = self.receipt.to_json() if self.receipt is not None else None
        else:
            raise ValueError("an unknown transaction has no JSON answer (the API answers 404)")
        return {
            "hash": self.tx_hash.hex(),
            "status": self.status.value,
            "tx": tx,
            "height": self.height,
            "index": self.index,
            "receipt": receipt,
        }


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """A committed block with the commit (2/3+ precommits) that finalised it.

    The SDK checks that the header hashes to the block hash the node reported, that every
    transaction hashes to its reported hash, and that the transactions match the header's
    ``tx_root``. It does not check the commit's signatures here (``get_state`` does).

    ``withheld`` lists, by their index in the block, the transactions the node did not show
    this reader (:class:`WithheldTx`); when it is not empty, ``block.txs`` holds only the
    others, in block order, and the block cannot be encoded or executed again from this
    answer (:meth:`entries` gives all of them in order). The ``tx_root`` check covers both.
    """

    block: Block
    commit: Commit
    withheld: tuple[tuple[int, WithheldTx], ...] = ()

    def entries(self) -> list[Transaction | WithheldTx]:
        """The block's transactions in order, each as this reader was shown it."""
        if not self.withheld:
            return list(self.block.txs)
        hidden = dict(self.withheld)
        shown = iter(self.block.txs)
        total = len(self.block.txs) + len(hidden)
        return [hidden[i] if i in hidden else next(shown) for i in range(total)]

    @property
    def header(self) -> Header:
        return self.block.header

    @property
    def height(self) -> int:
        return self.block.height

    @property
    def hash(self) -> bytes:
        return self.block.hash

    def to_json(self, withhold: TxFilter | None = None) -> dict[str, Any]:
        """The JSON of ``GET /v1/blocks/...``; a transaction ``withhold`` picks appears only
        in its :class:`WithheldTx` form."""
        header = self.block.header.to_json()
        txs = [
            tx.to_json()
            if isinstance(tx, WithheldTx) or withhold is None or not withhold(tx)
            else WithheldTx.of(tx).to_json()
            for tx in self.entries()
        ]
        return {
            "hash": header["hash"],
            "height": self.block.height,
            "header": header,
            "txs": txs,
            "evidence": [e.to_json() for e in self.block.evidence],
            "commit": self.commit.to_json(),
        }


def validators_json(height: int, vs: ValidatorSet) -> dict[str, Any]:
    """``GET /v1/validators``: the set that signs block ``height``."""
    return {
        "height": height,
        "hash": vs.hash.hex(),
        "total_power": vs.total_power,
        "quorum_power": vs.quorum(),
        "validators": vs.to_json(),
    }


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """``GET /v1/status``: a node's view of its chain.

    The JSON (and the SDK) call the latest block's hash and time ``latest_block_hash`` and
    ``latest_block_time``; both names read the same value here.
    """

    chain_id: str
    crypto_suite: str
    #: A short stable name for this node (e.g. from its config), for people and logs.
    node_id: str
    #: The node's signing key (its validator key if it is a validator).
    public_key: bytes
    #: Last committed height; 0 before the first block.
    height: int
    #: Hash of the last committed block (32 zero bytes at height 0).
    latest_hash: bytes
    #: State root after the last committed block (the genesis state root at height 0).
    state_root: bytes
    #: Time of the last committed block, ms since the epoch (genesis time at height 0).
    latest_time: int
    mempool_txs: int
    mempool_bytes: int
    #: The validator set that signs the next block (as the node reports it; not a trust
    #: anchor for a client).
    validators: ValidatorSet
    #: True while the node is catching up with the network (its answers may be stale).
    syncing: bool
    version: str
    #: The suite's genesis parameters (the SM2 distinguishing ID on an ``sm2-sm3`` chain):
    #: what a client signs and verifies under. Empty for a suite that has none.
    crypto_params: dict[str, str] = field(default_factory=dict)

    @property
    def latest_block_hash(self) -> bytes:
        return self.latest_hash

    @property
    def latest_block_time(self) -> int:
        return self.latest_time

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "crypto_suite": self.crypto_suite,
            "crypto_params": dict(self.crypto_params),
            "node_id": self.node_id,
            "public_key": self.public_key.hex(),
            "height": self.height,
            "latest_block_hash": self.latest_hash.hex(),
            "latest_block_time": self.latest_time,
            "state_root": self.state_root.hex(),
            "mempool": {"txs": self.mempool_txs, "bytes": self.mempool_bytes},
            "validators": validators_json(self.height + 1, self.validators),
            "syncing": self.syncing,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class StateProof:
    """A state value (or its absence) at ``height`` with everything needed to check it.

    ``proof`` is a protobuf ``cosmos.ics23.v1.CommitmentProof``: an existence proof when
    ``value`` is set, a non-existence proof when it is None, under ``SMT_SPEC`` against
    ``header.state_root``. ``header`` is the header of block ``height`` and ``commit`` the
    commit that finalised it. Not checked by itself: the SDK's ``get_state`` checks it.
    """

    key: bytes
    value: bytes | None
    height: int
    proof: bytes
    header: Header
    commit: Commit

    @property
    def exists(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key.hex(),
            "value": self.value.hex() if self.value is not None else None,
            "exists": self.value is not None,
            "height": self.height,
            "proof": self.proof.hex(),
            "proof_spec": "ics23:smt",
            "header": self.header.to_json(),
            "commit": self.commit.to_json(),
        }


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account's nonces: ``nonce`` as committed (how many of its transactions executed),
    ``pending_nonce`` the next nonce to use counting the account's transactions waiting in
    the node's mempool."""

    address: bytes
    nonce: int
    pending_nonce: int

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address.hex(),
            "nonce": self.nonce,
            "pending_nonce": self.pending_nonce,
        }


@dataclass(frozen=True, slots=True)
class EvidenceInfo:
    """Evidence of double signing a node knows: committed ``(block height, evidence)`` pairs,
    newest first, and evidence seen but not yet committed. The SDK checks each piece's hash;
    call ``evidence.verify(suite, chain_id, validators)`` to check its signatures too."""

    committed: tuple[tuple[int, DuplicateVoteEvidence], ...]
    pending: tuple[DuplicateVoteEvidence, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "committed": [
                {"committed_height": h, "evidence": e.to_json()} for h, e in self.committed
            ],
            "pending": [e.to_json() for e in self.pending],
        }


def query_json(contract: str, method: str, result: Any) -> dict[str, Any]:
    """``/v1/query/{contract}/{method}``: the result is a canonical value."""
    return {"contract": contract, "method": method, "result": codec_to_json(result)}


def event_message_json(e: CommittedEvent) -> dict[str, Any]:
    """A ``/v1/events`` WebSocket message carrying one committed event."""
    return {
        "type": "event",
        "height": e.height,
        "tx_hash": e.tx_hash.hex(),
        "tx_index": e.tx_index,
        "event": e.event.to_json(),
    }


def position_message_json(height: int) -> dict[str, Any]:
    """A ``/v1/events`` WebSocket message (asked with ``progress=true``): every matching
    event of blocks up to ``height`` has been sent."""
    return {"type": "position", "height": height}


def closed_message_json(code: ErrorCode, reason: str) -> dict[str, Any]:
    """The last ``/v1/events`` message before the server closes the stream, saying why."""
    return {"type": "closed", "code": code.value, "reason": reason}
