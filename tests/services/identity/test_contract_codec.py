"""The DID document codec: every record the chain can hold comes back unchanged from its JSON
form, and every document the codec takes is a fixed point after one round (JSON -> record
-> JSON -> record), with a canonical CBOR encoding that decodes to the same record."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity.contract import CONTEXT, to_json, to_record
from citychain.services.identity.shapes import citychain_did, parse_xsd_datetime, xsd_datetime

DID = citychain_did(bytes(range(16)))
_frag = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,12}", fullmatch=True)
_key = st.binary(min_size=32, max_size=32)
_other_did = st.sampled_from(
    [
        citychain_did(bytes(16)),
        "did:key:z6MkjJRuJtMxfTErK55eWeV7FQLLxpsvzSUQ3AC6DmdNPFja",
        "did:web:bureau.example.gov",
    ]
)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_endpoint = (
    _text.map(lambda t: "https://" + t)
    | st.dictionaries(_text, _json, max_size=3)
    | (st.lists(_text, max_size=3))
)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    frags = draw(st.lists(_frag, unique=True, max_size=12))
    cut_vm = draw(st.integers(0, len(frags)))
    vm_frags, rest = frags[:cut_vm], frags[cut_vm:]
    cut_emb = draw(st.integers(0, len(rest)))
    embedded, svc_frags = rest[:cut_emb], rest[cut_emb:]
    rec: dict[str, Any] = {}
    ctl = draw(st.lists(st.one_of(st.just(DID), _other_did), unique=True, max_size=3))
    if ctl:
        rec["ctl"] = ctl
    aka = draw(st.lists(_text.map(lambda t: "urn:" + t), unique=True, max_size=3))
    if aka:
        rec["aka"] = aka
    vm_ctl = st.none() | _other_did
    if vm_frags:
        rec["vm"] = [[f, draw(vm_ctl), draw(_key)] for f in vm_frags]
    rels: dict[str, list[Any]] = {}
    names = ["authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation"]
    for e in embedded:
        rels.setdefault(draw(st.sampled_from(names)), []).append([e, draw(vm_ctl), draw(_key)])
    for name in names:
        refs = draw(st.lists(st.sampled_from(vm_frags), unique=True)) if vm_frags else []
        if refs:
            rels.setdefault(name, []).extend(refs)
    if rels:
        rec["rel"] = rels
    if svc_frags:
        stype = st.one_of(_text, st.lists(_text, min_size=1, max_size=2))
        rec["svc"] = [[f, draw(stype), draw(_endpoint)] for f in svc_frags]
    return rec


@settings(max_examples=150, deadline=None)
@given(records())
def test_a_record_survives_its_json_form(rec: dict[str, Any]) -> None:
    doc = to_json(rec, DID)
    assert doc["@context"] == CONTEXT and doc["id"] == DID
    back = to_record(doc, DID)
    assert back == rec
    raw = codec.encode(back)
    assert codec.decode(raw) == rec  # canonical: what the chain stores decodes to the same
    # JSON through CBOR (a transaction's arguments) changes nothing either.
    assert to_record(codec.decode(codec.encode(doc)), DID) == rec


@settings(max_examples=100, deadline=None)
@given(records())
def test_relative_ids_at_create_mean_the_same_as_absolute_ones_later(rec: dict[str, Any]) -> None:
    """A new document writes ``#frag`` (its DID is not known yet); the same document with
    ``<did>#frag`` ids names the same record."""

    def relative(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(DID + "#"):
            return value[len(DID) :]
        if isinstance(value, list):
            return [relative(v) for v in value]
        if isinstance(value, dict):
            return {k: (v if k == "controller" else relative(v)) for k, v in value.items()}
        return value

    doc = to_json(rec, DID)
    new = {k: relative(v) for k, v in doc.items() if k not in ("id",)}
    assert to_record(new, DID) == rec


def test_a_deactivated_version_keeps_only_its_id() -> None:
    assert to_json(None, DID) == {"@context": CONTEXT, "id": DID}


@given(st.integers(0, 253402300799999))  # up to 9999-12-31T23:59:59.999Z
def test_metadata_times_read_back_as_their_whole_second(ms: int) -> None:
    text = xsd_datetime(ms)
    assert len(text) == 20 and text.endswith("Z")
    assert parse_xsd_datetime(text) == ms // 1000 * 1000 + 999
    assert parse_xsd_datetime(text[:-1] + ".000Z") == ms // 1000 * 1000


_any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=40) | _text | _frag,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["id", "type", "controller", "publicKeyMultibase", "serviceEndpoint", "@context"]
            )
            | _text,
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
_props = st.sampled_from(
    [
        "@context",
        "id",
        "controller",
        "alsoKnownAs",
        "verificationMethod",
        "authentication",
        "assertionMethod",
        "capabilityInvocation",
        "keyAgreement",
        "service",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_props, _any, max_size=6), st.sampled_from([None, DID]))
def test_any_malformed_document_is_refused_with_its_code(
    doc: dict[str, Any], did: str | None
) -> None:
    """Whatever arrives, the codec returns a record or refuses with invalid_did_document:
    never another exception (which a block would turn into a bare contract_error)."""
    try:
        rec = to_record(doc, did)
    except InvalidInput as exc:
        assert exc.code == ErrorCode.INVALID_DID_DOCUMENT, exc
        return
    assert to_record(to_json(rec, DID), DID) == rec
