"""Private data collections: their names and limits, the contract's state layout, the hash a
value is anchored by, who may be sent an item, the p2p messages that carry it and answer it
(push, pull, ack), and the counting of acknowledgements (:class:`Dissemination`). Pure: no
I/O; the ``data`` contract, the node, the API and the SDK share these definitions (here, not in
the data service's shapes, because the node, which keeps and pushes the values, finds no
service by import: see ``tests/arch/test_layers.py``).

A **collection** (Hyperledger Fabric's private data collection) names the organisations whose
nodes hold its values. The chain holds only each item's hash ``H(value ‖ salt)`` (the chain
suite's hash: SHA-256 or SM3), its size and heights; the values travel over p2p to the nodes
of the listed organisations only, and each such node deletes them ``block_to_live`` blocks
after the ``put_private`` that anchored them (0: kept).

The 32-byte random salt keeps a short value (a yes/no, a date of birth) from being found by
hashing guesses against the chain. Keys and collection names are on chain in the clear: they
must never be personal data (use an opaque id as the key).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from citychain import codec
from citychain.errors import DecodeError, ErrorCode, InvalidInput

# -- limits -------------------------------------------------------------------------------------
#: Most organisations one collection lists.
MAX_COLLECTION_ORGS: Final = 16
#: Largest private value (bytes); the API, the p2p handler and the contract's ``size`` all
#: refuse a larger one (``too_large``).
MAX_ITEM_BYTES: Final = 1024 * 1024
#: The salt appended to a value before hashing.
SALT_SIZE: Final = 32
HASH_SIZE: Final = 32
#: Largest ``block_to_live`` (about 35 years of one-second blocks).
MAX_BLOCK_TO_LIVE: Final = 2**30
#: A p2p push carries one value with its names, hash and salt: this much beyond the value.
PUSH_OVERHEAD: Final = 1024
MAX_PUSH_BYTES: Final = MAX_ITEM_BYTES + PUSH_OVERHEAD
#: The p2p channel of pushes (0x20..0x40 are consensus, mempool, evidence and sync).
CH_PRIVATE: Final = 0x50
#: Items a node holds for a collection its state does not define yet (a peer ahead of it),
#: and their total bytes; past either, the oldest is dropped (a member missing one may still
#: be sent it again: ``put_private`` again).
MAX_PENDING_ITEMS: Final = 64
MAX_PENDING_BYTES: Final = 8 * MAX_ITEM_BYTES
#: Values a node holds that no committed ``put_private`` anchors yet (sent to it, the
#: transaction not yet committed); past this the API refuses new ones (``store_full``) and
#: pushes are dropped. One not anchored within :data:`UNANCHORED_TTL_BLOCKS` is deleted.
MAX_UNANCHORED: Final = 4096
UNANCHORED_TTL_BLOCKS: Final = 600
#: A listed node that sees a committed ``put_private`` whose value it does not hold (it was
#: down at the push) asks the listed peers for it (:class:`PrivatePull`): first
#: :data:`PULL_DELAY_BLOCKS` after the commit (the push is usually in flight), then every
#: :data:`PULL_RETRY_BLOCKS`, at most :data:`PULL_TRIES` times; at most :data:`MAX_WANTED`
#: values are asked for at once.
PULL_DELAY_BLOCKS: Final = 2
PULL_RETRY_BLOCKS: Final = 10
PULL_TRIES: Final = 5
MAX_WANTED: Final = 1024
#: Largest ``required_peers`` and ``max_peers`` of a collection (Fabric's ``requiredPeerCount``
#: and ``maxPeerCount``). ``max_peers`` 0 means no limit: every connected peer of a listed
#: organisation is pushed to.
MAX_PEER_COUNT: Final = 64
#: An acknowledgement (:class:`PrivateAck`) is this small: names, hash and a result word.
MAX_ACK_BYTES: Final = 512

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_ORG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# -- the contract's state layout (under the data contract's prefix) -----------------------------
COLLECTION: Final = b"pc/"  # name -> definition
ITEM_HEAD: Final = b"pi/"  # name \0 key -> latest version number
ITEM: Final = b"pv/"  # name \0 key \0 version (4 B BE) -> item metadata
PURGE: Final = b"pp/"  # purge height (8 B BE) name \0 key \0 version (4 B BE) -> 1


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def check_collection_name(value: Any, name: str = "collection") -> str:
    if type(value) is not str or not _NAME_RE.fullmatch(value):
        raise _bad(
            f"argument {name!r} must be a collection name: 1 to 64 of a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return value


def check_item_key(value: Any, name: str = "key") -> str:
    if type(value) is not str or not _KEY_RE.fullmatch(value):
        raise _bad(
            f"argument {name!r} must be an item key: 1 to 128 of A-Z a-z 0-9 . _ : -, starting "
            "with a letter or digit (never personal data: it is on chain in the clear)"
        )
    return value


def check_orgs(value: Any) -> list[str]:
    """A collection's organisations, sorted; 1 to :data:`MAX_COLLECTION_ORGS`, no repeats."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_COLLECTION_ORGS:
        raise _bad(f"argument 'orgs' must list 1 to {MAX_COLLECTION_ORGS} organisation ids")
    for org in value:
        if type(org) is not str or not _ORG_RE.fullmatch(org):
            raise _bad(f"argument 'orgs': {org!r} is not an organisation id")
    if len(set(value)) != len(value):
        raise _bad("argument 'orgs' names an organisation twice")
    return sorted(value)


