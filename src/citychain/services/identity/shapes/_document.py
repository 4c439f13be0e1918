"""DID documents: the JSON form (DID Core 1.0) and the record kept in state, and back.

A document arrives as the JSON data model of DID Core (decoded from the transaction's CBOR
arguments) and is checked and reduced to a *record*, a small map of canonical data that is
all the chain keeps (its canonical CBOR is the stored value); :func:`to_json` rebuilds the
JSON form from it for the queries. ``to_record(to_json(r), did) == r`` for every record
(property-tested), so nothing is lost between the two.

Record (keys absent when empty)::

    {"ctl": [DID, ...],                       the ``controller`` property, when present
     "aka": [URI, ...],                       ``alsoKnownAs``
     "vm":  [[fragment, controller, key]],    ``verificationMethod``: Multikey Ed25519 keys
                                              (32 raw bytes; on an sm2-sm3 chain also SM2
                                              keys, 65 bytes 04||x||y); controller None = the
                                              DID itself
     "rel": {relationship: [entry, ...]},     an entry is a fragment (a reference to one of
                                              "vm") or [fragment, controller, key] (embedded)
     "svc": [[fragment, type, endpoint]]}     ``service``; type a text or a list of texts

Ids inside a document are fragments of the DID: ``#key-1`` or ``<did>#key-1`` on input,
always ``<did>#key-1`` on output. At create the DID is not known to the author (it is
derived from the creating transaction's hash), so a new document uses the ``#...`` form
and leaves ``id`` out. What this method does not take is refused with
``invalid_did_document`` naming the property: other key types (``publicKeyJwk``, non-Ed25519
Multikeys), ``keyAgreement`` (it needs X25519 keys), references to other documents'
methods, properties DID Core does not define (so nothing personal rides along unnoticed).
"""

from __future__ import annotations

import re
from typing import Any

from citychain import codec
from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity.shapes import (
    DidHead,
    DidVersion,
    method_key_decode,
    method_key_encode,
    split_did,
    xsd_datetime,
)

#: The ``@context`` every document is written with (JSON-LD representation).
CONTEXT = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
RELATIONSHIPS = (
    "authentication",
    "assertionMethod",
    "keyAgreement",
    "capabilityInvocation",
    "capabilityDelegation",
)
_TOP = frozenset({"@context", "id", "controller", "alsoKnownAs", "verificationMethod", "service"})
_VM_PROPS = frozenset({"id", "type", "controller", "publicKeyMultibase"})
_SVC_PROPS = frozenset({"id", "type", "serviceEndpoint"})
_FRAGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,63}")
MAX_METHODS = 32
MAX_SERVICES = 32
MAX_CONTROLLERS = 16
MAX_ALIASES = 16
MAX_TEXT = 2048
#: The largest record (canonical CBOR bytes) a version may hold.
MAX_RECORD = 16_384
_JSON_DEPTH = 4


def bad(path: str, problem: str) -> InvalidInput:
    return InvalidInput(f"DID document {path}: {problem}", ErrorCode.INVALID_DID_DOCUMENT)


