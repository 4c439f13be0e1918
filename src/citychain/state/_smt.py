"""The sparse Merkle tree: batch updates and ICS-23 proofs over pages (see :mod:`._nodes`).

Theory of operation
-------------------
Logical tree (fixed by ICS-23 ``SmtSpec``): the path of a key is H(key), most significant
bit first. leaf = H(0x00 || H(key) || H(value)); inner = H(0x01 || l || r);
an empty subtree is 32 zero bytes; a subtree with exactly one leaf is that leaf, so an inner
node always has two or more leaves below it (one of its children may still be empty: two keys
sharing a long path prefix sit under a chain of inner nodes with empty siblings).

An :data:`~._nodes.Entry` describes a whole subtree at a nibble boundary, as a page slot or a
version's root record holds it: empty, one leaf, a bucket of a few leaves, or a child page.

Update. A block's writes become items ``(path as int, key, leaf hash or None, version)``,
sorted by path once. :meth:`Updater.slot` then walks the tree once per block, not once per key:
at a page it splits its item range by nibble with a bisection and recurses only into the slots
that receive items; every other slot is shared untouched. A slot holding a leaf or a bucket
merges its leaves with the new items and is rebuilt from the result by :meth:`Updater.build`:
no leaf is empty, one is a leaf, up to ``BUCKET_MAX`` a bucket, more a new page. A page that
ends with no leaf disappears and one that ends with a single leaf collapses into it, so the
logical tree is always the canonical compressed one and its root depends only on the final set
of (key, value) pairs, never on write order or history. (A page may keep as few as two leaves
after deletions instead of turning back into a bucket: that changes storage, not hashes.)
Inside a changed page only the positions above changed slots are rehashed. New pages are keyed
by the new version; every page they replace is reported stale. Writing a value equal to the
current one, or deleting an absent key, changes nothing.

Proofs. A descent along the key's path collects the sibling hash of every binary step (inside
a bucket the siblings are recomputed from its leaves). If it ends at the key's leaf, that is an
ICS-23 existence proof. Otherwise it ends in an empty subtree or at another key's leaf; the
neighbours in key-hash order are then that leaf (on its side) and the extreme leaf of the
deepest non-empty sibling on the other side, and the non-existence proof carries their
existence proofs, which is what the ICS-23 verifier checks (left- or right-most paths may pass
through empty siblings).
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Callable

from citychain.crypto import HashNew
from citychain.errors import InternalError
from citychain.proof.ics23 import ExistenceProof, HashOp, InnerOp, smt_spec
from citychain.state._nodes import (
    BUCKET,
    BUCKET_MAX,
    EMPTY,
    EMPTY_ENTRY,
    INNER,
    LEAF,
    ZERO,
    Entry,
    Item,
    build_page,
    decode_bucket,
    encode_bucket,
    node_key,
    path_of,
    single_leaf_slot,
    slot_bounds,
    slot_entry,
    subtree_hash,
    update_page,
)

_U64 = struct.Struct(">Q")
_P1 = b"\x01"


class Updater:
    """One block's update of the tree; collects new pages, stale pages and effective changes."""

    __slots__ = ("changes", "load", "new_pages", "sha", "stale", "version")

    def __init__(self, load: Callable[[bytes], bytes], version: int, sha: HashNew) -> None:
        self.load = load
        self.version = version
        self.sha = sha
        self.new_pages: dict[bytes, bytes] = {}
        self.stale: list[bytes] = []
        #: key -> version of the value it replaced (-1: the key was absent)
        self.changes: dict[bytes, int] = {}

    # Recursion depth is bounded by the nibble depth (at most 64).
    def slot(self, entry: Entry, depth: int, items: list[Item], lo: int, hi: int) -> Entry:
        """The new entry of the subtree at nibble ``depth`` after applying ``items[lo:hi]``."""
        kind = entry[0]
        if kind == INNER:
            nkey = node_key(entry[3], depth, items[lo][0])
            return self.page(self.load(nkey), nkey, entry, depth, items, lo, hi)
        if hi - lo == 1:
            item = items[lo]
            if kind == EMPTY:
                if item[2] is None:
                    return EMPTY_ENTRY  # deleting an absent key
                self.changes[item[1]] = -1
                return (LEAF, item[2], item[1], item[3])
            if kind == LEAF and item[1] == entry[2]:
                if item[2] == entry[1]:
                    return entry  # the same value again
                self.changes[item[1]] = entry[3]
                if item[2] is None:
                    return EMPTY_ENTRY
                return (LEAF, item[2], item[1], item[3])
        old: list[Item]
        if kind == LEAF:
            old = [(path_of(entry[2], self.sha), entry[2], entry[1], entry[3])]
        elif kind == BUCKET:
            old = decode_bucket(entry[2], self.sha)
        else:
            old = []
        leaves = self.merge(old, items, lo, hi)
        if leaves is None:
            return entry
        return self.build(depth, leaves)

    def merge(self, old: list[Item], items: list[Item], lo: int, hi: int) -> list[Item] | None:
        """The leaves ``old`` with ``items[lo:hi]`` applied (None if nothing changed)."""
        out: list[Item] = []
        changes = self.changes
        changed = False
        i = 0
        n = len(old)
        for j in range(lo, hi):
            item = items[j]
            path = item[0]
            while i < n and old[i][0] < path:
                out.append(old[i])
                i += 1
            if i < n and old[i][0] == path:
                prev = old[i]
                i += 1
                if item[2] == prev[2]:
                    out.append(prev)
                    continue
                changes[item[1]] = prev[3]
                changed = True
                if item[2] is not None:
                    out.append(item)
            elif item[2] is not None:
                changes[item[1]] = -1
                changed = True
                out.append(item)
        if not changed:
            return None
        out.extend(old[i:])
        return out

    def build(self, depth: int, leaves: list[Item]) -> Entry:
        """The entry of a subtree at nibble ``depth`` holding exactly ``leaves`` (path order)."""
        n = len(leaves)
        if n == 0:
            return EMPTY_ENTRY
        if n == 1:
            _, key, lh, ver = leaves[0]
            assert lh is not None
            return (LEAF, lh, key, ver)
        if n <= BUCKET_MAX:
            return (BUCKET, subtree_hash(leaves, 4 * depth, self.sha), encode_bucket(leaves), 0)
        if depth >= 64:
            raise InternalError("state tree deeper than 64 nibbles: duplicate key paths")
        shift = 252 - 4 * depth
        entries = [EMPTY_ENTRY] * 16
        i = 0
        while i < n:
            top = leaves[i][0] >> shift
            j = bisect_left(leaves, ((top + 1) << shift,), i + 1, n)
            entries[top & 15] = self.build(depth + 1, leaves[i:j])
            i = j
        page = build_page(entries, self.sha)
        self.new_pages[node_key(self.version, depth, leaves[0][0])] = page
        return (INNER, page[32:64], b"", self.version)

    def page(
        self,
        page: bytes,
        nkey: bytes,
        entry: Entry,
        depth: int,
        items: list[Item],
        lo: int,
        hi: int,
    ) -> Entry:
        """Apply ``items[lo:hi]`` to the page ``page`` at nibble ``depth``."""
        shift = 252 - 4 * depth
        changed: list[tuple[int, Entry, Entry]] = []
        i = lo
        while i < hi:
            top = items[i][0] >> shift
            j = hi if hi - i == 1 else bisect_left(items, ((top + 1) << shift,), i + 1, hi)
            s = top & 15
            old = slot_entry(page, s)
            new = self.slot(old, depth + 1, items, i, j)
            if new is not old and new != old:
                changed.append((s, old, new))
            i = j
        if not changed:
            return entry
        ba = update_page(page, changed, self.sha)
        self.stale.append(nkey)
        top_kind = ba[1]
        if top_kind == EMPTY:
            return EMPTY_ENTRY
        if top_kind == LEAF:
            return slot_entry(bytes(ba), single_leaf_slot(ba, 1))
        raw = bytes(ba)
        self.new_pages[_U64.pack(self.version) + nkey[8:]] = raw
        return (INNER, raw[32:64], b"", self.version)


