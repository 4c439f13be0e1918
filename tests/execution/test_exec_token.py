"""The token contract: what holders, issuers and the SDK rely on."""

from __future__ import annotations

from typing import Any

import pytest
from exec_helpers import CHAIN, SUITE, Chain, DictState, block_ctx, decode, registry, signer

from citychain import codec
from citychain.errors import ConfigError, ErrorCode, ExecutionFailure, InvalidInput
from citychain.execution import Executor, default_registry, keys
from citychain.services.token.contract import Token
from citychain.services.token.shapes import balance_key
from citychain.types import Event

ISSUER, ALICE, BOB = signer(1), signer(2), signer(3)


def fresh(**balances: int) -> Chain:
    who = {"alice": ALICE, "bob": BOB, "issuer": ISSUER}
    return Chain(
        {
            "issuers": [ISSUER.address],
            "balances": {who[k].address.hex(): v for k, v in balances.items()},
        }
    )


def test_genesis_sets_balances_supply_and_issuers() -> None:
    chain = fresh(alice=100, bob=5)
    assert chain.balance(ALICE) == 100
    assert chain.balance(BOB) == 5
    assert chain.balance(ISSUER) == 0
    assert chain.query("token", "total_supply") == 105
    assert chain.query("token", "issuers") == [ISSUER.address]


def test_genesis_list_form_hex_strings_and_initial_alias() -> None:
    listed = Chain(
        {
            "issuers": ["0x" + ISSUER.address.hex(), ALICE.address],
            "initial": [[ALICE.address, 7], [BOB.address.hex(), 3]],
        }
    )
    assert listed.balance(ALICE) == 7
    assert listed.balance(BOB) == 3
    assert listed.query("token", "issuers") == sorted([ISSUER.address, ALICE.address])


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"issuers": [b"short"]}, "issuers[0]"),
        ({"issuers": "nope"}, "'issuers' must be a list"),
        ({"balances": {"zz": 1}}, "balances address 'zz' must be hex digits"),
        ({"balances": {ALICE.address.hex(): -1}}, ALICE.address.hex()),
        ({"balances": {ALICE.address.hex(): True}}, "must be an integer"),
        ({"balances": [[ALICE.address, 1], [ALICE.address, 2]]}, "two balances"),
        ({"balances": {ALICE.address.hex(): 2**128 - 1, BOB.address.hex(): 1}}, "add up"),
        ({"balances": {}, "initial": {}}, "not both"),
        ({"supply": 5}, "unknown parameter"),
    ],
)
def test_genesis_refuses_bad_params_with_config_error(
    params: dict[str, Any], fragment: str
) -> None:
    ex = Executor(registry(), SUITE)
    with pytest.raises(ConfigError) as info:
        ex.init_genesis(DictState(), block_ctx(0), {"token": params})
    assert info.value.code == ErrorCode.BAD_CONFIG
    assert fragment in info.value.message


def test_transfer_moves_funds_and_emits_event() -> None:
    chain = fresh(alice=100)
    r = chain.run(chain.tx(ALICE, "token", "transfer", {"to": BOB.address, "amount": 30}))
    (receipt,) = r.receipts
    assert receipt.ok and receipt.message == "" and receipt.result is None
    assert receipt.events == (
        Event("token", "transfer", {"from": ALICE.address, "to": BOB.address, "amount": 30}),
    )
    assert (chain.balance(ALICE), chain.balance(BOB)) == (70, 30)
    assert chain.query("token", "total_supply") == 100
    assert receipt.gas_used > 0 and r.gas_used == receipt.gas_used


def test_balances_live_at_balance_key_as_canonical_ints() -> None:
    chain = fresh(alice=100)
    chain.run(chain.tx(ALICE, "token", "transfer", {"to": BOB.address, "amount": 1}))
    assert balance_key(BOB.address) == b"c/token/bal/" + BOB.address
    assert chain.state.get(balance_key(BOB.address)) == codec.encode(1)
    assert decode(chain.state.get(balance_key(ALICE.address)) or b"") == 99


def test_transfer_of_whole_balance_deletes_the_key_and_to_self_is_a_no_op() -> None:
    chain = fresh(alice=10)
    r = chain.run(chain.tx(ALICE, "token", "transfer", {"to": ALICE.address, "amount": 10}))
    assert r.receipts[0].ok and chain.balance(ALICE) == 10
    assert balance_key(ALICE.address) not in r.writes
    r = chain.run(chain.tx(ALICE, "token", "transfer", {"to": BOB.address, "amount": 10}))
    assert r.writes[balance_key(ALICE.address)] is None
    assert chain.balance(ALICE) == 0 and chain.balance(BOB) == 10


