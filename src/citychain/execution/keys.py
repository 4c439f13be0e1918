"""The layout of the state key space, in one place.

Everything above execution (mempool, API, SDK, proofs) asks these functions for a key instead
of knowing the layout::

    a/n/<address 20 bytes>          an account's nonce: canonical CBOR uint; absent = 0
    c/<contract name>/<key>         a system contract's own namespace; the contract sees <key>

Contract names contain no ``/`` (the registry refuses them), so one contract's namespace is
never a prefix of another's: ``c/tok/`` and ``c/token/`` are disjoint.

Addresses: an account's is ``suite.address(public_key)``; a contract's (what a callee sees as
``ctx.caller`` when a contract calls it) is ``suite.hash(b"citychain/contract/" + name)[:20]``.
The two hash domains differ, so a contract address is never some key's account address.
"""

from __future__ import annotations

from citychain import codec
from citychain.crypto import CryptoSuite
from citychain.errors import DecodeError, ErrorCode
from citychain.state.interface import StateReader

ADDRESS_SIZE = 20
NONCE_PREFIX = b"a/n/"
CONTRACT_PREFIX = b"c/"
#: The longest key a contract may use inside its namespace (the store allows 4,096 in all).
MAX_CONTRACT_KEY = 1024


def account_nonce_key(address: bytes) -> bytes:
    """The state key of an account's nonce."""
    return NONCE_PREFIX + address


def encode_nonce(nonce: int) -> bytes:
    return codec.encode_trusted(nonce)


def decode_nonce(raw: bytes | None) -> int:
    """The nonce stored as ``raw`` (None: the account has never sent a transaction)."""
    if raw is None:
        return 0
    value = codec.decode(raw)
    if type(value) is not int or value < 0:
        raise DecodeError(
            f"account nonce is not an unsigned integer: {raw.hex()}", ErrorCode.MALFORMED
        )
    return value


def account_nonce(state: StateReader, address: bytes) -> int:
    """The next nonce ``address`` must use: how many of its transactions have executed."""
    return decode_nonce(state.get(account_nonce_key(address)))


def contract_prefix(name: str) -> bytes:
    """The prefix of every state key of contract ``name``: ``c/<name>/``."""
    return CONTRACT_PREFIX + name.encode() + b"/"


def contract_key(name: str, key: bytes) -> bytes:
    """The state key of ``key`` in contract ``name``'s namespace (e.g. for a proof request)."""
    return CONTRACT_PREFIX + name.encode() + b"/" + key


def contract_address(suite: CryptoSuite, name: str) -> bytes:
    """The 20-byte address a contract acts as when it calls another contract."""
    return suite.hash(b"citychain/contract/" + name.encode())[:ADDRESS_SIZE]
