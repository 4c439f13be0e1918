"""Contracts, the registry, genesis hooks, gas schedules, argument helpers, iteration model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from exec_helpers import SUITE, Chain, DictState, block_ctx, registry, signer
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.errors import ConfigError, ErrorCode, ExecutionFailure, InvalidInput
from citychain.execution import (
    Context,
    Contract,
    ContractRegistry,
    Executor,
    GasSchedule,
    arg_bytes,
    arg_str,
    method,
    query,
)
from citychain.execution.keys import contract_key


class Base(Contract):
    name = "base"

    @method
    def a(self, ctx: Context, args: dict[str, Any]) -> int:
        return 1

    @query
    def b(self, ctx: Context, args: dict[str, Any]) -> int:
        return 2

    def helper(self) -> None:
        """Not decorated: not callable from outside."""


class Derived(Base):
    name = "derived"

    def a(self, ctx: Context, args: dict[str, Any]) -> int:  # no decorator: withdrawn
        return 3

    @method
    def c(self, ctx: Context, args: dict[str, Any]) -> int:
        return 4


class Seeded(Contract):
    name = "seeded"

    def genesis(self, ctx: Context, params: dict[str, Any]) -> None:
        for key, value in params.get("pairs", []):
            ctx.set(key, value)
        if params.get("fail") == "config":
            raise ConfigError("seeded: refused")
        if params.get("fail") == "args":
            arg_str(params, "missing")
        if params.get("fail") == "bug":
            raise KeyError("oops")


def test_entry_points_follow_decorators_and_inheritance() -> None:
    assert {n: s.read_only for n, s in Base.entries.items()} == {"a": False, "b": True}
    assert {n: s.read_only for n, s in Derived.entries.items()} == {"b": True, "c": False}
    with pytest.raises(ExecutionFailure) as info:
        Derived().lookup("a")
    assert info.value.code == ErrorCode.UNKNOWN_METHOD and "b, c" in info.value.message


def test_entry_point_names_are_checked_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match="entry point names"):

        class Bad(Contract):
            name = "bad"

            @method
            def _hidden(self, ctx: Context, args: dict[str, Any]) -> None:
                pass


def test_registry_names_and_refusals() -> None:
    reg = ContractRegistry()
    reg.register(Derived())
    reg.register(Base())
    assert reg.names() == ("base", "derived")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register(Base())
    for bad in ("Token", "a/b", "", "9lives", "x" * 65):
        contract: Contract = type("C", (Contract,), {"name": bad})()
        with pytest.raises(ConfigError, match="invalid"):
            reg.register(contract)
    with pytest.raises(ExecutionFailure) as info:
        reg.get("nope")
    assert info.value.code == ErrorCode.UNKNOWN_CONTRACT and "base, derived" in info.value.message


def genesis_executor() -> Executor:
    reg = registry()
    reg.register(Seeded())
    reg.register(Base())
    return Executor(reg, SUITE)


def test_init_genesis_runs_hooks_and_returns_sorted_writes() -> None:
    writes = genesis_executor().init_genesis(
        DictState(),
        block_ctx(0),
        {"seeded": {"pairs": [[b"z", b"1"], [b"a", b"2"]]}, "token": {"issuers": []}},
    )
    assert writes == {contract_key("seeded", b"a"): b"2", contract_key("seeded", b"z"): b"1"}
    assert list(writes) == sorted(writes)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"nosuch": {}}, "unknown contract(s) nosuch"),
        ({"base": {"x": 1}}, "takes no genesis parameters"),
        ({"seeded": {"fail": "config"}}, "seeded: refused"),
        ({"seeded": {"fail": "args"}}, "genesis of contract 'seeded': missing argument"),
        ({"seeded": {"fail": "bug"}}, "genesis of contract 'seeded' failed"),
        ({"seeded": [1]}, "must be a map"),
    ],
)
def test_init_genesis_refusals_are_config_errors(params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        genesis_executor().init_genesis(DictState(), block_ctx(0), params)
    assert fragment in info.value.message


def test_gas_schedule_validation_and_overrides() -> None:
    assert GasSchedule.from_dict({"tx_base": 5}).tx_base == 5
    assert GasSchedule.from_dict(GasSchedule().to_dict()) == GasSchedule()
    with pytest.raises(ConfigError, match="unknown gas schedule field"):
        GasSchedule.from_dict({"tx_bse": 5})
    with pytest.raises(ConfigError, match="read_base"):
        GasSchedule(read_base=-1)
    with pytest.raises(ConfigError, match="write_byte"):
        GasSchedule.from_dict({"write_byte": 1.5})
    with pytest.raises(ConfigError):
        GasSchedule(max_gas_per_tx=0)
    assert GasSchedule().intrinsic(100) == 2_000 + 100 * 10


def test_argument_helpers_name_the_argument() -> None:
    assert arg_bytes({"k": b"ab"}, "k", size=2) == b"ab"
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: arg_bytes({"k": b"abc"}, "k", size=2), "'k' must be 2 bytes"),
        (lambda: arg_bytes({"k": b"x" * 5}, "k", max_size=4), "'k' must be at most 4 bytes"),
        (lambda: arg_bytes({"k": "text"}, "k"), "'k' must be a byte string"),
        (lambda: arg_str({"s": ""}, "s"), "'s' must be 1 to 256"),
        (lambda: arg_str({"s": b"x"}, "s"), "'s' must be a text string"),
        (lambda: arg_str({}, "s"), "missing argument 's'"),
    ]
    for call, fragment in cases:
        with pytest.raises(InvalidInput) as info:
            call()
        assert info.value.code == ErrorCode.BAD_ARGUMENTS
        assert fragment in info.value.message


def test_executor_refuses_bad_call_depth_and_query_caller() -> None:
    with pytest.raises(ConfigError):
        Executor(registry(), SUITE, max_call_depth=0)
    chain = Chain({})
    with pytest.raises(InvalidInput) as info:
        chain.executor.query(chain.state, block_ctx(0), "token", "total_supply", {}, b"x")
    assert info.value.code == ErrorCode.BAD_ARGUMENTS


# -- iteration against a model -------------------------------------------------------------
keys_st = st.binary(min_size=1, max_size=3).map(lambda k: b"p" + k)
values_st = st.binary(min_size=1, max_size=4)


@settings(max_examples=50, deadline=None)
@given(
    base=st.dictionaries(keys_st, values_st, max_size=12),
    edits=st.lists(st.tuples(keys_st, st.one_of(st.none(), values_st)), max_size=12),
    split=st.integers(0, 12),
    prefix=st.binary(max_size=2).map(lambda p: b"p" + p),
)
def test_iteration_equals_a_model_of_base_plus_pending_writes(
    base: dict[bytes, bytes],
    edits: list[tuple[bytes, bytes | None]],
    split: int,
    prefix: bytes,
) -> None:
    alice = signer(2)
    chain = Chain({})
    chain.state.apply({contract_key("probe", k): v for k, v in base.items()})
    chain.state.apply({contract_key("other", k): b"hidden" for k in base})  # other namespace
    model = dict(base)
    earlier, own = edits[:split], edits[split:]
    txs = []
    for k, v in earlier:  # committed by earlier txs of the same block
        if v is None:
            txs.append(chain.tx(alice, "probe", "delete", {"key": k}))
        else:
            txs.append(chain.tx(alice, "probe", "put", {"key": k, "value": v}))
    sets = [[k, v] for k, v in own if v is not None]
    deletes = [k for k, v in own if v is None]
    txs.append(
        chain.tx(
            alice, "probe", "edit_and_list", {"prefix": prefix, "set": sets, "delete": deletes}
        )
    )
    for k, v in earlier:
        if v is None:
            model.pop(k, None)
        else:
            model[k] = v
    for k, v in sets:
        model[k] = v
    for k in deletes:
        model.pop(k, None)
    result = chain.run(*txs)
    assert all(r.ok for r in result.receipts)
    expected = [[k, v] for k, v in sorted(model.items()) if k.startswith(prefix)]
    assert result.receipts[-1].result == expected
