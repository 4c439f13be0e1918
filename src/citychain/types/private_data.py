"""Private data collections: their names and limits, the contract's state layout, the hash a
value is anchored by, who may be sent an item, and the p2p message that carries it. Pure: no
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


def decode_message(payload: bytes) -> PrivatePush | PrivatePull:
    """A push or a pull; anything else, malformed or oversize, is :class:`DecodeError`."""
    if len(payload) <= PUSH_OVERHEAD:
        try:
            value = codec.decode(payload, max_size=PUSH_OVERHEAD)
        except DecodeError:
            value = None
        match value:
            case ["pvt-pull", str(name), str(key), bytes(digest)] if len(digest) == HASH_SIZE:
                try:
                    return PrivatePull(check_collection_name(name), check_item_key(key), digest)
                except InvalidInput as exc:
                    raise DecodeError(f"malformed private pull: {exc.message}") from None
            case ["pvt-pull", *_]:
                raise DecodeError("malformed private pull")
    return PrivatePush.decode(payload)


__all__ = [
    "CH_PRIVATE",
    "COLLECTION",
    "ITEM",
    "ITEM_HEAD",
    "MAX_BLOCK_TO_LIVE",
    "MAX_COLLECTION_ORGS",
    "MAX_ITEM_BYTES",
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
    "PrivatePull",
    "PrivatePush",
    "check_collection_name",
    "check_item_key",
    "check_orgs",
    "collection_key",
    "decode_message",
    "is_purged",
    "item_hash",
    "item_head_key",
    "item_key",
    "may_hold",
    "parse_purge_key",
    "purge_height",
    "purge_key",
    "recipients",
]
