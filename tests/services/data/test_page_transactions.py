"""The citizen's page (``/my-data``) builds and signs a transaction in the browser: its canonical
CBOR encoder and transaction functions, run in a real headless Chromium, give exactly the
bytes of citychain's canonical-bytes vectors (``tests/vectors/canonical/transaction.json``:
signing bytes, wire bytes, hash and the Ed25519 signature of each test key), and the bytes
``citychain.codec`` gives for any canonical value (hypothesis). Anything canonical data cannot
hold (a float, a lone surrogate, ``undefined``) is refused, not encoded some other way.

The page's files are served from the package at a ``localhost`` origin (a secure context,
which WebCrypto needs) by the test itself: no node is needed to check an encoder."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import browser  # type: ignore[import-not-found]
from citychain import codec

pytestmark = pytest.mark.slow

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "canonical" / "transaction.json"
ORIGIN = "http://localhost:8999"
#: PKCS #8 of an Ed25519 private key, before its 32-byte seed (RFC 8410).
_PKCS8_ED25519 = "302e020100300506032b657004220420"

#: Turns the test's tagged JSON ({"$int": "..."}, {"$hex": "..."}, {"$map": {...}}) into the
#: values the page's encoder takes (BigInt, Uint8Array, plain objects), then runs one of its
#: functions ("cbor" on a value; "tx" on a transaction's fields, each a tagged value).
_RUN = """async ([what, tagged, pkcs8]) => {
  const bytesOf = (h) => Uint8Array.from(h.match(/../g) || [], (b) => parseInt(b, 16));
  const entries = (o) => Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unpack(x)]));
  const unpack = (v) => v === null || typeof v !== "object" ? v
    : Array.isArray(v) ? v.map(unpack)
    : "$int" in v ? BigInt(v.$int)
    : "$hex" in v ? bytesOf(v.$hex)
    : entries(v.$map);
  if (what === "cbor") return hex(cbor(unpack(tagged)));
  const value = entries(tagged);
  const signing = signingBytes(value);
  const wire = wireBytes(value, value.signature);
  const key = await crypto.subtle.importKey(
    "pkcs8", bytesOf(pkcs8), "Ed25519", false, ["sign"]);
  return {
    signing: hex(signing),
    wire: hex(wire),
    hash: hex(await sha256(wire)),
    signature: hex(new Uint8Array(await crypto.subtle.sign("Ed25519", key, signing))),
  };
}"""


def _page_files(route: Any) -> None:
    name = route.request.url.rsplit("/", 1)[-1]
    if route.request.url == f"{ORIGIN}/v1/status":  # a node of a chain on the GM suite
        route.fulfill(json={"chain_id": "gm-city", "crypto_suite": "sm2-sm3"})
        return
    package = resources.files("citychain.services.data.router").joinpath("page")
    if name == "page.js":
        route.fulfill(body=package.joinpath("mine.js").read_bytes(), content_type="text/javascript")
    else:
        route.fulfill(body=package.joinpath("mine.html").read_bytes(), content_type="text/html")


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with browser.page() as p:
        p.route(f"{ORIGIN}/**", _page_files)
        p.goto(f"{ORIGIN}/my-data")
        assert p.evaluate("window.isSecureContext && typeof cbor === 'function'")
        yield p


def _tagged(value: Any, *, json_view: bool) -> Any:
    """A value as the page's runner above takes it (every map tagged too, so that no key of a
    value can pass for a tag). ``json_view``: byte strings are ``{"hex": ...}`` (the vectors'
    free-form values); otherwise they are Python bytes."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return {"$int": str(value)}
    if isinstance(value, bytes):
        return {"$hex": value.hex()}
    if isinstance(value, list):
        return [_tagged(v, json_view=json_view) for v in value]
    if json_view and set(value) == {"hex"}:
        return {"$hex": value["hex"]}
    return {"$map": {k: _tagged(v, json_view=json_view) for k, v in value.items()}}


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A vector's ``fields`` as the page's transaction functions take them."""
    tx = {k: _tagged(v, json_view=True) for k, v in fields.items()}
    for name in ("sender", "signature"):
        tx[name] = {"$hex": fields[name]}
    tx["endorsements"] = [
        {"$map": {"public_key": {"$hex": e["public_key"]}, "signature": {"$hex": e["signature"]}}}
        for e in fields["endorsements"]
    ]
    return tx


_DOC = json.loads(VECTORS.read_text())


@pytest.mark.parametrize("case", _DOC["cases"], ids=[c["name"] for c in _DOC["cases"]])
def test_the_page_builds_the_vectors_transactions_byte_for_byte(
    page: Any, case: dict[str, Any]
) -> None:
    sender = next(s for s in case["signatures"] if s["public_key"] == case["fields"]["sender"])
    seed = _DOC["keys"][sender["key"]]["seed"]
    got = page.evaluate(_RUN, ["tx", _fields(case["fields"]), _PKCS8_ED25519 + seed])
    assert got == {
        "signing": case["signing_bytes"],
        "wire": case["encoding"],
        "hash": case["hash"],
        "signature": sender["signature"],
    }


_canonical = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from(
        [
            0,
            23,
            24,
            255,
            256,
            2**16 - 1,
            2**16,
            2**32 - 1,
            2**32,
            2**64 - 1,
            2**64,
            -(2**64),
            -(2**64) - 1,
        ]
    )
    | st.binary(max_size=40)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_canonical)
def test_the_page_encodes_any_canonical_value_as_the_codec_does(page: Any, value: Any) -> None:
    assert page.evaluate(_RUN, ["cbor", _tagged(value, json_view=False), ""]) == (
        codec.encode(value).hex()
    )


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("cbor(1.5)", "integers only"),
        ("cbor({a: [1, 2 ** 60]})", "integers only"),  # not a safe integer: ambiguous in JS
        ("cbor('a\\ud800')", "lone surrogate"),
        ("cbor(undefined)", "cannot hold undefined"),
        ("cbor(new Date(0))", "cannot hold object"),
    ],
)
def test_the_page_refuses_what_canonical_data_cannot_hold(
    page: Any, expression: str, words: str
) -> None:
    message = page.evaluate(
        f"() => {{ try {{ {expression}; return 'encoded'; }} "
        "catch (e) { return (e instanceof Refusal ? '' : 'not a Refusal: ') + e.message; } }"
    )
    assert words in message and not message.startswith("not a Refusal")


def test_a_chain_that_signs_with_sm2_is_told_the_browser_cannot(page: Any) -> None:
    """WebCrypto has no SM2: on a GM chain the page says so in words, and builds nothing."""
    message = page.evaluate(
        "async () => { try { await requestTx({pub: new Uint8Array(32), tag: new Uint8Array(32)},"
        " '101001/000001', 'my file', 86400000); return 'built'; }"
        " catch (e) { return (e instanceof Refusal ? '' : 'not a Refusal: ') + e.message; } }"
    )
    assert message == (
        "This city's chain signs with sm2-sm3, which a browser cannot: ask with the citychain "
        "app (citychain data request)."
    )
