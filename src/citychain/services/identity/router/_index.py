"""Rendered resolutions kept on disk: a DID's latest resolution given with two point reads.

Theory of operation
-------------------
A DID's *latest* resolution (no resolution options; the default representation
``application/did-resolution``, or the document alone as ``application/did+ld+json`` or
``application/did+json``) is a function of the DID and its version count alone. Every
write of a DID appends a version and nothing is ever overwritten (see
:mod:`citychain.services.identity.contract`), so version *n*'s document, its ``created``,
``updated`` and ``deactivated`` never change; and the latest version's metadata names no
later one. The answer rendered for (DID, *n*) is therefore right for as long as *n* is the
DID's latest version, that is while version *n* + 1 does not exist (versions are numbered
1, 2, ... with no gap, and none is ever removed).

This module keeps that answer, status and JSON body as sent, in the identity service's
off-chain index (``NodeService.index_get``: a column family of the node's RocksDB, not
state: no block writes it, no root covers it) under the DID as written (and the media type,
for the document-only forms: :func:`key`), with *n*.
:meth:`ResolutionIndex.get` gives it only while version *n* + 1 is absent from the latest
committed state (one point read of a key that is not there, which the table files' Bloom
filters mostly answer). An entry for an older version, an entry lost in a crash (the index
is written without the write-ahead log) or one never made is not used: the resolution runs the
``identity`` query as before, and :meth:`ResolutionIndex.put` makes the entry from its answer.
Nothing depends on the index being complete or in step with the blocks; a stale entry is never
given.
(A block committing between the two reads can only make the answer given older than the
latest by that block, which the answer's height, read before, already allows:
:mod:`citychain.api._kept`.)

Entries are made

* when a resolution runs the query (the first ask of a DID, or of its new version, in
  each of the three forms), and
* ahead of any ask by the router's background job (``keep_filled`` in the router package),
  which follows the contract's DID events (from the height it had noted when the node last
  stopped, and again from its last height if it falls behind: none is missed) and renders
  each DID written right after its block
  (``Resolver.prefill``: its two records read directly, the result built by the function the
  contract's query answers with, the same sorted JSON): a resolution drawn from a million
  DIDs then finds its answer made, and costs the node two point reads and the HTTP exchange
  instead of the query and the rendering (measured in ``bench/RESULTS.md``).

Cost (bench/RESULTS.md): ~420 bytes of disk per DID (a ~1.2 KiB entry, compressed by
RocksDB), and at write time ~35-45 µs a DID written (one process), on the event loop, off the
block's path: DID creates ~9-12 % slower with a million DIDs on chain.

An entry: the DID's 16 identifier bytes (what its state keys hold: a hit decodes no base58),
the version number (4 bytes, big-endian), the HTTP status (2 bytes, 200 or 410), the body.
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter

from citychain.api.service import NodeService
from citychain.services.identity.shapes import DID_VERSION, NAME
from citychain.types.state_keys import contract_key

#: The index's space (``NodeService.index_get``): the service's own name.
SPACE = NAME
#: Where the contract keeps DID versions (``dv/<id><n>``), as full state keys.
_VERSIONS = contract_key(NAME, DID_VERSION)


#: What the index did, by event, one counter per metrics registry (a registry takes each
#: metric name once; a node's app may be made more than once in one process), with its
#: children by event made once: a route makes a Resolver, and so an index, per request.
_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Counter]] = (
    weakref.WeakKeyDictionary()
)
#: ``hit``: given from the index; ``miss``: no entry for the latest version (the query ran);
#: ``made_ahead``: made by the background job; ``made_on_ask``: made by a resolution;
#: ``job_behind``: the job's event stream was closed (it fell behind) and followed again
#: from the height of its last event (the events since read back from the blocks).
EVENTS = ("hit", "miss", "made_ahead", "made_on_ask", "job_behind")


def counters(registry: CollectorRegistry) -> dict[str, Counter]:
    """``citychain_identity_index_total{event}`` of ``registry``, by event (:data:`EVENTS`)."""
    found = _COUNTERS.get(registry)
    if found is None:
        total = Counter(
            "citychain_identity_index",
            "DID resolution index (rendered latest resolutions): hits, misses, entries made "
            "ahead by the background job or on a resolution, and the job falling behind",
            ["event"],
            registry=registry,
        )
        found = _COUNTERS[registry] = {event: total.labels(event) for event in EVENTS}
    return found


#: Where the background job notes how far it got: not a DID (a DID starts with ``did:``).
_POSITION = b"\x00job-position"


def key(did: str, form: str = "") -> bytes:
    """An entry's key: the DID as written for the default representation, else the DID, a
    space (never in a DID) and the representation's media type."""
    return did.encode() if not form else f"{did} {form}".encode()


