"""Addresses as people write them (``citychain.types.address``): hex with or without ``0x`` or
bytes are accepted wherever the SDK, ``balance_key`` and the CLI take an address, and anything
else is refused with ``bad_arguments`` before anything is signed or sent."""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sdk_helpers import URL, FakeNode, serving
from typer.testing import CliRunner

from citychain.api import create_app
from citychain.cli.main import app as cli_app
from citychain.crypto import Signer
from citychain.crypto.keystore import save_key
from citychain.errors import ErrorCode, InvalidInput
from citychain.sdk import AsyncClient, Client
from citychain.services.token.shapes import balance_key
from citychain.types.address import (
    ADDRESS_ARGS,
    PROPOSAL_ADDRESS_PARAMS,
    call_args,
    to_address,
)

SERVICES = Path(__file__).resolve().parents[2] / "src" / "citychain" / "services"
ADDR = bytes(range(1, 21))
BAD = [
    "xyz",
    "",
    "0x",
    ADDR.hex()[:-2],  # 19 bytes
    ADDR.hex() + "00",  # 21 bytes
    ADDR.hex()[:-1] + "g",
    "0x" + ADDR.hex()[:-1],  # odd number of digits
    ADDR[:19],
    ADDR + b"\x00",
    12345,
    None,
    ["ab"] * 20,
    {"hex": ADDR.hex()},
    True,
]


# -- the coercion itself ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "written",
    [
        ADDR,
        bytearray(ADDR),
        memoryview(ADDR),
        ADDR.hex(),
        ADDR.hex().upper(),
        "0x" + ADDR.hex(),
        "0X" + ADDR.hex(),
        f"  {ADDR.hex()}\n",  # pasted from a terminal
    ],
)
def test_an_address_is_bytes_or_hex_with_or_without_0x(written: Any) -> None:
    assert to_address(written) == ADDR


@pytest.mark.parametrize("written", BAD)
def test_anything_else_is_refused_with_words_and_a_code(written: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        to_address(written, "argument 'to'")
    assert info.value.code == ErrorCode.BAD_ARGUMENTS
    assert info.value.message.startswith("argument 'to' must be ")
    assert "address" in info.value.message or "20 bytes" in info.value.message


def test_the_refusal_says_what_it_got() -> None:
    with pytest.raises(InvalidInput, match=r"argument 'to' must be hex digits.*got 'xyz'$"):
        to_address("xyz", "argument 'to'")
    with pytest.raises(InvalidInput, match=r"must be 20 bytes \(40 hex digits\), got 2 bytes"):
        to_address("abcd")
    with pytest.raises(InvalidInput, match=r"as 40 hex digits or bytes, got int$"):
        to_address(7)
    long = "z" * 500  # a long paste is shortened, not echoed whole
    with pytest.raises(InvalidInput) as info:
        to_address(long)
    assert len(info.value.message) < 200


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none(), st.lists(st.integers())))
def test_coercion_never_raises_anything_but_bad_arguments(value: Any) -> None:
    try:
        out = to_address(value)
    except InvalidInput as exc:
        assert exc.code == ErrorCode.BAD_ARGUMENTS
        assert exc.message.startswith("address must be ")
    else:
        assert type(out) is bytes and len(out) == 20


@given(st.binary(min_size=20, max_size=20), st.sampled_from(["", "0x", "0X"]), st.booleans())
def test_every_hex_spelling_of_an_address_round_trips(raw: bytes, prefix: str, upper: bool) -> None:
    digits = raw.hex().upper() if upper else raw.hex()
    assert to_address(prefix + digits) == raw


def test_call_args_converts_the_known_address_arguments_only() -> None:
    args = {"to": ADDR.hex(), "amount": 5}
    assert call_args("token", "transfer", args) == {"to": ADDR, "amount": 5}
    assert args == {"to": ADDR.hex(), "amount": 5}  # the caller's map is not changed
    assert call_args("token", "balance", {"owner": "0x" + ADDR.hex()}) == {"owner": ADDR}
    assert call_args("gov", "member", {"address": ADDR}) == {"address": ADDR}
    # other contracts, methods and arguments pass through as they are
    assert call_args("other", "transfer", {"to": "x"}) == {"to": "x"}
    assert call_args("token", "burn", {"amount": 1}) == {"amount": 1}
    assert call_args("token", "transfer", None) == {}
    # a governance proposal's address param
    proposed = call_args("gov", "propose", {"kind": "freeze", "params": {"address": ADDR.hex()}})
    assert proposed == {"kind": "freeze", "params": {"address": ADDR}}
    untouched = {"kind": "add_org", "params": {"address": "not one"}}
    assert call_args("gov", "propose", untouched) == untouched
    with pytest.raises(InvalidInput, match="param 'address' must be hex digits"):
        call_args("gov", "propose", {"kind": "revoke", "params": {"address": "bob"}})
    with pytest.raises(InvalidInput, match="argument 'to' must be"):
        call_args("token", "mint", {"to": 5, "amount": 1})


