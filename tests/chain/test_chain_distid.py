"""The SM2 distinguishing ID is written in genesis, and the chain signs and checks under it.

GM/T 0009's default ID is ``1234567812345678``; a genesis states it (``crypto_params``) so
that no node leans on a library's default (OpenSSL's CLI signs under an empty ID unless told).
A chain whose genesis names another ID verifies every signature under that one: a transaction
signed under the default ID is refused there, the same key signing under the chain's ID is
accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_chain import make_genesis, open_chain  # type: ignore[import-not-found]

from citychain.crypto import SM2_SM3, Signer, Sm2Suite, suite_for
from citychain.errors import ConfigError, ErrorCode
from citychain.types import Commit, Transaction
from citychain.types.genesis import Genesis

CHAIN = "test-chain"
OTHER_ID = "citychain/test-ID"


def _gm_genesis(params: dict[str, str]) -> tuple[Genesis, dict[str, Signer]]:
    keys = {n: Signer(SM2_SM3, bytes([i + 1]) * 32) for i, n in enumerate(["val", "alice", "bob"])}
    g = make_genesis(keys)
    return Genesis(
        g.chain_id,
        g.genesis_time,
        "sm2-sm3",
        g.validators,
        g.params,
        g.contracts,
        crypto_params=params,
    ), keys


def _json(g: Genesis) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(g.to_json()))
    return out


def test_a_gm_genesis_writes_the_default_id_and_reads_it_back() -> None:
    g, _ = _gm_genesis({})
    raw = _json(g)
    assert raw["crypto_params"] == {"distid": "1234567812345678"}
    again = Genesis.from_json(raw)
    assert again.suite is SM2_SM3
    assert again.hash == g.hash
    # an Ed25519 genesis is the document it always was: no crypto_params
    ed = make_genesis({n: Signer.generate(suite_for("ed25519")) for n in ("val", "alice")})
    assert "crypto_params" not in ed.to_json()


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        (None, ErrorCode.BAD_DISTID, "needs 'crypto_params'"),
        ({}, ErrorCode.BAD_DISTID, "needs 'crypto_params'"),
        ({"distid": ""}, ErrorCode.BAD_DISTID, "no SM2 distinguishing ID"),
        ({"distid": "x" * 9000}, ErrorCode.BAD_DISTID, "distinguishing ID must be"),
        ({"distid": "身份"}, ErrorCode.BAD_DISTID, "Latin-1"),
        ({"distid": "1234567812345678", "curve": "p256"}, ErrorCode.BAD_CONFIG, "distid only"),
        ("1234567812345678", ErrorCode.BAD_CONFIG, "object of texts"),
    ],
)
def test_a_gm_genesis_without_a_usable_id_is_refused_by_name(
    params: object, code: ErrorCode, words: str
) -> None:
    raw = _json(_gm_genesis({})[0])
    if params is None:
        del raw["crypto_params"]
    else:
        raw["crypto_params"] = params
    with pytest.raises(ConfigError) as err:
        Genesis.from_json(raw, "genesis.json")
    assert err.value.code is code
    assert words in err.value.message and "genesis.json" in err.value.message


def test_an_ed25519_genesis_with_parameters_is_refused() -> None:
    keys = {n: Signer.generate(suite_for("ed25519")) for n in ("val", "alice")}
    raw = _json(make_genesis(keys))
    raw["crypto_params"] = {"distid": "1234567812345678"}
    with pytest.raises(ConfigError, match="takes no parameters"):
        Genesis.from_json(raw)


def test_a_chain_of_another_id_checks_every_signature_under_it(tmp_path: Path) -> None:
    g, keys = _gm_genesis({"distid": OTHER_ID})
    g = Genesis.from_json(_json(g))  # as a node reads it
    suite = g.suite
    assert isinstance(suite, Sm2Suite) and suite.distid == OTHER_ID.encode()
    assert suite_for("sm2-sm3", {"distid": OTHER_ID}) is suite  # one instance per ID
    assert g.hash != _gm_genesis({})[0].hash  # the ID is part of what the chain is
    chain = open_chain(tmp_path / "c", g)
    val, alice, bob = (keys[n].under(suite) for n in ("val", "alice", "bob"))
    assert val.suite is suite and keys["val"].under(SM2_SM3) is keys["val"]

    def transfer(signer: Signer, nonce: int) -> Transaction:
        return Transaction.create(
            signer,
            chain_id=CHAIN,
            nonce=nonce,
            contract="token",
            method="transfer",
            args={"to": bob.address, "amount": 1},
        )

    default_signed = transfer(keys["alice"], 0)  # the same key, the default ID
    assert default_signed.verify_signature(SM2_SM3)
    assert not default_signed.verify_signature(suite)
    good = transfer(alice, 0)
    assert good.verify_signature(suite) and not good.verify_signature(SM2_SM3)
    pending = chain.build_block([good], 1_700_000_000_001, val.public_key)
    commit = Commit.sign_single(val, CHAIN, pending.block.header)
    chain.commit(pending, commit)
    assert chain.height == 1
    chain.close()
