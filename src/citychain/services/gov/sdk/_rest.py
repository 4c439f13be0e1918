"""The ``/v1/gov/...`` REST answers back into the governance shapes of
:mod:`citychain.services.gov.shapes`, checked as they go.

``client.gov`` reads governance through the contract's queries (canonical values, see
:mod:`._helpers`); a program that talks to the REST routes (another language's client turned
Python, a browser page's backend, a proxy that caches ``/v1/gov``) gets JSON instead: bytes as
hex, absent values as ``null``. These parsers turn that JSON into the *same* frozen shapes, so
both paths compare equal field by field, with three differences that are the routes' own:

* ``/v1/gov/orgs`` lists carry no ``roles`` (as :meth:`Gov.orgs`); ``/v1/gov/orgs/{id}`` does.
* member listings carry no ``standing`` (None, as :meth:`Gov.members`);
  ``/v1/gov/members/{address}`` does.
* ``/v1/gov/policies/{target}`` names the target asked for and, in ``source``, the configured
  policy deciding it (:func:`policy_answer` returns both); ``Gov.policy`` names the matched
  policy itself (``token.*``, or ``token.transfer (default)``).

Like every SDK parser (:mod:`citychain.sdk._parse`), anything missing or mistyped raises
:class:`~citychain.errors.DecodeError` naming what, never ``KeyError``.
"""

from __future__ import annotations

from typing import Any

from citychain.sdk import _parse
from citychain.services.gov.shapes import (
    GovValidator,
    GovValidators,
    HistoryEntry,
    MemberInfo,
    OrgInfo,
    PolicyInfo,
    ProposalInfo,
    ProposalVote,
)
from citychain.types.tx import json_to_codec


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_parse.text(x) for x in _list(value))


def _flag(value: Any) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


def _hex_or_empty(value: Any) -> bytes:
    return b"" if value is None else _parse.hexb(value)


def _int_or_zero(value: Any) -> int:
    return _parse.opt_int(value) or 0


def _org(d: dict[str, Any]) -> OrgInfo:
    return OrgInfo(
        id=_parse.text(d["id"]),
        name=_parse.text(d["name"]),
        ca_cert=_parse.text(d["ca_cert"]),
        ca_fp=_parse.hexb(d["ca_fp"]),
        admins=tuple(_parse.hexb(a) for a in _list(d["admins"])),
        roles=_texts(d.get("roles", [])),
    )


def _member(d: dict[str, Any]) -> MemberInfo:
    serial = d["serial"]
    standing = d.get("standing")
    return MemberInfo(
        address=_parse.hexb(d["address"], 20),
        org=_parse.text(d["org"]),
        roles=_texts(d["roles"]),
        public_key=_parse.hexb(d["public_key"]),
        serial=0 if serial is None else int(_parse.text(serial), 16),
        ca_fp=_hex_or_empty(d["ca_fp"]),
        not_after=_int_or_zero(d["not_after"]),
        revoked=_flag(d["revoked"]),
        standing=None if standing is None else _parse.text(standing),
    )


def _policy(d: dict[str, Any]) -> PolicyInfo:
    return PolicyInfo(
        target=_parse.text(d["target"]),
        rule=_parse.text(d["rule"]),
        orgs=_texts(d["orgs"]),
        roles=_texts(d["roles"]),
        describe=_parse.text(d["description"]),
    )


def _proposal(d: dict[str, Any]) -> ProposalInfo:
    votes = tuple(
        ProposalVote(
            voter=_parse.hexb(v["voter"], 20),
            org=_parse.text(v["org"]),
            approve=_flag(v["approve"]),
            height=_parse.integer(v["height"]),
        )
        for v in map(_parse.obj, _list(d["votes"]))
    )
    return ProposalInfo(
        id=_parse.integer(d["id"]),
        kind=_parse.text(d["kind"]),
        params=json_to_codec(d["params"]),
        proposer=_parse.hexb(d["proposer"], 20),
        proposer_org=_parse.text(d["proposer_org"]),
        created=_parse.integer(d["created"]),
        created_time=_parse.integer(d["created_time"]),
        deadline=_parse.integer(d["deadline"]),
        status=_parse.text(d["status"]),
        votes=votes,
        executed_height=_int_or_zero(d["executed_height"]),
        result=json_to_codec(d["result"]),
        policy=_parse.text(d["policy"]),
        approving_orgs=_texts(d["approving_orgs"]),
        passed=_flag(d["passed"]),
        needs=_parse.text(d["needs"]),
    )