def check_peer_counts(required: Any, maximum: Any) -> tuple[int, int]:
    """``(required_peers, max_peers)`` of a collection, each 0 to :data:`MAX_PEER_COUNT`
    (``max_peers`` 0: no limit), ``required_peers <= max_peers`` when there is a limit."""
    for name, value in (("required_peers", required), ("max_peers", maximum)):
        if type(value) is not int or not 0 <= value <= MAX_PEER_COUNT:
            raise _bad(
                f"argument {name!r} must be an integer from 0 to {MAX_PEER_COUNT}, got {value!r}"
            )
    if maximum and required > maximum:
        raise _bad(
            f"argument 'required_peers' ({required}) exceeds 'max_peers' ({maximum}): a node "
            "cannot be acknowledged by more peers than it pushes to (max_peers 0: no limit)"
        )
    return required, maximum


def peer_counts(definition: Mapping[str, Any]) -> tuple[int, int]:
    """``(required_peers, max_peers)`` of a stored definition; a definition recorded before
    these existed (or one that left them at their defaults) has neither: ``(0, 0)``."""
    return int(definition.get("required_peers", 0)), int(definition.get("max_peers", 0))


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def collection_key(name: str) -> bytes:
    return COLLECTION + name.encode()


def item_head_key(name: str, key: str) -> bytes:
    return ITEM_HEAD + name.encode() + b"\0" + key.encode()


def item_key(name: str, key: str, version: int) -> bytes:
    return ITEM + name.encode() + b"\0" + key.encode() + b"\0" + u32(version)


def purge_key(height: int, name: str, key: str, version: int) -> bytes:
    return PURGE + u64(height) + name.encode() + b"\0" + key.encode() + b"\0" + u32(version)


def parse_purge_key(raw: bytes) -> tuple[int, str, str, int]:
    """``(purge height, collection, key, version)`` of a :func:`purge_key` (prefix included)."""
    body = raw[len(PURGE) :]
    height = int.from_bytes(body[:8], "big")
    name, key = body[8:-5].decode().split("\0", 1)
    return height, name, key, int.from_bytes(body[-4:], "big")


# -- the hash -----------------------------------------------------------------------------------
class _Digest(Protocol):
    def digest(self) -> bytes: ...


def item_hash(hash_new: Callable[[bytes], _Digest], value: bytes, salt: bytes) -> bytes:
    """``H(value ‖ salt)`` with the chain suite's hash (the salt has a fixed size, so the
    concatenation is unambiguous)."""
    if len(salt) != SALT_SIZE:
        raise _bad(f"a salt is {SALT_SIZE} bytes")
    return hash_new(value + salt).digest()


