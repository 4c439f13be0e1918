"""Pages of the state tree: sixteen-way slices of the binary sparse Merkle tree, kept as bytes.

Theory of operation
-------------------
The *logical* tree is binary (see :mod:`citychain.state._smt`): 256 levels over H(key),
an empty subtree is ``ZERO`` (32 zero bytes) and a subtree holding exactly one leaf *is* that
leaf. The *physical* unit is a page: the four binary levels below a nibble boundary, stored as
one database record, like the internal nodes of a Jellyfish Merkle Tree, so one read and one
write stand for up to fifteen binary nodes.

A page is a heap of 31 binary positions: position 1 is the page's own root, the children of
``p`` are ``2p`` and ``2p + 1``, and positions 16..31 are the sixteen *slots*, one per nibble
value. Every position has a kind and a hash:

* ``EMPTY`` (0): nothing below; hash ``ZERO``;
* ``LEAF`` (1): exactly one leaf below; hash = that leaf's hash (the compressed SMT rule);
* ``INNER`` (2): two or more leaves below; hash = H(0x01 || left || right). As a slot,
  ``INNER`` is a *child page* holding the subtree;
* ``BUCKET`` (3, slots only): two to :data:`BUCKET_MAX` leaves kept inline in the slot, with
  the hash of their compressed binary subtree. Buckets remove the tiny pages that would
  otherwise hang below most slots near the bottom of the tree (with n keys in n/16 slots,
  most keys share their slot with another), saving a record read, write and prune per key.

A page is used and cached in this form, which needs no decoding: a fixed 1,216-byte head,
then the slots' payloads::

    0     kinds: byte p = kind of position p (byte 0 is 0)
    32    hashes: the hash of position p at 32 * p, for p = 1..31 (ZERO when empty)
    1024  16 x u64 slot versions: a leaf's value version, a child page's version (else 0)
    1152  16 x u32 end offsets of the slots' payloads, relative to 1216
    1216  payloads: a leaf's key, a bucket's leaves, nothing for a child or an empty slot

Because siblings ``2p`` and ``2p + 1`` are adjacent, the inner hash of ``p`` is
H(0x01 || page[64p : 64p + 64]), and updating a page is a copy, a few slice assignments
and one hash per changed level. A bucket's payload is its leaves in path order, each
``leaf hash (32) || u64 value version || u16 key length || key``.

On disk the hashes of positions 1..15 are left out (:func:`page_to_disk`) and recomputed when
a page is read (:func:`page_from_disk`, at most 15 hashes): a quarter fewer bytes to write,
compact and store per page, for some hashing on cache misses only.

Node keys are ``be64(version) || depth || nibble path`` (the version the page was written at,
Jellyfish style), never a content hash: a page is immutable once written, a key is never reused,
and a page that stops being live in version ``v`` is listed as stale at ``v``, which is what
makes pruning exact even when a value returns to an old one (content-addressed keys would make
two versions share a record, and pruning one would delete the other's).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from contextlib import suppress

from citychain.crypto import HashNew
from citychain.errors import InternalError

ZERO = bytes(32)
EMPTY, LEAF, INNER, BUCKET = 0, 1, 2, 3
#: Most leaves a slot keeps inline; a slot with more gets a child page.
BUCKET_MAX = 4
#: Longest state key the tree stores.
MAX_KEY_LEN = 4096

VERS = 1024
ENDS = 1152
HEAD = 1216

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_ENDS = struct.Struct(">16I")
_NODE_KEY = struct.Struct(">QB")
_BUCKET_LEAF = struct.Struct(">QH")
_P1 = b"\x01"
_P1Z = _P1 + ZERO

#: An item: (path as int, key, leaf hash or None for a delete, version of the value).
Item = tuple[int, bytes, bytes | None, int]
#: A subtree at a nibble boundary, as a slot or a version's root holds it:
#: (kind, hash, payload: key of a leaf / leaves of a bucket / b"", version: of a leaf's value
#: or of a child page, else 0).
Entry = tuple[int, bytes, bytes, int]
EMPTY_ENTRY: Entry = (EMPTY, ZERO, b"", 0)


def node_key(version: int, depth: int, path: int) -> bytes:
    """The record key of the page at nibble ``depth`` on the way to key hash ``path``."""
    prefix = path >> (256 - 4 * depth)
    return _NODE_KEY.pack(version, depth) + prefix.to_bytes((depth + 1) // 2, "big")


# Every function that hashes takes the chain's hash ``sha`` (a hashlib-style constructor:
# ``hashlib.sha256`` on an ed25519 chain, SM3 on an sm2-sm3 chain) as its last argument, with
# no default: the tree's owner (:class:`~citychain.state.StateDB`) chose it from genesis, and
# a caller that forgot it should not silently get SHA-256.


def path_of(key: bytes, sha: HashNew) -> int:
    return int.from_bytes(sha(key).digest(), "big")


# -- buckets ------------------------------------------------------------------------------


def encode_bucket(leaves: list[Item]) -> bytes:
    parts: list[bytes] = []
    for _, key, lh, ver in leaves:
        assert lh is not None
        parts.append(lh)
        parts.append(_BUCKET_LEAF.pack(ver, len(key)))
        parts.append(key)
    return b"".join(parts)


def decode_bucket(raw: bytes, sha: HashNew) -> list[Item]:
    leaves: list[Item] = []
    off = 0
    end = len(raw)
    try:
        while off < end:
            lh = raw[off : off + 32]
            ver, n = _BUCKET_LEAF.unpack_from(raw, off + 32)
            off += 42
            key = raw[off : off + n]
            off += n
            leaves.append((path_of(key, sha), key, lh, ver))
    except struct.error:
        raise InternalError("corrupt state bucket") from None
    return leaves


def subtree_hash(leaves: list[Item], bit: int, sha: HashNew) -> bytes:
    """Hash of the compressed subtree at binary depth ``bit`` holding ``leaves`` (path order).

    The leaves share their first ``bit`` path bits. The first bit where the smallest and the
    largest path differ is where the subtree splits; above it is a chain of inner nodes whose
    other child is empty.
    """
    n = len(leaves)
    if n == 1:
        lh = leaves[0][2]
        assert lh is not None
        return lh
    if n == 0:
        return ZERO
    first = leaves[0][0]
    split = 256 - (first ^ leaves[-1][0]).bit_length()
    shift = 255 - split
    threshold = ((first >> shift) | 1) << shift
    k = 1
    while leaves[k][0] < threshold:
        k += 1
    h = sha(
        _P1 + subtree_hash(leaves[:k], split + 1, sha) + subtree_hash(leaves[k:], split + 1, sha)
    ).digest()
    for b in range(split - 1, bit - 1, -1):
        h = sha(_P1Z + h if (first >> (255 - b)) & 1 else _P1 + h + ZERO).digest()
    return h


# -- pages --------------------------------------------------------------------------------


def rehash(ba: bytearray, dirty: list[int], sha: HashNew) -> None:
    """Recompute kinds and hashes of the positions above the changed slots ``dirty``
    (ascending positions 16..31) of the page head ``ba``.

    With kinds EMPTY = 0 and LEAF = 1, a parent holds one lone leaf exactly when the kinds of
    its children add up to 1, nothing when they add up to 0, and is inner otherwise.
    """
    if len(dirty) == 1:
        p = dirty[0] >> 1
        while p:
            c = p + p
            t = ba[c] + ba[c + 1]
            at = 32 * p
            if t > 1:
                ba[p] = INNER
                ba[at : at + 32] = sha(_P1 + ba[c * 32 : c * 32 + 64]).digest()
            elif t:
                ba[p] = LEAF
                c = c if ba[c] else c + 1
                ba[at : at + 32] = ba[c * 32 : c * 32 + 32]
            else:
                ba[p] = EMPTY
                ba[at : at + 32] = ZERO
            p >>= 1
        return
    level = dirty
    for _ in range(4):
        parents: list[int] = []
        last = 0
        for q in level:
            p = q >> 1
            if p == last:
                continue
            last = p
            parents.append(p)
            c = p + p
            t = ba[c] + ba[c + 1]
            at = 32 * p
            if t > 1:
                ba[p] = INNER
                ba[at : at + 32] = sha(_P1 + ba[c * 32 : c * 32 + 64]).digest()
            elif t:
                ba[p] = LEAF
                c = c if ba[c] else c + 1
                ba[at : at + 32] = ba[c * 32 : c * 32 + 32]
            else:
                ba[p] = EMPTY
                ba[at : at + 32] = ZERO
        level = parents


def slot_bounds(page: bytes | bytearray, s: int) -> tuple[int, int]:
    """Start and end of slot ``s``'s payload in ``page``."""
    end = HEAD + _U32.unpack_from(page, ENDS + 4 * s)[0]
    start = HEAD + _U32.unpack_from(page, ENDS + 4 * s - 4)[0] if s else HEAD
    return start, end


