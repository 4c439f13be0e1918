"""What ``/v1/gov/...`` answers, worked out from the ``gov`` contract's queries: the part of
the governance routes that thinks (the routes only check syntax and render JSON)."""

from __future__ import annotations

from typing import Any

from citychain.api.service import NodeService
from citychain.errors import NotFound
from citychain.services.gov.shapes import check_policy_target
from citychain.types.policy import check_name as check_gov_name


class GovReads:
    """The governance answers of ``/v1/gov/...``, derived from the ``gov`` contract's queries
    on the latest committed state of ``service``.

    Results are the contract's canonical values with what the API adds worked out here: a
    member's ``in_good_standing``, and which configured policy (``source``) decides a target.
    The routes only check their parameters' syntax and render these as JSON.
    """

    #: The governance contract, and the most entries one page of its listings holds.
    CONTRACT = "gov"
    MAX_PAGE = 200

    def __init__(self, service: NodeService) -> None:
        self._service = service

    async def _q(self, method: str, **args: Any) -> Any:
        return await self._service.query(self.CONTRACT, method, args)

    async def config(self) -> Any:
        return await self._q("config")

    async def orgs(self) -> list[Any]:
        return list(await self._q("orgs"))

    async def org(self, org_id: str) -> dict[str, Any]:
        """One organisation (the contract raises ``NotFound`` for an unknown id)."""
        check_gov_name(org_id, "organisation id")
        org: dict[str, Any] = await self._q("org", id=org_id)
        return org

    async def members(self, org_id: str) -> list[Any]:
        """An organisation's members (``NotFound`` for an unknown organisation)."""
        await self.org(org_id)
        return list(await self._q("members", org=org_id))

    async def member(self, address: bytes) -> dict[str, Any]:
        """A member with ``in_good_standing`` (``standing == "ok"``); ``NotFound`` if none."""
        member = await self._q("member", address=address)
        if member is None:
            raise NotFound(f"account {address.hex()} is not a member of any organisation")
        return {**member, "in_good_standing": member["standing"] == "ok"}

    async def validators(self) -> Any:
        return await self._q("validators")

    async def params(self) -> Any:
        return await self._q("params")

    async def policies(self) -> list[Any]:
        return list(await self._q("policies"))

    async def policy(self, target: str) -> tuple[dict[str, Any], str | None]:
        """The policy in force for ``target`` (under that name) and the configured policy
        that decides it, or None when the default applies. A proposal kind ``gov:<kind>``
        has a source only if a policy of exactly that target is configured; a method's
        source is the policy the contract matched (``contract.method`` or ``contract.*``)."""
        check_policy_target(target)
        p = await self._q("policy", target=target)
        if target.startswith("gov:"):
            configured = {x["target"] for x in await self.policies()}
            source = target if target in configured else None
        else:
            name = p["target"]
            source = None if name.endswith(" (default)") else name
        return {**p, "target": target}, source

    async def proposals(self, status: str | None, limit: int) -> list[Any]:
        args: dict[str, Any] = {"limit": limit}
        if status is not None:
            args["status"] = status
        return list(await self._q("proposals", **args))

    async def proposal(self, proposal_id: int) -> Any:
        return await self._q("proposal", id=proposal_id)

    async def history(self, after: int, limit: int, proposal: int | None) -> Any:
        args: dict[str, Any] = {"after": after, "limit": limit}
        if proposal is not None:
            args["proposal"] = proposal
        return await self._q("history", **args)
