"""DID resolution is a hot route (``citychain.api._hot``): answered before FastAPI routes the
request. It must answer exactly as the declared FastAPI route does, for every status, and
leave what it does not match (other methods, deeper paths) to the app."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from citychain.api import create_app
from citychain.api.limits import Refusals, RequestLimits, guarded_protocol
from citychain.api.node_service import NodeServiceAdapter
from citychain.crypto import ED25519, Signer
from citychain.services.identity import router as identity_router
from citychain.services.identity.sdk._dids import DID_GAS_LIMIT
from citychain.services.identity.shapes import citychain_did
from citychain.types import Transaction

sys.path.insert(0, str(Path(__file__).resolve().parent))
from did_world import World, counting_queries

RESOLUTION = "application/did-resolution"


def _answers(world: World, requests: list[tuple[str, str, dict[str, str]]]) -> list[object]:
    async def run() -> list[object]:
        app = create_app(NodeServiceAdapter(world.node))
        out: list[object] = []
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://node"
        ) as client:
            for method, path, headers in requests:
                r = await client.request(method, path, headers=headers)
                out.append((r.status_code, r.headers.get("content-type"), r.content))
        return out

    return asyncio.run(run())


def test_the_hot_route_answers_every_request_as_the_fastapi_route_does(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, gone, unknown = world.did, world.gone, citychain_did(bytes(range(16)))
    requests: list[tuple[str, str, dict[str, str]]] = [
        ("GET", f"/1.0/identifiers/{d}", {}),
        ("GET", f"/1.0/identifiers/{d.replace(':', '%3A')}", {}),
        ("GET", f"/1.0/identifiers/{d}", {"accept": "application/did+json"}),
        ("GET", f"/1.0/identifiers/{d}", {"accept": "text/html, application/did+ld+json"}),
        ("GET", f"/1.0/identifiers/{d}", {"accept": "text/html"}),
        ("GET", f"/1.0/identifiers/{d}?versionId=1", {}),
        ("GET", f"/1.0/identifiers/{d}?versionId=9", {}),
        ("GET", f"/1.0/identifiers/{d}?versionId=1&versionId=x", {}),
        ("GET", f"/1.0/identifiers/{d}?versionTime=2026-12-03", {}),
        ("GET", f"/1.0/identifiers/{d}?versionTime=1970-01-01T00:00:10Z", {}),
        ("GET", f"/1.0/identifiers/{d}?service=files", {}),
        ("GET", f"/1.0/identifiers/{gone}", {}),
        ("GET", f"/1.0/identifiers/{gone}?versionId=1", {}),
        ("GET", f"/1.0/identifiers/{unknown}", {}),
        ("GET", "/1.0/identifiers/did:citychain:1111111111111111111111", {}),
        ("GET", "/1.0/identifiers/did:web:example.org", {}),
        ("GET", "/1.0/identifiers/not-a-did", {}),
        ("GET", f"/1.0/identifiers/{world.key}", {}),
        ("GET", "/1.0/identifiers/", {}),
        # Not the hot route's: the app answers them (405, and a DID URL's dereferencing: a
        # path that is no status list is INVALID_DID_URL, a list never published NOT_FOUND).
        ("POST", f"/1.0/identifiers/{d}", {}),
        ("HEAD", f"/1.0/identifiers/{d}", {}),
        ("GET", f"/1.0/identifiers/{d}/extra", {}),
        ("GET", f"/1.0/identifiers/{d}/status/none", {}),
    ]
    hot = _answers(world, requests)
    monkeypatch.setattr(identity_router, "hot_routes", ())
    routed = _answers(world, requests)
    assert hot == routed
    statuses = [a[0] for a in hot]  # type: ignore[index]
    assert statuses == [
        200, 200, 200, 200, 406, 200, 404, 400, 400, 200, 501, 410, 200, 404, 400, 501, 400, 200,
        400, 405, 405, 400, 404,
    ]  # fmt: skip


def test_a_crash_in_a_hot_route_is_a_logged_500_with_no_trace_in_the_body(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*_: object, **__: object) -> object:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(world.node, "query", boom)
    (status, ctype, body), *_ = _answers(world, [("GET", f"/1.0/identifiers/{world.did}", {})])
    assert status == 500 and ctype == "application/json"
    assert b"disk on fire" not in body and b"Traceback" not in body
    assert "disk on fire" in caplog.text


def test_a_repeated_resolution_is_answered_as_sent_until_the_next_block(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verifiers ask the same DIDs again and again between two blocks: the route answers a
    repeated request with the bytes it sent, without asking the chain again, and never past
    the height it was computed at (a block that changes the DID is seen at once)."""
    d, unknown = world.did, citychain_did(bytes(range(16)))
    asked = counting_queries(world, monkeypatch)
    requests = [
        f"/1.0/identifiers/{d}",
        f"/1.0/identifiers/{d}?versionId=1",
        f"/1.0/identifiers/{world.gone}",  # 410: kept too
        f"/1.0/identifiers/{unknown}",  # 404: asked each time, never kept
    ]

    async def run() -> list[list[tuple[int, str, bytes, int]]]:
        app = create_app(NodeServiceAdapter(world.node))
        rounds = []
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://node"
        ) as client:
            for step in range(3):
                if step == 2:  # a block rotates nothing but adds a service to the DID
                    doc = (await client.get(f"/1.0/identifiers/{d}")).json()["didDocument"]
                    doc["service"] = [{"id": "#files", "type": "LinkedDomains",
                                       "serviceEndpoint": "https://files.example"}]  # fmt: skip
                    doc.pop("id")
                    alice = Signer(ED25519, b"\x02" * 32)
                    world._commit(
                        [Transaction.create(
                            alice, chain_id="svc", nonce=3, contract="identity",
                            method="update_did", args={"did": d, "document": doc},
                            gas_limit=DID_GAS_LIMIT,
                        )],
                        30_000,
                    )  # fmt: skip
                answers = []
                for path in requests:
                    before = len(asked)
                    r = await client.get(path)
                    answers.append(
                        (r.status_code, r.headers["content-type"], r.content, len(asked) - before)
                    )
                    assert r.headers["access-control-allow-origin"] == "*"
                rounds.append(answers)
        return rounds

    first, again, after = asyncio.run(run())
    assert [a[0] for a in first] == [200, 200, 410, 404]
    assert [a[:3] for a in again] == [a[:3] for a in first]  # byte for byte, headers too
    assert [a[3] for a in first] == [1, 1, 1, 1] and [a[3] for a in again] == [0, 0, 0, 1]
    # A new height: each asked anew, but for the deactivated DID, whose version the block did
    # not change: its latest resolution is given from the resolution index (._index).
    assert [a[3] for a in after] == [1, 1, 0, 1]
    assert after[2][:3] == first[2][:3]
    assert b"files.example" in after[0][2] and b"files.example" not in first[0][2]
    # version 1 keeps its document, and its metadata now names the version after it
    assert b"files.example" not in after[1][2] and b"nextVersionId" in after[1][2]
    assert b"nextVersionId" not in first[1][2]


