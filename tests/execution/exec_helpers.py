"""Shared helpers of the execution tests: a dict-backed state, signers, a probe contract."""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from typing import Any

from citychain import codec
from citychain.crypto import ED25519, Signer
from citychain.errors import CitychainError, ErrorCode, ExecutionFailure
from citychain.execution import (
    BlockContext,
    BlockResult,
    Context,
    Contract,
    ContractRegistry,
    Executor,
    arg_bytes,
    arg_int,
    method,
    query,
)
from citychain.services.token.contract import Token
from citychain.types import Transaction

CHAIN = "test-chain"
SUITE = ED25519


class DictState:
    """An in-memory StateReader; ``apply`` commits a block's writes."""

    def __init__(self, data: Mapping[bytes, bytes] | None = None) -> None:
        self.data: dict[bytes, bytes] = dict(data or {})

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def iter_prefix(
        self, prefix: bytes, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(self.data)
        i = bisect_left(keys, prefix if after is None else prefix + after + b"\x00")
        while i < len(keys) and keys[i].startswith(prefix):
            yield keys[i], self.data[keys[i]]
            i += 1

    def apply(self, writes: Mapping[bytes, bytes | None]) -> None:
        for k, v in writes.items():
            if v is None:
                self.data.pop(k, None)
            else:
                self.data[k] = v

    def copy(self) -> DictState:
        return DictState(self.data)


def signer(i: int) -> Signer:
    return Signer(SUITE, i.to_bytes(32, "big"))


def block_ctx(height: int = 1, chain_id: str = CHAIN) -> BlockContext:
    return BlockContext(chain_id, height, 1_700_000_000_000 + height, b"proposer")


class Probe(Contract):
    """A contract that does whatever a test needs."""

    name = "probe"

    @method
    def put(self, ctx: Context, args: dict[str, Any]) -> None:
        ctx.set(arg_bytes(args, "key"), arg_bytes(args, "value"))
        ctx.emit("put", key=args["key"])

    @method
    def delete(self, ctx: Context, args: dict[str, Any]) -> None:
        ctx.delete(arg_bytes(args, "key"))

    @method
    def put_then_fail(self, ctx: Context, args: dict[str, Any]) -> None:
        ctx.set(b"doomed", b"1")
        ctx.emit("doomed")
        raise ExecutionFailure("deliberately refused", ErrorCode.UNAUTHORIZED)

    @method
    def boom(self, ctx: Context, args: dict[str, Any]) -> None:
        ctx.set(b"doomed", b"1")
        _ = 1 // 0

    @method
    def spin(self, ctx: Context, args: dict[str, Any]) -> None:
        ctx.set(b"doomed", b"1")
        while True:
            ctx.get(b"anything")

    @method
    def read_swallowing_everything(self, ctx: Context, args: dict[str, Any]) -> str:
        try:
            ctx.get(arg_bytes(args, "key"))
            list(ctx.iter_prefix(b""))
        except Exception:  # a careless contract must not hide a broken disk
            return "hidden"
        return "read"

    @method
    def swallow_oog(self, ctx: Context, args: dict[str, Any]) -> str:
        ctx.set(b"doomed", b"1")
        try:
            while True:
                ctx.get(b"anything")
        except CitychainError:
            return "survived"

    @method
    def whoami(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "caller": ctx.caller,
            "origin": ctx.origin,
            "sender_public_key": ctx.sender_public_key,
            "address": ctx.address,
            "height": ctx.height,
            "time": ctx.time,
            "chain_id": ctx.chain_id,
            "tx_hash": ctx.tx_hash,
            "depth": ctx.depth,
        }

    @method
    def relay(self, ctx: Context, args: dict[str, Any]) -> Any:
        ctx.set(b"relayed", b"1")
        return ctx.call(args["contract"], args["method"], args.get("args", {}))

    @method
    def relay_swallow(self, ctx: Context, args: dict[str, Any]) -> str:
        with contextlib.suppress(CitychainError):
            ctx.call(args["contract"], args["method"], args.get("args", {}))
        ctx.set(b"after", b"1")
        return "swallowed"

    @method
    def recurse(self, ctx: Context, args: dict[str, Any]) -> int:
        n = arg_int(args, "n")
        if n == 0:
            return ctx.depth
        result: int = ctx.call("probe", "recurse", {"n": n - 1})
        return result

    @method
    def mutate_args(self, ctx: Context, args: dict[str, Any]) -> None:
        args["injected"] = 1
        args["list"].append(99)

    @method
    def listing(self, ctx: Context, args: dict[str, Any]) -> list[list[bytes]]:
        return [[k, v] for k, v in ctx.iter_prefix(args.get("prefix", b""))]

    @method
    def edit_and_list(self, ctx: Context, args: dict[str, Any]) -> list[list[bytes]]:
        for k, v in args.get("set", []):
            ctx.set(k, v)
        for k in args.get("delete", []):
            ctx.delete(k)
        return [[k, v] for k, v in ctx.iter_prefix(args.get("prefix", b""))]

    @method
    def edit_and_page(self, ctx: Context, args: dict[str, Any]) -> list[Any]:
        """Edit, then list ``prefix`` whole and from ``after``: [whole, page, gas of page]."""
        for k, v in args.get("set", []):
            ctx.set(k, v)
        for k in args.get("delete", []):
            ctx.delete(k)
        prefix = args.get("prefix", b"")
        whole = [[k, v] for k, v in ctx.iter_prefix(prefix)]
        before = ctx.gas_used
        page = [[k, v] for k, v in ctx.iter_prefix(prefix, after=args["after"])]
        return [whole, page, ctx.gas_used - before]

    @method
    def bad_return(self, ctx: Context, args: dict[str, Any]) -> Any:
        return {"x": 1.5}

    @method
    def bad_event(self, ctx: Context, args: dict[str, Any]) -> None:
        ctx.emit("bad", value={1, 2})

    @method
    def empty_value(self, ctx: Context, args: dict[str, Any]) -> None:
        ctx.set(b"k", b"")

    @query
    def read(self, ctx: Context, args: dict[str, Any]) -> bytes | None:
        return ctx.get(arg_bytes(args, "key"))

    @query
    def count(self, ctx: Context, args: dict[str, Any]) -> int:
        return sum(1 for _ in ctx.iter_prefix(arg_bytes(args, "prefix")))

    @query
    def write_in_query(self, ctx: Context, args: dict[str, Any]) -> None:
        ctx.set(b"k", b"v")

    @query
    def whoami_q(self, ctx: Context, args: dict[str, Any]) -> list[Any]:
        return [ctx.caller, ctx.origin, ctx.read_only]


def registry(*, probe: bool = True) -> ContractRegistry:
    reg = ContractRegistry()
    reg.register(Token())
    if probe:
        reg.register(Probe())
    return reg


class Chain:
    """A tiny chain driver over a DictState: genesis, then blocks of signed transactions."""

    def __init__(
        self,
        token_params: dict[str, Any] | None = None,
        *,
        executor: Executor | None = None,
    ) -> None:
        self.executor = executor or Executor(registry(), SUITE)
        self.state = DictState()
        params = {"token": token_params} if token_params is not None else {}
        self.state.apply(self.executor.init_genesis(self.state, block_ctx(0), params))
        self.height = 0
        self.nonces: dict[bytes, int] = {}

    def tx(
        self,
        who: Signer,
        contract: str,
        method_name: str,
        args: dict[str, Any] | None = None,
        *,
        nonce: int | None = None,
        **kw: Any,
    ) -> Transaction:
        if nonce is None:
            nonce = self.nonces.get(who.address, 0)
            self.nonces[who.address] = nonce + 1
        return Transaction.create(
            who,
            chain_id=kw.pop("chain_id", CHAIN),
            nonce=nonce,
            contract=contract,
            method=method_name,
            args=args or {},
            **kw,
        )

    def run(self, *txs: Transaction) -> BlockResult:
        self.height += 1
        result = self.executor.execute_block(self.state, block_ctx(self.height), txs)
        assert len(result.receipts) == len(txs)
        self.state.apply(result.writes)
        return result

    def query(self, contract: str, method_name: str, args: dict[str, Any] | None = None) -> Any:
        return self.executor.query(
            self.state, block_ctx(self.height), contract, method_name, args or {}
        )

    def balance(self, who: Signer | bytes) -> int:
        addr = who if isinstance(who, bytes) else who.address
        result: int = self.query("token", "balance", {"owner": addr})
        return result


def decode(raw: bytes) -> Any:
    return codec.decode(raw)
