"""The citizen's page (``/my-data``) builds and signs a transaction, and opens a copy of their
records, in the browser. Run in a real headless Chromium:

* its canonical CBOR encoder and transaction functions give exactly the bytes of citychain's
  canonical-bytes vectors (``tests/vectors/canonical/transaction.json``: signing bytes, wire
  bytes, hash and the Ed25519 signature of each test key), and the bytes ``citychain.codec``
  gives for any canonical value, which its decoder reads back (hypothesis); anything canonical
  data cannot hold (a float, a lone surrogate, ``undefined``) is refused;
* its envelope opens what ``citychain.crypto.envelope`` seals: a data key wrapped for the
  X25519 twin of an Ed25519 key, then the version's chunks; a byte changed anywhere, another
  context or another key is refused in words, and nothing is returned;
* its download (``fetchCopy``), against the data routes' answers served by the test, asks what
  the SDK's ``client.data.download`` asks, in the same order; it leaves a copy over 256 MiB to
  the app before reading a key or recording an access, and refuses a manifest whose hash is not
  the id the chain records before reading any ciphertext.

The page's files are served from the package at a ``localhost`` origin (a secure context,
which WebCrypto needs) by the test itself: no node is needed to check an encoder."""

from __future__ import annotations

import hashlib
import io
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
from citychain.crypto import ED25519, Signer
from citychain.crypto.envelope import (
    MIN_CHUNK_SIZE,
    new_data_key,
    seal_stream,
    wrap_key,
    x25519_public_from_ed25519,
)
from citychain.services.data.sdk._transfer import context_of

pytestmark = pytest.mark.slow

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "canonical" / "transaction.json"
ORIGIN = "http://localhost:8999"
#: PKCS #8 of an Ed25519 private key, before its 32-byte seed (RFC 8410).
_PKCS8_ED25519 = "302e020100300506032b657004220420"

