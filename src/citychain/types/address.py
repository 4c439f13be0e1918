"""Addresses as people write them: the one place where user input becomes a 20-byte address.

Theory of operation
-------------------
On chain an address is 20 bytes, and a contract refuses anything else (one encoding per value,
so a transaction's meaning never depends on how a client spelt it). People, though, copy an
address as ``keys show`` prints it: 40 hex digits, sometimes with ``0x``. Before this module, a
hex string sent as ``to`` was signed as a *string*, so the mistake cost a committed, failed
transaction (``bad_arguments: argument 'to' must be a 20-byte address, got str``).

So every edge that takes an address from a person (the SDK's ``Client.send``, queries and
governance helpers, ``balance_key``, the command line) goes through :func:`to_address`, which
accepts bytes or 40 hex digits (``0x`` optional, surrounding whitespace ignored) and refuses
anything else with :class:`~citychain.errors.InvalidInput` (``bad_arguments``) naming the
argument and what it got -- *before* anything is signed or sent.

:func:`call_args` applies it to a call's arguments using :data:`ADDRESS_ARGS`, the table of the
system contracts' methods and queries that take addresses (and :data:`PROPOSAL_ADDRESS_PARAMS`
for governance proposals). The table lives here, below the contracts, because the SDK may not
import them (it installs without the node); ``tests/sdk/test_address.py`` reads the contracts'
source and fails if the table and the contracts' ``arg_address`` calls ever disagree. Calls to
other contracts and methods pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from citychain.errors import ErrorCode, InvalidInput

ADDRESS_SIZE = 20
_HEX40 = re.compile(r"(?:0[xX])?([0-9a-fA-F]{40})")
_HEX = re.compile(r"(?:0[xX])?((?:[0-9a-fA-F]{2})*)")

#: contract -> method or query -> the names of its arguments that are addresses.
ADDRESS_ARGS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "token": {"mint": ("to",), "transfer": ("to",), "balance": ("owner",)},
    "gov": {"remove_member": ("address",), "member": ("address",), "frozen": ("address",)},
}
#: proposal kind -> the names of its ``params`` that are addresses (``gov.propose``).
PROPOSAL_ADDRESS_PARAMS: Mapping[str, tuple[str, ...]] = {
    "revoke": ("address",),
    "freeze": ("address",),
    "unfreeze": ("address",),
}


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"


def to_address(value: object, what: str = "address") -> bytes:
    """``value`` as a 20-byte address: bytes (or bytearray/memoryview) of 20 bytes, or a
    string of 40 hex digits with or without ``0x``. Anything else raises
    :class:`InvalidInput` (``bad_arguments``): ``<what> must be ...``, saying what it got."""
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if len(data) != ADDRESS_SIZE:
            raise _bad(
                f"{what} must be {ADDRESS_SIZE} bytes (40 hex digits), got {len(data)} bytes"
            )
        return data
    if isinstance(value, str):
        text = value.strip()
        m = _HEX40.fullmatch(text)
        if m is not None:
            return bytes.fromhex(m.group(1))
        other = _HEX.fullmatch(text)
        if other is not None and other.group(1):
            size = len(other.group(1)) // 2
            raise _bad(
                f"{what} must be {ADDRESS_SIZE} bytes (40 hex digits), got {size} bytes: "
                f"{_shown(value)}"
            )
        raise _bad(
            f"{what} must be hex digits: an address is 40 of them (0x optional) or "
            f"{ADDRESS_SIZE} bytes, got {_shown(value)}"
        )
    raise _bad(
        f"{what} must be a {ADDRESS_SIZE}-byte address as 40 hex digits or bytes, "
        f"got {type(value).__name__}"
    )


def call_args(contract: str, method: str, args: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``args`` for ``contract.method`` with every address argument of
    :data:`ADDRESS_ARGS` (and a proposal's address params) turned into bytes by
    :func:`to_address`; other arguments, contracts and methods are left as they are."""
    out = dict(args or {})
    for name in ADDRESS_ARGS.get(contract, {}).get(method, ()):
        if name in out:
            out[name] = to_address(out[name], f"argument {name!r}")
    if contract == "gov" and method == "propose":
        kind, params = out.get("kind"), out.get("params")
        names = PROPOSAL_ADDRESS_PARAMS.get(kind, ()) if isinstance(kind, str) else ()
        if names and isinstance(params, Mapping):
            fixed = dict(params)
            for name in names:
                if name in fixed:
                    fixed[name] = to_address(fixed[name], f"param {name!r}")
            out["params"] = fixed
    return out


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)