def _over_the_protocol(
    world: World, targets: list[tuple[str, str | None]]
) -> tuple[list[tuple[list[bytes], list[bytes]]], int]:
    """Each target asked twice on one keep-alive connection to uvicorn serving the node's
    app with the node's own HTTP protocol (as ``citychain start`` does): each answer's
    header lines (date and server aside) and body, and how many requests reached the app."""
    app = create_app(NodeServiceAdapter(world.node))
    reached = [0]

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            reached[0] += 1
        await app(scope, receive, send)

    async def run() -> list[tuple[list[bytes], list[bytes]]]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        protocol = guarded_protocol(
            RequestLimits(5.0, 5.0, 4096, 8192), Refusals(CollectorRegistry()), app.state.kept
        )
        server = uvicorn.Server(
            uvicorn.Config(counted, log_level="warning", lifespan="off", http=protocol)
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        out = []
        try:
            for target, accept in targets:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                head = f"GET {target} HTTP/1.1\r\nHost: node\r\n"
                head += f"Accept: {accept}\r\n\r\n" if accept else "\r\n"
                pair = []
                for _ in range(2):
                    writer.write(head.encode())
                    top = await reader.readuntil(b"\r\n\r\n")
                    lines = [
                        line
                        for line in top.split(b"\r\n")[:-2]
                        if not line.startswith((b"date: ", b"server: "))
                    ]
                    length = int(next(x for x in lines if x.startswith(b"content-length: "))[16:])
                    pair.append((lines, await reader.readexactly(length)))
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()  # not left to be collected after the loop ends
                out.append(
                    ([pair[0][0][0], *sorted(pair[0][0][1:]), pair[0][1]],
                     [pair[1][0][0], *sorted(pair[1][0][1:]), pair[1][1]])
                )  # fmt: skip
        finally:
            server.should_exit = True
            await serving
        return out

    return asyncio.run(run()), reached[0]


def test_the_protocol_makes_resolutions_itself_byte_for_byte_the_apps(world: World) -> None:
    """The node's HTTP protocol resolves a plain GET of a DID (or a status list's DID URL)
    itself, before any ASGI task (citychain.api._kept's producers): every such answer,
    made the first time and kept the second, has the app's status line, headers and body.
    A target with resolution options, or one the app's routing reads otherwise, still goes
    to the app."""
    d, gone, unknown = world.did, world.gone, citychain_did(bytes(range(16)))
    made: list[tuple[str, str | None]] = [
        (f"/1.0/identifiers/{d}", None),
        (f"/1.0/identifiers/{d.replace(':', '%3A')}", None),
        (f"/1.0/identifiers/{d}", "application/did+json"),
        (f"/1.0/identifiers/{d}", "text/html, application/did+ld+json"),
        (f"/1.0/identifiers/{d}", "text/html"),
        (f"/1.0/identifiers/{gone}", None),
        (f"/1.0/identifiers/{unknown}", None),
        ("/1.0/identifiers/did:web:example.org", None),
        ("/1.0/identifiers/not-a-did", None),
        (f"/1.0/identifiers/{world.key}", None),
        (f"/1.0/identifiers/{d}/extra", None),
        (f"/1.0/identifiers/{d}%2Fstatus%2Fnone", None),
    ]
    routed: list[tuple[str, str | None]] = [
        (f"/1.0/identifiers/{d}?versionId=1", None),
        (f"/1.0/identifiers/{d}?service=files", None),
        ("/1.0/identifiers/", None),
        ("/1.0/identifiers//status/x", None),
    ]
    answers, reached = _over_the_protocol(world, made + routed)
    by_app = _answers(world, [("GET", t, {"accept": a} if a else {}) for t, a in made + routed])
    for (target, _), (first, again), (status, ctype, body) in zip(
        made + routed, answers, by_app, strict=True
    ):
        assert first[0].split(b" ")[1] == str(status).encode(), (target, first[0])
        assert f"content-type: {ctype}".encode() in first and first[-1] == body, target
        # the status list dereferenced, not kept: asked again, answered again the same
        assert again == first, target
    statuses = [int(first[0].split(b" ")[1]) for first, _ in answers]
    assert statuses == [
        200,
        200,
        200,
        200,
        406,
        410,
        404,
        501,
        400,
        200,
        400,
        404,
        200,
        501,
        400,
        404,
    ]
    # Only the routed ones reached the app: each twice, but the first's kept answer
    # (a versioned resolution) was given the second time by the protocol.
    assert reached == 2 * len(routed) - 1
