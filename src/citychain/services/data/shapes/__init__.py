"""The data directory's shapes: resource records, their limits and checks, the subject tag,
the contract's state layout, and DCAT 3 JSON-LD export and import (:mod:`._dcat`). Pure: no
I/O, no node; the contract, the SDK and the API all use these definitions.

A **resource** is one entry of the catalogue: a dataset a department (its *provider*, a
``gov`` organisation) keeps and shares. Its fields are DCAT 3's with the core metadata of
China's government data resource catalogue (《政务信息资源目录编制指南(试行)》, GB/T
21063.3) beside them:

===================  ==========================================  ===========================
field                政务 metadata                                DCAT 3 / our ``cgdr:`` term
===================  ==========================================  ===========================
``code``             信息资源代码 (前段码/顺序码)                  ``dct:identifier``
``title``            信息资源名称                                 ``dct:title``
``description``      信息资源摘要                                 ``dct:description``
``provider``         提供方 (the ``gov`` organisation id)         ``dct:publisher``
``themes``           信息资源分类 (主题)                           ``dcat:theme``
``keywords``         关键字                                       ``dcat:keyword``
``data_items``       信息项 [{name, type}]                        ``cgdr:dataItem``
``sharing``          共享类型: unconditional / conditional / none  ``dct:accessRights``
``sharing_condition``共享条件                                     ``cgdr:sharingCondition``
``open_class``       开放属性: open / conditional / closed         ``cgdr:openClass``
``update_cycle``     更新周期                                     ``dct:accrualPeriodicity``
``media_type``       信息资源格式                                 ``dcat:mediaType``
``license``          (licence of use)                            ``dct:license``
``series``           (a dataset series it belongs to)            ``dcat:inSeries``
``approvers``        (who decides conditional requests)          ``cgdr:approver``
===================  ==========================================  ===========================

**The resource code** (信息资源代码) is the 指南's: a front segment of the category, 类 (one
digit: 1 基础, 2 主题, 3 部门), 项 (two digits), 目 (three digits) and an optional 细目 the
department chooses (up to nine digits), then ``/`` and a sequence number (顺序码, one to nine
digits): ``101001/000123``, ``301002005/17``.

**No personal data on chain.** A version lists the people its records are about only as
*subject tags*, :func:`subject_tag` of their DID: ``sha256("citychain/data/subject\\0" +
DID)``. A citizen signed in with their DID computes their own tag; nobody reads a DID back
from one. A tag is the same in every resource (that is what lets a citizen see all accesses to
records about them), so whoever already knows a DID can find it in the catalogue's versions:
only departments that hold the records should know which DIDs they are about.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from citychain.errors import ErrorCode, InvalidInput
from citychain.types.state_keys import contract_key

NAME = "data"

# -- names and classes --------------------------------------------------------------------------
#: 共享类型: 无条件共享 / 有条件共享 / 不予共享.
SHARING = ("unconditional", "conditional", "none")
SHARING_ZH = {"unconditional": "无条件共享", "conditional": "有条件共享", "none": "不予共享"}
#: 开放属性: 无条件开放 / 有条件开放 / 不予开放.
OPEN_CLASSES = ("open", "conditional", "closed")
#: 更新周期, each with its EU frequency authority code (what ``dct:accrualPeriodicity`` names).
UPDATE_CYCLES: dict[str, str] = {
    "realtime": "UPDATE_CONT",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "semiannual": "ANNUAL_2",
    "annual": "ANNUAL",
    "irregular": "IRREG",
    "never": "NEVER",
}
#: A request's states, and a grant's (``expired`` is read off the block time, never written).
REQUEST_STATES = ("pending", "granted", "refused")
GRANT_STATES = ("active", "expired", "revoked")
#: Audit actions (each is also the event's type).
AUDIT_ACTIONS = ("request", "pending", "granted", "refused", "revoked", "download")

# -- limits -------------------------------------------------------------------------------------
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_TEXT = 1024  # a purpose, legal basis, reason or sharing condition
MAX_TERM = 128  # a theme (a label or an IRI) or keyword: an index key, so short
MAX_THEMES = 16
MAX_KEYWORDS = 32
MAX_DATA_ITEMS = 256
MAX_APPROVERS = 16
MAX_SUBJECTS = 1024  # subject tags listed by one version
MAX_WRAPS = 64  # wrapped keys given with one version
MAX_WRAPPED = 512  # bytes of one wrapped data key
HASH_SIZE = 32  # manifest id, plain and cipher hashes (SHA-256 or SM3)
TAG_SIZE = 32
#: The longest grant: ten years of block time.
MAX_GRANT_MS = 10 * 366 * 24 * 3600 * 1000
#: Most entries one page of a listing returns.
MAX_PAGE = 200

_CODE_RE = re.compile(r"([1-3])([0-9]{2})([0-9]{3})([0-9]{0,9})/([0-9]{1,9})")
_TERM_RE = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
_SERIES_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
_TYPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,31}")
_MEDIA_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
_CIPHER_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_ORG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ADDRESS_SIZE = 20

#: Every field of a resource record, in order, with its default (None: required).
RESOURCE_FIELDS: dict[str, Any] = {
    "code": None,
    "title": None,
    "description": "",
    "provider": None,
    "themes": [],
    "keywords": [],
    "data_items": [],
    "sharing": None,
    "sharing_condition": "",
    "open_class": "closed",
    "update_cycle": "irregular",
    "media_type": "",
    "license": "",
    "series": "",
    "approvers": [],
}


def bad(message: str, code: ErrorCode = ErrorCode.BAD_ARGUMENTS) -> InvalidInput:
    return InvalidInput(message, code)


def subject_tag(did: str) -> bytes:
    """The 32-byte tag that stands for ``did`` on chain: ``sha256("citychain/data/subject\\0"
    + did)``. SHA-256 on every suite: tags are computed by departments and wallets before any
    chain is asked."""
    if type(did) is not str or not did.startswith("did:"):
        raise bad(f"a subject is a DID (did:...), got {str(did)[:40]!r}")
    return hashlib.sha256(b"citychain/data/subject\0" + did.encode()).digest()


def check_code(value: Any, name: str = "code") -> str:
    """A resource code (信息资源代码, see the module docstring); ``bad_arguments`` naming
    ``name`` otherwise."""
    if type(value) is not str or not _CODE_RE.fullmatch(value):
        raise bad(
            f"argument {name!r} must be a resource code (信息资源代码): category digits 类(1-3) "
            f"项(2) 目(3) [细目(up to 9)], '/', a sequence number of 1-9 digits, e.g. "
            f"101001/000123; got {str(value)[:40]!r}"
        )
    return value


def code_parts(code: str) -> dict[str, str]:
    """The segments of a valid code: ``class``, ``item``, ``category``, ``subcategory``,
    ``sequence``."""
    m = _CODE_RE.fullmatch(check_code(code))
    assert m is not None
    return dict(
        zip(("class", "item", "category", "subcategory", "sequence"), m.groups(), strict=True)
    )


def _text(raw: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    value = raw.get(name, "")
    if type(value) is not str or len(value) > limit or (required and not value):
        need = f"1 to {limit}" if required else f"at most {limit}"
        raise bad(f"argument {name!r} must be a text of {need} characters")
    if "\x00" in value:
        raise bad(f"argument {name!r} must not contain NUL characters")
    return value


def check_text(value: Any, name: str, limit: int = MAX_TEXT, *, required: bool = True) -> str:
    """A free text argument (a purpose, a reason) of at most ``limit`` characters."""
    return _text({name: value}, name, limit, required=required)


def _terms(raw: dict[str, Any], name: str, limit: int) -> list[str]:
    value = raw.get(name, [])
    if not isinstance(value, list) or len(value) > limit:
        raise bad(f"argument {name!r} must be a list of at most {limit} terms")
    for t in value:
        if type(t) is not str or not _TERM_RE.fullmatch(t) or t != t.strip():
            raise bad(
                f"argument {name!r}: {str(t)[:40]!r} is not a term (1 to {MAX_TERM} printable "
                "characters, no surrounding spaces)"
            )
    return sorted(set(value))  # a set in RDF: one canonical order


def check_org(value: Any, name: str = "provider") -> str:
    if type(value) is not str or not _ORG_RE.fullmatch(value):
        raise bad(f"argument {name!r} must be an organisation id, got {str(value)[:40]!r}")
    return value


def check_address(value: Any, name: str) -> bytes:
    if type(value) is not bytes or len(value) != ADDRESS_SIZE:
        raise bad(f"argument {name!r} must be a {ADDRESS_SIZE}-byte address")
    return value


def check_tag(value: Any, name: str = "subject") -> bytes:
    if type(value) is not bytes or len(value) != TAG_SIZE:
        raise bad(f"argument {name!r} must be a {TAG_SIZE}-byte subject tag (subject_tag(did))")
    return value


def check_hash(value: Any, name: str) -> bytes:
    if type(value) is not bytes or len(value) != HASH_SIZE:
        raise bad(f"argument {name!r} must be a {HASH_SIZE}-byte hash")
    return value


def resource_record(raw: Any) -> dict[str, Any]:
    """The canonical resource record of ``raw`` (the arguments of ``register_resource``):
    every field present, term lists sorted and without repeats, approvers sorted.
    ``bad_arguments`` naming the first field that is wrong."""
    if not isinstance(raw, dict):
        raise bad("a resource is a map of its fields")
    unknown = sorted(k for k in raw if k not in RESOURCE_FIELDS)
    if unknown:
        raise bad(
            f"unknown field(s) {', '.join(map(repr, unknown))} (known: "
            f"{', '.join(RESOURCE_FIELDS)})"
        )
    for name, default in RESOURCE_FIELDS.items():
        if default is None and name not in raw:
            raise bad(f"missing argument {name!r}")
    items = raw.get("data_items", [])
    if not isinstance(items, list) or len(items) > MAX_DATA_ITEMS:
        raise bad(f"argument 'data_items' must be a list of at most {MAX_DATA_ITEMS} items")
    data_items = []
    names: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"name", "type"}:
            raise bad(f"argument 'data_items'[{i}] must be a map of name and type")
        name = _text(item, "name", MAX_TERM, required=True)
        if name in names:
            raise bad(f"argument 'data_items'[{i}]: the name {name!r} is listed twice")
        names.add(name)
        dtype = item["type"]
        if type(dtype) is not str or not _TYPE_RE.fullmatch(dtype):
            raise bad(
                f"argument 'data_items'[{i}]: type {str(dtype)[:40]!r} must be a data type name "
                "(string, integer, date, decimal, xsd:dateTime, ...)"
            )
        data_items.append({"name": name, "type": dtype})
    sharing = raw["sharing"]
    if sharing not in SHARING:
        raise bad(f"argument 'sharing' must be one of {', '.join(SHARING)}, got {sharing!r}")
    open_class = raw.get("open_class", "closed")
    if open_class not in OPEN_CLASSES:
        raise bad(f"argument 'open_class' must be one of {', '.join(OPEN_CLASSES)}")
    cycle = raw.get("update_cycle", "irregular")
    if cycle not in UPDATE_CYCLES:
        raise bad(f"argument 'update_cycle' must be one of {', '.join(UPDATE_CYCLES)}")
    media_type = _text(raw, "media_type", 128)
    if media_type and not _MEDIA_RE.fullmatch(media_type):
        raise bad(
            f"argument 'media_type' must be a media type such as text/csv, got {media_type!r}"
        )
    license_ = _text(raw, "license", 512)
    if license_ and not license_.startswith(("https://", "http://", "urn:")):
        raise bad("argument 'license' must be an IRI (https://..., urn:...)")
    series = _text(raw, "series", 128)
    if series and not _SERIES_RE.fullmatch(series):
        raise bad(f"argument 'series' must be a dataset series id, got {series[:40]!r}")
    approvers = raw.get("approvers", [])
    if not isinstance(approvers, list) or len(approvers) > MAX_APPROVERS:
        raise bad(f"argument 'approvers' must be a list of at most {MAX_APPROVERS} addresses")
    for a in approvers:
        check_address(a, "approvers")
    if len(set(approvers)) != len(approvers):
        raise bad("argument 'approvers' lists an address twice")
    condition = _text(raw, "sharing_condition", MAX_TEXT)
    if sharing == "conditional":
        if not approvers:
            raise bad("a conditionally shared resource needs at least one of 'approvers'")
        if not condition:
            raise bad("a conditionally shared resource needs its 'sharing_condition' (共享条件)")
    elif approvers and sharing != "none":
        # On a "none" resource approvers decide citizens' requests about themselves (PIPL
        # art. 45); an unconditional one has nothing to decide.
        raise bad(
            "'approvers' decide conditional requests and, on a resource shared with nobody, "
            f"citizens' requests about themselves; this resource is {sharing!r}"
        )
    return {
        "code": check_code(raw["code"]),
        "title": _text(raw, "title", MAX_TITLE, required=True),
        "description": _text(raw, "description", MAX_DESCRIPTION),
        "provider": check_org(raw["provider"]),
        "themes": _terms(raw, "themes", MAX_THEMES),
        "keywords": _terms(raw, "keywords", MAX_KEYWORDS),
        "data_items": data_items,
        "sharing": sharing,
        "sharing_condition": condition,
        "open_class": open_class,
        "update_cycle": cycle,
        "media_type": media_type,
        "license": license_,
        "series": series,
        "approvers": sorted(approvers),
    }


def check_cipher(value: Any) -> str:
    if type(value) is not str or not _CIPHER_RE.fullmatch(value):
        raise bad(f"argument 'cipher' must be a cipher name such as aes-256-gcm, got {value!r}")
    return value


# -- the contract's state layout (pure: for proof requests by the SDK and the API) -------------
#: Inside the contract's namespace ``c/data/`` (see the contract's theory of operation)::
#:
#:     res/<code>                              head {code, provider, revisions, versions, ...}
#:     rr/<code>\0<revision, 4 B BE>           one revision of the record (register/update/retire)
#:     rv/<code>\0<version, 4 B BE>            a version (manifest id, hashes, sizes, subject count)
#:     vs/<code>\0<version, 4 B BE>            the subject tags it lists (private)
#:     wk/<code>\0<version, 4 B BE><grantee>   a data key wrapped for one reader
#:     ix/<p|t|k|s>/<term>\0<code>             search indexes: provider, theme, keyword, sharing
#:     sr/<subject tag><code>                  some version of <code> lists the subject
#:     req/<id, 8 B BE>                        an access request
#:     gr/<id, 8 B BE>                         a grant
#:     rq/<code>\0<id, 8 B BE>                 the requests of a resource
#:     rg/<code>\0<grantee><id, 8 B BE>        the grants of a resource, by grantee
#:     rgi/<code>\0<id, 8 B BE>                the grants of a resource, by id
#:     au/<seq, 8 B BE>                        an audit entry
#:     ar/<code>\0<seq, 8 B BE>                the audit entries of a resource
#:     as/<subject tag><seq, 8 B BE>           the audit entries about a subject
#:     ph/<plain hash><code>\0<version, 4 B BE> a version by the hash of its plaintext
#:     next/<req|gr|au>                        the next id of each sequence
HEAD = b"res/"
REVISION = b"rr/"
VERSION = b"rv/"
WRAP = b"wk/"
INDEX = b"ix/"
SUBJECT_RESOURCES = b"sr/"
REQUEST = b"req/"
GRANT = b"gr/"
RESOURCE_REQUESTS = b"rq/"
RESOURCE_GRANTS = b"rg/"
RESOURCE_GRANT_IDS = b"rgi/"
AUDIT = b"au/"
RESOURCE_AUDIT = b"ar/"
SUBJECT_AUDIT = b"as/"
NEXT = b"next/"
PLAIN_HASHES = b"ph/"
VERSION_SUBJECTS = b"vs/"
#: Index letters: search filter -> the index it reads.
INDEXES = {"provider": b"p", "theme": b"t", "keyword": b"k", "sharing": b"s"}


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def head_key(code: str) -> bytes:
    return HEAD + code.encode()


def revision_key(code: str, revision: int) -> bytes:
    return REVISION + code.encode() + b"\0" + u32(revision)


def version_key(code: str, version: int) -> bytes:
    return VERSION + code.encode() + b"\0" + u32(version)


def wrap_key(code: str, version: int, grantee: bytes) -> bytes:
    return WRAP + code.encode() + b"\0" + u32(version) + grantee


def version_subjects_key(code: str, version: int) -> bytes:
    """The subject tags a version lists (private: see the contract's PRIVATE_PREFIXES)."""
    return VERSION_SUBJECTS + code.encode() + b"\0" + u32(version)


def hash_key(plain_hash: bytes, code: str, version: int) -> bytes:
    """The index entry of a version under the hash of its plaintext (``by_hash``)."""
    return PLAIN_HASHES + plain_hash + code.encode() + b"\0" + u32(version)


def index_prefix(kind: str, term: str) -> bytes:
    return INDEX + INDEXES[kind] + b"/" + term.encode() + b"\0"


def request_key(rid: int) -> bytes:
    return REQUEST + u64(rid)


def grant_key(gid: int) -> bytes:
    return GRANT + u64(gid)


def audit_key(seq: int) -> bytes:
    return AUDIT + u64(seq)


def state_key(key: bytes) -> bytes:
    """The full state key of ``key`` in this contract's namespace (for a proof request)."""
    return contract_key(NAME, key)


from citychain.services.data.shapes._dcat import (  # noqa: E402  (uses the names above)
    CONTEXT as CONTEXT,
)
from citychain.services.data.shapes._dcat import (  # noqa: E402
    catalogue_entry as catalogue_entry,
)
from citychain.services.data.shapes._dcat import (  # noqa: E402
    export_catalogue as export_catalogue,
)
from citychain.services.data.shapes._dcat import (  # noqa: E402
    import_catalogue as import_catalogue,
)
