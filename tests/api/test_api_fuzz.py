"""Hostile input, generated: whatever arrives, the answer is below 500 and an error is
``{"code", "message"}``."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import cbor2
from fake_node import FakeNode, TestClient, seeded_signer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citychain.api import create_app

ALICE = seeded_signer(7)
NODE = FakeNode(genesis_balances={ALICE.address: 10**6})
CLIENT = TestClient(create_app(NODE, max_body_bytes=16 * 1024, max_batch_txs=20))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
content_types = st.sampled_from(
    ["application/cbor", "application/json", "application/octet-stream", "text/plain", ""]
)


def check(r: Any) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"code", "message"}
        assert isinstance(body["message"], str) and body["message"]


@SETTINGS
@given(
    body=st.binary(max_size=2048), kind=content_types, path=st.sampled_from(["/v1/tx", "/v1/txs"])
)
def test_random_bytes_to_submit_routes(body: bytes, kind: str, path: str) -> None:
    headers = {"content-type": kind} if kind else {}
    check(CLIENT.post(path, content=body, headers=headers))


@SETTINGS
@given(value=json_values, path=st.sampled_from(["/v1/tx", "/v1/txs", "/v1/query/token/echo"]))
def test_random_json_to_post_routes(value: Any, path: str) -> None:
    check(
        CLIENT.post(path, content=json.dumps(value), headers={"content-type": "application/json"})
    )
    # And the same value in the field each route reads.
    field = {"/v1/tx": "tx", "/v1/txs": "txs", "/v1/query/token/echo": "args"}[path]
    check(CLIENT.post(path, json={field: value}))


@SETTINGS
@given(items=st.lists(st.binary(max_size=300), max_size=25))
def test_random_transactions_in_a_valid_cbor_envelope(items: list[bytes]) -> None:
    r = CLIENT.post(
        "/v1/txs", content=cbor2.dumps(items), headers={"content-type": "application/cbor"}
    )
    check(r)
    if r.status_code == 200:
        assert len(r.json()["results"]) == len(items)


@st.composite
def mutated_tx(draw: st.DrawFn) -> bytes:
    tx = NODE.make_tx(ALICE, "transfer", {"to": bytes(20), "amount": draw(st.integers(1, 5))})
    data = bytearray(tx.encode())
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    return bytes(data)


@SETTINGS
@given(raw=mutated_tx())
def test_bit_flipped_transactions(raw: bytes) -> None:
    check(CLIENT.post("/v1/tx", content=raw, headers={"content-type": "application/cbor"}))


path_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=80)


@SETTINGS
@given(
    segment=path_text,
    route=st.sampled_from(
        [
            "/v1/txs/{}",
            "/v1/blocks/{}",
            "/v1/blocks/hash/{}",
            "/v1/state/{}",
            "/v1/accounts/{}",
            "/v1/query/{}/balance",
            "/v1/query/token/{}",
            "/v1/validators?height={}",
            "/v1/state/00?height={}",
            "/v1/query/token/echo?args={}",
        ]
    ),
)
def test_random_path_and_query_parameters(segment: str, route: str) -> None:
    check(CLIENT.get(route.format(quote(segment, safe=""))))
