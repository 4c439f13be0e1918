"""The JSON shapes of the API, as pydantic models: a description, not a definition.

The models are the contract published in ``/openapi.json`` (clients are generated from it).
The answers themselves are defined once in :mod:`citychain.types.answers` (the node builds
them, the SDK parses them back): handlers render them with their ``to_json`` and serialise the
dicts with orjson directly, which is several times faster than validating every response
through pydantic. The test suite validates every route's answers against these models
(``extra="forbid"``) and checks that each model names exactly the keys its answer's
``to_json`` writes, so the document, the node and the SDK cannot drift apart. Each platform
service describes its own answers beside its router (``services/gov/router/_models.py``).

Conventions: byte strings are lowercase hex; hashes are 32 bytes (64 hex digits); times are
milliseconds since the Unix epoch; contract arguments, results and event attributes are
canonical values in JSON with byte strings as ``{"hex": "..."}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from citychain.errors import ErrorCode

Hex = Annotated[str, Field(pattern=r"^([0-9a-f]{2})*$", description="bytes as lowercase hex")]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="a 32-byte hash in hex")]
Canonical = Annotated[
    Any,
    Field(description='a canonical value in JSON; byte strings appear as {"hex": "..."}'),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: The base of every answer model (no field beyond those named); services' models derive
#: from it too (``services/<name>/router/``).
Model = _Model


class ErrorBody(_Model):
    """Every error answer: a stable machine-readable code and a message for people."""

    code: ErrorCode
    message: str


class SubmitBatchRequest(_Model):
    txs: list[str] = Field(description="transactions' canonical CBOR wire bytes, hex encoded")


class SubmitOneRequest(_Model):
    tx: str = Field(description="the transaction's canonical CBOR wire bytes, hex encoded")


class QueryRequest(_Model):
    args: dict[str, Canonical] = Field(default_factory=dict)


class SubmitItem(_Model):
    index: int = Field(description="position of the transaction in the request")
    hash: Hash | None = Field(description="null when the bytes did not decode as a transaction")
    code: ErrorCode = Field(description='"ok" when admitted to the mempool')
    message: str


class SubmitBatchResponse(_Model):
    accepted: int
    rejected: int
    results: list[SubmitItem]


class SubmitOneResponse(_Model):
    hash: Hash
    status: Literal["pending"]


class EndorsementModel(_Model):
    public_key: Hex
    signature: Hex


class TransactionModel(_Model):
    hash: Hash
    chain_id: str
    sender: Hex = Field(description="the sender's public key")
    nonce: int
    expiry: int = Field(description="last height at which the transaction may be included")
    contract: str
    method: str
    args: dict[str, Canonical]
    gas_limit: int
    signature: Hex
    endorsements: list[EndorsementModel] = Field(
        default_factory=list, description="co-signatures for multi-organisation policies"
    )


class WithheldTxModel(_Model):
    """A private call (its contract's ``private_methods``) as the node shows it to a reader
    who is not its sender, an endorser or a member in good standing (RFC 9421 signed read)."""

    hash: Hash
    contract: str
    method: str
    leaf: Hash = Field(
        description="the Merkle leaf hash of its encoding in the block's tx_root, so the "
        "header's commitment to the block's transactions still checks"
    )
    withheld: Literal[True]


class EventModel(_Model):
    contract: str
    type: str
    attributes: dict[str, Canonical]


class ReceiptModel(_Model):
    tx_hash: Hash
    code: ErrorCode = Field(description='"ok" on success, else why the transaction failed')
    message: str
    gas_used: int
    result: Canonical
    events: list[EventModel]


class TxResponse(_Model):
    hash: Hash
    status: Literal["pending", "committed"]
    tx: TransactionModel | WithheldTxModel
    height: int | None = Field(description="the block's height once committed")
    index: int | None = Field(description="position in the block once committed")
    receipt: ReceiptModel | None = Field(
        description="null until committed, and for a withheld call"
    )


class HeaderModel(_Model):
    version: int
    chain_id: str
    height: int
    time: int
    prev_hash: Hash
    tx_root: Hash
    results_root: Hash
    state_root: Hash
    validators_hash: Hash
    proposer: Hex
    evidence_root: Hash = Field(description="Merkle root of the block's evidence")
    hash: Hash = Field(
        description="the chain's hash of the header's canonical CBOR (SHA-256; SM3 on an "
        "sm2-sm3 chain): the block hash"
    )


class CommitSigModel(_Model):
    validator: Hex
    signature: Hex


class CommitModel(_Model):
    height: int
    round: int
    block_hash: Hash
    signatures: list[CommitSigModel]


class VoteModel(_Model):
    type: str = Field(description="prevote or precommit")
    height: int
    round: int
    block_hash: Hash | None = Field(description="null for a vote for nil")
    validator: Hex
    signature: Hex


class EvidenceModel(_Model):
    kind: str = Field(description="duplicate_vote: two different votes for one step")
    hash: Hash
    validator: Hex
    height: int
    round: int
    vote_a: VoteModel
    vote_b: VoteModel


class BlockResponse(_Model):
    hash: Hash
    height: int
    header: HeaderModel
    txs: list[TransactionModel | WithheldTxModel]
    evidence: list[EvidenceModel]
    commit: CommitModel


class ConsensusResponse(_Model):
    engine: str = Field(description="tendermint, or solo for a single-validator chain")
    height: int = Field(description="the height being decided (last committed + 1)")
    round: int
    step: str = Field(description="propose, prevote, precommit or decided")
    waiting_for: str = Field(description="what the node waits for, in plain words")
    details: dict[str, Any] = Field(
        description="proposer, proposal, locked/valid round, prevotes and precommits of this "
        "round by validator, their power and the quorum, peers, block sync, pending evidence. "
        "Tendermint also gives `validators`: per validator of the set `name, public_key, power, "
        "state` (`this node`, `ok`, `lagging`: connected but behind, `offline`: not connected "
        "and not heard from), `connected`, `height` (last committed height it reported), "
        "`last_heard_ms_ago`, `last_commit` (`signed`, `late`: its precommit came after the "
        "decision, `nil`, `absent`) and `note` in words; `last_commit`: `height, round` and the "
        "names that `signed`, were `late`, voted `nil` or were `absent`; `last_commit_missing`: "
        "names not in the stored commit (a commit holds the first precommits past 2/3)"
    )


class PeersResponse(_Model):
    peers: list[dict[str, Any]] = Field(
        description="name, org_id, address, direction, connected, traffic counters, last_error"
    )


class CommittedEvidenceModel(_Model):
    committed_height: int = Field(description="the block that committed the evidence")
    evidence: EvidenceModel


class EvidenceResponse(_Model):
    committed: list[CommittedEvidenceModel]
    pending: list[EvidenceModel] = Field(description="seen by this node, not yet committed")


class ValidatorModel(_Model):
    public_key: Hex
    power: int
    name: str


class ValidatorsResponse(_Model):
    height: int = Field(description="the block height this set signs")
    hash: Hash = Field(description="what headers carry as validators_hash")
    total_power: int
    quorum_power: int = Field(description="least power that is more than 2/3 of the total")
    validators: list[ValidatorModel]


class MempoolModel(_Model):
    txs: int
    bytes: int


class StatusResponse(_Model):
    chain_id: str
    crypto_suite: str
    crypto_params: dict[str, str] = Field(
        description="the suite's genesis parameters (sm2-sm3: the SM2 distinguishing ID); "
        "empty for a suite that has none (ed25519)",
    )
    node_id: str
    public_key: Hex
    height: int
    latest_block_hash: Hash
    latest_block_time: int
    state_root: Hash
    mempool: MempoolModel
    validators: ValidatorsResponse
    syncing: bool
    version: str


class StateResponse(_Model):
    key: Hex
    value: Hex | None = Field(description="null when the key is absent (then proof shows that)")
    exists: bool
    height: int
    proof: Hex = Field(
        description="protobuf cosmos.ics23.v1.CommitmentProof under the ICS-23 SMT spec, "
        "checked against header.state_root"
    )
    proof_spec: Literal["ics23:smt"]
    header: HeaderModel
    commit: CommitModel


class QueryResponse(_Model):
    contract: str
    method: str
    result: Canonical


class AccountResponse(_Model):
    address: Hex
    nonce: int = Field(description="committed account nonce")
    pending_nonce: int = Field(description="next nonce to use, counting the mempool")


class HealthResponse(_Model):
    ok: bool
    details: dict[str, Any]


class EventMessage(_Model):
    """A WebSocket text message of ``/v1/events``."""

    type: Literal["event"]
    height: int
    tx_hash: Hash
    tx_index: int
    event: EventModel


class PositionMessage(_Model):
    """Sent (on a stream asked with ``progress=true``) when the stream has waited a second
    and the chain moved on: every matching event of the blocks up to ``height`` was sent, so
    a reader that handled them may subscribe again later from ``height + 1``."""

    type: Literal["position"]
    height: int


class ClosedMessage(_Model):
    """The last WebSocket message before the server closes the stream, saying why."""

    type: Literal["closed"]
    code: ErrorCode
    reason: str
