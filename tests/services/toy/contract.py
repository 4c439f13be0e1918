"""The ``toy`` contract: each account may leave one short note.

Theory of operation: ``write(text)`` stores ``text`` under ``note/<caller>`` in the contract's
namespace and emits ``noted``; ``read(owner)`` answers the note or None. Nothing else.
"""

from __future__ import annotations

from typing import Any

from citychain.services.toy.shapes import MAX_NOTE, NAME

from citychain import codec
from citychain.execution import Context, Contract, arg_address, arg_str, method, only_args, query


class Toy(Contract):
    name = NAME

    @method
    def write(self, ctx: Context, args: dict[str, Any]) -> None:
        only_args(args, "text")
        text = arg_str(args, "text", max_len=MAX_NOTE)
        ctx.set(b"note/" + ctx.caller, codec.encode(text))
        ctx.emit("noted", owner=ctx.caller)

    @query
    def read(self, ctx: Context, args: dict[str, Any]) -> str | None:
        only_args(args, "owner")
        raw = ctx.get(b"note/" + arg_address(args, "owner"))
        return None if raw is None else str(codec.decode(raw))


def system_contract() -> Toy:
    return Toy()