def _entry(d: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        seq=_parse.integer(d["seq"]),
        height=_parse.integer(d["height"]),
        time=_parse.integer(d["time"]),
        tx=_parse.hexb(d["tx"], 32),
        actor=_parse.hexb(d["actor"], 20),
        action=_parse.text(d["action"]),
        proposal=_int_or_zero(d["proposal"]),
        detail=_parse.obj(json_to_codec(d["detail"])),
    )


def orgs(raw: Any) -> list[OrgInfo]:
    """``GET /v1/gov/orgs``."""
    return _parse.parsed(
        "the organisations", lambda: [_org(_parse.obj(o)) for o in _list(_parse.obj(raw)["orgs"])]
    )


def org(raw: Any) -> OrgInfo:
    """``GET /v1/gov/orgs/{id}`` (with its roles)."""
    return _parse.parsed("the organisation", lambda: _org(_parse.obj(raw)))


def members(raw: Any) -> tuple[str, list[MemberInfo]]:
    """``GET /v1/gov/orgs/{id}/members``: the organisation's id and its members."""

    def run() -> tuple[str, list[MemberInfo]]:
        d = _parse.obj(raw)
        return _parse.text(d["org"]), [_member(_parse.obj(m)) for m in _list(d["members"])]

    return _parse.parsed("the members", run)


def member(raw: Any) -> MemberInfo:
    """``GET /v1/gov/members/{address}`` (with its standing); ``in_good_standing`` must agree."""

    def run() -> MemberInfo:
        d = _parse.obj(raw)
        info = _member(d)
        if _flag(d["in_good_standing"]) != info.in_good_standing:
            raise ValueError("in_good_standing disagrees with standing")
        return info

    return _parse.parsed("the member", run)


def validators(raw: Any) -> GovValidators:
    """``GET /v1/gov/validators``; ``total_power`` must be the sum of the powers."""

    def run() -> GovValidators:
        d = _parse.obj(raw)
        vals = tuple(
            GovValidator(
                public_key=_parse.hexb(v["public_key"]),
                power=_parse.integer(v["power"]),
                name=_parse.text(v["name"]),
                org="" if v["org"] is None else _parse.text(v["org"]),
            )
            for v in map(_parse.obj, _list(d["validators"]))
        )
        if _parse.integer(d["total_power"]) != sum(v.power for v in vals):
            raise ValueError("total_power is not the sum of the validators' powers")
        return GovValidators(_parse.integer(d["from_height"]), vals)

    return _parse.parsed("the governance validators", run)


def policies(raw: Any) -> list[PolicyInfo]:
    """``GET /v1/gov/policies``."""
    return _parse.parsed(
        "the policies",
        lambda: [_policy(_parse.obj(p)) for p in _list(_parse.obj(raw)["policies"])],
    )


def policy_answer(raw: Any) -> tuple[PolicyInfo, str | None]:
    """``GET /v1/gov/policies/{target}``: the policy in force for the target asked for, and
    the configured policy it comes from (None: the built-in default)."""

    def run() -> tuple[PolicyInfo, str | None]:
        d = _parse.obj(raw)
        source = d["source"]
        return _policy(d), None if source is None else _parse.text(source)

    return _parse.parsed("the policy", run)


def proposals(raw: Any) -> list[ProposalInfo]:
    """``GET /v1/gov/proposals`` (newest first)."""
    return _parse.parsed(
        "the proposals",
        lambda: [_proposal(_parse.obj(p)) for p in _list(_parse.obj(raw)["proposals"])],
    )


def proposal(raw: Any) -> ProposalInfo:
    """``GET /v1/gov/proposals/{id}``."""
    return _parse.parsed("the proposal", lambda: _proposal(_parse.obj(raw)))


def history(raw: Any) -> tuple[list[HistoryEntry], int]:
    """``GET /v1/gov/history``: the entries (oldest first) and ``next_after``."""

    def run() -> tuple[list[HistoryEntry], int]:
        d = _parse.obj(raw)
        entries = [_entry(_parse.obj(e)) for e in _list(d["entries"])]
        return entries, _parse.integer(d["next_after"])

    return _parse.parsed("the governance history", run)


def config(raw: Any) -> dict[str, Any]:
    """``GET /v1/gov/config``: ``mode`` and ``voting_period`` (None: the built-in default)."""

    def run() -> dict[str, Any]:
        d = _parse.obj(raw)
        mode = _parse.text(d["mode"])
        if mode not in ("open", "key", "certificate"):
            raise ValueError(f"unknown identity mode {mode[:40]!r}")
        return {"mode": mode, "voting_period": _parse.opt_int(d["voting_period"])}

    return _parse.parsed("the governance config", run)
