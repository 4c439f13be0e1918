"""The resolution index (``citychain.services.identity.router._index``): a DID's latest
resolution, rendered, kept on disk per version; given while that version is the DID's latest,
across blocks, and never once a later version exists; made by the first resolution and, ahead
of any, by the server's background job following the DID events."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from citychain.api import create_app
from citychain.api.node_service import NodeServiceAdapter
from citychain.services.identity import router as identity_router
from citychain.services.identity.shapes import citychain_did, citychain_id
from citychain.types import Commit, Transaction

sys.path.insert(0, str(Path(__file__).resolve().parent))
from did_world import ALICE, World, counting_queries, tx


def _doc(service: str | None = None) -> dict[str, Any]:
    from citychain.services.identity.shapes import multikey_encode

    doc: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "verificationMethod": [
            {
                "id": "#key-1",
                "type": "Multikey",
                "publicKeyMultibase": multikey_encode(ALICE.public_key),
            }
        ],
        "authentication": ["#key-1"],
        "capabilityInvocation": ["#key-1"],
    }
    if service:
        doc["service"] = [{"id": "#files", "type": "LinkedDomains", "serviceEndpoint": service}]
    return doc


def _entry(world: World, did: str, form: str = "") -> tuple[int, int] | None:
    """(version, status) of ``did``'s entry in the index (of its document alone, as
    ``form``, if given), if it has one."""
    raw = world.node.index_get("identity", f"{did} {form}".encode() if form else did.encode())
    if raw is None:
        return None
    assert raw[:16] == citychain_id(did)
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:22], "big")


async def _until(done: Callable[[], bool]) -> None:
    """Wait (up to 5 s) until ``done()``: the job works on the same loop, between events."""
    for _ in range(500):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached in 5 s")


async def _stop(job: asyncio.Task[None]) -> None:
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job


async def _answered(app: Any, dids: list[str]) -> None:
    """Each of ``dids`` resolves (200) through the app's routes."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://node"
    ) as client:
        for d in dids:
            assert (await client.get(f"/1.0/identifiers/{d}")).status_code == 200


def test_a_latest_resolution_is_given_from_the_index_until_the_did_changes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, gone = world.did, world.gone
    asked = counting_queries(world, monkeypatch)
    other = citychain_did(tx(3, "create_did", {"document": _doc()}).hash[:16])

    async def run() -> None:
        app = create_app(NodeServiceAdapter(world.node))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://node"
        ) as client:

            async def get(path: str, **headers: str) -> tuple[int, bytes, int]:
                before = len(asked)
                r = await client.get(path, headers=headers)
                return r.status_code, r.content, len(asked) - before

            assert _entry(world, d) is None and _entry(world, gone) is None
            first = await get(f"/1.0/identifiers/{d}")
            first_gone = await get(f"/1.0/identifiers/{gone}")
            assert (first[0], first[2], first_gone[0], first_gone[2]) == (200, 1, 410, 1)
            assert _entry(world, d) == (1, 200) and _entry(world, gone) == (2, 410)

            # A block that writes neither: both still given from the index, as sent before
            # (not from the answers kept for one height: the height moved).
            world._commit([tx(3, "create_did", {"document": _doc()})], 30_000)
            assert await get(f"/1.0/identifiers/{d}") == (200, first[1], 0)
            assert await get(f"/1.0/identifiers/{gone}") == (410, first_gone[1], 0)

            # The document alone, in either form: kept too, each in its own entry, after
            # its first ask; a resolution with options is asked each time.
            for form in ("application/did+json", "application/did+ld+json"):
                status, doc, queries = await get(f"/1.0/identifiers/{d}", accept=form)
                assert (status, queries) == (200, 1) and b'"didDocumentMetadata"' not in doc
                assert (b'"@context"' in doc) == (form == "application/did+ld+json")
                assert _entry(world, d, form) == (1, 200)
                world._commit([], 30_500 + len(form))  # the height moves: not kept by HTTP
                again = await get(f"/1.0/identifiers/{d}", accept=form)
                assert again == (200, doc, 0)
            for i in range(2):
                world._commit([], 31_000 + i)  # each ask after its own block
                assert (await get(f"/1.0/identifiers/{d}?versionId=1"))[2] == 1
            assert _entry(world, other) is None

            # A new version: the entry of version 1 is never given again.
            world._commit(
                [tx(4, "update_did", {"did": d, "document": _doc("https://files.example")})],
                40_000,
            )
            status, body, queries = await get(f"/1.0/identifiers/{d}")
            assert (status, queries) == (200, 1)
            assert b"files.example" in body and b'"versionId":"2"' in body
            assert _entry(world, d) == (2, 200)

            # An entry lost (the index is written without fsync) is made again.
            batch = world.node.chain.kv.batch()
            batch.delete("indexes", b"identity/" + d.encode())
            world.node.chain.kv.write(batch)
            world._commit([tx(5, "create_did", {"document": _doc()})], 50_000)
            assert await get(f"/1.0/identifiers/{d}") == (200, body, 1)
            assert _entry(world, d) == (2, 200)

            # Deactivated: the entry of version 3 answers 410 from then on.
            world._commit([tx(6, "deactivate_did", {"did": d})], 60_000)
            status, body, queries = await get(f"/1.0/identifiers/{d}")
            assert (status, queries) == (410, 1) and _entry(world, d) == (3, 410)
            world._commit([tx(7, "create_did", {"document": _doc()})], 70_000)
            assert await get(f"/1.0/identifiers/{d}") == (410, body, 0)

            # A DID never created, or malformed: never an entry.
            for made_up in (citychain_did(bytes(range(16))), "did:citychain:0OIl"):
                assert (await get(f"/1.0/identifiers/{made_up}"))[0] in (400, 404)
                assert world.node.index_get("identity", made_up.encode()) is None

    asyncio.run(run())
    seen = {
        e: world.node.metrics_registry.get_sample_value(
            "citychain_identity_index_total", {"event": e}
        )
        for e in ("hit", "miss", "made_on_ask")
    }
    assert seen == {"hit": 5, "miss": 9, "made_on_ask": 7}