# -- the table agrees with the contracts ---------------------------------------------------------
def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    out: dict[str, ast.FunctionDef] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            out.setdefault(node.name, node)
    return out


def _called(fn: ast.FunctionDef) -> set[str]:
    """Names of the functions ``fn`` calls as ``f(...)`` or ``self.f(...)``, and the
    ``check=`` of its decorator."""
    names = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):
                names.add(f.id)
            elif (
                isinstance(f, ast.Attribute)
                and isinstance(f.value, ast.Name)
                and f.value.id == "self"
            ):
                names.add(f.attr)
        if (
            isinstance(node, ast.keyword)
            and node.arg == "check"
            and isinstance(node.value, ast.Name)
        ):
            names.add(node.value.id)
    return names


def _reaches(fns: dict[str, ast.FunctionDef], start: ast.FunctionDef, target: str) -> set[str]:
    """String arguments of every ``target(args, "name")`` call reachable from ``start``."""
    found: set[str] = set()
    seen: set[str] = set()
    todo = [start]
    while todo:
        fn = todo.pop()
        if fn.name in seen:
            continue
        seen.add(fn.name)
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == target
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                found.add(node.args[1].value)
        todo.extend(fns[n] for n in _called(fn) if n in fns and n not in seen)
    return found


def _entry_points(tree: ast.Module) -> list[ast.FunctionDef]:
    def is_entry(d: ast.expr) -> bool:
        target = d.func if isinstance(d, ast.Call) else d
        return isinstance(target, ast.Name) and target.id in ("method", "query")

    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef) and any(is_entry(d) for d in n.decorator_list)
    ]


@pytest.mark.parametrize(
    ("contract", "sources"),
    [
        ("token", ["token/contract.py"]),
        ("gov", ["gov/contract/_contract.py", "gov/contract/_records.py"]),
    ],
)
def test_the_table_names_every_address_argument_of_the_contracts(
    contract: str, sources: list[str]
) -> None:
    """Read from the contracts' source: which entry points call ``arg_address(args, name)``
    (directly, through their own helpers, or in their admission check). The SDK cannot import
    the contracts, so this keeps its table honest."""
    trees = [ast.parse((SERVICES / s).read_text()) for s in sources]
    fns: dict[str, ast.FunctionDef] = {}
    for tree in trees:
        fns.update(_functions(tree))
    found = {}
    for tree in trees:
        for entry in _entry_points(tree):
            names = _reaches(fns, entry, "arg_address")
            if names:
                found[entry.name] = tuple(sorted(names))
    assert found == {m: tuple(sorted(a)) for m, a in ADDRESS_ARGS[contract].items()}


def test_the_table_names_every_proposal_kind_with_an_address_param() -> None:
    """A kind's check takes an address when it reaches the ``_address(params)`` helper."""
    tree = ast.parse((SERVICES / "gov" / "contract" / "_kinds.py").read_text())
    fns = _functions(tree)
    kinds = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.AnnAssign | ast.Assign)
        and isinstance(n.value, ast.Dict)
        and "KINDS" in ast.unparse(n)
    )
    assert isinstance(kinds.value, ast.Dict)
    with_address = set()
    for k, v in zip(kinds.value.keys, kinds.value.values, strict=True):
        assert isinstance(k, ast.Constant) and isinstance(v, ast.Call)
        check = v.args[0]
        assert isinstance(check, ast.Name)
        todo, seen = [check.id], set()
        while todo:
            name = todo.pop()
            if name in seen or name not in fns:
                continue
            seen.add(name)
            todo.extend(_called(fns[name]))
        if "_address" in seen:
            with_address.add(k.value)
    assert with_address == set(PROPOSAL_ADDRESS_PARAMS)


# -- balance_key ---------------------------------------------------------------------------------
def test_balance_key_takes_hex_or_bytes_and_refuses_the_rest() -> None:
    key = balance_key(ADDR)
    assert key == b"c/token/bal/" + ADDR
    assert balance_key(ADDR.hex()) == key == balance_key("0x" + ADDR.hex())
    for bad in ("xyz", ADDR[:5], 3):
        with pytest.raises(InvalidInput) as info:
            balance_key(bad)  # type: ignore[arg-type]
        assert info.value.code == ErrorCode.BAD_ARGUMENTS


# -- the client: refused before anything is sent --------------------------------------------------
def _recording() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500, json={"code": "internal", "message": "must not be reached"})

    return seen, httpx.MockTransport(handle)