class ResolutionIndex:
    """Rendered latest resolutions of ``did:citychain`` DIDs (see the module)."""

    __slots__ = ("_hit", "_made", "_miss", "_pending", "_read", "_service")

    def __init__(self, service: NodeService, *, batched: bool = False) -> None:
        self._service = service
        self._read = service.index_reader(SPACE)
        #: With ``batched``: entries made and not yet written (:meth:`flush` writes them).
        self._pending: list[tuple[bytes, bytes]] | None = [] if batched else None
        counts = counters(service.metrics_registry)
        self._hit, self._miss = counts["hit"], counts["miss"]
        self._made = counts["made_ahead" if batched else "made_on_ask"]

    @property
    def pending(self) -> int:
        """Entries made and not yet written (batched only)."""
        return len(self._pending) if self._pending is not None else 0

    def flush(self) -> None:
        """Write the entries made since the last flush, in one batch."""
        if self._pending:
            items, self._pending = self._pending, []
            self._service.index_put(SPACE, items)

    def position(self) -> int | None:
        """The height up to which the background job had made the entries of every DID
        written, when it last noted it (None if it never did)."""
        raw = self._service.index_get(SPACE, _POSITION)
        return int.from_bytes(raw, "big") if raw is not None and len(raw) == 8 else None

    def keep_position(self, height: int) -> None:
        """Note that the entries of every DID written up to ``height`` are made (after
        writing them: see :meth:`flush`)."""
        self._service.index_put(SPACE, [(_POSITION, height.to_bytes(8, "big"))])

    def get(self, did: str, form: str = "") -> tuple[int, bytes] | None:
        """``(status, body)`` of ``did``'s latest resolution (in ``form``, a representation
        other than the default: see :func:`key`), if kept for the version it is at now; None
        otherwise (no entry, an older one). Only a DID whose resolution was made (so,
        checked) has an entry: ``did`` needs no check of its own here."""
        entry = self._read(key(did, form))
        if entry is None:
            self._miss.inc()
            return None
        # Versions are numbered 1, 2, ... with no gap and never removed, and an entry is made
        # only for a version that exists: the entry's version is the latest while the next
        # one is absent. (An absent key is the cheapest read: the table files' Bloom filters
        # answer it, where reading the head would read and decode a record.)
        following = int.from_bytes(entry[16:20], "big") + 1
        if (
            self._service.state_value(_VERSIONS + entry[:16] + following.to_bytes(4, "big"))
            is not None
        ):
            self._miss.inc()
            return None
        self._hit.inc()
        return int.from_bytes(entry[20:22], "big"), entry[22:]

    def put(
        self, did: str, ident: bytes, version: int, status: int, body: bytes, form: str = ""
    ) -> None:
        """Keep ``did``'s latest resolution (``ident``: its 16 identifier bytes) at
        ``version``, rendered (in ``form``, as :meth:`get`)."""
        item = (
            key(did, form),
            ident + version.to_bytes(4, "big") + status.to_bytes(2, "big") + body,
        )
        self._made.inc()
        if self._pending is not None:
            self._pending.append(item)
        else:
            self._service.index_put(SPACE, [item])