def _commit_as_consensus(world: World, txs: list[Transaction], time_ms: int) -> None:
    """Commit a block as the consensus engine does: the chain's commit, then the node's
    commit callback (which streams the block's events to subscribers)."""
    chain, val = world.node.chain, world.node.signer
    pending = chain.build_block(txs, time_ms, val.public_key)
    assert all(r.ok for r in pending.receipts), [r.error for r in pending.receipts]
    commit = Commit.sign_single(val, "svc", pending.header)
    chain.commit(pending, commit)
    world.node._on_commit(pending, commit)


def test_the_servers_job_makes_the_entries_of_each_block_before_anyone_asks(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(NodeServiceAdapter(world.node))
    assert identity_router.keep_filled in app.state.background  # run by citychain start
    made = [tx(3 + i, "create_did", {"document": _doc()}) for i in range(40)]
    new = [citychain_did(t.hash[:16]) for t in made]
    asked = counting_queries(world, monkeypatch)

    async def run() -> None:
        job = asyncio.create_task(identity_router.keep_filled(app.state.service))
        await asyncio.sleep(0)  # subscribed
        _commit_as_consensus(world, made, 30_000)
        await _until(lambda: all(_entry(world, d) == (1, 200) for d in new))
        updated = tx(43, "update_did", {"did": world.did, "document": _doc("https://x.example")})
        _commit_as_consensus(world, [updated, tx(44, "deactivate_did", {"did": new[0]})], 40_000)
        await _until(lambda: _entry(world, world.did) == (2, 200))
        await _until(lambda: _entry(world, new[0]) == (2, 410))
        await _stop(job)
        queried = len(asked)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://node"
        ) as client:
            for d in new[1:]:
                r = await client.get(f"/1.0/identifiers/{d}")
                assert r.status_code == 200 and d.encode() in r.content
            r = await client.get(f"/1.0/identifiers/{world.did}")
            assert b"x.example" in r.content
        assert len(asked) == queried  # every answer was in the index already
        # What an operator reads on /metrics: 42 entries made ahead, 40 answers given.
        seen = {
            e: world.node.metrics_registry.get_sample_value(
                "citychain_identity_index_total", {"event": e}
            )
            for e in ("made_ahead", "hit", "miss", "made_on_ask", "job_behind")
        }
        assert seen == {
            "made_ahead": 42, "hit": 40, "miss": 0, "made_on_ask": 0, "job_behind": 0
        }  # fmt: skip

    asyncio.run(run())


