"""The one embedded database of a node: RocksDB (through rocksdict) with column families.

Everything a block changes (block, commit, tx index, receipts, state nodes and values, the
committed height) is written in ONE :class:`Batch` with ``sync=True``: RocksDB applies a batch
atomically across column families and fsyncs its WAL before :meth:`KVStore.write` returns. A
kill -9 at any instant therefore leaves either all of a block or none of it.

Keys and values are raw bytes. Column families are fixed when the store is opened; each layer
names the ones it owns (see :data:`COLUMN_FAMILIES`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Cache,
    ColumnFamily,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
    WriteOptions,
)

from citychain.errors import InternalError

#: Every column family a node uses, and which layer owns it.
COLUMN_FAMILIES: tuple[str, ...] = (
    "meta",  # node: committed height, genesis, chain params (store/)
    "blocks",  # height -> block bytes; commit; hash -> height (store/)
    "txindex",  # tx hash -> (height, index) (store/)
    "receipts",  # (height, index) -> receipt bytes (store/)
    "state_latest",  # state key -> latest value (state/)
    "state_history",  # state key + inverted version -> value or tombstone (state/)
    "state_nodes",  # Merkle tree nodes by (version, path) (state/)
    "state_stale",  # stale-since version + node key, for pruning (state/)
    "indexes",  # services' off-chain indexes, derived from committed state (node/)
)


#: Table files a store keeps open unless told otherwise. RocksDB's own default keeps every
#: file open, so a growing database would take descriptors without bound (and the next one
#: consensus or p2p needs fails with EMFILE); past the bound the least recently used file is
#: closed and opened again when read. 512 files of 64 MiB cover ~32 GiB of tables.
DEFAULT_MAX_OPEN_FILES = 512
#: RocksDB's block cache, shared by every column family of a database (``[state]
#: block_cache_mib`` for the node's).
DEFAULT_BLOCK_CACHE_MIB = 256
DEFAULT_BLOCK_CACHE_BYTES = DEFAULT_BLOCK_CACHE_MIB * 1024 * 1024
#: Fewest table files a store may be limited to: RocksDB needs some for its log, manifest
#: and a compaction's inputs and outputs.
MIN_DB_OPEN_FILES = 16


#: In a column family opened with blob files (``KVStore(blob_column_families=...)``), values of
#: at least this many bytes are kept in RocksDB's blob files (its integrated BlobDB) and the
#: LSM tree holds a pointer: its compactions then move a key and a pointer instead of the value.
#: Garbage (values deleted or overwritten) stays in the blob files until their garbage
#: collection relocates what is live in the oldest quarter of them, so the column family takes
#: more disk for less compaction (measured on the state tree in ``bench/RESULTS.md``).
MIN_BLOB_BYTES = 512
#: Column families whose tables are written without compression (RocksDB's default for the
#: others is Snappy). The state tree's pages are mostly hashes: Snappy saved ~9 % of their
#: bytes on disk and cost 40-60 % of the CPU RocksDB's own threads spend flushing and
#: compacting a node's writes, on the cores the block path uses (``bench/RESULTS.md``,
#: 2026-12-08). Tables written before keep their compression and stay readable.
UNCOMPRESSED_COLUMN_FAMILIES: tuple[str, ...] = ("state_nodes",)
#: Share of a memtable's size given to its bloom filter of whole keys (see ``_options``).
MEMTABLE_BLOOM_RATIO = 0.02
#: Size a blob file is cut at.
BLOB_FILE_BYTES = 256 * 1024 * 1024


def _options(
    cache: Cache, max_open_files: int, *, blob_files: bool = False, compress: bool = True
) -> Options:
    opts = Options(raw_mode=True)
    opts.set_max_open_files(max_open_files)
    # The table cache is split into shards, each with its own share of the bound (64 by
    # default, each holding at least one file); at least 16 files a shard keep the bound
    # what it says.
    opts.set_table_cache_num_shard_bits(max(0, min(6, (max_open_files // 16).bit_length() - 1)))
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    opts.increase_parallelism(max(2, os.cpu_count() or 2))
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)  # measured: point reads 152k/s -> 230k/s
    table.set_block_cache(cache)
    opts.set_block_based_table_factory(table)
    # A bloom filter of whole keys in each memtable (2 % of its size: ~1.3 MiB of 64 MiB): a
    # point read of a key the memtable lacks, the usual case for state written blocks ago,
    # skips the skip list's seek (8 % of a node's CPU resolving DIDs drawn from a million).
    # Measured: uniform DID resolutions +13-19 %, writes unchanged (bench/RESULTS.md).
    opts.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO)
    opts.set_memtable_whole_key_filtering(True)
    if not compress:
        opts.set_compression_type(DBCompressionType.none())
    if blob_files:
        opts.set_enable_blob_files(True)
        opts.set_min_blob_size(MIN_BLOB_BYTES)
        opts.set_blob_file_size(BLOB_FILE_BYTES)
        opts.set_enable_blob_gc(True)  # RocksDB's default age cutoff: the oldest 25 %
    return opts


class Batch:
    """A set of writes applied atomically by :meth:`KVStore.write`."""

    __slots__ = ("_batch", "_store")

    def __init__(self, store: KVStore) -> None:
        self._store = store
        self._batch = WriteBatch(raw_mode=True)

    def put(self, cf: str, key: bytes, value: bytes) -> None:
        self._batch.put(key, value, self._store._handle(cf))

    def delete(self, cf: str, key: bytes) -> None:
        self._batch.delete(key, self._store._handle(cf))

    def __len__(self) -> int:
        return int(self._batch.len())

    def size_in_bytes(self) -> int:
        """Bytes the batch holds (keys, values and RocksDB's framing): what its write
        puts in the write-ahead log and the memtables. Ask before :meth:`KVStore.write`,
        which consumes the batch."""
        return int(self._batch.size_in_bytes())


class KVStore:
    """A RocksDB database opened with the node's column families."""

    def __init__(
        self,
        path: str | Path,
        *,
        column_families: Sequence[str] = COLUMN_FAMILIES,
        cache_bytes: int = DEFAULT_BLOCK_CACHE_BYTES,
        read_only: bool = False,
        max_open_files: int = DEFAULT_MAX_OPEN_FILES,
        blob_column_families: Sequence[str] = (),
        uncompressed_column_families: Sequence[str] = UNCOMPRESSED_COLUMN_FAMILIES,
    ) -> None:
        if max_open_files < MIN_DB_OPEN_FILES:
            raise InternalError(
                f"max_open_files must be {MIN_DB_OPEN_FILES} or more, got {max_open_files}"
            )
        unknown = sorted(set(blob_column_families) - set(column_families))
        if unknown:
            raise InternalError(f"blob files asked for {unknown[0]!r}, no column family here")
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in its place, a read-only disk: said as RocksDB's are
            raise InternalError(f"cannot open database at {self.path}: {exc}") from None
        cache = Cache(cache_bytes)
        opts = _options(cache, max_open_files)
        cfs = {
            name: _options(
                cache,
                max_open_files,
                blob_files=name in blob_column_families,
                compress=name not in uncompressed_column_families,
            )
            for name in column_families
        }
        try:
            self._db = Rdict(
                str(self.path),
                opts,
                column_families=cfs,
                access_type=AccessType.read_only() if read_only else AccessType.read_write(),
            )
        except Exception as exc:  # rocksdict raises plain Exception for lock/corruption
            raise InternalError(f"cannot open database at {self.path}: {exc}") from exc
        self._cfs = {name: self._db.get_column_family(name) for name in column_families}
        self._handles = {name: self._db.get_column_family_handle(name) for name in column_families}
        self._sync = WriteOptions()
        self._sync.sync = True
        self._no_wal = WriteOptions()
        # A property at run time (as ``sync``); rocksdict's stub declares it a method.
        self._no_wal.disable_wal = True  # type: ignore[method-assign,assignment]
        self._closed = False

    def _handle(self, cf: str) -> ColumnFamily:
        try:
            return self._handles[cf]
        except KeyError:
            raise InternalError(f"unknown column family {cf!r}") from None

    # -- reads --------------------------------------------------------------------------------
    def get(self, cf: str, key: bytes) -> bytes | None:
        value = self._cfs[cf].get(key)
        return None if value is None else bytes(value)

    def reader(self, cf: str) -> Callable[[bytes], bytes | None]:
        """:meth:`get` of ``cf`` as the column family's own bound read (raw mode: its
        values are ``bytes`` already), for a caller that reads one key per request."""
        read: Callable[[bytes], bytes | None] = self._cfs[cf].get
        return read

    def multi_get(self, cf: str, keys: Sequence[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        values = self._cfs[cf].get(list(keys))
        return list(values or [])

    def iterate(
        self,
        cf: str,
        start: bytes = b"",
        end: bytes | None = None,
        *,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with ``start <= key < end`` in key order (descending if ``reverse``).

        With ``reverse``, iteration starts at the last key below ``end`` (or the last key).
        """
        col = self._cfs[cf]
        it = col.iter()
        if not reverse:
            it.seek(start)
            while it.valid():
                k = it.key()
                if end is not None and k >= end:
                    break
                yield k, it.value()
                it.next()
        else:
            if end is None:
                it.seek_to_last()
            else:
                it.seek_for_prev(end)
                if it.valid() and it.key() >= end:
                    it.prev()
            while it.valid():
                k = it.key()
                if k < start:
                    break
                yield k, it.value()
                it.prev()

    def iter_prefix(
        self, cf: str, prefix: bytes, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs whose key starts with ``prefix``, in key order; with ``after``, only those
        whose key is greater than ``prefix + after``: the iterator seeks there directly, so a
        page deep into the prefix costs no more than the first."""
        start = prefix if after is None else key_after(prefix + after)
        return self.iterate(cf, start, prefix_end(prefix))

    # -- writes -------------------------------------------------------------------------------
    def batch(self) -> Batch:
        return Batch(self)

    def write(self, batch: Batch, *, sync: bool = True, wal: bool = True) -> None:
        """Apply ``batch`` atomically; with ``sync`` the WAL is fsynced before returning.
        Without ``wal`` (and so unsynced) the batch skips the write-ahead log: it is durable
        once its memtable is flushed (at the latest when the store is closed), and a crash
        before that loses it: only for what can be made again (``Node.index_put``)."""
        if sync:
            if not wal:
                raise InternalError("a synced write goes through the write-ahead log")
            self._db.write(batch._batch, self._sync)
        elif wal:
            self._db.write(batch._batch)
        else:
            self._db.write(batch._batch, self._no_wal)

    # -- maintenance --------------------------------------------------------------------------
    def approximate_size(self) -> int:
        """Bytes of live SST files plus memtables, summed over column families."""
        total = 0
        for col in self._cfs.values():
            for prop in ("rocksdb.total-sst-files-size", "rocksdb.cur-size-all-mem-tables"):
                v = col.property_int_value(prop)
                total += int(v or 0)
        return total

    def block_cache_capacity(self) -> int:
        """Bytes of the block cache the column families share, as RocksDB reports it."""
        return int(self._db.property_int_value("rocksdb.block-cache-capacity") or 0)

    def flush(self) -> None:
        """Write every column family's memtable out to a table file (the WAL already holds
        what was written: this only moves it)."""
        for col in self._cfs.values():
            col.flush()

    def compact(self) -> None:
        for col in self._cfs.values():
            col.compact_range(None, None)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # Column-family objects hold the database open: drop them before closing it.
            self._cfs.clear()
            self._handles.clear()
            self._db.close()
            del self._db

    def __enter__(self) -> KVStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def key_after(key: bytes) -> bytes:
    """The least key greater than ``key`` (in byte order: ``key`` followed by a zero byte)."""
    return key + b"\x00"


def prefix_end(prefix: bytes) -> bytes | None:
    """The least key greater than every key that starts with ``prefix`` (None: no bound)."""
    p = bytearray(prefix)
    while p:
        if p[-1] != 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return None
