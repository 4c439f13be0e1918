"""DCAT 3 JSON-LD export and import: checked by an independent JSON-LD processor (pyld
expands the exported document and turns it into RDF; the DCAT, DCT and SPDX IRIs and typed
values are asserted on the triples), the round trip export -> import -> export (also through
a document in another JSON-LD form), and each refusal of bad input."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyld import jsonld  # type: ignore[import-untyped]

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.data.shapes import (
    OPEN_CLASSES,
    SHARING,
    UPDATE_CYCLES,
    export_catalogue,
    import_catalogue,
    resource_record,
    subject_tag,
)

DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
SPDX = "http://spdx.org/rdf/terms#"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
BASE = "https://data.city.example"
ENDPOINT = "https://node1.city.example/v1/data"


def no_remote(url: str, options: Any = None) -> Any:
    raise AssertionError(f"the exported document made the processor fetch {url}")


def version(n: int) -> dict[str, Any]:
    return {
        "version": n,
        "manifest_id": bytes([n]) * 32,
        "plain_hash": bytes([0x40 + n]) * 32,
        "cipher_hash": bytes([0x80 + n]) * 32,
        "plain_size": 1000 * n,
        "cipher_size": 1000 * n + 16,
        "cipher": "aes-256-gcm",
        "time": 1_767_225_600_000 + 1234 * n,
        "height": 10 * n,
    }


RESOURCES: list[dict[str, Any]] = [
    {
        "code": "101001/000001",
        "title": "常住人口基本信息",
        "description": "Residents registered in the city",
        "provider": "org1",
        "themes": ["人口", "https://publications.europa.eu/resource/authority/data-theme/SOCI"],
        "keywords": ["residents", "户籍"],
        "data_items": [{"name": "姓名", "type": "string"}, {"name": "born", "type": "date"}],
        "sharing": "conditional",
        "sharing_condition": "社保资格核验",
        "approvers": [b"\x07" * 20],
        "open_class": "closed",
        "update_cycle": "monthly",
        "media_type": "text/csv",
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "series": "census-2026",
        "issued": 1_767_225_600_000,
        "modified": 1_767_225_700_001,
        "versions": [version(1), version(2)],
    },
    {"code": "301002005/17", "title": "Bus stops", "provider": "transport", "sharing": "none"},
]


def triples(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    dataset = jsonld.to_rdf(doc, {"documentLoader": no_remote})
    out = set()
    for t in dataset["@default"]:
        obj = t["object"]
        literal = obj["type"] == "literal"
        value = f'"{obj["value"]}"^^{obj["datatype"]}' if literal else obj["value"]
        out.add((t["subject"]["value"], t["predicate"]["value"], value))
    return out


def test_an_independent_json_ld_processor_reads_dcat_3() -> None:
    doc = export_catalogue(RESOURCES, base=BASE, endpoint=ENDPOINT)
    expanded = jsonld.expand(doc, {"documentLoader": no_remote})
    assert expanded[0]["@type"] == [DCAT + "Catalog"]
    got = triples(doc)
    ds = f"{BASE}/datasets/101001/000001"
    string = "http://www.w3.org/2001/XMLSchema#string"
    expect = {
        (f"{BASE}/catalogue", RDF_TYPE, DCAT + "Catalog"),
        (f"{BASE}/catalogue", DCAT + "dataset", ds),
        (ds, RDF_TYPE, DCAT + "Dataset"),
        (ds, DCT + "identifier", f'"101001/000001"^^{string}'),
        (ds, DCT + "title", f'"常住人口基本信息"^^{string}'),
        (ds, DCT + "publisher", "urn:citychain:org:org1"),
        (ds, DCT + "accessRights", "https://w3id.org/citychain/cgdr#conditional"),
        (ds, DCT + "accrualPeriodicity", "http://publications.europa.eu/resource/authority/frequency/MONTHLY"),
        (ds, DCT + "license", "https://creativecommons.org/licenses/by/4.0/"),
        (ds, DCAT + "keyword", f'"户籍"^^{string}'),
        (ds, DCAT + "theme", "https://publications.europa.eu/resource/authority/data-theme/SOCI"),
        (ds, DCAT + "version", f'"2"^^{string}'),
        (ds, DCAT + "hasCurrentVersion", f"{ds}/v2"),
        (ds, DCAT + "hasVersion", f"{ds}/v1"),
        (ds, DCAT + "inSeries", f"{BASE}/series/census-2026"),
        (ds, DCT + "issued", f'"2026-01-01T00:00:00.000Z"^^{XSD}dateTime'),
        (ds, DCT + "modified", f'"2026-01-01T00:01:40.001Z"^^{XSD}dateTime'),
        (f"{BASE}/series/census-2026", RDF_TYPE, DCAT + "DatasetSeries"),
        (f"{ds}/v2", RDF_TYPE, DCAT + "Dataset"),
        (f"{ds}/v2", DCAT + "previousVersion", f"{ds}/v1"),
        (f"{ds}/v2", DCAT + "distribution", f"{ds}/v2/distribution"),
        (f"{ds}/v2/distribution", RDF_TYPE, DCAT + "Distribution"),
        (f"{ds}/v2/distribution", DCAT + "byteSize", f'"2000"^^{XSD}nonNegativeInteger'),
        (f"{ds}/v2/distribution", DCAT + "accessService", ENDPOINT),
        (f"{ds}/v2/distribution", DCAT + "mediaType", "https://www.iana.org/assignments/media-types/text/csv"),
        (ENDPOINT, RDF_TYPE, DCAT + "DataService"),
        (ENDPOINT, DCAT + "endpointURL", ENDPOINT),
        (ENDPOINT, DCAT + "servesDataset", ds),
        (f"{BASE}/datasets/301002005/17", DCT + "accessRights", "https://w3id.org/citychain/cgdr#notShared"),
    }  # fmt: skip
    assert expect <= got, sorted(expect - got)
    # The checksum is an spdx:Checksum (a blank node) with its algorithm and hex value.
    (checksum,) = [o for s, p, o in got if s == f"{ds}/v2/distribution" and p == SPDX + "checksum"]
    assert (checksum, SPDX + "algorithm", SPDX + "checksumAlgorithm_sha256") in got
    assert (checksum, SPDX + "checksumValue", f'"{"42" * 32}"^^{XSD}hexBinary') in got
    # Subject tags are never exported.
    text = repr(doc)
    assert subject_tag("did:key:z6Mk") not in text.encode() and "subject" not in text


def test_round_trip_and_a_foreign_form_of_the_same_graph() -> None:
    doc = export_catalogue(RESOURCES, base=BASE, endpoint=ENDPOINT)
    back = import_catalogue(copy.deepcopy(doc))
    assert export_catalogue(back, base=BASE, endpoint=ENDPOINT) == doc
    assert [r["code"] for r in back] == ["101001/000001", "301002005/17"]
    first = back[0]
    extra = ("versions", "issued", "modified")
    assert resource_record({k: v for k, v in first.items() if k not in extra}) == resource_record(
        {k: v for k, v in RESOURCES[0].items() if k not in extra}
    )
    assert first["versions"] == RESOURCES[0]["versions"]
    # Another catalogue's form of the same graph (expanded JSON-LD, no context): compacted
    # into ours by pyld, with remote contexts refused, and read the same.
    expanded = jsonld.expand(doc, {"documentLoader": no_remote})
    assert import_catalogue({"@graph": expanded}) == back


def bad(doc: Any, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        import_catalogue(doc)
    assert info.value.code == ErrorCode.INVALID_CATALOGUE, info.value
    assert words in info.value.message, info.value.message


def test_bad_catalogues_are_refused_naming_what_is_wrong() -> None:
    doc = export_catalogue(RESOURCES, base=BASE, endpoint=ENDPOINT)
    bad([], "JSON object")
    bad({**doc, "type": "Dataset"}, "not a dcat:Catalog")
    bad({"@context": "https://example.org/remote.jsonld", "@type": "x"}, "remote JSON-LD context")
    d = copy.deepcopy(doc)
    d["dataset"][0]["identifier"] = "1x/2"
    bad(d, "resource code")
    d = copy.deepcopy(doc)
    d["dataset"][0]["accessRights"] = "https://example.org/public"
    bad(d, "accessRights")
    d = copy.deepcopy(doc)
    d["dataset"][1] = copy.deepcopy(d["dataset"][0])
    bad(d, "listed twice")
    d = copy.deepcopy(doc)
    del d["dataset"][0]["hasVersion"][0]
    bad(d, "without gaps")
    d = copy.deepcopy(doc)
    d["dataset"][0]["hasVersion"][1]["distribution"][0]["byteSize"] = "-1"
    bad(d, "byteSize")
    d = copy.deepcopy(doc)
    d["dataset"][0]["accrualPeriodicity"] = (
        "http://publications.europa.eu/resource/authority/frequency/BIHOURLY"
    )
    bad(d, "accrualPeriodicity")
    d = copy.deepcopy(doc)
    del d["dataset"][0]["publisher"]
    bad(d, "publisher is missing")
    d = copy.deepcopy(doc)
    del d["dataset"][0]["approver"]
    bad(d, "approvers")  # conditional sharing without approvers: the register check's words


_TERM = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs")),
    min_size=1,
    max_size=12,
)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    sharing = draw(st.sampled_from(SHARING))
    rec: dict[str, Any] = {
        "code": f"{draw(st.integers(1, 3))}{draw(st.integers(0, 99999)):05d}/"
        f"{draw(st.integers(0, 10**6))}",
        "title": draw(_TERM),
        "description": draw(st.text(max_size=30).filter(lambda s: "\x00" not in s)),
        "provider": draw(st.sampled_from(["org1", "org-2", "health.dept"])),
        "themes": draw(st.lists(_TERM, max_size=3)),
        "keywords": draw(st.lists(_TERM, max_size=3)),
        "data_items": [
            {"name": n, "type": t}
            for n, t in zip(
                draw(st.lists(_TERM, max_size=3, unique=True)),
                draw(st.lists(st.sampled_from(["string", "date", "xsd:decimal"]), min_size=3)),
                strict=False,
            )
        ],
        "sharing": sharing,
        "open_class": draw(st.sampled_from(OPEN_CLASSES)),
        "update_cycle": draw(st.sampled_from(list(UPDATE_CYCLES))),
    }  # fmt: skip
    if sharing == "conditional":
        rec["sharing_condition"] = draw(_TERM)
        rec["approvers"] = draw(
            st.lists(st.binary(min_size=20, max_size=20), min_size=1, max_size=3, unique=True)
        )
    n = draw(st.integers(0, 3))
    if n:
        rec["versions"] = [version(i) for i in range(1, n + 1)]
    if draw(st.booleans()):
        rec["series"] = "s" + str(draw(st.integers(0, 99)))
    return rec


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), max_size=4, unique_by=lambda r: r["code"]))
def test_export_import_export_is_the_identity(resources: list[dict[str, Any]]) -> None:
    doc = export_catalogue(resources, base=BASE, endpoint=ENDPOINT, hash_name="sm3")
    again = export_catalogue(import_catalogue(doc), base=BASE, endpoint=ENDPOINT, hash_name="sm3")
    assert again == doc


def test_the_node_s_catalogue_names_datasets_under_its_public_origin() -> None:
    """``GET /v1/data/catalogue``: with ``[api] public_origin`` (the gateway in front of every
    node), the datasets' IRIs and access URLs are the same whichever node wrote them; without
    it, the address the request came to."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "api"))
    from fake_node import FakeNode, TestClient  # type: ignore[import-not-found]

    from citychain.api._httpsig import SignatureVerifier, install
    from citychain.api.app import create_app

    view = {**resource_record(RESOURCES[1]), "issued": 1, "modified": 2, "revision": 1}

    class CatalogueNode(FakeNode):  # type: ignore[misc]
        async def query(self, contract: str, method: str, args: Any, **kw: Any) -> Any:
            if (contract, method) == ("data", "search"):
                return {"resources": [view], "next": None}
            if (contract, method) == ("data", "versions"):
                return [version(1)] if args["after"] == 0 else []
            return await super().query(contract, method, args)

    def dataset(app: Any, base_url: str) -> dict[str, Any]:
        with TestClient(app, base_url=base_url) as c:
            r = c.get("/v1/data/catalogue")
        assert r.status_code == 200, r.text
        (ds,) = r.json()["dataset"]
        return dict(ds)

    plain = create_app(CatalogueNode())
    ds = dataset(plain, "http://10.0.0.7:26657")
    assert ds["id"].startswith("http://10.0.0.7:26657/")
    gateway = create_app(CatalogueNode())
    install(gateway, SignatureVerifier(origin="https://chain.city.example"))
    for node in ("http://10.0.0.7:26657", "http://10.0.0.8:26657"):
        ds = dataset(gateway, node)
        assert ds["id"].startswith("https://chain.city.example/"), ds["id"]
        (dist,) = ds["hasVersion"][0]["distribution"]
        assert dist["accessURL"].startswith("https://chain.city.example/v1/data/resources/")
