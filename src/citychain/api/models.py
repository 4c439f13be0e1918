"""The JSON shapes of the API, as pydantic models: a description, not a definition.

The models are the contract published in ``/openapi.json`` (clients are generated from it).
The answers themselves are defined once in :mod:`citychain.types.answers` (the node builds
them, the SDK parses them back): handlers render them with their ``to_json`` and serialise the
dicts with orjson directly, which is several times faster than validating every response
through pydantic. The test suite validates every route's answers against these models
(``extra="forbid"``) and checks that each model names exactly the keys its answer's
``to_json`` writes, so the document, the node and the SDK cannot drift apart. (The governance
answers below still have their builders here.)

Conventions: byte strings are lowercase hex; hashes are 32 bytes (64 hex digits); times are
milliseconds since the Unix epoch; contract arguments, results and event attributes are
canonical values in JSON with byte strings as ``{"hex": "..."}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from citychain.errors import ErrorCode
from citychain.types.tx import codec_to_json

Hex = Annotated[str, Field(pattern=r"^([0-9a-f]{2})*$", description="bytes as lowercase hex")]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="a 32-byte hash in hex")]
Canonical = Annotated[
    Any,
    Field(description='a canonical value in JSON; byte strings appear as {"hex": "..."}'),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    tx: TransactionModel
    height: int | None = Field(description="the block's height once committed")
    index: int | None = Field(description="position in the block once committed")
    receipt: ReceiptModel | None


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
    hash: Hash = Field(description="sha256 of the header's canonical CBOR: the block hash")


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
    txs: list[TransactionModel]
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


class ClosedMessage(_Model):
    """The last WebSocket message before the server closes the stream, saying why."""

    type: Literal["closed"]
    code: ErrorCode
    reason: str


# -- governance (the gov contract's records, read through its queries) --------------------------

ProposalStatus = Literal["open", "executed", "expired"]


class GovConfigResponse(_Model):
    mode: Literal["open", "key", "certificate"] = Field(
        description="identity mode: open (any signature), key (registered keys) or "
        "certificate (members enrol with certificates from their organisation's CA)"
    )
    voting_period: int | None = Field(
        description="blocks a proposal stays open unless it names a deadline"
    )


class GovOrgModel(_Model):
    id: str
    name: str
    ca_cert: str = Field(description="the organisation's CA certificate (PEM)")
    ca_fp: Hex = Field(description="sha256 of the CA certificate's DER bytes")
    admins: list[Hex] = Field(description="public keys of the organisation's admins")


class GovOrgsResponse(_Model):
    orgs: list[GovOrgModel]


class GovOrgResponse(GovOrgModel):
    roles: list[str] = Field(description="built-in roles, then the ones the organisation defined")


class GovMemberModel(_Model):
    address: Hex
    org: str
    roles: list[str]
    public_key: Hex
    revoked: bool = Field(description="the key was revoked by governance")
    serial: str | None = Field(
        description="certificate mode: the certificate's serial number in hex; else null"
    )
    ca_fp: Hex | None = Field(
        description="certificate mode: fingerprint of the CA that issued the certificate"
    )
    not_after: int | None = Field(
        description="certificate mode: when the certificate expires (ms since the epoch)"
    )


class GovMembersResponse(_Model):
    org: str
    members: list[GovMemberModel]


class GovMemberResponse(GovMemberModel):
    in_good_standing: bool = Field(description="whether the account may act now")
    standing: str = Field(description='"ok", or why the account may not act now')


class GovValidatorModel(_Model):
    public_key: Hex
    power: int
    name: str
    org: str | None = Field(description="the organisation that runs it (null if none)")


class GovValidatorsResponse(_Model):
    from_height: int = Field(
        description="the first height this set signs (changes apply two heights after the "
        "proposal that makes them is executed)"
    )
    total_power: int
    validators: list[GovValidatorModel]


class GovParamsResponse(_Model):
    chain: dict[str, int] = Field(description="chain parameters (see ChainParams)")
    gas: dict[str, int] = Field(description="the gas schedule")


class GovPolicyModel(_Model):
    target: str = Field(description="'contract.method', 'contract.*' or 'gov:<kind>'")
    rule: str = Field(description="ANY, ALL, MAJORITY, k (k-of-n) or a/b (a fraction)")
    orgs: list[str] = Field(description="the organisations it counts (empty: every one)")
    roles: list[str] = Field(description="the roles that may approve (empty: any role)")
    description: str = Field(description="the policy in words")


class GovPoliciesResponse(_Model):
    policies: list[GovPolicyModel] = Field(description="the configured policies")


class GovPolicyResponse(GovPolicyModel):
    source: str | None = Field(
        description="the configured policy in force (e.g. 'token.*' for 'token.mint'); "
        "null when no policy is configured and the built-in default applies"
    )


class GovVoteModel(_Model):
    voter: Hex = Field(description="the voter's account address")
    org: str
    approve: bool
    height: int


class GovProposalModel(_Model):
    id: int
    kind: str
    params: Canonical
    proposer: Hex = Field(description="the proposer's account address")
    proposer_org: str
    created: int = Field(description="height of the block that created it")
    created_time: int = Field(description="time of that block (ms since the epoch)")
    deadline: int = Field(description="last height at which it can be voted on or executed")
    status: ProposalStatus = Field(
        description="expired once past its deadline, even before someone calls expire"
    )
    votes: list[GovVoteModel]
    executed_height: int | None
    result: Canonical = Field(description="what the execution changed (null until executed)")
    policy: str = Field(description="the policy of its kind (gov:<kind>), in words")
    approving_orgs: list[str] = Field(
        description="organisations with a yes vote from a member still in good standing"
    )
    passed: bool = Field(description="whether the approvals meet the policy now")
    needs: str = Field(description="what the policy needs and who approved, in words")


class GovProposalsResponse(_Model):
    proposals: list[GovProposalModel] = Field(description="newest first")


class GovHistoryEntryModel(_Model):
    seq: int = Field(description="position in the history, from 1")
    height: int
    time: int = Field(description="block time (ms since the epoch)")
    tx: Hash = Field(description="the transaction that made the change")
    actor: Hex = Field(description="the account that sent it")
    action: str = Field(
        description="propose, vote, execute, expire, register_member, remove_member, "
        "define_role or enroll"
    )
    proposal: int | None = Field(description="the proposal it concerns, if any")
    detail: dict[str, Canonical] = Field(description="what changed")


class GovHistoryResponse(_Model):
    entries: list[GovHistoryEntryModel] = Field(description="oldest first")
    next_after: int = Field(description="pass as ?after= to read the entries that follow")


def _hex_or_none(value: Any) -> str | None:
    return value.hex() if isinstance(value, bytes) and value else None


def gov_config_json(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"mode": cfg.get("mode", "open"), "voting_period": cfg.get("voting_period")}


def gov_org_json(org: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": org["id"],
        "name": org["name"],
        "ca_cert": org["ca_cert"],
        "ca_fp": org["ca_fp"].hex(),
        "admins": [a.hex() for a in org["admins"]],
    }


def gov_member_json(m: dict[str, Any]) -> dict[str, Any]:
    serial = m["serial"]
    return {
        "address": m["address"].hex(),
        "org": m["org"],
        "roles": list(m["roles"]),
        "public_key": m["public_key"].hex(),
        "revoked": m["revoked"],
        "serial": format(serial, "x") if serial else None,
        "ca_fp": _hex_or_none(m["ca_fp"]),
        "not_after": m["not_after"] or None,
    }


def gov_validators_json(vs: dict[str, Any]) -> dict[str, Any]:
    vals = [
        {"public_key": pk.hex(), "power": power, "name": name, "org": org or None}
        for pk, power, name, org in vs["validators"]
    ]
    return {
        "from_height": vs["from"],
        "total_power": sum(v["power"] for v in vals),
        "validators": vals,
    }


def gov_policy_json(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "target": p["target"],
        "rule": p["rule"],
        "orgs": list(p["orgs"]),
        "roles": list(p["roles"]),
        "description": p["describe"],
    }


def gov_proposal_json(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": p["id"],
        "kind": p["kind"],
        "params": codec_to_json(p["params"]),
        "proposer": p["proposer"].hex(),
        "proposer_org": p["proposer_org"],
        "created": p["created"],
        "created_time": p["created_time"],
        "deadline": p["deadline"],
        "status": p["status"],
        "votes": [
            {"voter": voter.hex(), "org": org, "approve": approve, "height": height}
            for voter, org, approve, height in p["votes"]
        ],
        "executed_height": p["executed_height"] or None,
        "result": codec_to_json(p["result"]),
        "policy": p["policy"],
        "approving_orgs": list(p["approving_orgs"]),
        "passed": p["passed"],
        "needs": p["needs"],
    }


def gov_history_json(entries: list[dict[str, Any]], after: int) -> dict[str, Any]:
    return {
        "entries": [
            {
                "seq": e["seq"],
                "height": e["height"],
                "time": e["time"],
                "tx": e["tx"].hex(),
                "actor": e["actor"].hex(),
                "action": e["action"],
                "proposal": e["proposal"] or None,
                "detail": codec_to_json(e["detail"]),
            }
            for e in entries
        ],
        "next_after": entries[-1]["seq"] if entries else after,
    }
