"""The ``data`` contract on a real chain (in process, RocksDB in ``tmp_path``): the catalogue
with its revisions and search, versions and wrapped keys, requests decided by sharing class,
grants checked at every recorded download, the citizen's view, and every refusal with its
code, at admission and in a block alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from data_net import (  # type: ignore[import-not-found]
    ADMIN,
    APPROVER,
    AUDITOR,
    CITIZEN,
    CITIZEN_TAG,
    DEPT,
    OTHER_CITIZEN,
    OTHER_TAG,
    PROV,
    Net,
    conditional,
    ok,
    refused,
    resource,
    version_args,
)

from citychain.errors import ErrorCode, InvalidInput, NotFound
from citychain.services.data.contract import PRIVATE_QUERIES
from citychain.services.data.sdk import DATA_GAS_LIMIT
from citychain.services.data.shapes import MAX_SUBJECTS
from citychain.state import StateReader

CODE = "101001/000001"
COND = "101001/000002"
NONE = "101001/000003"


@pytest.fixture
def net(tmp_path: Path) -> Net:
    return Net(tmp_path / "chain")


def test_register_update_retire_keep_every_revision_and_move_the_indexes(net: Net) -> None:
    r = ok(net.send(PROV, "register_resource", resource(CODE)))
    assert r.result == CODE
    assert [(e.type, e.attributes) for e in r.events] == [
        ("register", {"code": CODE, "provider": "org1", "sharing": "unconditional"})
    ]
    view = net.query("resource", code=CODE)
    assert (view["revision"], view["versions"], view["retired"], view["latest"]) == (
        1,
        0,
        False,
        None,
    )
    assert view["themes"] == ["population", "人口"] and view["keywords"] == ["census", "residents"]
    assert net.query("search", keyword="census")["resources"][0]["code"] == CODE

    r = ok(net.send(PROV, "update_resource", resource(CODE, keywords=["households"])))
    assert r.result == 2 and r.events[0].type == "update"
    assert net.query("search", keyword="census")["resources"] == []
    assert [v["code"] for v in net.query("search", keyword="households")["resources"]] == [CODE]

    r = ok(net.send(PROV, "retire_resource", {"code": CODE, "reason": "replaced"}))
    assert r.result == 3
    assert net.query("search", provider="org1")["resources"] == []
    assert net.query("search")["resources"] == []
    # Listed with retired: true (what the operator's gc needs: its versions stay referenced).
    (listed,) = net.query("search", retired=True)["resources"]
    assert listed["code"] == CODE and listed["retired"] is True
    for bad, words in (
        ({"retired": 1}, "true or false"),
        ({"retired": True, "provider": "org1"}, "a retired one is in no search index"),
    ):
        with pytest.raises(InvalidInput) as refused_query:
            net.query("search", **bad)
        assert words in refused_query.value.message
    assert net.query("resource", code=CODE)["retired"] is True
    history = net.query("history", code=CODE)
    assert [(h["revision"], h["op"]) for h in history] == [
        (1, "register"),
        (2, "update"),
        (3, "retire"),
    ]
    assert history[0]["record"]["keywords"] == ["census", "residents"]
    assert history[1]["record"]["keywords"] == ["households"]
    assert history[2]["reason"] == "replaced" and history[2]["by"] == PROV.address
    assert [h["revision"] for h in net.query("history", code=CODE, after=1, limit=1)] == [2]


def test_catalogue_refusals(net: Net) -> None:
    ok(net.send(PROV, "register_resource", resource(CODE)))
    net.refused_twice(PROV, "register_resource", resource(CODE), ErrorCode.DUPLICATE, "already")
    net.refused_twice(
        DEPT, "register_resource", resource("101001/000009"), ErrorCode.NOT_PROVIDER, "'org1'"
    )
    net.refused_twice(
        PROV, "register_resource", resource("1x/2"), ErrorCode.BAD_ARGUMENTS, "resource code"
    )
    net.refused_twice(
        PROV,
        "register_resource",
        resource("101001/000009", sharing="conditional", sharing_condition="x"),
        ErrorCode.BAD_ARGUMENTS,
        "approvers",
    )
    net.refused_twice(
        PROV,
        "register_resource",
        conditional("101001/000009", approvers=[DEPT.address]),
        ErrorCode.BAD_ARGUMENTS,
        "not a member in good standing of organisation 'org1'",
    )
    net.refused_twice(
        PROV,
        "update_resource",
        resource(CODE, provider="org2"),
        ErrorCode.BAD_ARGUMENTS,
        "provider",
    )
    net.refused_twice(PROV, "update_resource", resource(CODE), ErrorCode.BAD_ARGUMENTS, "no change")
    net.refused_twice(
        PROV, "update_resource", resource("101001/000009"), ErrorCode.RESOURCE_NOT_FOUND, "no data"
    )
    # A citizen is no member: the executor refuses it everything but the two citizen methods.
    net.refused_twice(
        CITIZEN, "register_resource", resource("101001/000009"), ErrorCode.NOT_MEMBER, "member"
    )
    ok(net.send(PROV, "retire_resource", {"code": CODE}))
    net.refused_twice(
        PROV, "retire_resource", {"code": CODE}, ErrorCode.RESOURCE_RETIRED, "retired"
    )
    net.refused_twice(
        PROV, "add_version", version_args(CODE), ErrorCode.RESOURCE_RETIRED, "no new versions"
    )


def test_versions_are_numbered_and_show_no_subject_tags(net: Net) -> None:
    ok(net.send(PROV, "register_resource", resource(CODE)))
    r = ok(net.send(PROV, "add_version", version_args(CODE, 1, subjects=[CITIZEN_TAG, OTHER_TAG])))
    assert r.result == 1
    (event,) = r.events
    assert event.type == "version" and event.attributes["manifest_id"] == bytes([1]) * 32
    assert ok(net.send(PROV, "add_version", version_args(CODE, 2))).result == 2
    versions = net.query("versions", code=CODE)
    assert [(v["version"], v["subjects"], v["plain_size"]) for v in versions] == [
        (1, 2, 1000),
        (2, 0, 2000),
    ]
    assert versions[0]["time"] == net.time - 1000 and versions[1]["height"] == net.height
    assert net.query("resource", code=CODE)["latest"]["version"] == 2
    assert private(net, "records", subject=CITIZEN_TAG) == [CODE]
    net.refused_twice(DEPT, "add_version", version_args(CODE, 3), ErrorCode.NOT_PROVIDER, "org1")
    net.refused_twice(
        PROV,
        "add_version",
        version_args(CODE, 3, plain_hash=b"x"),
        ErrorCode.BAD_ARGUMENTS,
        "plain_hash",
    )
    net.refused_twice(
        PROV,
        "add_version",
        version_args(CODE, 3, subjects=[CITIZEN_TAG, CITIZEN_TAG]),
        ErrorCode.BAD_ARGUMENTS,
        "twice",
    )
    # Keys are wrapped for grantees and the provider's own staff, nobody else.
    net.refused_twice(
        PROV,
        "add_version",
        version_args(CODE, 3, wraps={DEPT.address: b"k"}),
        ErrorCode.NO_GRANT,
        "no live grant",
    )
    ok(net.send(PROV, "add_version", version_args(CODE, 3, wraps={APPROVER.address: b"k3"})))
    assert net.chain.executor.query(
        net.chain.state, _ctx(net), "data", "wrapped_key",
        {"code": CODE, "version": 3, "grantee": APPROVER.address}, private=True,
    ) == b"k3"  # fmt: skip


def _ctx(net: Net):  # type: ignore[no-untyped-def]
    from citychain.execution import BlockContext

    header = net.chain.last_header()
    assert header is not None
    return BlockContext("data-chain", net.height, header.time, header.proposer)


def private(net: Net, method: str, **args: object) -> object:
    return net.chain.executor.query(net.chain.state, _ctx(net), "data", method, args, private=True)


def _three(net: Net) -> None:
    ok(net.send(PROV, "register_resource", resource(CODE)))
    ok(net.send(PROV, "register_resource", conditional(COND)))
    ok(net.send(PROV, "register_resource", resource(NONE, sharing="none")))
    for code in (CODE, COND, NONE):
        ok(net.send(PROV, "add_version", version_args(code, 1, subjects=[CITIZEN_TAG])))


def test_requests_are_decided_by_the_sharing_class(net: Net) -> None:
    _three(net)
    ask = {"purpose": "benefit eligibility", "period": 60_000, "legal_basis": "Art. 12"}
    r = ok(net.send(DEPT, "request_access", {"code": CODE, **ask}))
    assert r.result == {"request": 1, "state": "granted", "grant": 1}
    assert [e.type for e in r.events] == ["request", "granted"]
    assert r.events[1].attributes == {
        "code": CODE, "request": 1, "grant": 1, "grantee": DEPT.address, "until": net.time + 60_000,
    }  # fmt: skip

    r = ok(net.send(DEPT, "request_access", {"code": NONE, **ask}))
    assert r.result == {"request": 2, "state": "refused", "grant": 0}
    assert [(e.type, e.attributes.get("why")) for e in r.events] == [
        ("request", None),
        ("refused", "not_shared"),
    ]
    assert "不予共享" in private(net, "request", id=2)["reason"]  # type: ignore[index]

    r = ok(net.send(DEPT, "request_access", {"code": COND, **ask}))
    assert r.result == {"request": 3, "state": "pending", "grant": 0}
    assert [e.type for e in r.events] == ["request", "pending"]
    net.refused_twice(
        PROV, "decide", {"request": 3, "approve": True}, ErrorCode.NOT_APPROVER, "approver"
    )
    net.refused_twice(
        APPROVER, "decide", {"request": 3, "approve": False}, ErrorCode.BAD_ARGUMENTS, "reason"
    )
    net.refused_twice(
        APPROVER, "decide", {"request": 99, "approve": True}, ErrorCode.REQUEST_NOT_FOUND, "99"
    )
    r = ok(net.send(APPROVER, "decide", {"request": 3, "approve": True}))
    assert r.result == {"request": 3, "state": "granted", "grant": 2}
    net.refused_twice(
        APPROVER, "decide", {"request": 3, "approve": True}, ErrorCode.REQUEST_DECIDED, "granted"
    )
    r = ok(net.send(DEPT, "request_access", {"code": COND, **ask}))
    r = ok(net.send(APPROVER, "decide", {"request": 4, "approve": False, "reason": "no basis"}))
    assert r.result == {"request": 4, "state": "refused", "grant": 0}
    actions = [e["action"] for e in private(net, "audit", code=COND)]  # type: ignore[attr-defined]
    assert actions == ["request", "granted", "request", "refused"]
    assert [q["state"] for q in private(net, "requests", code=COND)] == ["granted", "refused"]  # type: ignore[attr-defined]
    # An approval that comes after the asked period ended is refused.
    ok(net.send(DEPT, "request_access", {"code": COND, "purpose": "x", "period": 1}))
    # (admission knows only a lower bound of the block's time: the block refuses it)
    refused(
        net.send(APPROVER, "decide", {"request": 5, "approve": True}),
        ErrorCode.GRANT_EXPIRED,
        "passed",
    )
    net.refused_twice(
        DEPT,
        "request_access",
        {"code": CODE, "purpose": "x", "until": net.time},
        ErrorCode.BAD_ARGUMENTS,
        "not after",
    )
    net.refused_twice(
        DEPT, "request_access", {"code": CODE, "purpose": "x"}, ErrorCode.BAD_ARGUMENTS, "'until'"
    )


def test_every_download_is_checked_and_recorded(net: Net) -> None:
    _three(net)
    ok(net.send(DEPT, "request_access", {"code": CODE, "purpose": "audit", "period": 10_000}))
    r = ok(net.send(DEPT, "record_access", {"grant": 1, "version": 1}))
    access_id = r.result
    assert [(e.type, e.attributes["access"]) for e in r.events] == [("download", access_id)]
    entry = private(net, "access", id=access_id)
    assert entry["action"] == "download" and entry["by"] == DEPT.address  # type: ignore[index]
    assert entry["purpose"] == "audit" and entry["org"] == "org2"  # type: ignore[index]
    net.refused_twice(
        APPROVER, "record_access", {"grant": 1, "version": 1}, ErrorCode.WRONG_GRANTEE, "held by"
    )
    net.refused_twice(
        DEPT, "record_access", {"grant": 9, "version": 1}, ErrorCode.NO_GRANT, "no grant 9"
    )
    net.refused_twice(
        DEPT,
        "record_access",
        {"grant": 1, "version": 2},
        ErrorCode.RESOURCE_NOT_FOUND,
        "no version 2",
    )
    # Expiry is read off the block time: the grant ends at its 'until', exclusive.
    net.block(at=net.time + 10_000)
    net.refused_twice(
        DEPT, "record_access", {"grant": 1, "version": 1}, ErrorCode.GRANT_EXPIRED, "expired"
    )
    assert private(net, "grant", id=1)["state"] == "expired"  # type: ignore[index]
    # Revocation.
    ok(net.send(DEPT, "request_access", {"code": CODE, "purpose": "audit", "period": 100_000}))
    net.refused_twice(DEPT, "revoke", {"grant": 2, "reason": "x"}, ErrorCode.NOT_PROVIDER, "org1")
    r = ok(net.send(PROV, "revoke", {"grant": 2, "reason": "purpose fulfilled"}))
    assert [e.type for e in r.events] == ["revoked"]
    net.refused_twice(
        DEPT, "record_access", {"grant": 2, "version": 1}, ErrorCode.GRANT_REVOKED, "revoked"
    )
    net.refused_twice(
        PROV, "revoke", {"grant": 2, "reason": "again"}, ErrorCode.GRANT_REVOKED, "already"
    )
    # A revoked grantee gets no key to a later version, by add_version or wrap_key.
    net.refused_twice(
        PROV,
        "add_version",
        version_args(CODE, 2, wraps={DEPT.address: b"k"}),
        ErrorCode.GRANT_REVOKED,
        "revoked",
    )
    ok(net.send(PROV, "add_version", version_args(CODE, 2)))
    net.refused_twice(
        PROV,
        "wrap_key",
        {"code": CODE, "version": 2, "grantee": DEPT.address, "wrapped": b"k"},
        ErrorCode.GRANT_REVOKED,
        "revoked",
    )
    # A new grant makes it a reader again.
    ok(net.send(DEPT, "request_access", {"code": CODE, "purpose": "again", "period": 100_000}))
    ok(
        net.send(
            PROV,
            "wrap_key",
            {"code": CODE, "version": 2, "grantee": DEPT.address, "wrapped": b"k2"},
        )
    )
    assert private(net, "wrapped_key", code=CODE, version=2, grantee=DEPT.address) == b"k2"
    grants = private(net, "grants", code=CODE)
    assert [(g["id"], g["state"]) for g in grants] == [
        (1, "expired"),
        (2, "revoked"),
        (3, "active"),
    ]  # type: ignore[attr-defined]
    actions = [e["action"] for e in private(net, "audit", code=CODE)]  # type: ignore[attr-defined]
    assert actions == [
        "request",
        "granted",
        "download",
        "request",
        "granted",
        "revoked",
        "request",
        "granted",
    ]


def test_a_citizen_asks_for_and_reads_records_about_themselves_only(net: Net) -> None:
    _three(net)
    ask = {"code": CODE, "purpose": "my own records", "period": 60_000}
    net.refused_twice(CITIZEN, "request_access", ask, ErrorCode.NOT_SUBJECT, "about itself")
    net.refused_twice(
        CITIZEN,
        "request_access",
        {**ask, "subject": OTHER_TAG},
        ErrorCode.NOT_SUBJECT,
        "own did:key",
    )
    net.refused_twice(
        OTHER_CITIZEN,
        "request_access",
        {**ask, "subject": OTHER_TAG},
        ErrorCode.NOT_SUBJECT,
        "lists",
    )
    r = ok(net.send(CITIZEN, "request_access", {**ask, "subject": CITIZEN_TAG}))
    assert r.result == {"request": 1, "state": "granted", "grant": 1}
    assert private(net, "grant", id=1)["org"] == ""  # type: ignore[index]
    ok(net.send(CITIZEN, "record_access", {"grant": 1, "version": 1}))
    # The citizen's view: exactly the entries about them, with who, what, when and why.
    ok(net.send(DEPT, "request_access", {"code": CODE, "purpose": "tax check", "period": 60_000}))
    ok(net.send(DEPT, "record_access", {"grant": 2, "version": 1, "purpose": "tax check 2026"}))
    ok(net.send(PROV, "add_version", version_args(CODE, 2)))  # lists nobody
    ok(net.send(DEPT, "record_access", {"grant": 2, "version": 2}))
    view = private(net, "accesses", subject=CITIZEN_TAG)
    rows = [(e["action"], e["org"], e["code"], e.get("version"), e["purpose"]) for e in view]  # type: ignore[attr-defined]
    assert rows == [
        ("request", "", CODE, None, "my own records"),
        ("granted", "", CODE, None, "my own records"),
        ("download", "", CODE, 1, "my own records"),
        ("download", "org2", CODE, 1, "tax check 2026"),
    ]
    assert all(e["title"].startswith("常住人口") for e in view)  # type: ignore[attr-defined]
    assert private(net, "accesses", subject=OTHER_TAG) == []
    assert [
        e["seq"]
        for e in private(net, "accesses", subject=CITIZEN_TAG, after=view[1]["seq"], limit=1)
    ] == [  # type: ignore[index]
        view[2]["seq"]  # type: ignore[index]
    ]


def test_private_queries_are_private_and_can_read_says_who_may(net: Net) -> None:
    _three(net)
    assert {
        "grant", "grants", "request", "requests", "audit", "access", "accesses", "records",
        "wrapped_key",
    } == PRIVATE_QUERIES  # fmt: skip
    with pytest.raises(InvalidInput) as info:
        net.query("grants", code=CODE)
    assert info.value.code == ErrorCode.NOT_AUTHORIZED
    ok(net.send(DEPT, "request_access", {"code": CODE, "purpose": "p", "period": 60_000}))

    def may(reader: bytes, query: str, **args: object) -> bool:
        answer = net.query("can_read", reader=reader, query=query, args=args)
        return bool(answer["allowed"])

    assert may(PROV.public_key, "audit", code=CODE) and may(AUDITOR.public_key, "audit", code=CODE)
    assert not may(DEPT.public_key, "audit", code=CODE)
    assert may(DEPT.public_key, "grant", id=1) and may(PROV.public_key, "grant", id=1)
    assert not may(CITIZEN.public_key, "grant", id=1) and not may(DEPT.public_key, "grant", id=7)
    assert may(CITIZEN.public_key, "accesses", subject=CITIZEN_TAG)
    assert not may(OTHER_CITIZEN.public_key, "accesses", subject=CITIZEN_TAG)
    assert may(AUDITOR.public_key, "accesses", subject=CITIZEN_TAG)
    assert not may(PROV.public_key, "accesses", subject=CITIZEN_TAG)
    assert may(DEPT.public_key, "wrapped_key", code=CODE, version=1, grantee=DEPT.address)
    assert not may(AUDITOR.public_key, "wrapped_key", code=CODE, version=1, grantee=DEPT.address)
    with pytest.raises(InvalidInput):
        net.query("can_read", reader=PROV.public_key, query="resource", args={})
    with pytest.raises(NotFound) as missing:
        net.query("resource", code="101001/999")
    assert missing.value.code == ErrorCode.RESOURCE_NOT_FOUND


def test_search_filters_combine_and_page_in_code_order(net: Net) -> None:
    codes = [f"2010020{i % 3}/{i:03d}" for i in range(12)]
    txs = [
        net.tx(
            PROV,
            "register_resource",
            resource(
                c,
                themes=["transport"] if i % 2 else ["health"],
                keywords=[f"k{i % 4}"],
                sharing="unconditional" if i % 3 else "none",
            ),
        )
        for i, c in enumerate(codes)
    ]
    assert all(r.code == "ok" for r in net.block(*txs))

    def pages(**filters: object) -> list[str]:
        out: list[str] = []
        after = None
        while True:
            page = net.query("search", **filters, limit=2, **({"after": after} if after else {}))
            out += [v["code"] for v in page["resources"]]
            assert len(page["resources"]) <= 2
            after = page["next"]
            if after is None:
                return out

    assert pages() == sorted(codes)
    assert pages(provider="org1") == sorted(codes)
    assert pages(theme="transport") == sorted(c for i, c in enumerate(codes) if i % 2)
    expect = sorted(c for i, c in enumerate(codes) if i % 2 and i % 3 and i % 4 == 1)
    assert pages(theme="transport", sharing="unconditional", keyword="k1") == expect
    assert pages(provider="org2") == []


class CountingState:
    """The chain's state, counting what a query reads of it (items iterated, keys got)."""

    def __init__(self, state: StateReader) -> None:
        self.state = state
        self.reads = 0

    def get(self, key: bytes) -> bytes | None:
        self.reads += 1
        return self.state.get(key)

    def iter_prefix(
        self, prefix: bytes, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        for item in self.state.iter_prefix(prefix, after=after):
            self.reads += 1
            yield item


def test_search_pages_seek_their_start_and_cost_the_same_deep_in_the_catalogue(
    net: Net,
) -> None:
    codes = [f"301002/{i:06d}" for i in range(120)]
    assert all(r.code == "ok" for r in net.block(*(net.tx(PROV, "register_resource",
        resource(c)) for c in codes)))  # fmt: skip
    retired = set(codes[5::11])
    assert all(r.code == "ok" for r in net.block(*(net.tx(PROV, "retire_resource",
        {"code": c}) for c in sorted(retired))))  # fmt: skip
    live = [c for c in codes if c not in retired]

    for filters in ({}, {"provider": "org1"}):
        out: list[str] = []
        costs: list[int] = []
        after = None
        while True:
            state = CountingState(net.chain.state)
            args = {**filters, "limit": 50, **({"after": after} if after else {})}
            page = net.chain.executor.query(state, _ctx(net), "data", "search", args)
            out += [v["code"] for v in page["resources"]]
            costs.append(state.reads)
            after = page["next"]
            if after is None:
                break
        assert out == live, filters  # every live resource once, in code order
        # A page reads its own items, not those before its start (reading from the first
        # key of the index and skipping to 'after' made the second page read 50 more keys
        # than the first): a full page deep in the index reads what the first one does, and
        # the last (the fewest resources) no more, give or take a retired one.
        assert len(costs) == 3
        assert costs[1] <= costs[0] + 4 and costs[2] <= costs[0] + 4, costs


def test_id_pages_start_at_their_after(net: Net) -> None:
    _three(net)
    asks = [
        net.tx(who, "request_access", {"code": CODE, "purpose": f"p{i}", "period": 100_000})
        for i, who in enumerate([DEPT, AUDITOR, DEPT, DEPT, AUDITOR, DEPT, DEPT])
    ]
    assert all(r.code == "ok" for r in net.block(*asks))

    def pages(method: str, key: str, **args: object) -> list[int]:
        whole = [x[key] for x in private(net, method, code=CODE, **args)]  # type: ignore[attr-defined]
        out: list[int] = []
        while True:
            page = private(net, method, code=CODE, after=out[-1] if out else 0, limit=2, **args)
            assert len(page) <= 2  # type: ignore[arg-type]
            out += [x[key] for x in page]  # type: ignore[attr-defined]
            if not page:
                break
        assert out == whole
        return out

    assert pages("requests", "id") == list(range(1, 8))
    assert pages("audit", "seq") == list(range(1, 15))
    assert pages("grants", "id", grantee=DEPT.address) == [1, 3, 4, 6, 7]
    assert pages("grants", "id", grantee=AUDITOR.address) == [2, 5]
    assert pages("grants", "id") == list(range(1, 8))  # every grantee's, by id

    def reads(after: int) -> int:
        state = CountingState(net.chain.state)
        args = {"code": CODE, "after": after, "limit": 2}
        page = net.chain.executor.query(state, _ctx(net), "data", "grants", args, private=True)
        assert [g["id"] for g in page] == [after + 1, after + 2]
        return state.reads

    # A page of all grantees' grants reads its own (the resource's head, then an index key
    # and a grant per item), not every grant the resource has, wherever the page starts.
    assert reads(0) == reads(4) == 1 + 2 * 2


def test_a_department_grant_ends_with_its_holder_s_membership(net: Net) -> None:
    _three(net)
    ok(net.send(DEPT, "request_access", {"code": CODE, "purpose": "p", "period": 600_000}))
    ok(net.send(DEPT, "record_access", {"grant": 1, "version": 1}))
    ok(
        net.block(
            net.tx(ADMIN["org2"], "remove_member", {"address": DEPT.address}, contract="gov")
        )[0]
    )
    # No longer a member, the account may still call record_access (as a citizen could), but
    # the department's grant is not its own any more.
    net.refused_twice(
        DEPT, "record_access", {"grant": 1, "version": 1}, ErrorCode.WRONG_GRANTEE, "no longer"
    )


def test_a_download_listed_under_the_most_subjects_fits_the_sdk_s_gas(net: Net) -> None:
    ok(net.send(PROV, "register_resource", resource(CODE)))
    tags = [i.to_bytes(32, "big") for i in range(MAX_SUBJECTS)]
    ok(net.send(PROV, "add_version", version_args(CODE, 1, subjects=tags)))
    ok(net.send(DEPT, "request_access", {"code": CODE, "purpose": "p", "period": 600_000}))
    tx = net.tx(DEPT, "record_access", {"grant": 1, "version": 1}, gas_limit=DATA_GAS_LIMIT)
    (r,) = net.block(tx)
    assert ok(r).gas_used < DATA_GAS_LIMIT
    assert len(private(net, "accesses", subject=tags[-1])) == 1  # type: ignore[arg-type]


def test_a_citizen_may_ask_about_themselves_even_where_nothing_is_shared(net: Net) -> None:
    """PIPL art. 45: 'not shared' (不予共享) closes a resource to other departments, not to
    the person it is about; the citizen's request waits for a named approver."""
    ok(net.send(PROV, "register_resource", conditional(NONE, sharing="none")))
    ok(net.send(PROV, "register_resource", resource(CODE, sharing="none")))  # no approvers
    ok(net.send(PROV, "add_version", version_args(CODE, 1, subjects=[CITIZEN_TAG])))
    ok(net.send(PROV, "add_version", version_args(NONE, 1, subjects=[CITIZEN_TAG])))
    ask = {"code": NONE, "purpose": "my own records", "period": 60_000}
    r = ok(net.send(CITIZEN, "request_access", {**ask, "subject": CITIZEN_TAG}))
    assert r.result == {"request": 1, "state": "pending", "grant": 0}
    assert [e.type for e in r.events] == ["request", "pending"]
    r = ok(net.send(DEPT, "request_access", {**ask, "purpose": "tax check"}))
    assert r.result == {"request": 2, "state": "refused", "grant": 0}  # a department: refused
    r = ok(net.send(APPROVER, "decide", {"request": 1, "approve": True}))
    assert r.result == {"request": 1, "state": "granted", "grant": 1}
    ok(net.send(CITIZEN, "record_access", {"grant": 1, "version": 1}))
    # A resource shared with nobody that names no approver refuses, and says why.
    r = ok(net.send(CITIZEN, "request_access", {**ask, "code": CODE, "subject": CITIZEN_TAG}))
    assert r.result == {"request": 3, "state": "refused", "grant": 0}
    assert "names no approver" in private(net, "request", id=3)["reason"]  # type: ignore[index]


def test_retiring_a_resource_refuses_its_pending_requests(net: Net) -> None:
    ok(net.send(PROV, "register_resource", conditional(COND)))
    ok(net.send(PROV, "add_version", version_args(COND, 1)))
    for purpose in ("first", "second"):
        ok(net.send(DEPT, "request_access", {"code": COND, "purpose": purpose, "period": 60_000}))
    ok(net.send(APPROVER, "decide", {"request": 1, "approve": True}))
    r = ok(net.send(PROV, "retire_resource", {"code": COND, "reason": "merged into 000009"}))
    assert [(e.type, e.attributes.get("why")) for e in r.events] == [
        ("retire", None),
        ("refused", "retired"),
    ]
    req = private(net, "request", id=2)
    assert req["state"] == "refused"  # type: ignore[index]
    assert req["reason"] == f"resource {COND} was retired: merged into 000009"  # type: ignore[index]
    assert private(net, "request", id=1)["state"] == "granted"  # type: ignore[index]
    actions = [e["action"] for e in private(net, "audit", code=COND)]  # type: ignore[attr-defined]
    assert actions == ["request", "request", "granted", "refused"]
    # The grant given before the retirement still opens the data: the provider may still wrap
    # the key for its holder (and only for it), and the holder may download.
    wrap = {"code": COND, "version": 1, "grantee": DEPT.address, "wrapped": b"k"}
    ok(net.send(PROV, "wrap_key", wrap))
    assert private(net, "wrapped_key", code=COND, version=1, grantee=DEPT.address) == b"k"
    ok(net.send(DEPT, "record_access", {"grant": 1, "version": 1}))
    net.refused_twice(
        PROV, "wrap_key", {**wrap, "grantee": CITIZEN.address}, ErrorCode.NO_GRANT, "no live grant"
    )
