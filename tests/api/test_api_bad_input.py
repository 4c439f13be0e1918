"""Bad input always gets a 4xx with ``{"code", "message"}``: never a 500, never pydantic's
422 shape, never a stack trace."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import cbor2
import pytest
from fake_node import FakeNode, TestClient

from citychain.api import create_app
from citychain.crypto import Signer
from citychain.errors import InternalError, Unavailable

CBOR = {"content-type": "application/cbor"}


def assert_error(r: Any, status: int, code: str, *fragments: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    for f in fragments:
        assert f in body["message"], body["message"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    ("path", "status", "code", "fragment"),
    [
        ("/v1/txs/zz", 400, "bad_arguments", "transaction hash must be an even number of hex"),
        ("/v1/txs/abcd", 400, "bad_arguments", "must be 32 bytes (64 hex digits), got 2"),
        ("/v1/txs/" + "g" * 64, 400, "bad_arguments", "hex digits"),
        ("/v1/txs/" + "ab" * 33, 400, "bad_arguments", "must be 32 bytes"),
        ("/v1/blocks/hash/xyz", 400, "bad_arguments", "block hash"),
        ("/v1/blocks/abc", 400, "bad_arguments", "path parameter 'height'"),
        ("/v1/blocks/0", 400, "bad_arguments", "greater than or equal to 1"),
        ("/v1/blocks/-5", 400, "bad_arguments", "greater than or equal to 1"),
        ("/v1/blocks/99999999999999999999999", 400, "bad_arguments", "less than or equal"),
        ("/v1/blocks/1.5", 400, "bad_arguments", "valid integer"),
        ("/v1/state/abc", 400, "bad_arguments", "state key"),
        ("/v1/state/" + "00" * 4097, 400, "bad_arguments", "at most 4096 bytes"),
        ("/v1/state/00?height=zero", 400, "bad_arguments", "query parameter 'height'"),
        ("/v1/state/00?height=0", 400, "bad_arguments", "greater than or equal to 1"),
        ("/v1/accounts/1234", 400, "bad_arguments", "address must be 20 bytes"),
        ("/v1/accounts/" + "x" * 40, 400, "bad_arguments", "address"),
        ("/v1/validators?height=-1", 400, "bad_arguments", "query parameter 'height'"),
        ("/v1/query/token/balance?args=%7B", 400, "malformed", "not valid JSON"),
        ("/v1/query/token/balance?args=%5B1%5D", 400, "bad_arguments", "must be a JSON object"),
        ("/v1/query/token/echo?args=%7B%22a%22%3A1.5%7D", 400, "bad_arguments", "floats"),
        (
            "/v1/query/token/echo?args=%7B%22a%22%3A%7B%22hex%22%3A%22zz%22%7D%7D",
            400,
            "bad_arguments",
            "hex",
        ),
        ("/v1/query/" + "c" * 65 + "/m", 400, "bad_arguments", "contract must be 1 to 64"),
        ("/v1/nowhere", 404, "not_found", "no such endpoint: GET /v1/nowhere"),
        ("/v1/blocks", 404, "not_found", "no such endpoint"),
    ],
)
def test_bad_get_parameters(
    client: TestClient, path: str, status: int, code: str, fragment: str
) -> None:
    assert_error(client.get(path), status, code, fragment)


def test_query_args_nesting_too_deep_is_refused(client: TestClient) -> None:
    deep = "[" * 600 + "]" * 600
    r = client.post(
        "/v1/query/token/echo",
        content=f'{{"args": {{"a": {deep}}}}}',
        headers={"content-type": "application/json"},
    )
    assert_error(r, 400, "bad_arguments", "nests deeper")
    r = client.post(
        "/v1/query/token/echo",
        content="[" * 5000 + "]" * 5000,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400


def test_wrong_method_is_405_with_allowed_methods(client: TestClient) -> None:
    r = client.post("/v1/status")
    assert_error(r, 405, "unsupported", "POST is not allowed", "GET")
    r = client.delete("/v1/tx")
    assert_error(r, 405, "unsupported", "POST")


@pytest.mark.parametrize("path", ["/v1/tx", "/v1/txs"])
@pytest.mark.parametrize(
    ("content", "headers", "status", "code", "fragment"),
    [
        (b"{}", {"content-type": "text/plain"}, 415, "unsupported", "'text/plain'"),
        (b"{}", {}, 415, "unsupported", "missing"),
        (b"{not json", {"content-type": "application/json"}, 400, "malformed", "not valid JSON"),
        (b"[1, 2]", {"content-type": "application/json"}, 400, "bad_arguments", "JSON object"),
        (b'"x"', {"content-type": "application/json"}, 400, "bad_arguments", "a string"),
        (
            b'{"tx": "00", "txs": ["00"]}',
            {"content-type": "application/json"},
            400,
            "bad_arguments",
            "unknown body field",
        ),
        (b"{}", {"content-type": "application/json"}, 400, "bad_arguments", "is required"),
        (b"\xff\xfe", {"content-type": "application/json; charset=utf-8"}, 400, "malformed", ""),
    ],
)
def test_bad_submit_bodies(
    client: TestClient,
    path: str,
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    fragment: str,
) -> None:
    assert_error(client.post(path, content=content, headers=headers), status, code, fragment)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"txs": "00"}, "must be an array of hex strings"),
        ({"txs": [1]}, "txs[0] must be a hex string, got a number"),
        ({"txs": ["00", "0g"]}, "txs[1] must be an even number of hex digits"),
        ({"txs": ["abc"]}, "txs[0]"),
        ({"txs": [""]}, "txs[0] must not be empty"),
        ({"txs": []}, "the batch is empty"),
        ({"txs": [None]}, "got null"),
    ],
)
def test_bad_json_batches(client: TestClient, body: Any, fragment: str) -> None:
    assert_error(client.post("/v1/txs", json=body), 400, "bad_arguments", fragment)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"tx": 5}, "body field 'tx' must be a hex string"),
        ({"tx": "zz"}, "hex digits"),
        ({"tx": ""}, "must not be empty"),
    ],
)
def test_bad_json_single(client: TestClient, body: Any, fragment: str) -> None:
    assert_error(client.post("/v1/tx", json=body), 400, "bad_arguments", fragment)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "ends early"),
        (cbor2.dumps({"a": 1}), "does not start with an array"),
        (cbor2.dumps([1, 2]), "item 0 that is not a byte string"),
        (cbor2.dumps([b"ok", "text"]), "item 1 that is not a byte string"),
        (cbor2.dumps([b"ok"]) + b"\x00", "1 bytes after the array"),
        (b"\x9f\x41a\xff", "indefinite lengths"),
        (b"\x82\x41a", "ends early"),
        (b"\x81\x5a\xff\xff\xff\xff", "ends inside item 0"),
        (b"\x9b" + (2**40).to_bytes(8, "big"), "limit is 50 per request"),
    ],
)
def test_bad_cbor_batches(client: TestClient, body: bytes, fragment: str) -> None:
    r = client.post("/v1/txs", content=body, headers=CBOR)
    assert r.status_code in (400, 413)
    assert_error(r, r.status_code, "too_large" if r.status_code == 413 else "malformed", fragment)


def test_empty_cbor_single_tx(client: TestClient) -> None:
    assert_error(client.post("/v1/tx", content=b"", headers=CBOR), 400, "bad_arguments", "empty")


def test_oversized_bodies_are_413(client: TestClient) -> None:
    big = b"\x00" * (64 * 1024 + 1)
    for path in ("/v1/tx", "/v1/txs"):
        assert_error(client.post(path, content=big, headers=CBOR), 413, "too_large", "65537 bytes")
    r = client.post(
        "/v1/query/token/echo",
        content=b" " * (64 * 1024 + 1),
        headers={"content-type": "application/json"},
    )
    assert_error(r, 413, "too_large", "limit is 65536")
    r = client.get("/v1/query/token/echo", params={"args": '{"a": "' + "x" * 20_000 + '"}'})
    assert_error(r, 413, "too_large")


def test_too_many_txs_in_a_json_batch_is_413(client: TestClient) -> None:
    r = client.post("/v1/txs", json={"txs": ["00"] * 51})
    assert_error(r, 413, "too_large", "51 transactions; the limit is 50")


def test_bad_content_length_header(client: TestClient) -> None:
    r = client.post("/v1/tx", content=b"\x01", headers={**CBOR, "content-length": "abc"})
    assert r.status_code == 400


# -- the body limit holds while streaming ----------------------------------------------------


def _scope(path: str, headers: list[tuple[bytes, bytes]], method: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def _post_raw(
    app: Any,
    path: str,
    headers: list[tuple[bytes, bytes]],
    chunk: bytes,
    chunks: int | None,
    method: str = "POST",
) -> tuple[int, int, bytes]:
    """POST a body of ``chunks`` chunks (None: endless) straight through ASGI.
    Returns (status, chunks the app pulled, response body)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        more = chunks is None or pulled < chunks
        return {"type": "http.request", "body": chunk, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(_scope(path, headers, method), receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, pulled, body


def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    app = create_app(FakeNode(), max_body_bytes=1000)
    headers = [(b"content-type", b"application/cbor"), (b"content-length", b"10000000000")]
    status, pulled, body = _post_raw(app, "/v1/txs", headers, b"\x00" * 100, None)
    assert status == 413
    assert pulled == 0
    assert b'"code":"too_large"' in body


def test_streamed_body_stops_being_read_at_the_limit() -> None:
    app = create_app(FakeNode(), max_body_bytes=1000)
    # No Content-Length (chunked upload) and a body that never ends: the app must stop.
    status, pulled, body = _post_raw(
        app, "/v1/tx", [(b"content-type", b"application/cbor")], b"\x00" * 100, None
    )
    assert status == 413
    assert pulled == 11  # 1100 bytes: the first chunk past the limit, and not one more
    assert b"the limit is 1000 bytes" in body


def _routes_with_bodies(app: Any) -> list[tuple[str, str]]:
    """(method, path with its parameters filled) of every documented route that takes a body:
    the core's and every registered service's."""
    with TestClient(app) as c:
        doc = c.get("/openapi.json").json()
    return [
        (method.upper(), re.sub(r"{[^}]+}", "a", path))
        for path, ops in doc["paths"].items()
        for method in ops
        if method in ("post", "put", "patch")
    ]


def test_every_route_that_takes_a_body_holds_the_limit_while_streaming() -> None:
    """No route buffers what a client sends before looking at its size: a declared length over
    the limit is refused before a byte is read, a chunked body at the first chunk past it. (The
    VC-API's verify routes once read whatever came.)"""
    app = create_app(FakeNode(), max_body_bytes=1000)
    routes = _routes_with_bodies(app)
    assert ("POST", "/credentials/verify") in routes and ("PUT", "/v1/data/blobs/a") in routes
    declared = [(b"content-type", b"application/json"), (b"content-length", b"10000000000")]
    for method, path in routes:
        status, pulled, body = _post_raw(app, path, declared, b" " * 100, 10_000, method)
        assert (status, pulled) == (413, 0), (method, path, body[:200])
        status, pulled, body = _post_raw(app, path, declared[:1], b" " * 100, 10_000, method)
        assert (status, pulled) == (413, 11), (method, path, body[:200])
        assert b'"code":"too_large"' in body and b"the limit is 1000 bytes" in body


# -- the node's faults --------------------------------------------------------------------------


class BrokenNode(FakeNode):
    def status(self) -> Any:
        raise RuntimeError("secret database path /var/lib/x")

    def latest_height(self) -> int:
        raise InternalError("disk on fire")

    async def submit(self, raw_txs: Any) -> Any:
        raise Unavailable("node is syncing")


def test_unexpected_errors_are_a_generic_500_logged_with_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TestClient(create_app(BrokenNode())) as c, caplog.at_level(logging.ERROR):
        r = c.get("/v1/status")
        assert_error(r, 500, "internal", "internal error; see node log")
        assert "secret" not in r.text
        assert any(rec.exc_info and "secret" in str(rec.exc_info[1]) for rec in caplog.records)
        r = c.get("/v1/blocks/latest")
        assert_error(r, 500, "internal", "internal error; see node log")
        assert "disk on fire" not in r.text


def test_unavailable_is_503_with_retry_after(alice: Signer) -> None:
    with TestClient(create_app(BrokenNode())) as c:
        r = c.post("/v1/txs", content=cbor2.dumps([b"x"]), headers=CBOR)
    assert_error(r, 503, "unavailable", "syncing")
    assert r.headers["retry-after"] == "1"


def test_submit_result_count_mismatch_is_internal() -> None:
    class Short(FakeNode):
        async def submit(self, raw_txs: Any) -> Any:
            return []

    with TestClient(create_app(Short())) as c:
        r = c.post("/v1/txs", content=cbor2.dumps([b"x"]), headers=CBOR)
    assert_error(r, 500, "internal")


def test_create_app_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="positive"):
        create_app(FakeNode(), max_body_bytes=0)
