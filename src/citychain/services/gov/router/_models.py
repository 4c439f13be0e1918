"""The JSON shapes of ``/v1/gov/...`` as pydantic models (for ``/openapi.json``), and the
builders that render the ``gov`` contract's records into them.

The records are the contract's canonical values (its queries answer them); these builders turn
bytes into hex and keep the field names the API documents. The test suite validates every gov
route's answers against these models (``extra="forbid"``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from citychain.api.models import Canonical, Hash, Hex
from citychain.api.models import Model as _Model
from citychain.types.tx import codec_to_json

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
