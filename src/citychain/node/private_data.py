"""A node's private data: the values of the private collections its organisation is in, kept
beside the chain, pushed over p2p to the listed organisations' nodes only, purged on time.

Theory of operation
-------------------
**Store.** A RocksDB of its own under ``<data dir>/private`` (not the chain's: the chain's
database holds what every node agrees on; this one differs between organisations by design,
and never enters a state root). Column families:

* ``pvt_values``: ``collection \\0 key \\0 hash`` -> ``salt ‖ value`` (the hash is the one on
  chain, ``H(value ‖ salt)``: a new version of a key is a new entry);
* ``pvt_unanchored``: ``height taken (8 B BE) ‖ collection \\0 key \\0 hash`` -> empty, for
  values no committed ``put_private`` is known to anchor yet;
* ``pvt_meta``: ``purged_through`` -> the last height whose purges are done (8 B BE).

Every write is one synced batch, so a value the API answered "stored" survives a crash.

**Taking a value** (the API's ``PUT``, :meth:`PrivateData.take`): the router has checked the
signer and that this node's organisation is listed. The node draws a 32-byte salt, computes
``H(value ‖ salt)`` with the chain suite's hash, stores it, then pushes it on
:data:`~citychain.types.private_data.CH_PRIVATE` to connected peers whose organisation
(proven by the TLS certificate its organisation's CA issued: the switch knows it) is listed
(:func:`~citychain.types.private_data.recipients`). A node of another organisation is never
sent it. The collection's ``max_peers`` (Fabric's ``maxPeerCount``; 0: no limit) caps how
many: peers of the *other* listed organisations first, one organisation after another, then
this node's own (:func:`~citychain.types.private_data.choose_targets`, shuffled within each
group so the load spreads; the peers not pushed to pull the value when they see its
``put_private``, as any node that missed it).

**Acknowledgements** (Fabric's ``requiredPeerCount``). A node that stored a pushed value
(its synced batch written) answers with a
:class:`~citychain.types.private_data.PrivateAck` ``stored`` naming (collection, key,
hash); one that refuses it (an organisation not listed, a wrong hash, its unanchored values
full) answers with the refusal; a malformed push, or one held back for a collection not
defined there yet, is answered with nothing (yet). The ack is signed by the connection (the
mutual-TLS link of the peer the certificate names). When the collection's
``required_peers`` is not 0, :meth:`PrivateData.take` waits, at most
:attr:`PrivateData.ack_timeout` (``[p2p] private_ack_timeout_ms``, 5 s by default), for that
many; the counting is the pure state machine
:class:`~citychain.types.private_data.Dissemination` (its table is there): only an answer
of a peer the value was pushed to, whose organisation is listed, naming that very value,
counts, once. Too few connected listed peers fails at once (and pushes to none), and so do
refusals that leave too few to reach the count. If the count is not reached, the API
answers ``503 dissemination_failed`` saying how many of how many acknowledged; the value
stays here (and on the peers that took it) unanchored only, swept like any other, and the
client must not anchor it (the SDK's ``put_private`` sends no transaction then).

**Receiving a push** (:meth:`PrivateData.on_push`): decoded within
:data:`~citychain.types.private_data.MAX_PUSH_BYTES`; refused (counted and logged,
never stored) unless the collection is defined in this node's state and lists both the
sender's organisation and this node's, and the value hashes to the hash it came with. A push
for a collection this node's state does not define yet (the sender is a block ahead) waits in
a small bounded area (:data:`MAX_PENDING_ITEMS` items, :data:`MAX_PENDING_BYTES` bytes; the
oldest dropped first) and is checked again at each commit.

**Purge** (:meth:`PrivateData.on_commit`, after every committed block and once at start):
the contract's ``purge_due`` lists the items whose purge height is in ``(purged_through,
height]``; their values and the new ``purged_through`` are written in one batch. A crash
repeats at most deletions (idempotent). The hash stays on chain.

**Unanchored values** (taken or received, their ``put_private`` not seen): at most
:data:`MAX_UNANCHORED`; past that the API answers ``store_full`` and pushes are dropped. Each
commit drops the markers of the items its ``private_put`` events anchor; a marker older than
:data:`UNANCHORED_TTL_BLOCKS` is checked against the chain (the item's latest 16 versions) and
its value deleted unless a version anchors it and is not purged yet, so a crash that lost the
event costs nothing, and a value that arrived after its purge height (a late pull answer) is
gone within that time too.

**Pull** of a value a listed node missed (it was down at the push, or the push was dropped):
when a committed ``put_private`` anchors a value of a collection that lists this node's
organisation and the store lacks it, the node asks the listed peers for it
(:class:`~citychain.types.private_data.PrivatePull`) from
:data:`~citychain.types.private_data.PULL_DELAY_BLOCKS` later, every
:data:`~citychain.types.private_data.PULL_RETRY_BLOCKS`, at most
:data:`~citychain.types.private_data.PULL_TRIES` times (at most
:data:`~citychain.types.private_data.MAX_WANTED` values wanted at once). The wanted values
are kept in the store (not synced), so a node that restarts goes on asking; one lost in a
crash is asked for again when its block is replayed or synced. A peer answers with a push
only if the asker's organisation (its certificate) and its own are listed; the asker checks
the push as any other, and does not acknowledge it (no take waits on an answer to a pull).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from citychain import codec
from citychain.crypto import HashNew
from citychain.errors import (
    CitychainError,
    ErrorCode,
    InternalError,
    InvalidInput,
    NotFound,
    Unavailable,
)
from citychain.p2p import Switch
from citychain.store.kv import MIN_DB_OPEN_FILES, KVStore, prefix_end
from citychain.types import Receipt
from citychain.types import private_data as pv

log = logging.getLogger("citychain.private")

VALUES = "pvt_values"
UNANCHORED = "pvt_unanchored"
META = "pvt_meta"
#: The values this node still wants (:class:`_Want`, by value key), kept across restarts.
WANTED = "pvt_wanted"
_PURGED = b"purged_through"
DATA = "data"
MAX_PENDING_ITEMS = pv.MAX_PENDING_ITEMS
MAX_PENDING_BYTES = pv.MAX_PENDING_BYTES
MAX_UNANCHORED = pv.MAX_UNANCHORED
UNANCHORED_TTL_BLOCKS = pv.UNANCHORED_TTL_BLOCKS
#: Results a received push is counted under (``citychain_private_pushes_total``), and the
#: acks received: counted for a take waiting on them (``ack``, ``ack_refusal``) or matching
#: none (``ack_unmatched``: late, or from a peer not pushed to; a pull's answer is not acked).
RECEIVED_RESULTS = (
    "stored",
    "duplicate",
    "pending",
    "malformed",
    "sender_not_listed",
    "node_not_listed",
    "hash_mismatch",
    "full",
    "pull_answered",
    "pull_refused",
    "ack",
    "ack_refusal",
    "ack_unmatched",
)
#: How long a take waits for the collection's ``required_peers`` acknowledgements by default
#: (seconds; off chain, so wall-clock time is fine here; a node sets it with ``[p2p]
#: private_ack_timeout_ms``). Each ack is one small frame after a synced write on the peer,
#: so a reachable peer answers well within it.
ACK_TIMEOUT_S = 5.0
#: Takes waiting for acknowledgements at once; past this the API answers ``unavailable``.
MAX_WAITING = 1024
_RNG = secrets.SystemRandom()

Query = Callable[[str, str, dict[str, Any]], Any]


@dataclass(slots=True)
class _Want:
    collection: str
    key: str
    hash: bytes
    purge_height: int
    due: int  # the height from which to ask (again)
    tries: int = 0


@dataclass(slots=True)
class _Waiter:
    """A take waiting for acknowledgements: the pure state machine, the organisations whose
    peers' acks count, and the event the take awaits."""

    wait: pv.Dissemination
    orgs: frozenset[str]
    settled: asyncio.Event