def slot_entry(page: bytes, s: int) -> Entry:
    q = 16 + s
    kind = page[q]
    if kind == EMPTY:
        return EMPTY_ENTRY
    ver = _U64.unpack_from(page, VERS + 8 * s)[0]
    if kind == INNER:
        return (INNER, page[32 * q : 32 * q + 32], b"", ver)
    start, end = slot_bounds(page, s)
    return (kind, page[32 * q : 32 * q + 32], page[start:end], ver)


def single_leaf_slot(page: bytes | bytearray, pos: int) -> int:
    """The slot (0..15) of the one leaf below position ``pos`` of kind ``LEAF``."""
    level = pos.bit_length() - 1
    first = pos << (4 - level)
    q = page.find(LEAF, first, first + (1 << (4 - level)))
    if q < 0:
        raise InternalError("page position marked as a single leaf has none below it")
    return q - 16


def build_page(entries: list[Entry], sha: HashNew) -> bytes:
    """A new page from the entries of its sixteen slots (at least two leaves below)."""
    ba = bytearray(HEAD)
    dirty: list[int] = []
    ends: list[int] = []
    payloads: list[bytes] = []
    total = 0
    for s, (kind, h, payload, ver) in enumerate(entries):
        if kind != EMPTY:
            q = 16 + s
            ba[q] = kind
            ba[32 * q : 32 * q + 32] = h
            _U64.pack_into(ba, VERS + 8 * s, ver)
            dirty.append(q)
            if payload:
                payloads.append(payload)
                total += len(payload)
        ends.append(total)
    _ENDS.pack_into(ba, ENDS, *ends)
    rehash(ba, dirty, sha)
    return bytes(ba) + b"".join(payloads)