def test_mint_by_issuer_and_burn() -> None:
    chain = fresh(alice=1)
    r = chain.run(
        chain.tx(ISSUER, "token", "mint", {"to": ALICE.address, "amount": 50}),
        chain.tx(ALICE, "token", "burn", {"amount": 20}),
    )
    mint, burn = r.receipts
    assert mint.ok and burn.ok
    assert mint.events == (
        Event("token", "mint", {"issuer": ISSUER.address, "to": ALICE.address, "amount": 50}),
    )
    assert burn.events == (Event("token", "burn", {"from": ALICE.address, "amount": 20}),)
    assert chain.balance(ALICE) == 31
    assert chain.query("token", "total_supply") == 31


def test_mint_by_non_issuer_is_unauthorized() -> None:
    chain = fresh()
    (r,) = chain.run(chain.tx(ALICE, "token", "mint", {"to": ALICE.address, "amount": 5})).receipts
    assert r.code == ErrorCode.UNAUTHORIZED
    assert ALICE.address.hex() in r.message
    assert chain.balance(ALICE) == 0 and chain.query("token", "total_supply") == 0


def test_mint_cannot_overflow_supply() -> None:
    chain = fresh(alice=2**128 - 2)
    ok, over = chain.run(
        chain.tx(ISSUER, "token", "mint", {"to": BOB.address, "amount": 1}),
        chain.tx(ISSUER, "token", "mint", {"to": BOB.address, "amount": 1}),
    ).receipts
    assert ok.ok
    assert over.code == ErrorCode.BAD_ARGUMENTS and "'amount'" in over.message
    assert chain.query("token", "total_supply") == 2**128 - 1


@pytest.mark.parametrize("method", ["transfer", "burn"])
def test_spending_more_than_the_balance_is_insufficient_funds(method: str) -> None:
    chain = fresh(alice=10)
    args: dict[str, Any] = {"amount": 11}
    if method == "transfer":
        args["to"] = BOB.address
    (r,) = chain.run(chain.tx(ALICE, "token", method, args)).receipts
    assert r.code == ErrorCode.INSUFFICIENT_FUNDS
    assert "10" in r.message and "11" in r.message
    assert chain.balance(ALICE) == 10 and chain.query("token", "total_supply") == 10


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"to": b"\x01" * 19, "amount": 1}, "'to'"),
        ({"to": "not bytes", "amount": 1}, "'to'"),
        ({"amount": 1}, "'to'"),
        ({"to": BOB.address, "amount": 0}, "'amount'"),
        ({"to": BOB.address, "amount": -5}, "'amount'"),
        ({"to": BOB.address, "amount": True}, "'amount'"),
        ({"to": BOB.address, "amount": 2**128}, "'amount'"),
        ({"to": BOB.address}, "'amount'"),
        ({"to": BOB.address, "amount": 1, "ammount": 1}, "'ammount'"),
    ],
)
def test_bad_transfer_arguments_name_the_argument(args: dict[str, Any], named: str) -> None:
    chain = fresh(alice=10)
    (r,) = chain.run(chain.tx(ALICE, "token", "transfer", args)).receipts
    assert r.code == ErrorCode.BAD_ARGUMENTS
    assert named in r.message
    assert r.events == () and chain.balance(ALICE) == 10


def test_queries_refuse_bad_arguments_and_state_changing_methods() -> None:
    chain = fresh(alice=10)
    with pytest.raises(InvalidInput) as info:
        chain.query("token", "balance", {"owner": b"x"})
    assert info.value.code == ErrorCode.BAD_ARGUMENTS and "'owner'" in info.value.message
    with pytest.raises(ExecutionFailure) as failure:
        chain.query("token", "transfer", {"to": BOB.address, "amount": 1})
    assert failure.value.code == ErrorCode.UNKNOWN_METHOD
    with pytest.raises(ExecutionFailure) as failure:
        chain.query("nope", "balance", {})
    assert failure.value.code == ErrorCode.UNKNOWN_CONTRACT
    with pytest.raises(InvalidInput) as info:
        chain.query("token", "balance", {"owner": 1.5})
    assert info.value.code == ErrorCode.BAD_ARGUMENTS


def test_default_registry_and_nonce_key_layout() -> None:
    reg = default_registry()
    assert reg.names() == ("data", "gov", "identity", "token")
    assert isinstance(reg.get("token"), Token)
    assert {n for n, s in Token.entries.items() if s.read_only} == {
        "balance",
        "issuers",
        "total_supply",
    }
    chain = fresh(alice=10)
    chain.run(chain.tx(ALICE, "token", "transfer", {"to": BOB.address, "amount": 1}))
    assert keys.account_nonce(chain.state, ALICE.address) == 1
    assert keys.account_nonce(chain.state, BOB.address) == 0
    assert chain.state.get(keys.account_nonce_key(ALICE.address)) == codec.encode(1)
    assert chain.executor.query(chain.state, block_ctx(1, CHAIN), "token", "issuers", {}) == [
        ISSUER.address
    ]