def value_key(collection: str, key: str, digest: bytes) -> bytes:
    return collection.encode() + b"\0" + key.encode() + b"\0" + digest


#: Table files the private values' store keeps open: the least RocksDB takes, for a small
#: database (values are purged after their collection's blocks to live).
PRIVATE_MAX_OPEN_FILES = MIN_DB_OPEN_FILES


class PrivateStore:
    """The RocksDB of private values (see the module)."""

    def __init__(self, path: Path) -> None:
        self.kv = KVStore(
            path,
            column_families=(VALUES, UNANCHORED, META, WANTED),
            cache_bytes=8 << 20,
            max_open_files=PRIVATE_MAX_OPEN_FILES,
        )
        self.unanchored = sum(1 for _ in self.kv.iterate(UNANCHORED))

    def close(self) -> None:
        self.kv.close()

    def get(self, collection: str, key: str, digest: bytes) -> tuple[bytes, bytes] | None:
        """``(salt, value)`` or None."""
        raw = self.kv.get(VALUES, value_key(collection, key, digest))
        return None if raw is None else (raw[: pv.SALT_SIZE], raw[pv.SALT_SIZE :])

    def has(self, collection: str, key: str, digest: bytes) -> bool:
        return self.kv.get(VALUES, value_key(collection, key, digest)) is not None

    def put(self, push: pv.PrivatePush, height: int) -> bool:
        """Store a value (synced), marked unanchored; False if it was already here."""
        vk = value_key(push.collection, push.key, push.hash)
        if self.kv.get(VALUES, vk) is not None:
            return False
        b = self.kv.batch()
        b.put(VALUES, vk, push.salt + push.value)
        b.put(UNANCHORED, pv.u64(height) + vk, b"")
        self.kv.write(b)
        self.unanchored += 1
        return True

    def purged_through(self) -> int:
        raw = self.kv.get(META, _PURGED)
        return 0 if raw is None else int.from_bytes(raw, "big")

    def purge(self, items: Iterable[dict[str, Any]], through: int) -> int:
        """Delete the values of ``items`` and record ``through``, in one synced batch;
        how many of them this node held."""
        b = self.kv.batch()
        held = 0
        for it in items:
            vk = value_key(it["collection"], it["key"], it["hash"])
            if self.kv.get(VALUES, vk) is not None:
                held += 1
                b.delete(VALUES, vk)
        b.put(META, _PURGED, pv.u64(through))
        # Synced only when values go: a lost height mark merely repeats a scan after a crash,
        # and an fsync per block on the event loop would cost every node time for nothing.
        self.kv.write(b, sync=held > 0)
        return held

    def anchored(self, vks: Iterable[bytes]) -> None:
        """Drop the unanchored markers of these value keys."""
        wanted = set(vks)
        if not wanted:
            return
        b = self.kv.batch()
        for k, _ in self.kv.iterate(UNANCHORED):
            if k[8:] in wanted:
                b.delete(UNANCHORED, k)
                self.unanchored -= 1
        if len(b):
            self.kv.write(b)

    def stale(self, before: int) -> list[bytes]:
        """Unanchored markers taken at a height below ``before`` (oldest first, at most 256)."""
        out = []
        for k, _ in self.kv.iterate(UNANCHORED, b"", pv.u64(before)):
            out.append(k)
            if len(out) >= 256:
                break
        return out

    def drop(self, marker: bytes, *, value: bool) -> None:
        b = self.kv.batch()
        b.delete(UNANCHORED, marker)
        if value:
            b.delete(VALUES, marker[8:])
        self.kv.write(b)
        self.unanchored -= 1

    def wants(self) -> dict[bytes, _Want]:
        """The wanted values recorded (at most :data:`~citychain.types.private_data.MAX_WANTED`;
        an unreadable record is dropped, not fatal: a want is advice, the chain the truth)."""
        out: dict[bytes, _Want] = {}
        for k, v in self.kv.iterate(WANTED):
            try:
                c, key, digest, purge, due, tries = codec.decode(v)
                out[k] = _Want(str(c), str(key), bytes(digest), int(purge), int(due), int(tries))
            except (CitychainError, TypeError, ValueError):
                continue
            if len(out) >= pv.MAX_WANTED:
                break
        return out

    def keep_wants(self, changed: dict[bytes, _Want | None]) -> None:
        """Record these wants (None: no longer wanted), in one batch. Not synced: a want lost
        in a crash is asked again when its block is replayed or synced, as before."""
        if not changed:
            return
        b = self.kv.batch()
        for vk, w in changed.items():
            if w is None:
                b.delete(WANTED, vk)
            else:
                b.put(
                    WANTED,
                    vk,
                    codec.encode([w.collection, w.key, w.hash, w.purge_height, w.due, w.tries]),
                )
        self.kv.write(b, sync=False)

    def count(self, collection: str | None = None) -> int:
        """Values held (of one collection), for tests and metrics."""
        prefix = b"" if collection is None else collection.encode() + b"\0"
        return sum(1 for _ in self.kv.iterate(VALUES, prefix, prefix_end(prefix)))