def update_page(page: bytes, changed: list[tuple[int, Entry, Entry]], sha: HashNew) -> bytearray:
    """``page`` with slots replaced: ``changed`` lists ``(slot, old entry, new entry)`` by slot.

    When no payload changes length (a leaf's value or a bucket member's value changes, the
    common case) the page is patched in place; otherwise the payload area is rebuilt.
    """
    same_size = True
    for _, old, new in changed:
        if len(old[2]) != len(new[2]):
            same_size = False
            break
    if same_size:
        ba = bytearray(page)
        for s, old, new in changed:
            kind, h, payload, ver = new
            q = 16 + s
            ba[q] = kind
            ba[32 * q : 32 * q + 32] = h
            _U64.pack_into(ba, VERS + 8 * s, ver)
            if payload and payload != old[2]:
                start, end = slot_bounds(page, s)
                ba[start:end] = payload
    else:
        ba = bytearray(page[:HEAD])
        ends = _ENDS.unpack_from(page, ENDS)
        payloads: list[bytes] = []
        start = HEAD
        for e in ends:
            payloads.append(page[start : HEAD + e])
            start = HEAD + e
        for s, _, new in changed:
            kind, h, payload, ver = new
            q = 16 + s
            ba[q] = kind
            ba[32 * q : 32 * q + 32] = h
            _U64.pack_into(ba, VERS + 8 * s, ver)
            payloads[s] = payload
        total = 0
        new_ends: list[int] = []
        for payload in payloads:
            total += len(payload)
            new_ends.append(total)
        _ENDS.pack_into(ba, ENDS, *new_ends)
        ba += b"".join(payloads)
    rehash(ba, [16 + s for s, _, _ in changed], sha)
    return ba


def page_to_disk(page: bytes) -> bytes:
    """The stored form of a page: without the hashes of positions 1..15 (480 bytes, a quarter
    of a typical page), which :func:`page_from_disk` recomputes from the slots."""
    return page[:32] + page[512:]


def page_from_disk(raw: bytes, sha: HashNew) -> bytes:
    if len(raw) < HEAD - 480:
        raise InternalError("corrupt state page: too short")
    ba = bytearray(raw[:32])
    ba += bytes(480)
    ba += raw[32:]
    dirty = [q for q in range(16, 32) if ba[q]]
    if len(dirty) < 1:
        raise InternalError("corrupt state page: no slot in use")
    rehash(ba, dirty, sha)
    return bytes(ba)


class NodeCache:
    """A bounded least-recently-used cache of pages by node key.

    Pages are immutable bytes and node keys are never reused, so entries never go stale. Each
    operation is one or two C-level OrderedDict calls, safe for readers on other threads.
    """

    __slots__ = ("_capacity", "_pages")

    def __init__(self, capacity: int) -> None:
        self._capacity = max(0, capacity)
        self._pages: OrderedDict[bytes, bytes] = OrderedDict()

    def get(self, key: bytes) -> bytes | None:
        page = self._pages.get(key)
        if page is not None:
            # KeyError: evicted meanwhile by the writer thread; the page is still valid.
            with suppress(KeyError):
                self._pages.move_to_end(key)
        return page

    def put(self, key: bytes, page: bytes) -> None:
        if not self._capacity:
            return
        pages = self._pages
        pages[key] = page
        if len(pages) > self._capacity:
            pages.popitem(last=False)

    @property
    def capacity(self) -> int:
        return self._capacity

    def discard(self, key: bytes) -> None:
        self._pages.pop(key, None)

    def __len__(self) -> int:
        return len(self._pages)
