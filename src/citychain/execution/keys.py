"""Reading and writing the state key space: the layout itself is pure data, in
:mod:`citychain.types.state_keys` (so the SDK and the services' shapes name keys without the
node); this module adds what needs state or a suite: nonces and contract addresses.
"""

from __future__ import annotations

from citychain import codec
from citychain.crypto import CryptoSuite
from citychain.errors import DecodeError, ErrorCode
from citychain.state.interface import StateReader
from citychain.types.state_keys import ADDRESS_SIZE as ADDRESS_SIZE
from citychain.types.state_keys import CONTRACT_PREFIX as CONTRACT_PREFIX
from citychain.types.state_keys import MAX_CONTRACT_KEY as MAX_CONTRACT_KEY
from citychain.types.state_keys import NONCE_PREFIX as NONCE_PREFIX
from citychain.types.state_keys import account_nonce_key as account_nonce_key
from citychain.types.state_keys import contract_key as contract_key
from citychain.types.state_keys import contract_prefix as contract_prefix


def encode_nonce(nonce: int) -> bytes:
    return codec.encode_trusted(nonce)


def decode_nonce(raw: bytes | None) -> int:
    """The nonce stored as ``raw`` (None: the account has never sent a transaction)."""
    if raw is None:
        return 0
    # The executor's own record, written canonical by encode_nonce: the canonical re-check
    # of codec.decode would find nothing (read at every admission and every execution).
    value = codec.decode_trusted(raw)
    if type(value) is not int or value < 0:
        raise DecodeError(
            f"account nonce is not an unsigned integer: {raw.hex()}", ErrorCode.MALFORMED
        )
    return value


def account_nonce(state: StateReader, address: bytes) -> int:
    """The next nonce ``address`` must use: how many of its transactions have executed."""
    return decode_nonce(state.get(account_nonce_key(address)))


def contract_address(suite: CryptoSuite, name: str) -> bytes:
    """The 20-byte address a contract acts as when it calls another contract."""
    return suite.hash(b"citychain/contract/" + name.encode())[:ADDRESS_SIZE]
