"""``token``: the chain's fungible token (balances, issuers, supply).

State (inside the contract's namespace ``c/token/``)::

    bal/<address 20 bytes>   balance, canonical CBOR uint; absent = 0 (a zero balance is deleted)
    iss/<address 20 bytes>   present (CBOR true) iff the address may mint
    supply                   total supply, canonical CBOR uint; absent = 0

:func:`~citychain.services.token.shapes.balance_key` gives the full state key of a balance, to
ask a node for its proof (the layout is in :mod:`citychain.services.token.shapes`).
Amounts are integers in ``[1, 2**128 - 1]`` and the total supply never exceeds ``2**128 - 1``.

Entry points (``ctx.caller`` is the signer's address, or a contract's address when a contract
calls)::

    mint(to, amount)       only an issuer; event "mint" {issuer, to, amount}
    transfer(to, amount)   from the caller; event "transfer" {from, to, amount}
    burn(amount)           from the caller; event "burn" {from, amount}
    balance(owner) -> int          query
    total_supply() -> int          query
    issuers() -> [address, ...]    query, ascending

Genesis parameters::

    {"issuers":  [address, ...],
     "balances": {"<40 hex digits>": amount, ...}   or   [[address, amount], ...]}

where an address is 20 bytes (``{"hex": "..."}`` in genesis.json) or a 40-digit hex string.
``"initial"`` is accepted as another name for ``"balances"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from citychain import codec
from citychain.errors import (
    ConfigError,
    DecodeError,
    ErrorCode,
    ExecutionFailure,
    InternalError,
    InvalidInput,
)
from citychain.execution import (
    Context,
    Contract,
    arg_address,
    arg_int,
    method,
    only_args,
    query,
)
from citychain.execution.args import MAX_UINT128
from citychain.services.token.shapes import BAL as _BAL
from citychain.services.token.shapes import ISS as _ISS
from citychain.services.token.shapes import NAME as NAME
from citychain.services.token.shapes import SUPPLY as _SUPPLY
from citychain.services.token.shapes import balance_key as balance_key
from citychain.types.address import to_address

MAX_SUPPLY = MAX_UINT128
_TRUE = codec.encode(True)


def _amount(raw: bytes | None) -> int:
    if raw is None:
        return 0
    try:
        # This contract's own records, written canonical by _put_amount: the canonical
        # re-check of codec.decode (~2 µs, twice a transfer) would find nothing here.
        value = codec.decode_trusted(raw)
    except DecodeError:
        value = None
    if type(value) is not int or value < 0:
        raise InternalError(f"token state holds a malformed amount: {raw.hex()}")
    return value


def _put_amount(ctx: Context, key: bytes, amount: int) -> None:
    if amount:
        ctx.set(key, codec.encode_trusted(amount))
    else:
        ctx.delete(key)


class Token(Contract):
    name = NAME

    # -- genesis ---------------------------------------------------------------------------
    def genesis(self, ctx: Context, params: dict[str, Any]) -> None:
        unknown = sorted(set(params) - {"issuers", "balances", "initial"})
        if unknown:
            raise ConfigError(
                f"token genesis: unknown parameter(s) {', '.join(unknown)} "
                "(known: issuers, balances)"
            )
        if "balances" in params and "initial" in params:
            raise ConfigError("token genesis: give 'balances' or 'initial', not both")
        issuers = params.get("issuers", [])
        if not isinstance(issuers, list):
            raise ConfigError("token genesis: 'issuers' must be a list of addresses")
        for i, raw in enumerate(issuers):
            ctx.set(_ISS + _genesis_address(raw, f"issuers[{i}]"), _TRUE)

        balances = params.get("balances", params.get("initial", {}))
        if isinstance(balances, Mapping):
            pairs = list(balances.items())
        elif isinstance(balances, list) and all(
            isinstance(p, list) and len(p) == 2 for p in balances
        ):
            pairs = [(p[0], p[1]) for p in balances]
        else:
            raise ConfigError(
                "token genesis: 'balances' must be a map of address to amount or a list of "
                "[address, amount] pairs"
            )
        seen: set[bytes] = set()
        supply = 0
        for raw, amount in pairs:
            addr = _genesis_address(raw, f"balances address {raw!r}")
            if addr in seen:
                raise ConfigError(f"token genesis: address {addr.hex()} has two balances")
            seen.add(addr)
            if type(amount) is not int or not 0 <= amount <= MAX_SUPPLY:
                raise ConfigError(
                    f"token genesis: the balance of {addr.hex()} must be an integer in "
                    f"[0, 2**128 - 1], got {amount!r}"
                )
            supply += amount
            if amount:
                ctx.set(_BAL + addr, codec.encode(amount))
        if supply > MAX_SUPPLY:
            raise ConfigError("token genesis: the balances add up to more than 2**128 - 1")
        if supply:
            ctx.set(_SUPPLY, codec.encode(supply))

    # -- transactions ----------------------------------------------------------------------
    @method
    def mint(self, ctx: Context, args: dict[str, Any]) -> None:
        only_args(args, "to", "amount")
        to = arg_address(args, "to")
        amount = arg_int(args, "amount", min_value=1)
        issuer = ctx.caller
        if ctx.get(_ISS + issuer) is None:
            raise ExecutionFailure(
                f"only an issuer may mint; {issuer.hex()} is not one", ErrorCode.UNAUTHORIZED
            )
        supply = _amount(ctx.get(_SUPPLY)) + amount
        if supply > MAX_SUPPLY:
            raise InvalidInput(
                f"argument 'amount' would take the total supply above {MAX_SUPPLY}",
                ErrorCode.BAD_ARGUMENTS,
            )
        ctx.set(_SUPPLY, codec.encode_trusted(supply))
        key = _BAL + to
        ctx.set(key, codec.encode_trusted(_amount(ctx.get(key)) + amount))
        ctx.emit("mint", issuer=issuer, to=to, amount=amount)

    @method
    def transfer(self, ctx: Context, args: dict[str, Any]) -> None:
        only_args(args, "to", "amount")
        to = arg_address(args, "to")
        amount = arg_int(args, "amount", min_value=1)
        sender = ctx.caller
        from_key = _BAL + sender
        balance = _amount(ctx.get(from_key))
        if balance < amount:
            raise ExecutionFailure(
                f"balance {balance} of {sender.hex()} is less than the amount {amount}",
                ErrorCode.INSUFFICIENT_FUNDS,
            )
        if to != sender:
            _put_amount(ctx, from_key, balance - amount)
            to_key = _BAL + to
            ctx.set(to_key, codec.encode_trusted(_amount(ctx.get(to_key)) + amount))
        ctx.emit("transfer", **{"from": sender, "to": to, "amount": amount})

    @method
    def burn(self, ctx: Context, args: dict[str, Any]) -> None:
        only_args(args, "amount")
        amount = arg_int(args, "amount", min_value=1)
        sender = ctx.caller
        key = _BAL + sender
        balance = _amount(ctx.get(key))
        if balance < amount:
            raise ExecutionFailure(
                f"balance {balance} of {sender.hex()} is less than the amount {amount}",
                ErrorCode.INSUFFICIENT_FUNDS,
            )
        _put_amount(ctx, key, balance - amount)
        _put_amount(ctx, _SUPPLY, _amount(ctx.get(_SUPPLY)) - amount)
        ctx.emit("burn", **{"from": sender, "amount": amount})

    # -- queries ---------------------------------------------------------------------------
    @query
    def balance(self, ctx: Context, args: dict[str, Any]) -> int:
        only_args(args, "owner")
        return _amount(ctx.get(_BAL + arg_address(args, "owner")))

    @query
    def total_supply(self, ctx: Context, args: dict[str, Any]) -> int:
        only_args(args)
        return _amount(ctx.get(_SUPPLY))

    @query
    def issuers(self, ctx: Context, args: dict[str, Any]) -> list[bytes]:
        only_args(args)
        return [key[len(_ISS) :] for key, _ in ctx.iter_prefix(_ISS)]


def _genesis_address(raw: Any, where: str) -> bytes:
    try:
        return to_address(raw, where)
    except InvalidInput as exc:
        raise ConfigError(f"token genesis: {exc.message}") from None


def system_contract() -> Token:
    """The contract a node registers for this service (see :mod:`citychain.registry`)."""
    return Token()