# ------------------------------------------------------------------------------------------
# Navigation for proofs
# ------------------------------------------------------------------------------------------

#: A leaf found by a descent: (key, version of its value).
Leaf = tuple[bytes, int]
#: Where a sibling subtree is: a page position (page, position, nibble depth, nibble prefix),
#: or the leaves of one side of a bucket.
Ref = tuple[bytes, int, int, int] | list[Item]
Step = tuple[int, bytes, Ref]


class Walker:
    """Read-only descents through one version's tree."""

    __slots__ = ("load", "root", "sha")

    def __init__(self, load: Callable[[bytes], bytes], root: Entry, sha: HashNew) -> None:
        self.load = load
        self.root = root
        self.sha = sha

    def _child(self, page: bytes, s: int, depth: int, prefix: int) -> tuple[bytes, int]:
        child_prefix = (prefix << 4) | s
        ver = int.from_bytes(page[1024 + 8 * s : 1032 + 8 * s], "big")
        path = child_prefix << (256 - 4 * (depth + 1))
        return self.load(node_key(ver, depth + 1, path)), child_prefix

    def descend(self, path: int) -> tuple[list[Step], Leaf | None]:
        """Steps ``(bit, sibling hash, sibling)`` from the root down, and where it ended."""
        steps: list[Step] = []
        kind, _, payload, ver = self.root
        if kind == EMPTY:
            return steps, None
        if kind == LEAF:
            return steps, (payload, ver)
        if kind == BUCKET:
            return steps, _bucket_descend(
                decode_bucket(payload, self.sha), 0, path, steps, self.sha
            )
        page = self.load(node_key(ver, 0, 0))
        p = 1
        depth = prefix = 0
        b = 0
        while True:
            bit = (path >> (255 - b)) & 1
            c = p + p + bit
            sib = c ^ 1
            steps.append((bit, page[32 * sib : 32 * sib + 32], (page, sib, depth, prefix)))
            b += 1
            kind = page[c]
            if kind == EMPTY:
                return steps, None
            if c < 16:
                if kind == LEAF:
                    return steps, _slot_leaf(page, single_leaf_slot(page, c))
                p = c
                continue
            s = c - 16
            if kind == LEAF:
                return steps, _slot_leaf(page, s)
            if kind == BUCKET:
                start, end = slot_bounds(page, s)
                return steps, _bucket_descend(
                    decode_bucket(page[start:end], self.sha), b, path, steps, self.sha
                )
            page, prefix = self._child(page, s, depth, prefix)
            depth += 1
            p = 1

    def extreme(self, ref: Ref, rightmost: bool) -> Leaf:
        """The right-most (or left-most) leaf of a non-empty sibling subtree."""
        if isinstance(ref, list):
            _, key, _, ver = ref[-1] if rightmost else ref[0]
            return (key, ver)
        page, p, depth, prefix = ref
        while True:
            kind = page[p]
            if kind == LEAF:
                return _slot_leaf(page, p - 16 if p >= 16 else single_leaf_slot(page, p))
            if kind == EMPTY:
                raise InternalError("state tree: empty sibling where a leaf was expected")
            if p < 16:
                c = p + p
                if rightmost:
                    if page[c + 1] != EMPTY:
                        c += 1
                elif page[c] == EMPTY:
                    c += 1
                p = c
                continue
            s = p - 16
            if kind == BUCKET:
                start, end = slot_bounds(page, s)
                return self.extreme(decode_bucket(page[start:end], self.sha), rightmost)
            page, prefix = self._child(page, s, depth, prefix)
            depth += 1
            p = 1


