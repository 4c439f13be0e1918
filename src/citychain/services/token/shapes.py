"""The token's shapes: its contract name and the layout of its state, with no node needed.

An SDK user asks a node for a proven balance with :func:`balance_key` (``Client.get_state``);
the contract (:mod:`citychain.services.token.contract`) reads and writes the same keys.
"""

from __future__ import annotations

from citychain.types.address import to_address
from citychain.types.state_keys import contract_key

NAME = "token"
#: Inside the contract's namespace ``c/token/``: ``bal/<address>`` a balance, ``iss/<address>``
#: an issuer's mark, ``supply`` the total supply.
BAL = b"bal/"
ISS = b"iss/"
SUPPLY = b"supply"
_BALANCE_PREFIX = contract_key(NAME, BAL)


def balance_key(address: bytes | str) -> bytes:
    """The full state key of ``address``'s balance (for a proof request). ``address`` is 20
    bytes or 40 hex digits (``0x`` optional); anything else raises
    :class:`~citychain.errors.InvalidInput` (``bad_arguments``)."""
    return _BALANCE_PREFIX + to_address(address, "address")
