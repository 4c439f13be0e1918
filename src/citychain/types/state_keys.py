"""The layout of the state key space, in one place (pure: no state, no suite).

Everything that names a state key (execution, mempool, API, the SDK, the services' shapes)
asks these functions for it instead of knowing the layout::

    a/n/<address 20 bytes>          an account's nonce: canonical CBOR uint; absent = 0
    c/<contract name>/<key>         a system contract's own namespace; the contract sees <key>

Contract names contain no ``/`` (the registry refuses them), so one contract's namespace is
never a prefix of another's: ``c/tok/`` and ``c/token/`` are disjoint.

Addresses: an account's is ``suite.address(public_key)``; a contract's (what a callee sees as
``ctx.caller`` when a contract calls it) is ``suite.hash(b"citychain/contract/" + name)[:20]``.
The two hash domains differ, so a contract address is never some key's account address.
"""

from __future__ import annotations

ADDRESS_SIZE = 20
NONCE_PREFIX = b"a/n/"
CONTRACT_PREFIX = b"c/"
#: The longest key a contract may use inside its namespace (the store allows 4,096 in all).
MAX_CONTRACT_KEY = 1024


def account_nonce_key(address: bytes) -> bytes:
    """The state key of an account's nonce."""
    return NONCE_PREFIX + address


def contract_prefix(name: str) -> bytes:
    """The prefix of every state key of contract ``name``: ``c/<name>/``."""
    return CONTRACT_PREFIX + name.encode() + b"/"


def contract_key(name: str, key: bytes) -> bytes:
    """The state key of ``key`` in contract ``name``'s namespace (e.g. for a proof request)."""
    return CONTRACT_PREFIX + name.encode() + b"/" + key
