"""DCAT 3 JSON-LD export and import of the catalogue, as pure functions over dicts.

Theory of operation
-------------------
:func:`export_catalogue` writes one ``dcat:Catalog`` whose ``@context`` is embedded
(:data:`CONTEXT`: nothing is fetched, ever). Per resource::

    dcat:Dataset  <base>/datasets/<code>
        dct:identifier      the resource code (信息资源代码)
        dct:title, dct:description, dcat:keyword, dcat:theme (skos:Concept, or an IRI)
        dct:publisher       foaf:Organization urn:citychain:org:<id> (dct:identifier <id>)
        dct:accessRights    cgdr:unconditional | cgdr:conditional | cgdr:notShared (共享类型)
        dct:accrualPeriodicity  an EU frequency authority IRI (更新周期)
        dct:license, dcat:mediaType (an IANA media-type IRI)
        dcat:inSeries       dcat:DatasetSeries <base>/series/<id> (dct:identifier <id>)
        cgdr:dataItem       an ordered list of {cgdr:itemName, cgdr:itemType} (信息项)
        cgdr:sharingCondition, cgdr:openClass, cgdr:approver (addresses, hex)
        dcat:version, dcat:hasCurrentVersion   the latest version
        dcat:hasVersion     one dcat:Dataset per version <base>/datasets/<code>/v<n>:
            dcat:version "<n>", dct:issued (its block time), dcat:previousVersion,
            cgdr:anchoredHeight, and one dcat:Distribution: spdx:checksum {spdx:algorithm,
            spdx:checksumValue} and dcat:byteSize of the plaintext, cgdr:manifestId,
            cgdr:cipher, cgdr:cipherHash, cgdr:cipherSize, dcat:accessService (the node's
            dcat:DataService) and dcat:accessURL.

The ``cgdr:`` vocabulary (``https://w3id.org/citychain/cgdr#``) is ours and small: the fields
of China's government data resource catalogue that DCAT has no term for. Subject tags and
wrapped keys are never exported: a catalogue is public.

:func:`import_catalogue` reads such a document back into the arguments of
``register_resource`` (plus the versions and times, under ``versions``, ``issued`` and
``modified``, for whoever mirrors a catalogue). A document in another context (another
catalogue's) is first compacted into ours with pyld, with remote contexts refused; then every
field is checked as ``register_resource`` checks it, and a refusal names the dataset and the
property (``invalid_catalogue``). ``export(import(export(x))) == export(x)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from citychain.errors import ErrorCode, InvalidInput

DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
SPDX = "http://spdx.org/rdf/terms#"
CGDR = "https://w3id.org/citychain/cgdr#"
FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
IANA_MEDIA = "https://www.iana.org/assignments/media-types/"
ORG_IRI = "urn:citychain:org:"

#: The embedded JSON-LD context of every exported catalogue.
CONTEXT: dict[str, Any] = {
    "@version": 1.1,
    "dcat": DCAT,
    "dct": DCT,
    "spdx": SPDX,
    "foaf": "http://xmlns.com/foaf/0.1/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "cgdr": CGDR,
    "id": "@id",
    "type": "@type",
    "Catalog": "dcat:Catalog",
    "Dataset": "dcat:Dataset",
    "DatasetSeries": "dcat:DatasetSeries",
    "Distribution": "dcat:Distribution",
    "DataService": "dcat:DataService",
    "Checksum": "spdx:Checksum",
    "Organization": "foaf:Organization",
    "Concept": "skos:Concept",
    "DataItem": "cgdr:DataItem",
    "title": "dct:title",
    "description": "dct:description",
    "identifier": "dct:identifier",
    "name": "foaf:name",
    "prefLabel": "skos:prefLabel",
    "publisher": {"@id": "dct:publisher"},
    "theme": {"@id": "dcat:theme", "@container": "@set"},
    "keyword": {"@id": "dcat:keyword", "@container": "@set"},
    "accessRights": {"@id": "dct:accessRights", "@type": "@id"},
    "accrualPeriodicity": {"@id": "dct:accrualPeriodicity", "@type": "@id"},
    "license": {"@id": "dct:license", "@type": "@id"},
    "mediaType": {"@id": "dcat:mediaType", "@type": "@id"},
    "issued": {"@id": "dct:issued", "@type": "xsd:dateTime"},
    "modified": {"@id": "dct:modified", "@type": "xsd:dateTime"},
    "version": "dcat:version",
    "hasCurrentVersion": {"@id": "dcat:hasCurrentVersion", "@type": "@id"},
    "hasVersion": {"@id": "dcat:hasVersion", "@container": "@set"},
    "previousVersion": {"@id": "dcat:previousVersion", "@type": "@id"},
    "inSeries": {"@id": "dcat:inSeries"},
    "distribution": {"@id": "dcat:distribution", "@container": "@set"},
    "checksum": {"@id": "spdx:checksum"},
    "algorithm": {"@id": "spdx:algorithm", "@type": "@id"},
    "checksumValue": {"@id": "spdx:checksumValue", "@type": "xsd:hexBinary"},
    "byteSize": {"@id": "dcat:byteSize", "@type": "xsd:nonNegativeInteger"},
    "accessService": {"@id": "dcat:accessService", "@type": "@id"},
    "accessURL": {"@id": "dcat:accessURL", "@type": "@id"},
    "dataset": {"@id": "dcat:dataset", "@container": "@set"},
    "service": {"@id": "dcat:service", "@container": "@set"},
    "endpointURL": {"@id": "dcat:endpointURL", "@type": "@id"},
    "servesDataset": {"@id": "dcat:servesDataset", "@type": "@id", "@container": "@set"},
    "dataItem": {"@id": "cgdr:dataItem", "@container": "@list"},
    "itemName": "cgdr:itemName",
    "itemType": "cgdr:itemType",
    "sharingCondition": "cgdr:sharingCondition",
    "openClass": {"@id": "cgdr:openClass", "@type": "@id"},
    "approver": {"@id": "cgdr:approver", "@container": "@set"},
    "manifestId": {"@id": "cgdr:manifestId", "@type": "xsd:hexBinary"},
    "cipher": "cgdr:cipher",
    "cipherHash": {"@id": "cgdr:cipherHash", "@type": "xsd:hexBinary"},
    "cipherSize": {"@id": "cgdr:cipherSize", "@type": "xsd:nonNegativeInteger"},
    "anchoredHeight": {"@id": "cgdr:anchoredHeight", "@type": "xsd:nonNegativeInteger"},
}

#: sharing class -> the ``dct:accessRights`` IRI (compact), and back.
ACCESS_RIGHTS = {
    "unconditional": "cgdr:unconditional",
    "conditional": "cgdr:conditional",
    "none": "cgdr:notShared",
}
OPEN_IRIS = {"open": "cgdr:open", "conditional": "cgdr:openConditional", "closed": "cgdr:closed"}
#: The checksum algorithm IRIs (compact) of the chain's hashes. SPDX names SHA-256; SM3 has
#: no SPDX term, so it is ours.
ALGORITHMS = {"sha256": "spdx:checksumAlgorithm_sha256", "sm3": "cgdr:checksumAlgorithm_sm3"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z")
_INT_RE = re.compile(r"0|[1-9][0-9]{0,18}")
_HEX_RE = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.INVALID_CATALOGUE)


def datetime_ms(ms: int) -> str:
    """A block time as ``xsd:dateTime`` with milliseconds: ``2026-01-01T00:00:01.000Z``."""
    t = _EPOCH + timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_datetime_ms(text: Any, where: str) -> int:
    if type(text) is not str or not _DT_RE.fullmatch(text):
        raise _invalid(f"{where} must be an xsd:dateTime in UTC such as 2026-01-01T00:00:01.000Z")
    t = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    delta = t - _EPOCH
    ms = (delta.days * 86_400 + delta.seconds) * 1000
    return ms + (int(text[20:23]) if len(text) > 20 else 0)


def _iri(compact: str) -> str:
    prefix, _, rest = compact.partition(":")
    base = CONTEXT.get(prefix)
    return base + rest if isinstance(base, str) and not rest.startswith("//") else compact


# -- export ----------------------------------------------------------------------------------
def _dataset_iri(base: str, code: str) -> str:
    return f"{base}/datasets/{code}"


def catalogue_entry(view: Mapping[str, Any], versions: list[dict[str, Any]]) -> dict[str, Any]:
    """What :func:`export_catalogue` takes of one resource: the record's fields of its
    ``search`` (or ``resource``) view, which also carries the contract's own bookkeeping
    (``revision``, ``retired``, ``latest``: not fields of a record), with every one of its
    ``versions`` and its ``issued`` and ``modified`` times."""
    from citychain.services.data.shapes import RESOURCE_FIELDS

    entry = {k: view[k] for k in RESOURCE_FIELDS}
    entry["versions"] = versions
    entry["issued"], entry["modified"] = view["issued"], view["modified"]
    return entry


def export_catalogue(
    resources: list[dict[str, Any]],
    *,
    base: str = "https://data.city.example",
    endpoint: str | None = None,
    title: str = "City data resource catalogue",
    hash_name: str = "sha256",
) -> dict[str, Any]:
    """The DCAT 3 JSON-LD catalogue of ``resources``: each a resource record (the fields of
    :data:`~citychain.services.data.shapes.RESOURCE_FIELDS`), optionally with ``versions``
    (the ``versions`` query's entries), ``issued`` and ``modified`` (ms). ``base`` prefixes
    the datasets' IRIs; ``endpoint`` is the node's download API (``<node>/v1/data``), the
    ``dcat:DataService`` every distribution is served by; ``hash_name`` the chain's hash."""
    from citychain.services.data.shapes import UPDATE_CYCLES, resource_record

    if hash_name not in ALGORITHMS:
        raise InvalidInput(
            f"unknown hash {hash_name!r} (known: sha256, sm3)", ErrorCode.BAD_ARGUMENTS
        )
    base = base.rstrip("/")
    service_iri = endpoint.rstrip("/") if endpoint else f"{base}/api"
    datasets = []
    for raw in sorted(resources, key=lambda r: str(r.get("code"))):
        extra = {k: raw[k] for k in ("versions", "issued", "modified") if k in raw}
        rec = resource_record({k: v for k, v in raw.items() if k not in extra})
        code = rec["code"]
        iri = _dataset_iri(base, code)
        ds: dict[str, Any] = {
            "id": iri,
            "type": "Dataset",
            "identifier": code,
            "title": rec["title"],
            "publisher": {
                "id": ORG_IRI + rec["provider"],
                "type": "Organization",
                "identifier": rec["provider"],
            },
            "accessRights": ACCESS_RIGHTS[rec["sharing"]],
            "openClass": OPEN_IRIS[rec["open_class"]],
            "accrualPeriodicity": FREQUENCY + UPDATE_CYCLES[rec["update_cycle"]],
        }
        if rec["description"]:
            ds["description"] = rec["description"]
        if rec["themes"]:
            ds["theme"] = [
                {"id": t}
                if t.startswith(("http://", "https://"))
                else {"type": "Concept", "prefLabel": t}
                for t in rec["themes"]
            ]
        if rec["keywords"]:
            ds["keyword"] = list(rec["keywords"])
        if rec["data_items"]:
            ds["dataItem"] = [
                {"type": "DataItem", "itemName": i["name"], "itemType": i["type"]}
                for i in rec["data_items"]
            ]
        if rec["sharing_condition"]:
            ds["sharingCondition"] = rec["sharing_condition"]
        if rec["approvers"]:
            ds["approver"] = [a.hex() for a in rec["approvers"]]
        if rec["media_type"]:
            ds["mediaType"] = IANA_MEDIA + rec["media_type"]
        if rec["license"]:
            ds["license"] = rec["license"]
        if rec["series"]:
            ds["inSeries"] = {
                "id": f"{base}/series/{rec['series']}",
                "type": "DatasetSeries",
                "identifier": rec["series"],
            }
        if "issued" in extra:
            ds["issued"] = datetime_ms(_nat(extra["issued"], "issued"))
        if "modified" in extra:
            ds["modified"] = datetime_ms(_nat(extra["modified"], "modified"))
        versions = sorted(extra.get("versions", []), key=lambda v: int(v["version"]))
        if versions:
            ds["version"] = str(versions[-1]["version"])
            ds["hasCurrentVersion"] = f"{iri}/v{versions[-1]['version']}"
            ds["hasVersion"] = [
                _version_node(iri, code, v, rec, service_iri, hash_name) for v in versions
            ]
        datasets.append(ds)
    return {
        "@context": CONTEXT,
        "id": f"{base}/catalogue",
        "type": "Catalog",
        "title": title,
        "service": [
            {
                "id": service_iri,
                "type": "DataService",
                "title": "citychain data directory downloads",
                "endpointURL": service_iri,
                "servesDataset": [d["id"] for d in datasets],
            }
        ],
        "dataset": datasets,
    }


def _nat(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidInput(f"{what} must be a natural number", ErrorCode.BAD_ARGUMENTS)
    return value


def _version_node(
    iri: str, code: str, v: dict[str, Any], rec: dict[str, Any], service: str, hash_name: str
) -> dict[str, Any]:
    n = _nat(v["version"], "version")
    dist: dict[str, Any] = {
        "id": f"{iri}/v{n}/distribution",
        "type": "Distribution",
        "checksum": {
            "type": "Checksum",
            "algorithm": ALGORITHMS[hash_name],
            "checksumValue": bytes(v["plain_hash"]).hex(),
        },
        "byteSize": str(_nat(v["plain_size"], "plain_size")),
        "manifestId": bytes(v["manifest_id"]).hex(),
        "cipher": str(v["cipher"]),
        "cipherHash": bytes(v["cipher_hash"]).hex(),
        "cipherSize": str(_nat(v["cipher_size"], "cipher_size")),
        "accessService": service,
        # the route that serves this version's ciphertext (to a signed, granted request)
        "accessURL": f"{service}/resources/{code}/versions/{n}/content",
    }
    if rec["media_type"]:
        dist["mediaType"] = IANA_MEDIA + rec["media_type"]
    node: dict[str, Any] = {
        "id": f"{iri}/v{n}",
        "type": "Dataset",
        "identifier": f"{code}#{n}",
        "version": str(n),
        "issued": datetime_ms(_nat(v["time"], "time")),
        "anchoredHeight": str(_nat(v["height"], "height")),
        "distribution": [dist],
    }
    if n > 1:
        node["previousVersion"] = f"{iri}/v{n - 1}"
    return node


# -- import ----------------------------------------------------------------------------------
def _ours(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` in our context: as it is if it already uses it, else compacted by pyld."""
    if doc.get("@context") == CONTEXT:
        return doc
    asked: list[str] = []

    def refuse_remote(url: str, options: Any = None) -> Any:
        asked.append(url)
        raise _invalid(f"the catalogue names a remote JSON-LD context ({url}); none is fetched")

    try:
        from pyld import jsonld  # type: ignore[import-untyped]  # lazy: foreign documents only

        out: dict[str, Any] = jsonld.compact(
            doc, {"@context": CONTEXT}, {"documentLoader": refuse_remote}
        )
    except Exception as exc:  # pyld wraps whatever went wrong in its JsonLdError
        if asked:
            raise _invalid(
                f"the catalogue names a remote JSON-LD context ({asked[0]}); none is fetched: "
                "embed the context"
            ) from None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _invalid(f"the document is not JSON-LD this importer can read: {first}") from None
    if "@graph" in out:  # several top-level nodes: find the catalogue
        cats = [n for n in out["@graph"] if "Catalog" in _many(n, "type")]
        if len(cats) != 1:
            raise _invalid("the document must hold exactly one dcat:Catalog")
        out = {"@context": CONTEXT, **cats[0]}
    return out


def _many(node: dict[str, Any], key: str) -> list[Any]:
    value = node.get(key, [])
    return value if isinstance(value, list) else [value]


def _one(node: dict[str, Any], key: str, where: str, *, required: bool = True) -> Any:
    values = _many(node, key)
    if len(values) > 1:
        raise _invalid(f"{where}: {key} must have one value, it has {len(values)}")
    if not values:
        if required:
            raise _invalid(f"{where}: {key} is missing")
        return None
    return values[0]


def _id(value: Any, where: str) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    if type(value) is not str:
        raise _invalid(f"{where} must be an IRI")
    return value


def _literal(value: Any, where: str) -> str:
    if isinstance(value, dict) and "@value" in value:
        value = value["@value"]
    if type(value) is int and value >= 0:
        return str(value)
    if type(value) is not str:
        raise _invalid(f"{where} must be a text")
    return value


def _int(value: Any, where: str) -> int:
    text = _literal(value, where)
    if not _INT_RE.fullmatch(text):
        raise _invalid(f"{where} must be a non-negative integer, got {text[:20]!r}")
    return int(text)


def _hex(value: Any, where: str) -> bytes:
    text = _literal(value, where)
    if not _HEX_RE.fullmatch(text):
        raise _invalid(f"{where} must be hexadecimal")
    return bytes.fromhex(text)


def _back(table: dict[str, str], value: str, where: str) -> str:
    for name, compact in table.items():
        if value in (compact, _iri(compact)):
            return name
    known = ", ".join(table.values())
    raise _invalid(f"{where} {value!r} is not one of {known}")


def import_catalogue(doc: Any) -> list[dict[str, Any]]:
    """The resources of a DCAT 3 JSON-LD catalogue (see the module docstring), in code order:
    each the arguments of ``register_resource``, plus ``versions``, ``issued`` and
    ``modified`` when the document has them. ``invalid_catalogue`` naming the dataset and the
    property for anything this service cannot take."""
    from citychain.services.data.shapes import UPDATE_CYCLES, resource_record

    if not isinstance(doc, dict):
        raise _invalid("a catalogue is a JSON object (a dcat:Catalog)")
    doc = _ours(doc)
    if "Catalog" not in _many(doc, "type"):
        raise _invalid("the document is not a dcat:Catalog (type Catalog)")
    cycles = {FREQUENCY + c: name for name, c in UPDATE_CYCLES.items()}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, ds in enumerate(_many(doc, "dataset")):
        where = f"dataset[{i}]"
        if not isinstance(ds, dict):
            raise _invalid(f"{where} must be a node")
        code = _literal(_one(ds, "identifier", where), f"{where}: identifier")
        where = f"dataset {code!r}"
        if code in seen:
            raise _invalid(f"{where} is listed twice")
        seen.add(code)
        publisher = _one(ds, "publisher", where)
        if not isinstance(publisher, dict):
            raise _invalid(f"{where}: publisher must be an organisation node")
        provider = publisher.get("identifier")
        if provider is None:
            pid = _id(publisher, f"{where}: publisher")
            provider = pid[len(ORG_IRI) :] if pid.startswith(ORG_IRI) else None
        if provider is None:
            raise _invalid(f"{where}: publisher needs an identifier (the organisation id)")
        rights = _id(_one(ds, "accessRights", where), f"{where}: accessRights")
        open_iri = _one(ds, "openClass", where, required=False)
        cycle_iri = _one(ds, "accrualPeriodicity", where, required=False)
        args: dict[str, Any] = {
            "code": code,
            "title": _literal(_one(ds, "title", where), f"{where}: title"),
            "provider": _literal(provider, f"{where}: publisher identifier"),
            "sharing": _back(ACCESS_RIGHTS, rights, f"{where}: accessRights"),
        }
        if "description" in ds:
            args["description"] = _literal(_one(ds, "description", where), f"{where}: description")
        themes = []
        for t in _many(ds, "theme"):
            if isinstance(t, dict) and "prefLabel" in t:
                themes.append(_literal(_one(t, "prefLabel", where), f"{where}: theme"))
            else:
                themes.append(_id(t, f"{where}: theme"))
        if themes:
            args["themes"] = themes
        keywords = [_literal(k, f"{where}: keyword") for k in _many(ds, "keyword")]
        if keywords:
            args["keywords"] = keywords
        items = []
        for j, item in enumerate(_many(ds, "dataItem")):
            if isinstance(item, dict) and "@list" in item:  # a list left uncompacted
                raise _invalid(f"{where}: dataItem must be a list of data items")
            if not isinstance(item, dict):
                raise _invalid(f"{where}: dataItem[{j}] must be a node")
            items.append(
                {
                    "name": _literal(_one(item, "itemName", where), f"{where}: itemName"),
                    "type": _literal(_one(item, "itemType", where), f"{where}: itemType"),
                }
            )
        if items:
            args["data_items"] = items
        if "sharingCondition" in ds:
            args["sharing_condition"] = _literal(
                _one(ds, "sharingCondition", where), f"{where}: sharingCondition"
            )
        if open_iri is not None:
            args["open_class"] = _back(OPEN_IRIS, _id(open_iri, where), f"{where}: openClass")
        if cycle_iri is not None:
            iri = _id(cycle_iri, f"{where}: accrualPeriodicity")
            if iri not in cycles:
                raise _invalid(
                    f"{where}: accrualPeriodicity {iri!r} is not one of the EU frequency codes "
                    f"this catalogue uses ({', '.join(UPDATE_CYCLES.values())})"
                )
            args["update_cycle"] = cycles[iri]
        approvers = [_hex(a, f"{where}: approver") for a in _many(ds, "approver")]
        if approvers:
            args["approvers"] = approvers
        media = _one(ds, "mediaType", where, required=False)
        if media is not None:
            m = _id(media, f"{where}: mediaType")
            args["media_type"] = m[len(IANA_MEDIA) :] if m.startswith(IANA_MEDIA) else m
        lic = _one(ds, "license", where, required=False)
        if lic is not None:
            args["license"] = _id(lic, f"{where}: license")
        series = _one(ds, "inSeries", where, required=False)
        if series is not None:
            if not isinstance(series, dict) or "identifier" not in series:
                raise _invalid(f"{where}: inSeries must be a dataset series with an identifier")
            args["series"] = _literal(series["identifier"], f"{where}: inSeries identifier")
        try:
            record = resource_record(args)
        except InvalidInput as exc:
            raise _invalid(f"{where}: {exc.message}") from None
        entry: dict[str, Any] = dict(record)
        for key in ("issued", "modified"):
            if key in ds:
                entry[key] = parse_datetime_ms(_one(ds, key, where), f"{where}: {key}")
        versions = [_read_version(v, where) for v in _many(ds, "hasVersion")]
        if versions:
            versions.sort(key=lambda v: int(v["version"]))
            if [v["version"] for v in versions] != list(range(1, len(versions) + 1)):
                raise _invalid(f"{where}: versions must be numbered 1, 2, ... without gaps")
            entry["versions"] = versions
        out.append(entry)
    return sorted(out, key=lambda e: str(e["code"]))


def _read_version(node: Any, where: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise _invalid(f"{where}: hasVersion must hold version datasets")
    n = _int(_one(node, "version", where), f"{where}: version")
    where = f"{where} version {n}"
    if n < 1:
        raise _invalid(f"{where}: versions are numbered from 1")
    dists = _many(node, "distribution")
    if len(dists) != 1 or not isinstance(dists[0], dict):
        raise _invalid(f"{where}: a version has exactly one distribution")
    d = dists[0]
    checksum = _one(d, "checksum", where)
    if not isinstance(checksum, dict):
        raise _invalid(f"{where}: checksum must be an spdx:Checksum")
    algorithm = _id(_one(checksum, "algorithm", where), f"{where}: algorithm")
    _back(ALGORITHMS, algorithm, f"{where}: algorithm")
    return {
        "version": n,
        "manifest_id": _hex(_one(d, "manifestId", where), f"{where}: manifestId"),
        "plain_hash": _hex(_one(checksum, "checksumValue", where), f"{where}: checksumValue"),
        "cipher_hash": _hex(_one(d, "cipherHash", where), f"{where}: cipherHash"),
        "plain_size": _int(_one(d, "byteSize", where), f"{where}: byteSize"),
        "cipher_size": _int(_one(d, "cipherSize", where), f"{where}: cipherSize"),
        "cipher": _literal(_one(d, "cipher", where), f"{where}: cipher"),
        "time": parse_datetime_ms(_one(node, "issued", where), f"{where}: issued"),
        "height": _int(_one(node, "anchoredHeight", where), f"{where}: anchoredHeight"),
    }
