"""Proposal parameters from text in the SDK, and the one declaration of each kind's params
that the contract, the SDK and the CLI's ``gov propose`` flags share."""

from __future__ import annotations

import pytest

from citychain.errors import ErrorCode, InvalidInput
from citychain.sdk import build_params, parse_param_value
from citychain.services.gov.shapes import FLAGS, KIND_NAMES, KIND_PARAMS


def test_build_params_is_the_sdk_s() -> None:
    assert parse_param_value("0x0a1b", "k") == b"\x0a\x1b"
    assert parse_param_value("5000", "n") == 5000
    assert build_params("add_validator", param=["name=v9"], flags={"--power": 7}) == {
        "name": "v9",
        "power": 7,
    }
    with pytest.raises(
        InvalidInput, match="--power is for add_validator, set_validator_power"
    ) as e:
        build_params("add_org", flags={"--power": 7})
    assert e.value.code == ErrorCode.BAD_ARGUMENTS


def test_the_flags_follow_the_kinds_params() -> None:
    # every flag is for exactly the kinds that take its parameter
    for flag, (param, kinds) in FLAGS.items():
        taking = [k for k in KIND_NAMES if any(param in s.names for s in KIND_PARAMS[k])]
        assert list(kinds) == taking, flag
    assert FLAGS["--address"] == ("address", ("revoke", "freeze", "unfreeze"))


def test_the_contract_checks_the_same_declaration() -> None:
    from citychain.services.gov.contract import KINDS
    from citychain.services.gov.contract._kinds import _only

    assert tuple(KINDS) == KIND_NAMES
    with pytest.raises(InvalidInput, match=r"unknown proposal param\(s\) bogus \(expected: id\)"):
        _only({"id": "org3", "bogus": 1}, "remove_org")
    with pytest.raises(InvalidInput, match="lack serial"):
        _only({"org": "org1"}, "revoke", 1)