@pytest.mark.parametrize("bad", ["xyz", ADDR.hex()[:-2], 42, None])
def test_send_refuses_a_bad_address_before_any_request(alice: Signer, bad: Any) -> None:
    seen, transport = _recording()
    with Client(URL, transport=transport) as c:
        with pytest.raises(InvalidInput) as info:
            c.send(alice, "token", "transfer", {"to": bad, "amount": 5})
        assert info.value.code == ErrorCode.BAD_ARGUMENTS
        assert info.value.message.startswith("argument 'to' must be ")
        with pytest.raises(InvalidInput):
            c.build_tx(alice, "token", "mint", {"to": bad, "amount": 5})
        with pytest.raises(InvalidInput):
            c.query("token", "balance", owner=bad)
        with pytest.raises(InvalidInput):
            c.balance(bad)
        with pytest.raises(InvalidInput):
            c.gov.member(bad)
        with pytest.raises(InvalidInput):
            c.gov.remove_member(alice, bad)
        with pytest.raises(InvalidInput):
            c.gov.propose(alice, "freeze", {"address": bad})
    assert seen == []  # not even the status or nonce request


def test_async_send_refuses_a_bad_address_before_any_request(alice: Signer) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500, json={"code": "internal", "message": "must not be reached"})

    async def go() -> None:
        async with AsyncClient(URL, transport=httpx.MockTransport(handle)) as c:
            with pytest.raises(InvalidInput, match="argument 'to' must be hex digits"):
                await c.send(alice, "token", "transfer", {"to": "bob", "amount": 5})
            with pytest.raises(InvalidInput):
                await c.gov.member("bob")
            with pytest.raises(InvalidInput):
                await c.balance("bob")

    asyncio.run(go())
    assert seen == []


def test_a_refused_address_leaves_the_node_untouched(
    client: Client, node: FakeNode, alice: Signer
) -> None:
    with pytest.raises(InvalidInput):
        client.send(alice, "token", "transfer", {"to": "not an address", "amount": 5})
    assert node.mempool == {} and node.blocks == []
    assert client.account(alice.address).pending_nonce == 0


@pytest.mark.parametrize("spelling", ["hex", "0x", "bytes"])
def test_send_takes_an_address_as_hex_or_bytes(
    client: Client, alice: Signer, bob: Signer, spelling: str
) -> None:
    to = {"hex": bob.address.hex(), "0x": "0x" + bob.address.hex(), "bytes": bob.address}
    receipt = client.send(alice, "token", "transfer", {"to": to[spelling], "amount": 7})
    assert receipt.ok, receipt.message
    assert client.tx(receipt.tx_hash).tx.args == {"to": bob.address, "amount": 7}
    assert client.balance(bob.address.hex()) == 7
    assert client.query("token", "balance", owner="0x" + bob.address.hex()) == 7
    proven = client.get_state(balance_key(bob.address.hex()))
    assert proven.value is not None and proven.verified


def test_async_send_takes_hex(node: FakeNode, alice: Signer, bob: Signer) -> None:
    async def go() -> int:
        async with AsyncClient(URL, transport=_async_bridge(node)) as c:
            receipt = await c.send(
                alice, "token", "transfer", {"to": bob.address.hex(), "amount": 3}
            )
            assert receipt.ok, receipt.message
            return await c.balance("0x" + bob.address.hex())

    assert asyncio.run(go()) == 3


def _async_bridge(node: FakeNode) -> httpx.AsyncBaseTransport:
    return httpx.ASGITransport(app=create_app(node))


def test_gov_member_sends_the_address_as_bytes(alice: Signer) -> None:
    bodies: list[Any] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"result": None})

    with Client(URL, transport=httpx.MockTransport(handle)) as c:
        assert c.gov.member("0x" + ADDR.hex()) is None
    assert bodies == [{"args": {"address": {"hex": ADDR.hex()}}}]


# -- the command line uses the same coercion ---------------------------------------------------
def test_cli_tx_send_takes_a_plain_hex_address(
    tmp_path: Path, node: FakeNode, alice: Signer, bob: Signer
) -> None:
    (tmp_path / "keys").mkdir()
    save_key(tmp_path / "keys" / "alice.json", alice, "pw", kdf_level="interactive")
    env = {"CITYCHAIN_HOME": str(tmp_path), "CITYCHAIN_PASSPHRASE": "pw", "CITYCHAIN_DEBUG": ""}
    runner = CliRunner()
    with serving(create_app(node)) as url:
        args = json.dumps({"to": bob.address.hex(), "amount": 9})
        ok = runner.invoke(
            cli_app,
            [
                "tx",
                "send",
                "token",
                "transfer",
                "--args",
                args,
                "--key",
                "alice",
                "--node",
                url,
                "--json",
            ],
            env=env,
        )
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.output)["receipt"]["code"] == "ok"
        bad = runner.invoke(
            cli_app,
            ["tx", "transfer", "--to", "bob", "--amount", "1", "--key", "alice", "--node", url],
            env=env,
        )
    assert bad.exit_code == 1
    assert "error [bad_arguments]: address must be hex digits" in bad.output
    assert "Traceback" not in bad.output
    assert len(node.blocks) == 1  # the refused one never reached the node


def test_the_readme_quotes_the_refusal_as_it_is() -> None:
    with pytest.raises(InvalidInput) as info:
        call_args("token", "transfer", {"to": "bob", "amount": 1})
    readme = " ".join((SERVICES.parents[2] / "README.md").read_text(encoding="utf-8").split())
    assert f"`{info.value.message}`" in readme