def _slot_leaf(page: bytes, s: int) -> Leaf:
    start, end = slot_bounds(page, s)
    return (page[start:end], int.from_bytes(page[1024 + 8 * s : 1032 + 8 * s], "big"))


def _bucket_descend(
    leaves: list[Item], b: int, path: int, steps: list[Step], sha: HashNew
) -> Leaf | None:
    """Continue a descent inside a bucket whose subtree starts at binary depth ``b``."""
    while len(leaves) > 1:
        shift = 255 - b
        bit = (path >> shift) & 1
        threshold = ((leaves[0][0] >> shift) | 1) << shift
        k = bisect_left(leaves, (threshold,))
        left, right = leaves[:k], leaves[k:]
        side, other = (right, left) if bit else (left, right)
        steps.append((bit, subtree_hash(other, b + 1, sha), other))
        b += 1
        if not side:
            return None
        leaves = side
    _, key, _, ver = leaves[0]
    return (key, ver)


def existence_proof(key: bytes, value: bytes, steps: list[Step], op: HashOp) -> ExistenceProof:
    """The ICS-23 existence proof of ``key = value`` from a descent's ``steps``, in a tree
    hashed with ``op`` (it verifies under :func:`~citychain.proof.ics23.smt_spec` ``(op)``)."""
    ops: list[InnerOp] = []
    for bit, sib, _ in reversed(steps):
        if bit:
            ops.append(InnerOp(hash=op, prefix=_P1 + sib, suffix=b""))
        else:
            ops.append(InnerOp(hash=op, prefix=_P1, suffix=sib))
    return ExistenceProof(key=key, value=value, leaf=smt_spec(op).leaf_spec, path=tuple(ops))


def neighbours(
    walker: Walker, path: int, steps: list[Step], end: Leaf | None
) -> tuple[Leaf | None, Leaf | None]:
    """The leaves just left and right of ``path`` (which is not in the tree)."""
    left: Leaf | None = None
    right: Leaf | None = None
    if end is not None:
        if path_of(end[0], walker.sha) < path:
            left = end
        else:
            right = end
    for bit, sib, ref in reversed(steps):
        if left is not None and right is not None:
            break
        if sib == ZERO:
            continue
        if bit and left is None:
            left = walker.extreme(ref, rightmost=True)
        elif not bit and right is None:
            right = walker.extreme(ref, rightmost=False)
    return left, right