#: Turns the test's tagged JSON ({"$int": "..."}, {"$hex": "..."}, {"$map": {...}}) into the
#: values the page's encoder takes (BigInt, Uint8Array, plain objects), then runs one of its
#: functions ("cbor" on a value; "tx" on a transaction's fields, each a tagged value).
_RUN = """async ([what, tagged, pkcs8]) => {
  const entries = (o) => Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unpack(x)]));
  const unpack = (v) => v === null || typeof v !== "object" ? v
    : Array.isArray(v) ? v.map(unpack)
    : "$int" in v ? BigInt(v.$int)
    : "$hex" in v ? fromHex(v.$hex)
    : entries(v.$map);
  if (what === "cbor") return hex(cbor(unpack(tagged)));
  const value = entries(tagged);
  const signing = signingBytes(value);
  const wire = wireBytes(value, value.signature);
  const key = await crypto.subtle.importKey(
    "pkcs8", fromHex(pkcs8), "Ed25519", false, ["sign"]);
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
    stem, kind = {
        "page.js": ("mine.js", "text/javascript"),
        "page.css": ("mine.css", "text/css"),
    }.get(name, ("mine.html", "text/html"))
    route.fulfill(body=package.joinpath(stem).read_bytes(), content_type=kind)


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


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_canonical)
def test_the_page_decodes_what_the_codec_encodes(page: Any, value: Any) -> None:
    encoded = codec.encode(value).hex()
    assert page.evaluate("(h) => hex(cbor(decodeCbor(fromHex(h))))", encoded) == encoded


#: Opens a sealed version in the page: the wrapped key with the twin of ``seed``, then the
#: chunks (hex in, hex out; a refusal's words instead when it refuses).
_OPEN = """async ([seed, wrapped, context, manifest, sealed]) => {
  try {
    const me = { box: await x25519Twin(fromHex(seed)) };
    const key = await unwrap(me, fromHex(wrapped), fromHex(context));
    return hex(await openChunks(fromHex(sealed), decodeCbor(fromHex(manifest)), key,
      fromHex(context)));
  } catch (e) {
    return (e instanceof Refusal ? "refused: " : "not a Refusal: ") + e.message;
  }
}"""


def _sealed(plain: bytes, seed: bytes, context: bytes) -> list[str]:
    """What a node would hand the page for ``plain``: a data key wrapped for the X25519 twin of
    ``seed``'s Ed25519 key, the manifest's canonical bytes and the ciphertext (1 KiB chunks)."""
    key = new_data_key("aes-256-gcm")
    stream = seal_stream(io.BytesIO(plain), key, context, chunk_size=MIN_CHUNK_SIZE)
    sealed = b"".join(c for _, c in stream)
    public = x25519_public_from_ed25519(Signer(ED25519, seed).public_key)
    wrapped = wrap_key(key, public, "aes-256-gcm", context)
    return [seed.hex(), wrapped.hex(), context.hex(), stream.manifest.encode().hex(), sealed.hex()]


#: The context of resource 101009/000001 on chain city-test-1 (``context_of``).
_CONTEXT = context_of("city-test-1", "101009/000001")


@pytest.mark.parametrize("size", [0, 1, MIN_CHUNK_SIZE, 3 * MIN_CHUNK_SIZE + 17])
def test_the_page_opens_what_the_envelope_seals(page: Any, size: int) -> None:
    plain = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert page.evaluate(_OPEN, _sealed(plain, bytes(range(32)), _CONTEXT)) == plain.hex()


def _flip(text: str, byte: int) -> str:
    raw = bytearray.fromhex(text)
    raw[byte] ^= 1
    return raw.hex()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda a: [a[0], _flip(a[1], 40), *a[2:]], "cannot open this copy's key"),
        (lambda a: [a[0], _flip(a[1], 5), *a[2:]], "cannot open this copy's key"),
        (lambda a: [bytes(32).hex(), *a[1:]], "cannot open this copy's key"),
        (lambda a: [a[0], a[1], _flip(a[2], 0), *a[3:]], "cannot open this copy's key"),
        (lambda a: [a[0], a[1][:-2], *a[2:]], "not one this page can open"),
        (lambda a: [*a[:4], _flip(a[4], 10)], "Chunk 0 of the copy does not open"),
        (lambda a: [*a[:4], _flip(a[4], 1100)], "Chunk 1 of the copy does not open"),
        (lambda a: [*a[:4], a[4][:-2]], "bytes of ciphertext, not the"),
        (lambda a: [*a[:3], a[3][:-2], a[4]], "manifest is cut short"),
    ],
    ids=["wrapped-sealed", "wrapped-ephemeral", "other-key", "other-context", "wrapped-short",
         "chunk-0", "chunk-1", "cut-short", "manifest-cut"],
)  # fmt: skip
def test_the_page_refuses_a_copy_changed_anywhere(page: Any, change: Any, words: str) -> None:
    args = _sealed(bytes(range(256)) * 6, bytes(range(32)), _CONTEXT)
    got = page.evaluate(_OPEN, change(args))
    assert got.startswith("refused: ") and words in got, got


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
        "This city's chain signs with sm2-sm3, which a browser cannot: use the citychain app "
        "(citychain data request, citychain data download)."
    )


#: ``fetchCopy`` for grant 3 on resource 101009/000001, signed in with the key of ``seed``: the
#: copy's bytes (hex), or a refusal's words.
_FETCH = """async ([seed, pkcs8]) => {
  const me = {
    key: await crypto.subtle.importKey("pkcs8", fromHex(pkcs8), "Ed25519", false, ["sign"]),
    pub: fromHex(seed.slice(64)),
    box: await x25519Twin(fromHex(seed.slice(0, 64))),
  };
  try {
    return hex((await fetchCopy(me, 3, "101009/000001")).plain);
  } catch (e) {
    return (e instanceof Refusal ? "refused: " : "not a Refusal: ") + e.message;
  }
}"""


class _Node:
    """The node's answers to the page's download of version 1 of 101009/000001 (everything
    ``fetchCopy`` asks, as the data routes answer it), and the paths it was asked for."""

    def __init__(self, plain: bytes, seed: bytes, *, plain_size: int | None = None) -> None:
        _, self.wrapped, _, self.manifest, self.sealed = (
            bytes.fromhex(x) for x in _sealed(plain, seed, _CONTEXT)
        )
        self.manifest_id = hashlib.sha256(self.manifest).digest()
        self.version = {
            "version": 1,
            "cipher": "aes-256-gcm",
            "plain_size": len(plain) if plain_size is None else plain_size,
            "plain_hash": {"hex": hashlib.sha256(plain).hexdigest()},
            "manifest_id": {"hex": self.manifest_id.hex()},
        }
        self.asked: list[str] = []

    def __call__(self, route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        self.asked.append(f"{route.request.method} {path.split('?')[0]}")
        base = "/v1/data/resources/101009/000001"
        answers: dict[str, Any] = {
            "/v1/status": {"chain_id": "city-test-1", "crypto_suite": "ed25519"},
            base: {"result": {"versions": 1}},
            f"{base}/versions?after=0&limit=1": {"result": [self.version]},
            f"{base}/versions/1/key": {"result": {"hex": self.wrapped.hex()}},
            f"{base}/versions/1/stored": {"result": {"stored": True}},
            "/v1/tx": {"hash": "ab" * 32},
            f"/v1/txs/{'ab' * 32}": {"status": "committed", "receipt": {"code": "ok", "result": 7}},
        }
        raw = {f"{base}/versions/1/manifest?access=7": self.manifest,
               f"{base}/versions/1/content?access=7": self.sealed}  # fmt: skip
        if path.startswith("/v1/accounts/"):
            route.fulfill(json={"pending_nonce": 0})
        elif path in answers:
            route.fulfill(json=answers[path])
        elif path in raw:
            route.fulfill(body=raw[path], content_type="application/octet-stream")
        else:
            route.fulfill(status=404, json={"code": "not_found", "message": path})


def _fetch(page: Any, node: _Node, seed: bytes) -> str:
    signer = Signer(ED25519, seed)
    page.route(f"{ORIGIN}/v1/**", node)
    try:
        args = [seed.hex() + signer.public_key.hex(), _PKCS8_ED25519 + seed.hex()]
        return str(page.evaluate(_FETCH, args))
    finally:
        page.unroute(f"{ORIGIN}/v1/**", node)


def test_the_page_downloads_a_copy_as_the_sdk_does(page: Any) -> None:
    """Against the data routes' answers: the key, stored, one recorded access, the manifest,
    the content, in that order, and the copy's bytes."""
    plain = bytes(range(256)) * 9
    node = _Node(plain, bytes(range(32)), plain_size=len(plain))
    assert _fetch(page, node, bytes(range(32))) == plain.hex()
    signed = [a for a in node.asked if not a.startswith("GET /v1/accounts/")]
    base = "GET /v1/data/resources/101009/000001"
    assert signed == [
        "GET /v1/status", base, f"{base}/versions", f"{base}/versions/1/key",
        f"{base}/versions/1/stored", "POST /v1/tx", f"GET /v1/txs/{'ab' * 32}",
        f"{base}/versions/1/manifest", f"{base}/versions/1/content",
    ]  # fmt: skip


