"""Governance reads (``/v1/gov/...``): the ``gov`` contract's records on the latest committed
state, through :class:`~citychain.services.gov.router._reads.GovReads`. Changes are
transactions signed by the client and submitted like any other, never signed here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from citychain.api._body import parse_hex
from citychain.api.openapi import error_responses
from citychain.api.routes._common import MAX_HEIGHT, AddressParam, ServiceDep, json
from citychain.services.gov.router import _models as m
from citychain.services.gov.router._reads import GovReads

router = APIRouter(tags=["governance"], responses=error_responses())


async def _gov(service: ServiceDep) -> GovReads:
    return GovReads(service)


Gov = Annotated[GovReads, Depends(_gov)]
OrgParam = Annotated[str, Path(description="an organisation id, e.g. org1")]
PageLimit = Query(ge=1, le=GovReads.MAX_PAGE, description="at most this many")


@router.get(
    "/v1/gov/config",
    response_model=m.GovConfigResponse,
    summary="Identity mode and default voting period",
)
async def gov_config(gov: Gov) -> Response:
    return json(m.gov_config_json(await gov.config()))


@router.get("/v1/gov/orgs", response_model=m.GovOrgsResponse, summary="The member organisations")
async def gov_orgs(gov: Gov) -> Response:
    return json({"orgs": [m.gov_org_json(o) for o in await gov.orgs()]})


@router.get(
    "/v1/gov/orgs/{org_id}",
    response_model=m.GovOrgResponse,
    summary="One organisation with its roles",
)
async def gov_org(org_id: OrgParam, gov: Gov) -> Response:
    org = await gov.org(org_id)
    return json({**m.gov_org_json(org), "roles": list(org["roles"])})


@router.get(
    "/v1/gov/orgs/{org_id}/members",
    response_model=m.GovMembersResponse,
    summary="An organisation's registered members",
)
async def gov_org_members(org_id: OrgParam, gov: Gov) -> Response:
    members = await gov.members(org_id)
    return json({"org": org_id, "members": [m.gov_member_json(x) for x in members]})


@router.get(
    "/v1/gov/members/{address_hex}",
    response_model=m.GovMemberResponse,
    summary="One member and whether it may act now",
)
async def gov_member(address_hex: AddressParam, gov: Gov) -> Response:
    member = await gov.member(parse_hex(address_hex, "address", size=20))
    return json(
        {
            **m.gov_member_json(member),
            "in_good_standing": member["in_good_standing"],
            "standing": member["standing"],
        }
    )


@router.get(
    "/v1/gov/validators",
    response_model=m.GovValidatorsResponse,
    summary="The validator set governance last decided",
)
async def gov_validators(gov: Gov) -> Response:
    """The latest validator set with each validator's organisation, and the height it
    signs from (a change is in force two heights after the proposal is executed; for the
    set that signs a given height, see ``/v1/validators?height=``)."""
    return json(m.gov_validators_json(await gov.validators()))


@router.get(
    "/v1/gov/params",
    response_model=m.GovParamsResponse,
    summary="Chain parameters and gas schedule",
)
async def gov_params(gov: Gov) -> Response:
    p = await gov.params()
    return json({"chain": dict(p["chain"]), "gas": dict(p["gas"])})


@router.get(
    "/v1/gov/policies",
    response_model=m.GovPoliciesResponse,
    summary="The configured access policies",
)
async def gov_policies(gov: Gov) -> Response:
    """Policies set in genesis or by ``set_policy`` proposals. A method without one is
    open to any member; a proposal kind without one needs a MAJORITY of the
    organisations' admins."""
    return json({"policies": [m.gov_policy_json(p) for p in await gov.policies()]})


@router.get(
    "/v1/gov/policies/{target}",
    response_model=m.GovPolicyResponse,
    summary="The policy in force for a method or a proposal kind",
)
async def gov_policy(
    target: Annotated[
        str,
        Path(description="'contract.method' (e.g. token.mint) or 'gov:<kind>' (e.g. gov:add_org)"),
    ],
    gov: Gov,
) -> Response:
    policy, source = await gov.policy(target)
    return json({**m.gov_policy_json(policy), "source": source})


@router.get(
    "/v1/gov/proposals", response_model=m.GovProposalsResponse, summary="Proposals, newest first"
)
async def gov_proposals(
    gov: Gov,
    status: Annotated[
        m.ProposalStatus | None, Query(description="only proposals in this state")
    ] = None,
    limit: Annotated[int, PageLimit] = 50,
) -> Response:
    found = await gov.proposals(status, limit)
    return json({"proposals": [m.gov_proposal_json(p) for p in found]})


@router.get(
    "/v1/gov/proposals/{proposal_id}",
    response_model=m.GovProposalModel,
    summary="One proposal: its votes, approvals and what it still needs",
)
async def gov_proposal(
    proposal_id: Annotated[int, Path(ge=1, le=MAX_HEIGHT, description="proposal number")],
    gov: Gov,
) -> Response:
    return json(m.gov_proposal_json(await gov.proposal(proposal_id)))


@router.get(
    "/v1/gov/history",
    response_model=m.GovHistoryResponse,
    summary="The governance history, oldest first",
)
async def gov_history(
    gov: Gov,
    after: Annotated[
        int, Query(ge=0, le=MAX_HEIGHT, description="entries after this sequence number")
    ] = 0,
    limit: Annotated[int, PageLimit] = 100,
    proposal: Annotated[
        int | None, Query(ge=1, le=MAX_HEIGHT, description="only this proposal's entries")
    ] = None,
) -> Response:
    """Every governance action (proposals, votes, executions, member changes) with the
    block, time, transaction and account behind it. Page with ``next_after``."""
    return json(m.gov_history_json(await gov.history(after, limit, proposal), after))
