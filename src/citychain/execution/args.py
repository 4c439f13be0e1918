"""Argument checks for contract methods.

Each helper reads one argument from a method's ``args`` map and raises
:class:`~citychain.errors.InvalidInput` with code ``BAD_ARGUMENTS`` and a message naming the
argument when it is missing or has the wrong type or range. ``bool`` is never accepted as an
integer. Typical use::

    @method
    def transfer(self, ctx: Context, args: dict[str, Any]) -> None:
        only_args(args, "to", "amount")
        to = arg_address(args, "to")
        amount = arg_int(args, "amount", min_value=1)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from citychain.errors import ErrorCode, InvalidInput
from citychain.execution.keys import ADDRESS_SIZE

#: Default upper bound of :func:`arg_int`: amounts fit in 128 bits.
MAX_UINT128 = 2**128 - 1


def bad_argument(name: str, problem: str) -> InvalidInput:
    """The error for argument ``name``: ``argument 'name' <problem>``."""
    return InvalidInput(f"argument {name!r} {problem}", ErrorCode.BAD_ARGUMENTS)


def _require(args: Mapping[str, Any], name: str) -> Any:
    try:
        return args[name]
    except KeyError:
        raise InvalidInput(f"missing argument {name!r}", ErrorCode.BAD_ARGUMENTS) from None


def only_args(args: Mapping[str, Any], *names: str) -> None:
    """Refuse any argument not in ``names`` (a typo must not be silently ignored)."""
    for key in args:
        if key in names:
            continue
        extra = sorted(k for k in args if k not in names)
        expected = ", ".join(names) if names else "none"
        raise InvalidInput(
            f"unknown argument(s) {', '.join(map(repr, extra))} (expected: {expected})",
            ErrorCode.BAD_ARGUMENTS,
        )


def arg_int(
    args: Mapping[str, Any], name: str, *, min_value: int = 0, max_value: int = MAX_UINT128
) -> int:
    """An integer in ``[min_value, max_value]``."""
    value = _require(args, name)
    if type(value) is not int:
        raise bad_argument(name, f"must be an integer, got {type(value).__name__}")
    if value < min_value:
        raise bad_argument(name, f"must be at least {min_value}, got {value}")
    if value > max_value:
        raise bad_argument(name, f"must be at most {max_value}, got {value}")
    return value


def arg_bytes(
    args: Mapping[str, Any], name: str, *, size: int | None = None, max_size: int = 1024
) -> bytes:
    """A byte string of exactly ``size`` bytes, or of at most ``max_size``."""
    value = _require(args, name)
    if type(value) is not bytes:
        raise bad_argument(name, f"must be a byte string, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise bad_argument(name, f"must be {size} bytes, got {len(value)}")
    if len(value) > max_size:
        raise bad_argument(name, f"must be at most {max_size} bytes, got {len(value)}")
    return value


def arg_address(args: Mapping[str, Any], name: str) -> bytes:
    """A 20-byte account or contract address."""
    value = _require(args, name)
    if type(value) is not bytes or len(value) != ADDRESS_SIZE:
        got = f"{len(value)} bytes" if type(value) is bytes else type(value).__name__
        raise bad_argument(name, f"must be a {ADDRESS_SIZE}-byte address, got {got}")
    return value


def arg_str(args: Mapping[str, Any], name: str, *, max_len: int = 256) -> str:
    """A non-empty text string of at most ``max_len`` characters."""
    value = _require(args, name)
    if type(value) is not str:
        raise bad_argument(name, f"must be a text string, got {type(value).__name__}")
    if not value or len(value) > max_len:
        raise bad_argument(name, f"must be 1 to {max_len} characters, got {len(value)}")
    return value