class PrivateData:
    """A node's private values (see the module). Called on the node's event loop."""

    def __init__(
        self,
        path: Path,
        *,
        org_id: str,
        hash_new: HashNew,
        query: Query,
        height: Callable[[], int],
        registry: CollectorRegistry,
        ack_timeout: float = ACK_TIMEOUT_S,
    ) -> None:
        self.org_id = org_id
        self.ack_timeout = ack_timeout
        #: Takes waiting for acks, by the value's hash (unique: a fresh salt each).
        self._waiting: dict[bytes, _Waiter] = {}
        self._hash_new = hash_new
        self._query = query
        self._height = height
        self._switch: Switch | None = None
        self.store = PrivateStore(path)
        self._pending: deque[tuple[str, str, pv.PrivatePush]] = deque()
        self._pending_bytes = 0
        #: Definitions never change once committed, so a found one is kept (bounded).
        self._defs: dict[str, dict[str, Any]] = {}
        #: Values a committed put_private anchors that this node should hold and does not
        #: (kept in the store, so a restart goes on asking for them).
        self._wanted: dict[bytes, _Want] = self.store.wants()
        self.m_pushes = Counter(
            "citychain_private_pushes",
            "Private-collection values pushed over p2p, by direction and result",
            ["direction", "result"],
            registry=registry,
        )
        for result in RECEIVED_RESULTS:
            self.m_pushes.labels("received", result)
        self.m_pushes.labels("sent", "queued")
        self.m_pushes.labels("sent", "pull")
        self.m_pushes.labels("sent", "ack")
        self.m_purged = Counter(
            "citychain_private_purged",
            "Private values purged at their purge height",
            registry=registry,
        )
        self.m_values = Gauge(
            "citychain_private_unanchored",
            "Private values held but not yet anchored",
            registry=registry,
        )
        self.m_values.set_function(lambda: self.store.unanchored)

    def attach(self, switch: Switch) -> None:
        """Receive pushes from ``switch``'s peers and push through it."""
        self._switch = switch
        switch.add_channel(pv.CH_PRIVATE, self.on_push)

    def close(self) -> None:
        self.store.close()

    # -- reads of the chain ---------------------------------------------------------------------
    def collection(self, name: str) -> dict[str, Any] | None:
        if name in self._defs:
            return self._defs[name]
        try:
            c: dict[str, Any] = self._query(DATA, "collection", {"name": name})
        except NotFound:
            return None
        if len(self._defs) < 1024:
            self._defs[name] = c
        return c

    def _peer_orgs(self) -> dict[str, str | None]:
        if self._switch is None:
            return {}
        return {p.name: p.org_id for p in self._switch.peers() if p.connected}

    # -- taking a value (the API) ---------------------------------------------------------------
    async def take(
        self,
        collection: str,
        orgs: Sequence[str],
        key: str,
        value: bytes,
        *,
        required_peers: int = 0,
        max_peers: int = 0,
    ) -> pv.Taken:
        """Store ``value`` of ``key`` in ``collection`` (listing ``orgs``, this node's among
        them: the router checked), push it to at most ``max_peers`` (0: all) peers of the
        listed organisations, and wait (at most :attr:`ack_timeout`) until ``required_peers``
        of them acknowledge it. ``dissemination_failed`` if they do not: the value then stays
        here unanchored only, and is swept like any value no ``put_private`` anchors."""
        if len(value) > pv.MAX_ITEM_BYTES:
            raise InvalidInput(
                f"a private value is at most {pv.MAX_ITEM_BYTES} bytes", ErrorCode.TOO_LARGE
            )
        if self.store.unanchored >= MAX_UNANCHORED:
            raise Unavailable(
                f"this node holds {MAX_UNANCHORED} private values whose put_private is not "
                "committed yet: send those transactions (or wait) and try again",
                ErrorCode.STORE_FULL,
            )
        if required_peers and len(self._waiting) >= MAX_WAITING:
            raise Unavailable(
                f"this node is already waiting for the acknowledgements of {MAX_WAITING} "
                "private values: try again shortly",
                ErrorCode.UNAVAILABLE,
            )
        salt = secrets.token_bytes(pv.SALT_SIZE)
        push = pv.PrivatePush(
            collection, key, pv.item_hash(self._hash_new, value, salt), salt, value
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.store.put, push, self._height())
        targets = pv.choose_targets(self._peer_orgs(), orgs, self.org_id, max_peers, _RNG.shuffle)
        wait = pv.Dissemination(collection, key, push.hash, targets, required_peers)
        if wait.state == pv.FAILED:  # too few listed peers connected: push to none of them
            raise self._not_disseminated(wait, 0, orgs)
        waiter = _Waiter(wait, frozenset(orgs), asyncio.Event())
        if wait.state == pv.WAITING:
            self._waiting[push.hash] = waiter
        sent = 0
        try:
            sent = self._push(push, targets, wait)
            if wait.state == pv.WAITING:
                await asyncio.wait_for(waiter.settled.wait(), self.ack_timeout)
        except TimeoutError:
            wait.timeout()
        finally:
            self._waiting.pop(push.hash, None)
        if wait.state != pv.DONE:
            raise self._not_disseminated(wait, sent, orgs)
        return pv.Taken(push.hash, salt, sent, wait.acks)

    def _not_disseminated(
        self, wait: pv.Dissemination, sent: int, orgs: Sequence[str]
    ) -> Unavailable:
        log.warning(
            "private value %s/%s: %d of %d peer(s) acknowledged, %d required",
            wait.collection,
            wait.key,
            wait.acks,
            sent,
            wait.required,
        )
        if sent:
            reached = (
                f"{wait.acks} of the {sent} peer(s) it was pushed to acknowledged it within "
                f"{self.ack_timeout:g} s ([p2p] private_ack_timeout_ms)"
            )
        elif len(wait.targets) < wait.required:
            reached = f"only {len(wait.targets)} peer(s) of those organisations are connected"
        else:
            reached = f"none of the {len(wait.targets)} connected peer(s) could be sent it"
        return Unavailable(
            f"collection {wait.collection!r} requires {wait.required} peer(s) of "
            f"{', '.join(orgs)} to acknowledge a value before this node answers; {reached}. "
            "The value is kept on this node only, unanchored (dropped after "
            f"{UNANCHORED_TTL_BLOCKS} blocks): do not send put_private for it; try again "
            "when more of the listed nodes are up",
            ErrorCode.DISSEMINATION_FAILED,
        )

    def _push(
        self, push: pv.PrivatePush, targets: Sequence[str], wait: pv.Dissemination | None = None
    ) -> int:
        """Queue ``push`` for ``targets``; how many took it (a peer that did not is
        :meth:`~citychain.types.private_data.Dissemination.unreachable`)."""
        if self._switch is None:
            for peer in targets:
                if wait is not None:
                    wait.unreachable(peer)
            return 0
        payload = push.encode()
        sent = 0
        for i, peer in enumerate(targets):
            try:
                ok = self._switch.send(peer, pv.CH_PRIVATE, payload)
            except CitychainError as exc:  # larger than this network's p2p message limit
                log.warning("cannot push private value %s/%s: %s", push.collection, push.key, exc)
                for rest in targets[i:]:
                    if wait is not None:
                        wait.unreachable(rest)
                return sent
            if ok:
                sent += 1
                self.m_pushes.labels("sent", "queued").inc()
                log.info(
                    "pushed private value %s/%s (%s) to %s",
                    push.collection,
                    push.key,
                    push.hash.hex()[:16],
                    peer,
                )
            elif wait is not None:
                wait.unreachable(peer)
        return sent

    async def size_of(self, collection: str, key: str, digest: bytes) -> int | None:
        """The size of the value held under ``digest``; None if none is held here."""
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, self.store.get, collection, key, digest)
        return None if found is None else len(found[1])

    async def value(self, collection: str, key: str, digest: bytes) -> bytes | None:
        """The value anchored by ``digest``, checked against it; None if not held here."""
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, self.store.get, collection, key, digest)
        if found is None:
            return None
        salt, data = found
        if pv.item_hash(self._hash_new, data, salt) != digest:
            raise InternalError(
                f"the private value {collection}/{key} stored here no longer hashes to "
                f"{digest.hex()} (disk fault)",
                ErrorCode.CHUNK_CORRUPT,
            )
        return data

    # -- receiving a push ---------------------------------------------------------------------
    def on_push(self, peer: str, payload: bytes) -> None:
        try:
            msg = pv.decode_message(payload)
        except CitychainError as exc:
            self._received("malformed", peer, None, f"malformed: {exc.message}")
            return
        sender_org = self._peer_orgs().get(peer)
        if isinstance(msg, pv.PrivatePull):
            self._answer_pull(peer, sender_org, msg)
        elif isinstance(msg, pv.PrivateAck):
            self._on_ack(peer, sender_org, msg)
        else:
            self._consider(peer, sender_org, msg)

    def _on_ack(self, peer: str, org: str | None, ack: pv.PrivateAck) -> None:
        """Count ``peer``'s answer for the take waiting on it, if any: only a peer the value
        was pushed to, of a listed organisation, naming that very value counts."""
        waiter = self._waiting.get(ack.hash)
        counted = (
            waiter is not None and pv.may_hold(waiter.orgs, org) and waiter.wait.ack(peer, ack)
        )
        if waiter is None or not counted:
            self.m_pushes.labels("received", "ack_unmatched").inc()
            log.debug("ignored ack of %s/%s from peer %s", ack.collection, ack.key, peer)
            return
        self.m_pushes.labels("received", "ack" if ack.stored else "ack_refusal").inc()
        if waiter.wait.state != pv.WAITING:
            waiter.settled.set()

    def _answer(self, peer: str, push: pv.PrivatePush, result: str, *, pulled: bool) -> None:
        """Tell the pusher what became of its push (:class:`~citychain.types.private_data.
        PrivateAck`): ``stored`` only once the value is written and synced here. Not when the
        push answered this node's pull (``pulled``: the value was wanted when it came): no
        take waits for that, and the peer would count the ack as matching none."""
        if self._switch is None or pulled:
            return
        ack = pv.PrivateAck(push.collection, push.key, push.hash, result)
        if self._switch.send(peer, pv.CH_PRIVATE, ack.encode()):
            self.m_pushes.labels("sent", "ack").inc()

    def _answer_pull(self, peer: str, org: str | None, pull: pv.PrivatePull) -> None:
        """Send ``peer`` the value it missed, if its organisation and ours are listed."""
        c = self.collection(pull.collection)
        what = f"{pull.collection}/{pull.key}"
        if c is None or not pv.may_hold(c["orgs"], org) or not pv.may_hold(c["orgs"], self.org_id):
            self.m_pushes.labels("received", "pull_refused").inc()
            log.warning(
                "refused peer %s (org %r) the private value %s: not listed", peer, org, what
            )
            return
        found = self.store.get(pull.collection, pull.key, pull.hash)
        if found is None or self._switch is None:
            return
        self.m_pushes.labels("received", "pull_answered").inc()
        push = pv.PrivatePush(pull.collection, pull.key, pull.hash, found[0], found[1])
        if self._switch.send(peer, pv.CH_PRIVATE, push.encode()):
            self.m_pushes.labels("sent", "queued").inc()
            log.info("sent private value %s to peer %s, which missed it", what, peer)

    def _received(self, result: str, peer: str, push: pv.PrivatePush | None, why: str) -> None:
        self.m_pushes.labels("received", result).inc()
        what = f"{push.collection}/{push.key}" if push is not None else "?"
        level = logging.INFO if result in ("stored", "duplicate", "pending") else logging.WARNING
        log.log(level, "private value %s from peer %s: %s", what, peer, why)

    def _consider(self, peer: str, sender_org: str | None, push: pv.PrivatePush) -> None:
        c = self.collection(push.collection)
        if c is None:
            self._hold(peer, sender_org, push)
            return
        orgs = c["orgs"]
        # Decided as it comes: a commit may stop wanting it (it is stored) before the ack.
        pulled = value_key(push.collection, push.key, push.hash) in self._wanted
        if not pv.may_hold(orgs, sender_org):
            self._received(
                "sender_not_listed", peer, push, f"refused: sender org {sender_org!r} is not listed"
            )
            self._answer(peer, push, "not_listed", pulled=pulled)
            return
        if not pv.may_hold(orgs, self.org_id):
            self._received(
                "node_not_listed",
                peer,
                push,
                f"refused: this node's org {self.org_id!r} is not listed",
            )
            self._answer(peer, push, "not_listed", pulled=pulled)
            return
        if pv.item_hash(self._hash_new, push.value, push.salt) != push.hash:
            self._received(
                "hash_mismatch", peer, push, "refused: the value does not hash to its hash"
            )
            self._answer(peer, push, "hash_mismatch", pulled=pulled)
            return
        if self.store.has(push.collection, push.key, push.hash):
            self._received("duplicate", peer, push, "already held")
            self._answer(peer, push, pv.ACK_STORED, pulled=pulled)
            return
        if self.store.unanchored >= MAX_UNANCHORED:
            self._received("full", peer, push, f"dropped: {MAX_UNANCHORED} unanchored values held")
            self._answer(peer, push, "full", pulled=pulled)
            return
        asyncio.get_running_loop().create_task(self._store(peer, push, pulled))

    async def _store(self, peer: str, push: pv.PrivatePush, pulled: bool) -> None:
        loop = asyncio.get_running_loop()
        try:
            new = await loop.run_in_executor(None, self.store.put, push, self._height())
        except Exception:
            log.exception("could not store private value %s/%s", push.collection, push.key)
            return
        self._received(
            "stored" if new else "duplicate", peer, push, f"stored ({len(push.value)} bytes)"
        )
        self._answer(peer, push, pv.ACK_STORED, pulled=pulled)  # after the synced write

    def _hold(self, peer: str, sender_org: str | None, push: pv.PrivatePush) -> None:
        self._pending.append((peer, sender_org or "", push))
        self._pending_bytes += len(push.value)
        while len(self._pending) > MAX_PENDING_ITEMS or self._pending_bytes > MAX_PENDING_BYTES:
            _, _, old = self._pending.popleft()
            self._pending_bytes -= len(old.value)
            log.warning(
                "dropped pending private value %s/%s: pending area full", old.collection, old.key
            )
        self._received("pending", peer, push, "collection not defined here yet: held")

    # -- commits --------------------------------------------------------------------------------
    def on_commit(self, height: int, receipts: Sequence[Receipt] = ()) -> None:
        """After block ``height`` is committed: anchor, retry the pending, purge, sweep."""
        puts = [
            e.attributes
            for r in receipts
            for e in r.events
            if e.contract == DATA and e.type == "private_put"
        ]
        try:
            self.store.anchored(value_key(a["collection"], a["key"], a["hash"]) for a in puts)
            self._want(height, puts)
            self._retry_pending()
            self.purge(height)
            self._sweep(height)
            self._pull(height)
        except CitychainError as exc:
            log.error("private data upkeep at height %d failed: %s", height, exc)

    def _want(self, height: int, puts: Sequence[dict[str, Any]]) -> None:
        """Note the committed values this node should hold and does not (it missed them)."""
        added: dict[bytes, _Want | None] = {}
        for a in puts:
            c = self.collection(str(a["collection"]))
            if c is None or not pv.may_hold(c["orgs"], self.org_id):
                continue
            if pv.is_purged(a, height) or len(self._wanted) >= pv.MAX_WANTED:
                continue
            name, key, digest = str(a["collection"]), str(a["key"]), bytes(a["hash"])
            if not self.store.has(name, key, digest):
                vk = value_key(name, key, digest)
                self._wanted[vk] = _Want(
                    name, key, digest, int(a["purge_height"]), height + pv.PULL_DELAY_BLOCKS
                )
                added[vk] = self._wanted[vk]
        self.store.keep_wants(added)

    def _pull(self, height: int) -> None:
        """Ask the listed peers for the wanted values whose time has come."""
        changed: dict[bytes, _Want | None] = {}
        try:
            self._ask(height, changed)
        finally:
            self.store.keep_wants(changed)

    def _ask(self, height: int, changed: dict[bytes, _Want | None]) -> None:
        for vk, w in list(self._wanted.items()):
            if w.due > height:
                continue
            done = self.store.has(w.collection, w.key, w.hash)
            purged = pv.is_purged({"purge_height": w.purge_height}, height)
            if done or purged or w.tries >= pv.PULL_TRIES:
                if not (done or purged):
                    log.warning(
                        "no listed peer sent private value %s/%s after %d asks; giving up",
                        w.collection,
                        w.key,
                        w.tries,
                    )
                del self._wanted[vk]
                changed[vk] = None
                continue
            c = self.collection(w.collection)
            if c is None or self._switch is None:
                continue
            payload = pv.PrivatePull(w.collection, w.key, w.hash).encode()
            for peer in pv.recipients(self._peer_orgs(), c["orgs"], self.org_id):
                if self._switch.send(peer, pv.CH_PRIVATE, payload):
                    self.m_pushes.labels("sent", "pull").inc()
            w.tries += 1
            w.due = height + pv.PULL_RETRY_BLOCKS
            changed[vk] = w
            log.info("asked listed peers for missed private value %s/%s", w.collection, w.key)

    def _retry_pending(self) -> None:
        if not self._pending:
            return
        waiting, self._pending, self._pending_bytes = list(self._pending), deque(), 0
        for peer, org, push in waiting:
            if self.collection(push.collection) is None:
                self._pending.append((peer, org, push))
                self._pending_bytes += len(push.value)
            else:
                self._consider(peer, org or None, push)

    def purge(self, height: int) -> None:
        """Delete every value whose purge height is at most ``height`` (idempotent)."""
        done = self.store.purged_through()
        while done < height:
            due = self._query(DATA, "purge_due", {"after": done, "through": height})
            through = int(due["through"])
            held = self.store.purge(due["items"], through)
            if held:
                self.m_purged.inc(held)
                log.info("purged %d private value(s) due by height %d", held, through)
            if through <= done:
                break
            done = through

    def _sweep(self, height: int) -> None:
        if height <= UNANCHORED_TTL_BLOCKS:
            return
        for marker in self.store.stale(height - UNANCHORED_TTL_BLOCKS):
            body = marker[8:]
            collection, item_key = body[:-33].decode().split("\0", 1)
            self.store.drop(marker, value=not self._anchors(collection, item_key, body[-32:]))

    def _anchors(self, collection: str, key: str, digest: bytes) -> bool:
        try:
            item = self._query(DATA, "private_item", {"collection": collection, "key": key})
        except NotFound:
            return False
        latest = int(item["latest"])
        for n in range(latest, max(0, latest - 16), -1):
            it = self._query(
                DATA, "private_item", {"collection": collection, "key": key, "version": n}
            )
            if it["hash"] == digest:
                return not it["purged"]  # a value that arrived after its purge goes too
        return False


__all__ = ["PrivateData", "PrivateStore", "value_key"]
