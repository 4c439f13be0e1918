"""``client.data``: the pure argument builders refuse what the contract would, before
anything is signed, and the helpers send the builders' args and read the public queries
(against a stand-in client: the node's side is the contract tests')."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode, ExecutionFailure, InvalidInput
from citychain.sdk import Client
from citychain.services.data import sdk
from citychain.services.data.shapes import subject_tag
from citychain.services.identity.shapes import did_key
from citychain.types import Receipt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pagecache import cached_pages, pages_can_be_dropped  # type: ignore[import-not-found]

SIGNER = Signer(ED25519, b"\x05" * 32)
CODE = "101001/000001"


def test_builders_check_and_normalise() -> None:
    args = sdk.register_args(
        code=CODE,
        title="T",
        provider="org1",
        sharing="conditional",
        sharing_condition="c",
        approvers=["07" * 20],
        keywords=["b", "a", "b"],
    )
    assert args["approvers"] == [b"\x07" * 20] and args["keywords"] == ["a", "b"]
    did = did_key(SIGNER.public_key)
    req = sdk.request_args(CODE, "mine", period=1000, subject=did)
    assert req == {"code": CODE, "purpose": "mine", "period": 1000, "subject": subject_tag(did)}
    v = sdk.version_args(
        CODE,
        manifest_id=b"\x01" * 32,
        plain_hash=b"\x02" * 32,
        cipher_hash=b"\x03" * 32,
        plain_size=1,
        cipher_size=17,
        cipher="aes-256-gcm",
        wraps={"09" * 20: b"w"},
    )
    assert v["wraps"] == [{"grantee": b"\x09" * 20, "wrapped": b"w"}]
    assert sdk.decide_args(3, False, "no") == {"request": 3, "approve": False, "reason": "no"}
    assert sdk.access_args(1, 2) == {"grant": 1, "version": 2}
    for call, words in (
        (lambda: sdk.request_args(CODE, "p"), "'until'"),
        (lambda: sdk.request_args(CODE, "p", until=5, period=5), "'until'"),
        (lambda: sdk.request_args("bad", "p", period=5), "resource code"),
        (lambda: sdk.decide_args(1, False), "reason"),
        (lambda: sdk.access_args(0, 1), "grant"),
        (
            lambda: sdk.register_args(code=CODE, title="T", provider="org1", sharing="some"),
            "sharing",
        ),
        (lambda: sdk.wrap_args(CODE, 1, b"\x01" * 20, b""), "wrapped"),
    ):
        with pytest.raises(InvalidInput) as info:
            call()
        assert info.value.code == ErrorCode.BAD_ARGUMENTS and words in info.value.message


class FakeClient:
    """What a service helper needs of a client, answering from a script."""

    def __init__(self, result: Any = None, code: str = "ok") -> None:
        self.sent: list[tuple[str, str, dict[str, Any], int]] = []
        self.queries: list[tuple[str, str, dict[str, Any]]] = []
        self.result, self.code = result, code
        self.pages: list[dict[str, Any]] = []

    def query(self, contract: str, method: str, /, **args: Any) -> Any:
        self.queries.append((contract, method, args))
        if method == "search":
            return self.pages.pop(0)
        return [] if method == "versions" else {"code": args.get("code")}

    def _post_json(self, path: str, body: Any) -> Any:
        raise AssertionError("not used")

    def _send_committed(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        *,
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt:
        self.sent.append((contract, method, dict(args), gas_limit))
        words = "refused words" if self.code != "ok" else ""
        return Receipt(b"\x00" * 32, self.code, words, 1, self.result, ())


def test_helpers_send_the_builders_args_and_raise_the_receipt_s_code() -> None:
    fake = FakeClient(result={"request": 1, "state": "granted", "grant": 1})
    data = sdk.bind(fake)
    assert data.request_access(SIGNER, CODE, "p", period=10) == fake.result
    assert fake.sent == [
        ("data", "request_access", sdk.request_args(CODE, "p", period=10), sdk.DATA_GAS_LIMIT)
    ]
    refused = sdk.bind(FakeClient(code="grant_expired"))
    with pytest.raises(ExecutionFailure) as info:
        refused.record_access(SIGNER, 1, 1)
    assert info.value.code == ErrorCode.GRANT_EXPIRED
    assert info.value.message.startswith("data.record_access failed:")
    pages = FakeClient()
    pages.pages = [
        {"resources": [{"code": "a"}, {"code": "b"}], "next": "101001/2"},
        {"resources": [{"code": "c"}], "next": None},
    ]
    assert [r["code"] for r in sdk.bind(pages).search_all(theme="x")] == ["a", "b", "c"]
    assert pages.queries[1][2] == {"limit": 200, "theme": "x", "after": "101001/2"}


def test_async_helpers_and_the_client_attribute() -> None:
    class AsyncFake(FakeClient):
        async def query(self, contract: str, method: str, /, **args: Any) -> Any:  # type: ignore[override]
            return FakeClient.query(self, contract, method, **args)

        async def _send_committed(self, *a: Any, **kw: Any) -> Receipt:  # type: ignore[override]
            return FakeClient._send_committed(self, *a, **kw)

    fake = AsyncFake(result=2)
    data = sdk.bind_async(fake)
    assert asyncio.run(data.add_version(SIGNER, CODE, **{
        "manifest_id": b"\x01" * 32, "plain_hash": b"\x02" * 32, "cipher_hash": b"\x03" * 32,
        "plain_size": 1, "cipher_size": 17, "cipher": "sm4-gcm",
    })) == 2  # fmt: skip
    assert asyncio.run(data.resource(CODE)) == {"code": CODE}
    assert isinstance(Client().data, sdk.Data)


def test_catalogue_exports_what_the_node_lists() -> None:
    rec = sdk.register_args(code=CODE, title="T", provider="org1", sharing="unconditional")
    fake = FakeClient()
    fake.pages = [{"resources": [{**rec, "issued": 5, "modified": 6, "revision": 1}], "next": None}]
    doc = sdk.bind(fake).catalogue(base="https://x.example")
    (back,) = sdk.import_catalogue(doc)
    assert back == {**rec, "issued": 5, "modified": 6}
    assert [q[1] for q in fake.queries] == ["search", "versions"]


def test_collection_args_carry_the_peer_counts_only_when_set() -> None:
    plain = sdk.collection_args("c", ["org1"])
    assert "required_peers" not in plain and "max_peers" not in plain
    both = sdk.collection_args("c", ["org1"], required_peers=1, max_peers=2)
    assert (both["required_peers"], both["max_peers"]) == (1, 2)
    with pytest.raises(InvalidInput, match="exceeds 'max_peers'"):
        sdk.collection_args("c", ["org1"], required_peers=3, max_peers=2)


def test_put_private_sends_no_transaction_when_the_value_was_not_disseminated() -> None:
    """The node answers ``dissemination_failed``: the helpers raise it, and the value's hash
    is never sent in a ``put_private`` (neither by the blocking client nor the async one)."""
    import httpx

    from citychain.errors import Unavailable
    from citychain.sdk import AsyncClient

    seen: list[str] = []
    refusal = {"code": "dissemination_failed", "message": "1 of the 2 peer(s) acknowledged it"}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "PUT":
            return httpx.Response(503, json=refusal)
        raise AssertionError(f"nothing else may be sent: {request.method} {request.url}")

    transport = httpx.MockTransport(handler)
    with (
        Client("http://node.test", transport=transport) as node,
        pytest.raises(Unavailable) as failed,
    ):
        node.data.put_private(SIGNER, "c", "k", b"v")
    assert failed.value.code == ErrorCode.DISSEMINATION_FAILED

    async def run() -> None:
        async with AsyncClient("http://node.test", transport=httpx.MockTransport(handler)) as node:
            with pytest.raises(Unavailable) as failed:
                await node.data.put_private(SIGNER, "c", "k", b"v")
            assert failed.value.code == ErrorCode.DISSEMINATION_FAILED

    asyncio.run(run())
    assert seen == ["PUT /v1/data/collections/c/items/k"] * 2


def test_grant_keys_reads_every_page_of_grants() -> None:
    """A resource with more grants than one page (200): the provider's ``grant_keys`` once
    read only the first page, so the 201st grantee never got a key."""
    from citychain.services.data.sdk._transfer import Transfers

    grants = [{"id": i, "state": "active"} for i in range(1, 451)]
    asked: list[dict[str, str] | None] = []

    class Pager:
        def _signed(self, signer: Signer, method: str, path: str, **kw: Any) -> Any:
            asked.append(kw.get("params"))
            after, limit = int(kw["params"]["after"]), int(kw["params"]["limit"])
            page = [g for g in grants if g["id"] > after][:limit]
            return type("R", (), {"json": lambda self: {"result": page}})()

    io = Transfers(Pager(), lambda *a: None)  # type: ignore[arg-type]
    got = list(io._all_grants(Signer.generate(ED25519), "101001/000001"))
    assert got == grants
    assert [p["after"] if p else None for p in asked] == ["0", "200", "400"]


def test_a_download_reads_ahead_a_bounded_number_of_bytes_in_order() -> None:
    """The network runs at most ``READ_AHEAD`` bytes (or one piece) ahead of the decryption,
    whatever the pieces' sizes (16 KiB TLS records to 1 MiB grown reads); a failed read is
    raised to the reader after the pieces before it."""
    import threading
    import time

    from citychain.services.data.sdk._transfer import READ_AHEAD, _read_ahead

    sizes = [1 << 20] * 12 + [16 << 10] * 300 + [3 << 20, 1 << 20]
    read = 0
    lock = threading.Lock()

    def network() -> Iterator[bytes]:
        nonlocal read
        for i, n in enumerate(sizes):
            with lock:
                read += n
            yield bytes([i % 256]) * n
        raise ConnectionResetError("cut")

    taken = 0
    with pytest.raises(ConnectionResetError, match="cut"):
        for i, piece in enumerate(_read_ahead(network())):
            assert piece == bytes([i % 256]) * sizes[i]
            taken += len(piece)
            time.sleep(0.0005)  # a slow reader: the network would run ahead without a bound
            with lock:
                assert read - taken <= READ_AHEAD + max(sizes), (read, taken)
    assert taken == sum(sizes)


def test_a_download_into_a_file_syncs_and_drops_what_it_wrote_as_it_goes(
    tmp_path: Path,
) -> None:
    """Every ``every`` bytes the file is synced and its pages leave the page cache, so a
    download of gigabytes neither waits on one closing fsync nor pushes the machine's other
    files out of memory; what is written is the file, byte for byte."""
    from citychain.services.data.sdk._transfer import _WriteBehind

    if not pages_can_be_dropped(tmp_path):
        pytest.skip(f"{tmp_path}'s filesystem keeps a file's pages in memory")
    pieces = [bytes([i]) * (300 << 10) for i in range(10)]  # 3,000 KiB in 300 KiB writes
    path = tmp_path / "copy"
    with path.open("wb") as f:
        out = _WriteBehind(f, every=1 << 20)
        for piece in pieces[:4]:
            assert out.write(piece) == len(piece)
        # 1,200 KiB written: the first MiB's worth was synced and dropped at the fourth write
        assert cached_pages(path) == 0
        for piece in pieces[4:]:
            out.write(piece)
        out.flush()
        # synced again at 2,400 KiB; the last 600 KiB are still in the cache, unsynced
        assert 0 < cached_pages(path) <= (600 << 10) // os.sysconf("SC_PAGE_SIZE") + 1
    assert path.read_bytes() == b"".join(pieces)