def test_a_job_that_falls_behind_follows_again_from_its_height_and_misses_no_did(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node closes the job's stream when it falls behind (here after 5 events: a block
    of 40 DIDs overflows it). The job subscribes again from the height of the last event
    it took; the rest of that block is read back from the store, and every DID is made
    ahead of any ask."""
    from citychain.node import node as node_module

    monkeypatch.setattr(node_module, "SUBSCRIBER_QUEUE", 5)
    monkeypatch.setattr(asyncio, "sleep", _fast_sleep(asyncio.sleep))
    app = create_app(NodeServiceAdapter(world.node))
    made = [tx(3 + i, "create_did", {"document": _doc()}) for i in range(40)]
    new = [citychain_did(t.hash[:16]) for t in made]
    asked = counting_queries(world, monkeypatch)

    async def run() -> None:
        job = asyncio.create_task(identity_router.keep_filled(app.state.service))
        await asyncio.sleep(0)  # subscribed
        _commit_as_consensus(world, made, 30_000)
        for _ in range(500):
            if all(_entry(world, d) == (1, 200) for d in new):
                break
            await asyncio.sleep(0.01)
        await _stop(job)
        assert [d for d in new if _entry(world, d) != (1, 200)] == []
        registry = world.node.metrics_registry
        assert (
            registry.get_sample_value("citychain_identity_index_total", {"event": "job_behind"})
            == 1
        )
        await _answered(app, new)
        assert asked == []  # every answer was in the index

    asyncio.run(run())


def test_a_restarted_job_goes_on_from_where_it_got_and_misses_no_did(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job notes how far it got (every few seconds, and when it stops), blocks without a
    DID included; started again, it reads back the blocks committed meanwhile and makes
    their DIDs ahead of any ask."""
    monkeypatch.setattr(identity_router, "_SAVE_EVERY", 0.01)
    app = create_app(NodeServiceAdapter(world.node))
    service = app.state.service
    first = [tx(3 + i, "create_did", {"document": _doc()}) for i in range(5)]
    later = [tx(8 + i, "create_did", {"document": _doc()}) for i in range(5)]
    asked = counting_queries(world, monkeypatch)
    position = b"\x00job-position"

    def noted() -> int | None:
        raw = world.node.index_get("identity", position)
        return None if raw is None else int.from_bytes(raw, "big")

    async def run() -> None:
        job = asyncio.create_task(identity_router.keep_filled(service))
        await asyncio.sleep(0)  # subscribed
        _commit_as_consensus(world, first, 30_000)
        _commit_as_consensus(world, [], 31_000)  # no DID: the noted height moves anyway
        height = world.node.chain.height
        await _until(lambda: noted() == height)
        await _stop(job)
        _commit_as_consensus(world, later, 40_000)  # while the job is stopped
        new = [citychain_did(t.hash[:16]) for t in later]
        assert [_entry(world, d) for d in new] == [None] * 5
        job = asyncio.create_task(identity_router.keep_filled(service))
        await _until(lambda: all(_entry(world, d) == (1, 200) for d in new))
        await _until(lambda: noted() == world.node.chain.height)
        await _stop(job)
        await _answered(app, [citychain_did(t.hash[:16]) for t in first + later])
        assert asked == []  # every answer was made ahead

    asyncio.run(run())


def test_a_job_that_never_ran_makes_the_dids_already_on_chain(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node upgraded on a running chain (or whose index was removed) has DIDs on chain and
    no noted height: the job reads the chain back from its first block, so those DIDs are
    answered from the index too, not each made at its first ask."""
    app = create_app(NodeServiceAdapter(world.node))
    before = [tx(3 + i, "create_did", {"document": _doc()}) for i in range(5)]
    _commit_as_consensus(world, before, 30_000)  # before the job ever ran
    old = [citychain_did(t.hash[:16]) for t in before]
    asked = counting_queries(world, monkeypatch)

    async def run() -> None:
        job = asyncio.create_task(identity_router.keep_filled(app.state.service))
        await _until(lambda: all(_entry(world, d) == (1, 200) for d in old))
        await _stop(job)
        await _answered(app, old)
        assert asked == []  # every answer was made ahead

    asyncio.run(run())


def _fast_sleep(sleep: Callable[[float], Any]) -> Callable[[float], Any]:
    """``asyncio.sleep`` with the job's second of rest after a closed stream cut short."""

    async def fast(delay: float, *args: Any) -> Any:
        return await sleep(min(delay, 0.01), *args)

    return fast


def test_an_entry_made_from_the_records_is_byte_for_byte_the_querys(world: World) -> None:
    """The background job renders from the records read directly (``Resolver.prefill``), the
    first resolution from the query's answer: the same DID at the same version gives the
    same bytes either way (sorted JSON keys), live, updated and deactivated."""
    service = NodeServiceAdapter(world.node)
    world._commit(
        [tx(3, "update_did", {"did": world.did, "document": _doc("https://y.example")})],
        30_000,
    )

    async def by_query() -> dict[str, bytes]:
        app = create_app(service)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://node"
        ) as client:
            return {d: (await client.get(f"/1.0/identifiers/{d}")).content for d in dids}

    dids = (world.did, world.gone)
    asked = asyncio.run(by_query())
    for d in dids:
        entry = world.node.index_get("identity", d.encode())
        assert entry is not None and entry[22:] == asked[d]
        world.node.index_put("identity", [(d.encode(), b"")])  # gone
        identity_router.Resolver(service).prefill(d)
        entry = world.node.index_get("identity", d.encode())
        assert entry is not None and entry[22:] == asked[d], d
    assert _entry(world, world.did) == (2, 200) and _entry(world, world.gone) == (2, 410)
    identity_router.Resolver(service).prefill(citychain_did(bytes(16)))  # not on chain
    assert world.node.index_get("identity", citychain_did(bytes(16)).encode()) is None
