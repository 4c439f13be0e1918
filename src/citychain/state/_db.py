"""StateDB: the versioned, authenticated state of a node, stored in four column families.

Theory of operation
-------------------
Column families (all written only through the caller's block batch):

* ``state_latest``: key -> latest value. Serves :meth:`StateDB.get` and ``iter_prefix``.
* ``state_history``: ``esc(key) || be64(2**64 - 1 - version)`` -> value written at that
  version (empty bytes: deleted). ``esc`` escapes 0x00 as 0x00 0xFF and ends with 0x00 0x01,
  which keeps byte order and makes encodings prefix-free, so one seek finds the newest entry
  at or before a version, and keys never bleed into each other (a raw ``key || version`` would
  let key ``a`` + 8 bytes interleave with key ``a``'s entries).
* ``state_nodes``: tree pages by ``be64(version) || depth || nibble path`` (see ``_nodes``),
  plus two reserved records whose keys start with 0xFF (a page key starts with the high byte
  of a version, which is below 0x80): ``0xFF 'r' || be64(v)`` -> root entry of version ``v``,
  and ``0xFF 'm'`` -> ``be64(latest version) || be64(oldest retained version)``.
* ``state_stale``: ``be64(v)`` -> the page keys and history keys that stopped being needed by
  version ``v`` (replaced pages, superseded values, tombstones), as a CBOR pair of lists. One
  record per version keeps the per-block write count low.

Versions. Version ``v`` is the state after block ``v``; version 0 is genesis (the empty tree
unless :meth:`StateDB.init_genesis` wrote one). A record that stopped being needed at ``v`` is
used by versions before ``v`` only, so once the oldest retained version reaches ``v`` it can
go: with ``retain_versions = R`` the retained versions are ``[latest - R + 1, latest]`` and each
commit deletes, in the same batch, everything listed stale at versions up to the new oldest
one, and the root records below it. That is exact: a page or value still live in a retained
version is never listed stale at or before that version. The value of a key at a version is
its newest history entry at or before it, and that entry is kept until a write at a version
<= the oldest retained one supersedes it.

Crash safety. :meth:`StateDB.prepare` only reads; :meth:`StateDB.commit` only adds to the
caller's batch (it reads the stale lists of versions being pruned, which are already on disk);
:meth:`StateDB.committed` moves the in-memory view forward once the batch is durable. A process
killed anywhere before the batch lands leaves the previous version intact on disk, and a
reopened StateDB reads its version and root from the ``0xFF 'm'`` and root records.

The hash. Every hash of the tree (key paths, leaves, inner nodes) is the chain's hash, given
to the constructor with the chain's suite (its ``hash_new``, a hashlib-style constructor:
``hashlib.sha256`` for ``ed25519``, the default; SM3 for ``sm2-sm3``), and the proofs name the
matching ICS-23 op (``SHA256``, or citychain's ``SM3`` extension), so they verify under
``smt_spec(op)``. One StateDB hashes with one function for its whole life: the pages on disk
keep only hashes, and a tree reopened with another hash would be nonsense. The chain never
lets that happen, because the genesis hash (made with the same suite) guards the directory.
The hot loops call ``self._sha`` exactly as they called ``hashlib.sha256`` before.

Concurrency: one writer (prepare/commit/committed in sequence). Reads of a retained version may
run on other threads while a block commits: pages are immutable, and a retained version's
records are never touched by later commits until it is pruned.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import cbor2

from citychain.crypto import ED25519, CryptoSuite, HashNew
from citychain.errors import ErrorCode, InternalError, InvalidInput, NotFound
from citychain.proof.ics23 import (
    CommitmentProof,
    ExistenceProof,
    NonExistenceProof,
    ProofSpec,
    hash_op_named,
    smt_spec,
)
from citychain.state._nodes import (
    BUCKET,
    EMPTY,
    EMPTY_ENTRY,
    INNER,
    LEAF,
    MAX_KEY_LEN,
    Entry,
    Item,
    NodeCache,
    node_key,
    page_from_disk,
    page_to_disk,
    slot_entry,
)
from citychain.state._smt import Updater, Walker, existence_proof, neighbours
from citychain.state._values import DEFAULT_VALUE_CACHE_BYTES, ValueCache
from citychain.state.interface import StateReader, WriteSet
from citychain.store.kv import Batch, KVStore, key_after, prefix_end

_LATEST = "state_latest"
_HISTORY = "state_history"
_NODES = "state_nodes"
#: The column family of the tree's pages (what ``[state] tree_blob_files`` moves to blob files).
TREE_COLUMN_FAMILY = _NODES
_STALE = "state_stale"

_META_KEY = b"\xffm"
_ROOT_PREFIX = b"\xffr"
_U64 = struct.Struct(">Q")
_META = struct.Struct(">QQ")
_MAX_U64 = 2**64 - 1
#: Highest version (block height) the store accepts: page keys must start below 0x80.
MAX_VERSION = 2**63 - 1


def _esc(key: bytes) -> bytes:
    return key.replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def _body(key: bytes) -> bytes:
    """``_esc(key)`` without its terminator: a prefix of the encoding of every key that starts
    with ``key``, and, like it, in the byte order of the keys (:func:`_esc` stays the one
    inline expression: it runs for every write of every block)."""
    return _esc(key)[:-2]


def _unesc(enc: bytes) -> bytes:
    return enc[:-2].replace(b"\x00\xff", b"\x00")


def _inv(version: int) -> bytes:
    return _U64.pack(_MAX_U64 - version)


def _root_key(version: int) -> bytes:
    return _ROOT_PREFIX + _U64.pack(version)


def _encode_entry(entry: Entry) -> bytes:
    kind, h, payload, ver = entry
    return bytes((kind,)) + h + _U64.pack(ver) + payload


def _decode_entry(raw: bytes) -> Entry:
    kind = raw[0]
    if kind not in (EMPTY, LEAF, INNER, BUCKET) or len(raw) < 41:
        raise InternalError("corrupt state root record")
    return (kind, raw[1:33], raw[41:], _U64.unpack_from(raw, 33)[0])


def _encode_stale(nodes: list[bytes], hist: list[bytes]) -> bytes:
    return bytes(cbor2.dumps([nodes, hist]))


def _decode_stale(raw: bytes) -> tuple[list[bytes], list[bytes]]:
    try:
        nodes, hist = cbor2.loads(raw)
    except (ValueError, TypeError, cbor2.CBORDecodeError):
        raise InternalError("corrupt state stale record") from None
    return nodes, hist


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


@dataclass(frozen=True, eq=False, slots=True)
class PreparedState:
    """The result of :meth:`StateDB.prepare`: the new ``root`` of ``version``, and everything
    :meth:`StateDB.commit` must write. Holding one costs memory only; dropping it is free."""

    version: int
    root: bytes
    #: the root this was computed from (commit refuses it on any other)
    base_root: bytes
    #: the oldest version retained once this one is committed
    oldest: int
    root_entry: Entry = field(repr=False)
    #: new pages by node key
    pages: dict[bytes, bytes] = field(repr=False)
    #: node keys of the pages this version replaces
    stale_pages: list[bytes] = field(repr=False)
    #: key -> (new value or None if deleted, version of the value it replaces or -1 if none);
    #: only keys whose value really changes
    changes: dict[bytes, tuple[bytes | None, int]] = field(repr=False)


class _VersionReader:
    """A read-only view of one retained version (see :meth:`StateDB.reader_at`)."""

    __slots__ = ("_db", "version")

    def __init__(self, db: StateDB, version: int) -> None:
        self._db = db
        self.version = version

    def get(self, key: bytes) -> bytes | None:
        return self._db.get_at(key, self.version)

    def iter_prefix(
        self, prefix: bytes, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return self._db.iter_prefix_at(prefix, self.version, after=after)


#: Tree pages a node keeps in memory unless node.toml ``[state] cache_pages`` says otherwise
#: (~256 MiB): the whole tree of about a million accounts.
DEFAULT_CACHE_PAGES = 131_072


class StateDB:
    """Versioned sparse Merkle state over a :class:`KVStore`; reads serve the latest version.

    ``retain_versions``: how many versions (the latest included) keep their tree and values
    for ``get_at``, ``prove`` and ``reader_at``; None keeps every version. ``cache_nodes``: how
    many tree pages to keep in memory (about 1.2 to 2 KB each; the upper levels are always
    hot, and a cache holding every page down to 16 leaves a page, 1/16 of the keys, spares
    most disk reads). ``value_cache_bytes``: memory for latest values :meth:`get` answers
    without reading the store (``state/_values.py``; 0 reads the store each time).

    Writing a block: ``prepared = db.prepare(writes, db.version + 1)`` (pure; its ``root``
    goes into the header), ``db.commit(prepared, batch)`` (adds to the block's batch),
    ``kv.write(batch)``, then ``db.committed(prepared)``.

    ``suite``: the chain's crypto suite, whose hash the tree uses (``suite.hash_new``) and
    whose ICS-23 op its proofs name (see the module docstring); Ed25519's (SHA-256) unless
    given. :attr:`spec` is the proof spec the proofs verify under.
    """

    def __init__(
        self,
        kv: KVStore,
        *,
        retain_versions: int | None = None,
        cache_nodes: int = DEFAULT_CACHE_PAGES,
        suite: CryptoSuite = ED25519,
        value_cache_bytes: int = DEFAULT_VALUE_CACHE_BYTES,
    ) -> None:
        if retain_versions is not None and retain_versions < 1:
            raise _bad(f"retain_versions must be at least 1 (or None), not {retain_versions}")
        if cache_nodes < 0:
            raise _bad(f"cache_nodes must not be negative, not {cache_nodes}")
        if value_cache_bytes < 0:
            raise _bad(f"value_cache_bytes must not be negative, not {value_cache_bytes}")
        self._kv = kv
        self._sha: HashNew = suite.hash_new
        self._op = hash_op_named(suite.hash_name)
        #: The ICS-23 spec this tree's proofs verify under.
        self.spec: ProofSpec = smt_spec(self._op)
        self._retain = retain_versions
        self._cache = NodeCache(cache_nodes)
        self._values = ValueCache(value_cache_bytes)
        #: Pages read from the store because the cache did not hold them (a node's metric:
        #: a count that keeps rising under load says ``cache_nodes`` is smaller than the tree).
        self.page_reads = 0
        meta = kv.get(_NODES, _META_KEY)
        if meta is None:
            self._fresh = True
            self._version = 0
            self._oldest = 0
            self._root_entry: Entry = EMPTY_ENTRY
        else:
            self._fresh = False
            self._version, self._oldest = _META.unpack(meta)
            raw = kv.get(_NODES, _root_key(self._version))
            if raw is None:
                raise InternalError(f"state root record of version {self._version} is missing")
            self._root_entry = _decode_entry(raw)

    # -- the latest version -------------------------------------------------------------
    @property
    def version(self) -> int:
        """The latest committed version (= block height; 0 is the genesis state)."""
        return self._version

    @property
    def root(self) -> bytes:
        """The root hash of the latest committed version."""
        return self._root_entry[1]

    @property
    def oldest_version(self) -> int:
        """The oldest version still retained (older ones are pruned)."""
        return self._oldest

    def get(self, key: bytes) -> bytes | None:
        if type(key) is not bytes:
            return self._read_latest(bytes(key))
        return self._values.get(key, self._read_latest)

    def _read_latest(self, key: bytes) -> bytes | None:
        return self._kv.get(_LATEST, key)

    def iter_prefix(
        self, prefix: bytes, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs under ``prefix`` (above ``prefix + after`` if given: one seek) in key order."""
        return self._kv.iter_prefix(_LATEST, prefix, after=after)

    # -- older versions -------------------------------------------------------------------
    def _check_version(self, version: int) -> None:
        if version > self._version:
            raise NotFound(
                f"state version {version} is not committed (latest is {self._version})",
                ErrorCode.HEIGHT_NOT_COMMITTED,
            )
        if version < self._oldest:
            raise NotFound(
                f"state version {version} is pruned (oldest retained is {self._oldest})",
                ErrorCode.HEIGHT_PRUNED,
            )

    def _root_entry_at(self, version: int) -> Entry:
        self._check_version(version)
        if version == self._version:
            return self._root_entry
        raw = self._kv.get(_NODES, _root_key(version))
        if raw is None:
            raise InternalError(f"state root record of version {version} is missing")
        return _decode_entry(raw)

    def root_at(self, version: int) -> bytes:
        """The root hash of a retained version."""
        return self._root_entry_at(version)[1]

    def get_at(self, key: bytes, version: int) -> bytes | None:
        """The value of ``key`` at a retained ``version``."""
        self._check_version(version)
        if version == self._version:
            return self.get(key)
        enc = _esc(key)
        for _, value in self._kv.iterate(_HISTORY, enc + _inv(version), prefix_end(enc)):
            return value or None
        return None

    def iter_prefix_at(
        self, prefix: bytes, version: int, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs under ``prefix`` at a retained ``version``, in ascending key order; with
        ``after``, only those whose key is greater than ``prefix + after`` (one seek).

        For an older version this scans every retained history entry under the prefix (from
        the seek on), so its cost grows with the number of writes to those keys within the
        retained window.
        """
        self._check_version(version)
        if version == self._version:
            return self.iter_prefix(prefix, after=after)
        return self._scan_history(prefix, version, after)

    def _scan_history(
        self, prefix: bytes, version: int, after: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        # Entries of one key are adjacent, newest first; take the first at or before version.
        # The escaping keeps byte order, and every entry of a key at or below prefix + after
        # sorts before the escaped body of key_after(prefix + after) (its terminator
        # 0x00 0x01 is below the 0x00 0xFF that escapes the added zero byte), every entry of
        # a greater key at or after it: the seek starts exactly at the first key wanted.
        bound = _body(prefix)
        start = bound if after is None else _body(key_after(prefix + after))
        current: bytes | None = None
        done = False
        for hkey, value in self._kv.iterate(_HISTORY, start, prefix_end(bound)):
            enc = hkey[:-8]
            if enc != current:
                current = enc
                done = False
            if done:
                continue
            if _MAX_U64 - _U64.unpack_from(hkey, len(hkey) - 8)[0] <= version:
                done = True
                if value:
                    yield _unesc(enc), value

    def reader_at(self, version: int) -> StateReader:
        """A read-only view of a retained version (``get``, and a history scan for prefixes)."""
        self._check_version(version)
        return _VersionReader(self, version)

    # -- pages ----------------------------------------------------------------------------
    @property
    def cache_capacity(self) -> int:
        """Most pages the cache holds (``cache_nodes``)."""
        return self._cache.capacity

    @property
    def cached_pages(self) -> int:
        """Pages in the cache now."""
        return len(self._cache)

    def warm_cache(self) -> int:
        """Load the latest tree's pages into the page cache, top levels first, until it is
        full; the number of pages loaded. A node may call it at startup so the first blocks
        do not pay a disk read per key."""
        kind, _, _, ver = self._root_entry
        if kind != INNER:
            return 0
        level: list[tuple[int, int]] = [(ver, 0)]  # (page version, nibble prefix)
        loaded = 0
        depth = 0
        while level and loaded < self._cache.capacity:
            below: list[tuple[int, int]] = []
            for ver, prefix in level:
                page = self._load(node_key(ver, depth, prefix << (256 - 4 * depth)))
                loaded += 1
                if loaded >= self._cache.capacity:
                    break
                for s in range(16):
                    child = slot_entry(page, s)
                    if child[0] == INNER:
                        below.append((child[3], (prefix << 4) | s))
            level = below
            depth += 1
        return loaded

    def _load(self, nkey: bytes) -> bytes:
        page = self._cache.get(nkey)
        if page is None:
            self.page_reads += 1
            raw = self._kv.get(_NODES, nkey)
            if raw is None:
                raise InternalError(f"state page {nkey.hex()} is missing (pruned too early?)")
            page = page_from_disk(raw, self._sha)
            self._cache.put(nkey, page)
        return page

    # -- writing --------------------------------------------------------------------------
    def prepare(self, writes: WriteSet, version: int) -> PreparedState:
        """Compute version ``version`` = latest + 1 from ``writes``, writing nothing.

        A value of None deletes the key. Keys and values are non-empty bytes (ICS-23 cannot
        prove an empty key or value). The result depends on the content of ``writes`` only.
        """
        if self._fresh and version == 0:
            pass  # the genesis state
        elif version != self._version + 1:
            raise _bad(f"the next state version is {self._version + 1}, not {version}")
        if version > MAX_VERSION:
            raise _bad(f"state version {version} is too large")
        sha = self._sha
        items: list[Item] = []
        append = items.append
        try:
            for key, value in writes.items():
                if type(key) is not bytes or not key or len(key) > MAX_KEY_LEN:
                    raise _bad(f"state keys must be 1..{MAX_KEY_LEN} bytes, got {key!r:.80}")
                path = sha(key).digest()
                if value is None:
                    append((int.from_bytes(path, "big"), key, None, version))
                elif type(value) is bytes and value:
                    lh = sha(b"\x00" + path + sha(value).digest()).digest()
                    append((int.from_bytes(path, "big"), key, lh, version))
                else:
                    raise _bad(
                        f"state values must be non-empty bytes (None deletes), got "
                        f"{value!r:.80} for key {key!r:.80}"
                    )
        except AttributeError:
            raise _bad("writes must be a mapping of bytes to bytes or None") from None
        items.sort()
        upd = Updater(self._load, version, sha)
        base = EMPTY_ENTRY if version == 0 else self._root_entry
        root_entry = upd.slot(base, 0, items, 0, len(items)) if items else base
        changes = {key: (writes[key], prev) for key, prev in upd.changes.items()}
        oldest = self._oldest
        if self._retain is not None:
            oldest = max(oldest, version - self._retain + 1)
        return PreparedState(
            version=version,
            root=root_entry[1],
            base_root=base[1],
            oldest=oldest,
            root_entry=root_entry,
            pages=upd.new_pages,
            stale_pages=upd.stale,
            changes=changes,
        )

    def _check_prepared(self, prepared: PreparedState) -> None:
        if prepared.version == 0:
            ok = self._fresh
        else:
            ok = prepared.version == self._version + 1 and prepared.base_root == self.root
        if not ok:
            raise _bad(
                f"prepared state of version {prepared.version} does not follow the committed "
                f"version {self._version}"
            )

    def commit(self, prepared: PreparedState, batch: Batch) -> None:
        """Add every write of ``prepared`` (and the pruning it allows) to ``batch``."""
        self._check_prepared(prepared)
        v = prepared.version
        put = batch.put
        delete = batch.delete
        for nkey, page in prepared.pages.items():
            put(_NODES, nkey, page_to_disk(page))
        inv = _inv(v)
        stale_hist: list[bytes] = []
        for key, (value, prev) in prepared.changes.items():
            enc = _esc(key)
            if value is None:
                delete(_LATEST, key)
                put(_HISTORY, enc + inv, b"")
                stale_hist.append(enc + inv)
            else:
                put(_LATEST, key, value)
                put(_HISTORY, enc + inv, value)
            if prev >= 0:
                stale_hist.append(enc + _inv(prev))
        if prepared.oldest >= v:
            # Only this version is kept: what it made stale goes at once (later in this same
            # batch than the puts above, so a tombstone written here is dropped too).
            for key in prepared.stale_pages:
                delete(_NODES, key)
            for key in stale_hist:
                delete(_HISTORY, key)
        elif prepared.stale_pages or stale_hist:
            put(_STALE, _U64.pack(v), _encode_stale(prepared.stale_pages, stale_hist))
        put(_NODES, _root_key(v), _encode_entry(prepared.root_entry))
        if self._fresh and v > 0 and prepared.oldest == 0:
            put(_NODES, _root_key(0), _encode_entry(EMPTY_ENTRY))
        put(_NODES, _META_KEY, _META.pack(v, prepared.oldest))
        if prepared.oldest > self._oldest:
            self._prune(batch, self._oldest, prepared.oldest)

    def _prune(self, batch: Batch, old: int, new: int) -> None:
        """Delete what only versions in ``[old, new)`` needed."""
        kv = self._kv
        for skey, raw in kv.iterate(_STALE, _U64.pack(old + 1), _U64.pack(new + 1)):
            nodes, hist = _decode_stale(raw)
            for key in nodes:
                batch.delete(_NODES, key)
            for key in hist:
                batch.delete(_HISTORY, key)
            batch.delete(_STALE, skey)
        for rkey, _ in kv.iterate(_NODES, _root_key(old), _root_key(new)):
            batch.delete(_NODES, rkey)

    def committed(self, prepared: PreparedState) -> None:
        """Move to ``prepared`` once the batch :meth:`commit` filled is on disk."""
        self._check_prepared(prepared)
        self._version = prepared.version
        self._root_entry = prepared.root_entry
        self._oldest = prepared.oldest
        self._fresh = False
        # Pages this version replaced are dead for the latest version: drop them, so the cache
        # holds live pages (at 1M keys every live page fits in the default size).
        cache = self._cache
        for nkey in prepared.stale_pages:
            cache.discard(nkey)
        for nkey, page in prepared.pages.items():
            cache.put(nkey, page)
        self._values.committed((key, value) for key, (value, _) in prepared.changes.items())

    def init_genesis(self, writes: WriteSet, batch: Batch) -> bytes:
        """Write the genesis state (version 0) of an empty store into ``batch``; its root.

        The in-memory view moves to genesis at once, so write ``batch`` before anything else
        (if the batch is dropped, reopen the StateDB). ``prepare(writes, 0)``, ``commit`` and
        ``committed`` do the same in three careful steps.
        """
        if not self._fresh:
            raise _bad("the state store already has a genesis state")
        prepared = self.prepare(writes, 0)
        self.commit(prepared, batch)
        self.committed(prepared)
        return prepared.root

    # -- proofs ---------------------------------------------------------------------------
    def _value_at(self, key: bytes, written: int) -> bytes:
        value = self._kv.get(_HISTORY, _esc(key) + _inv(written))
        if not value:
            raise InternalError(f"history entry of {key!r:.80} at version {written} is missing")
        return value

    def prove(self, key: bytes, version: int | None = None) -> tuple[bytes | None, CommitmentProof]:
        """The value of ``key`` at ``version`` (default: latest) and an ICS-23 proof of it.

        The proof is an existence proof if the key is present, else a non-existence proof
        under ``root_at(version)``. In the empty tree (root of 32 zero bytes) there is no leaf
        to prove anything with, and the non-existence proof has neither neighbour: ICS-23
        verifiers refuse it, so a client must recognise the empty root itself.
        """
        if type(key) is not bytes or not key:
            raise _bad("a state key is non-empty bytes")
        entry = self._root_entry if version is None else self._root_entry_at(version)
        sha, op = self._sha, self._op
        walker = Walker(self._load, entry, sha)
        path = int.from_bytes(sha(key).digest(), "big")
        steps, end = walker.descend(path)
        if end is not None and end[0] == key:
            value = self._value_at(key, end[1])
            return value, CommitmentProof(exist=existence_proof(key, value, steps, op))
        left, right = neighbours(walker, path, steps, end)
        proofs: list[ExistenceProof | None] = []
        for leaf in (left, right):
            if leaf is None:
                proofs.append(None)
                continue
            lkey, lver = leaf
            lsteps, lend = walker.descend(int.from_bytes(sha(lkey).digest(), "big"))
            if lend is None or lend[0] != lkey:
                raise InternalError("state tree: neighbour leaf not found on its own path")
            proofs.append(existence_proof(lkey, self._value_at(lkey, lver), lsteps, op))
        return None, CommitmentProof(
            nonexist=NonExistenceProof(key=key, left=proofs[0], right=proofs[1])
        )


__all__ = ["MAX_VERSION", "PreparedState", "StateDB"]