def purge_height(height: int, block_to_live: int) -> int:
    """The height at whose commit an item anchored at ``height`` is purged (0: never)."""
    return height + block_to_live if block_to_live else 0


def is_purged(item: Mapping[str, Any], height: int) -> bool:
    """Whether the item's value is gone once block ``height`` is committed."""
    p = int(item["purge_height"])
    return p != 0 and height >= p


# -- who is sent an item ------------------------------------------------------------------------
def may_hold(orgs: Iterable[str], org: str | None) -> bool:
    """Whether a node of organisation ``org`` may hold values of a collection of ``orgs``."""
    return org is not None and org != "" and org in set(orgs)


def recipients(peers: Mapping[str, str | None], orgs: Iterable[str], own_org: str) -> list[str]:
    """The connected peers (name -> organisation its certificate proves) a node of
    ``own_org`` pushes an item of a collection of ``orgs`` to: none unless this node's own
    organisation is listed; then exactly the peers whose organisation is, sorted by name. A
    peer whose organisation is not known yet is never sent anything."""
    listed = set(orgs)
    if not may_hold(listed, own_org):
        return []
    return sorted(name for name, org in peers.items() if may_hold(listed, org))


def choose_targets(
    peers: Mapping[str, str | None],
    orgs: Iterable[str],
    own_org: str,
    max_peers: int,
    shuffle: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """The :func:`recipients` a taken value is pushed to: at most ``max_peers`` of them (0:
    all), peers of the *other* listed organisations first, one organisation after another
    (round robin, so a value spreads across organisations before it doubles up in one), then
    this node's own organisation's. ``shuffle`` (e.g. ``random.shuffle``) reorders the peers
    of each organisation and the organisations, so the load spreads; without it the order is
    by name."""
    by_org: dict[str, list[str]] = {}
    for name in recipients(peers, orgs, own_org):
        by_org.setdefault(str(peers[name]), []).append(name)
    own = by_org.pop(own_org, [])
    others = sorted(by_org)
    if shuffle is not None:
        shuffle(others)
        shuffle(own)
        for group in by_org.values():
            shuffle(group)
    ordered: list[str] = []
    for rank in range(max((len(g) for g in by_org.values()), default=0)):
        ordered += [by_org[o][rank] for o in others if rank < len(by_org[o])]
    ordered += own
    return ordered[:max_peers] if max_peers else ordered


# -- the p2p message ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PrivatePush:
    """One private value pushed to a peer of a listed organisation:
    ``["pvt", collection, key, hash, salt, value]`` in canonical CBOR on :data:`CH_PRIVATE`."""

    collection: str
    key: str
    hash: bytes
    salt: bytes
    value: bytes

    def encode(self) -> bytes:
        return codec.encode(["pvt", self.collection, self.key, self.hash, self.salt, self.value])

    @classmethod
    def decode(cls, payload: bytes) -> PrivatePush:
        """Parse a push; anything malformed or oversize is :class:`DecodeError`."""
        if len(payload) > MAX_PUSH_BYTES:
            raise DecodeError(f"a private push of {len(payload)} bytes exceeds {MAX_PUSH_BYTES}")
        value = codec.decode(payload, max_size=MAX_PUSH_BYTES)
        match value:
            case ["pvt", str(name), str(key), bytes(digest), bytes(salt), bytes(data)]:
                pass
            case _:
                raise DecodeError("malformed private push")
        try:
            check_collection_name(name)
            check_item_key(key)
        except InvalidInput as exc:
            raise DecodeError(f"malformed private push: {exc.message}") from None
        if len(digest) != HASH_SIZE or len(salt) != SALT_SIZE or len(data) > MAX_ITEM_BYTES:
            raise DecodeError("malformed private push: hash, salt or value size")
        return cls(name, key, digest, salt, data)


@dataclass(frozen=True, slots=True)
class PrivatePull:
    """A listed node asking a listed peer for a value it missed:
    ``["pvt-pull", collection, key, hash]`` on :data:`CH_PRIVATE`. The peer answers with a
    :class:`PrivatePush` only if the asker's organisation is listed and it holds the value."""

    collection: str
    key: str
    hash: bytes

    def encode(self) -> bytes:
        return codec.encode(["pvt-pull", self.collection, self.key, self.hash])


#: What a node answers a push with (:class:`PrivateAck`): ``stored`` once the value is in its
#: store, written and synced (or was already there); otherwise why it will never hold it.
ACK_STORED: Final = "stored"
ACK_REFUSALS: Final = ("not_listed", "hash_mismatch", "full")
ACK_RESULTS: Final = (ACK_STORED, *ACK_REFUSALS)


@dataclass(frozen=True, slots=True)
class PrivateAck:
    """A node's answer to a :class:`PrivatePush`: ``["pvt-ack", collection, key, hash,
    result]`` on :data:`CH_PRIVATE`, at most :data:`MAX_ACK_BYTES`. ``result`` is
    :data:`ACK_STORED` (held durably: the pusher may count this node) or one of
    :data:`ACK_REFUSALS` (it never will). It is signed by the connection: it arrives over the
    mutual-TLS link of the peer whose certificate names its node and organisation, so it
    carries no signature of its own. A malformed push, or one held back because its
    collection is not defined on the receiver yet, is answered with nothing (yet)."""

    collection: str
    key: str
    hash: bytes
    result: str = ACK_STORED

    def encode(self) -> bytes:
        return codec.encode(["pvt-ack", self.collection, self.key, self.hash, self.result])

    @property
    def stored(self) -> bool:
        return self.result == ACK_STORED


def _names(kind: str, name: str, key: str) -> tuple[str, str]:
    try:
        return check_collection_name(name), check_item_key(key)
    except InvalidInput as exc:
        raise DecodeError(f"malformed private {kind}: {exc.message}") from None


def decode_message(payload: bytes) -> PrivatePush | PrivatePull | PrivateAck:
    """A push, a pull or an ack; anything else, malformed or oversize, is
    :class:`DecodeError`. The small ones are decoded within :data:`PUSH_OVERHEAD` bytes (an
    ack within :data:`MAX_ACK_BYTES`), a push within :data:`MAX_PUSH_BYTES`."""
    if len(payload) <= PUSH_OVERHEAD:
        try:
            value = codec.decode(payload, max_size=PUSH_OVERHEAD)
        except DecodeError:
            value = None
        match value:
            case ["pvt-pull", str(name), str(key), bytes(digest)] if len(digest) == HASH_SIZE:
                return PrivatePull(*_names("pull", name, key), digest)
            case ["pvt-pull", *_]:
                raise DecodeError("malformed private pull")
            case ["pvt-ack", str(name), str(key), bytes(digest), str(result)] if (
                len(digest) == HASH_SIZE and result in ACK_RESULTS and len(payload) <= MAX_ACK_BYTES
            ):
                return PrivateAck(*_names("ack", name, key), digest, result)
            case ["pvt-ack", *_]:
                raise DecodeError("malformed private ack")
    return PrivatePush.decode(payload)


@dataclass(frozen=True, slots=True)
class Taken:
    """What a node answers when it took a value: its ``hash`` and ``salt``, how many peers it
    was pushed to, and how many of them acknowledged it before the answer (``acks``: at least
    the collection's ``required_peers``; 0 when it requires none, as nobody waited)."""

    hash: bytes
    salt: bytes
    pushed_to: int
    acks: int = 0


# -- waiting for acknowledgements (Fabric's requiredPeerCount), without I/O ---------------------
WAITING: Final = "waiting"
DONE: Final = "done"
FAILED: Final = "failed"


class Dissemination:
    """The acknowledgements one taken value waits for: a state machine without I/O (as h11
    is for HTTP): the node tells it what happened and reads :attr:`state`.

    It is made with the ``targets`` the value was pushed to (peers of listed organisations,
    :func:`choose_targets`) and the collection's ``required`` count:

    ========  ==================================================  =============================
    state     event                                               next
    ========  ==================================================  =============================
    (new)     ``required`` is 0                                   DONE
    (new)     fewer targets than ``required``                     FAILED
    (new)     otherwise                                           WAITING
    WAITING   :meth:`ack` ``stored`` from a target, naming this   DONE once ``required`` targets
              value's (collection, key, hash), its first answer   acknowledged; else WAITING
    WAITING   :meth:`ack` refusal from a target, or               FAILED once too few targets
              :meth:`unreachable` (its send failed), first        are left to reach
              answer of that target                               ``required``; else WAITING
    WAITING   an ack from a peer that is no target, naming        WAITING (ignored)
              another value, or a target's second answer
    WAITING   :meth:`timeout`                                     FAILED
    DONE      anything                                            DONE
    FAILED    anything                                            FAILED
    ========  ==================================================  =============================
    """

    def __init__(
        self, collection: str, key: str, digest: bytes, targets: Iterable[str], required: int
    ) -> None:
        self.collection, self.key, self.hash = collection, key, digest
        self.targets: frozenset[str] = frozenset(targets)
        self.required = required
        self.acked: set[str] = set()
        self.lost: set[str] = set()
        self.state: str = WAITING
        self._settle()

    @property
    def acks(self) -> int:
        return len(self.acked)

    def _settle(self) -> None:
        if self.state != WAITING:
            return
        if self.acks >= self.required:
            self.state = DONE
        elif len(self.targets) - len(self.lost) < self.required:
            self.state = FAILED

    def ack(self, peer: str, ack: PrivateAck) -> bool:
        """``peer``'s answer; whether it was counted (as an acknowledgement or a refusal)."""
        if (
            self.state != WAITING
            or peer not in self.targets
            or peer in self.acked
            or peer in self.lost
            or (ack.collection, ack.key, ack.hash) != (self.collection, self.key, self.hash)
        ):
            return False
        (self.acked if ack.stored else self.lost).add(peer)
        self._settle()
        return True

    def unreachable(self, peer: str) -> None:
        """The push to ``peer`` could not be queued: it will not answer."""
        if self.state == WAITING and peer in self.targets and peer not in self.acked:
            self.lost.add(peer)
            self._settle()

    def timeout(self) -> None:
        if self.state == WAITING:
            self.state = FAILED


__all__ = [
    "ACK_REFUSALS",
    "ACK_RESULTS",
    "ACK_STORED",
    "CH_PRIVATE",
    "COLLECTION",
    "DONE",
    "FAILED",
    "ITEM",
    "ITEM_HEAD",
    "MAX_ACK_BYTES",
    "MAX_BLOCK_TO_LIVE",
    "MAX_COLLECTION_ORGS",
    "MAX_ITEM_BYTES",
    "MAX_PEER_COUNT",
    "MAX_PENDING_BYTES",
    "MAX_PENDING_ITEMS",
    "MAX_PUSH_BYTES",
    "MAX_UNANCHORED",
    "MAX_WANTED",
    "PULL_DELAY_BLOCKS",
    "PULL_RETRY_BLOCKS",
    "PULL_TRIES",
    "PURGE",
    "SALT_SIZE",
    "UNANCHORED_TTL_BLOCKS",
    "WAITING",
    "Dissemination",
    "PrivateAck",
    "PrivatePull",
    "PrivatePush",
    "Taken",
    "check_collection_name",
    "check_item_key",
    "check_orgs",
    "check_peer_counts",
    "choose_targets",
    "collection_key",
    "decode_message",
    "is_purged",
    "item_hash",
    "item_head_key",
    "item_key",
    "may_hold",
    "parse_purge_key",
    "peer_counts",
    "purge_height",
    "purge_key",
    "recipients",
]