def test_the_page_leaves_a_copy_over_256_mib_to_the_app(page: Any) -> None:
    """A version larger than the page holds in memory is refused before any key is read or
    any access recorded: the audit trail lists no download that did not happen."""
    node = _Node(b"small", bytes(range(32)), plain_size=256 * 1024 * 1024 + 1)
    got = _fetch(page, node, bytes(range(32)))
    assert got == (
        "refused: This copy is too large for a phone's page (268435457 bytes): download it "
        "with the citychain app."
    )
    assert not [a for a in node.asked if a.endswith("/key") or a.startswith("POST")]
    # The cap itself: exactly 256 MiB still opens in the page (its size only is checked here).
    node = _Node(b"small", bytes(range(32)), plain_size=256 * 1024 * 1024)
    assert "too large" not in _fetch(page, node, bytes(range(32)))


def test_the_page_refuses_a_manifest_the_chain_does_not_record(page: Any) -> None:
    """A node that hands out another manifest than the one whose hash the chain records (its
    chunks, sizes or hashes changed) is refused before any ciphertext is read."""
    node = _Node(bytes(range(256)) * 9, bytes(range(32)))
    node.manifest = _Node(bytes(range(256)) * 8, bytes(range(32))).manifest
    got = _fetch(page, node, bytes(range(32)))
    assert got == "refused: The node's manifest is not the one the chain records."
    assert not [a for a in node.asked if a.endswith("/content")]