def _list(value: Any, path: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise bad(path, f"must be a list, got {type(value).__name__}")
    if len(value) > limit:
        raise bad(path, f"has {len(value)} entries; at most {limit}")
    return value


def _text(value: Any, path: str, limit: int = MAX_TEXT) -> str:
    if type(value) is not str or not value or len(value) > limit:
        raise bad(path, f"must be a text of 1 to {limit} characters")
    return value


def _did(value: Any, path: str) -> str:
    text = _text(value, path)
    try:
        split_did(text)
    except InvalidInput:
        raise bad(path, f"{text[:80]!r} is not a DID") from None
    return text


def _fragment(value: Any, did: str | None, path: str) -> str:
    """The fragment of an id ``#frag`` or ``<did>#frag`` (of this document's DID)."""
    text = _text(value, path)
    base, sep, frag = text.partition("#")
    if not sep or (base and base != did):
        where = f"#<fragment> or {did}#<fragment>" if did else "#<fragment>"
        raise bad(path, f"{text[:80]!r} must be an id in this document: {where}")
    if not _FRAGMENT_RE.fullmatch(frag):
        raise bad(path, "a fragment is 1 to 64 letters, digits, '.', '_', '~' or '-'")
    return frag


def _json(value: Any, path: str, depth: int = 0) -> Any:
    """Plain JSON data (texts, integers, booleans, null, lists, maps of texts)."""
    if value is None or type(value) is bool:
        return value
    if type(value) is int:
        if abs(value) >= 2**53:
            raise bad(path, "integers in JSON data stay within +-2**53 (what JSON keeps exactly)")
        return value
    if type(value) is str:
        return _text(value, path)
    if depth >= _JSON_DEPTH:
        raise bad(path, f"nests deeper than {_JSON_DEPTH} levels")
    if isinstance(value, list):
        return [_json(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        for k in value:
            _text(k, f"{path} key")
        return {k: _json(v, f"{path}.{k}", depth + 1) for k, v in value.items()}
    raise bad(path, f"must be JSON data (text, number, list, map), got {type(value).__name__}")


def _method(raw: Any, did: str | None, path: str, sm2: bool = False) -> list[Any]:
    if not isinstance(raw, dict):
        raise bad(path, "must be a verification method (a map)")
    extra = sorted(set(raw) - _VM_PROPS)
    if extra:
        raise bad(
            path,
            f"has {', '.join(map(str, extra))}; a did:citychain verification method is a Multikey "
            "with id, type, controller and publicKeyMultibase (Ed25519)",
        )
    for need in ("id", "type", "publicKeyMultibase"):
        if need not in raw:
            raise bad(path, f"lacks {need!r}")
    frag = _fragment(raw["id"], did, f"{path}.id")
    if raw["type"] != "Multikey":
        raise bad(f"{path}.type", f"must be 'Multikey', got {str(raw['type'])[:40]!r}")
    try:
        key = method_key_decode(raw["publicKeyMultibase"], sm2=sm2)
    except InvalidInput as exc:
        raise bad(f"{path}.publicKeyMultibase", exc.message) from None
    controller: str | None = None
    if "controller" in raw:
        controller = _did(raw["controller"], f"{path}.controller")
        if controller == did:
            controller = None
    return [frag, controller, key]


def to_record(doc: Any, did: str | None, *, sm2: bool = False) -> dict[str, Any]:
    """The record of a DID document (``did``: the DID it is for; None before it exists).
    ``sm2``: the chain signs with SM2 (``sm2-sm3``), so SM2 Multikeys are taken beside
    Ed25519 ones (65-byte keys in the record); without it only Ed25519, as always.

    Raises ``invalid_did_document`` naming the first property that is wrong."""
    if not isinstance(doc, dict):
        raise bad("", "must be a map (the JSON data model of DID Core)")
    extra = sorted(str(k) for k in set(doc) - _TOP - set(RELATIONSHIPS))
    if extra:
        raise bad(
            "",
            f"has {', '.join(extra)}, which this method does not take (known: "
            f"{', '.join(sorted(_TOP | set(RELATIONSHIPS)))})",
        )
    if "@context" in doc:
        ctx = doc["@context"]
        items = ctx if isinstance(ctx, list) else [ctx]
        if not items or items[0] != CONTEXT[0] or any(c not in CONTEXT for c in items):
            raise bad("@context", f"must be {CONTEXT[0]!r}, optionally with {CONTEXT[1]!r}")
    if "id" in doc:
        if did is None:
            raise bad("id", "must be left out at create: the chain derives the DID")
        if doc["id"] != did:
            raise bad("id", f"is {str(doc['id'])[:80]!r}, not the DID {did}")
    rec: dict[str, Any] = {}
    if "controller" in doc:
        raw = doc["controller"]
        ctl = [raw] if isinstance(raw, str) else _list(raw, "controller", MAX_CONTROLLERS)
        if not ctl:
            raise bad("controller", "is empty; leave it out for a DID that controls itself")
        ctl = [_did(c, f"controller[{i}]") for i, c in enumerate(ctl)]
        if len(set(ctl)) != len(ctl):
            raise bad("controller", "names a DID twice")
        rec["ctl"] = ctl
    if "alsoKnownAs" in doc:
        aka = _list(doc["alsoKnownAs"], "alsoKnownAs", MAX_ALIASES)
        for i, a in enumerate(aka):
            if ":" not in _text(a, f"alsoKnownAs[{i}]"):
                raise bad(f"alsoKnownAs[{i}]", f"{a[:80]!r} is not a URI")
        if len(set(aka)) != len(aka):
            raise bad("alsoKnownAs", "names a URI twice")
        if aka:
            rec["aka"] = list(aka)
    seen: set[str] = set()

    def fresh(frag: str, path: str) -> str:
        if frag in seen:
            raise bad(path, f"id #{frag} is used twice in the document")
        seen.add(frag)
        return frag

    vms = _list(doc.get("verificationMethod", []), "verificationMethod", MAX_METHODS)
    methods = []
    for i, raw in enumerate(vms):
        vm = _method(raw, did, f"verificationMethod[{i}]", sm2)
        fresh(vm[0], f"verificationMethod[{i}].id")
        methods.append(vm)
    if methods:
        rec["vm"] = methods
    by_frag = {vm[0] for vm in methods}
    rels: dict[str, list[Any]] = {}
    for name in RELATIONSHIPS:
        if name not in doc:
            continue
        if name == "keyAgreement":
            raise bad(name, "needs X25519 keys, which this version of did:citychain does not take")
        entries: list[Any] = []
        for i, raw in enumerate(_list(doc[name], name, MAX_METHODS)):
            path = f"{name}[{i}]"
            if isinstance(raw, str):
                frag = _fragment(raw, did, path)
                if frag not in by_frag:
                    raise bad(path, f"refers to #{frag}, which is not in verificationMethod")
                if frag in entries:
                    raise bad(path, f"lists #{frag} twice")
                entries.append(frag)
            else:
                vm = _method(raw, did, path, sm2)
                fresh(vm[0], f"{path}.id")
                entries.append(vm)
        if entries:
            rels[name] = entries
    if rels:
        rec["rel"] = rels
    services = []
    for i, raw in enumerate(_list(doc.get("service", []), "service", MAX_SERVICES)):
        path = f"service[{i}]"
        if not isinstance(raw, dict):
            raise bad(path, "must be a service (a map)")
        extra = sorted(str(k) for k in set(raw) - _SVC_PROPS)
        missing = [k for k in ("id", "type", "serviceEndpoint") if k not in raw]
        if extra or missing:
            raise bad(path, "a service has exactly id, type and serviceEndpoint")
        frag = fresh(_fragment(raw["id"], did, f"{path}.id"), f"{path}.id")
        stype = raw["type"]
        if isinstance(stype, list):
            if not stype:
                raise bad(f"{path}.type", "is an empty list")
            stype = [_text(t, f"{path}.type[{j}]", 256) for j, t in enumerate(stype)]
        else:
            stype = _text(stype, f"{path}.type", 256)
        endpoint = raw["serviceEndpoint"]
        if not isinstance(endpoint, str | list | dict):
            raise bad(f"{path}.serviceEndpoint", "must be a URI, a map or a list of them")
        services.append([frag, stype, _json(endpoint, f"{path}.serviceEndpoint")])
    if services:
        rec["svc"] = services
    size = len(codec.encode(rec))
    if size > MAX_RECORD:
        raise bad("", f"takes {size} bytes on chain; at most {MAX_RECORD}")
    return rec


def _vm_json(vm: list[Any], did: str) -> dict[str, Any]:
    frag, controller, key = vm
    return {
        "id": f"{did}#{frag}",
        "type": "Multikey",
        "controller": controller or did,
        "publicKeyMultibase": method_key_encode(key),
    }


def to_json(rec: dict[str, Any] | None, did: str) -> dict[str, Any]:
    """The JSON-LD form of a record (None: a deactivated DID, which keeps only its id)."""
    doc: dict[str, Any] = {"@context": list(CONTEXT), "id": did}
    if rec is None:
        return doc
    if "ctl" in rec:
        ctl = rec["ctl"]
        doc["controller"] = ctl[0] if len(ctl) == 1 else list(ctl)
    if "aka" in rec:
        doc["alsoKnownAs"] = list(rec["aka"])
    if "vm" in rec:
        doc["verificationMethod"] = [_vm_json(vm, did) for vm in rec["vm"]]
    for name, entries in rec.get("rel", {}).items():
        doc[name] = [f"{did}#{e}" if isinstance(e, str) else _vm_json(e, did) for e in entries]
    if "svc" in rec:
        doc["service"] = [
            {"id": f"{did}#{frag}", "type": stype, "serviceEndpoint": endpoint}
            for frag, stype, endpoint in rec["svc"]
        ]
    return doc


def resolution(
    did: str, head: DidHead, version: DidVersion, following: DidVersion | None = None
) -> dict[str, Any]:
    """``{"didDocument", "didDocumentMetadata"}`` of ``did`` at ``version``, as DID Resolution
    writes them, from its records (``following``: the version after it, if any). What the
    contract's ``resolve`` answers, what the SDK rebuilds from proven state, and what the
    resolution index renders ahead of any ask: one definition for all three."""
    meta: dict[str, Any] = {"created": xsd_datetime(head.created), "versionId": str(version.number)}
    if version.number > 1:
        meta["updated"] = xsd_datetime(version.time)
    if version.deactivated:
        meta["deactivated"] = True
    if following is not None:
        meta["nextVersionId"] = str(following.number)
        meta["nextUpdate"] = xsd_datetime(following.time)
    return {"didDocument": to_json(version.record, did), "didDocumentMetadata": meta}


def invocation_keys(rec: dict[str, Any] | None) -> list[bytes]:
    """The keys of the record's ``capabilityInvocation`` relationship, in order (Ed25519;
    SM2 too on an ``sm2-sm3`` chain)."""
    if rec is None:
        return []
    keys = {vm[0]: vm[2] for vm in rec.get("vm", [])}
    return [
        keys[e] if isinstance(e, str) else e[2]
        for e in rec.get("rel", {}).get("capabilityInvocation", [])
    ]


def controllers(rec: dict[str, Any], did: str) -> list[str]:
    """The DID's controllers: its ``controller`` property, else the DID itself."""
    return list(rec.get("ctl", [did]))
