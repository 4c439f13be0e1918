"""The access checks remember answers between blocks (``GovCache``): these tests pin down that
a remembered answer never outlives the records or the block time it was computed from."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from test_gov import (  # type: ignore[import-not-found]
    ADMIN,
    BOB,
    DAVE,
    START,
    Net,
    cert,
    make_genesis,
    ms,
    ok,
    refused,
)

from citychain.errors import ErrorCode, ExecutionFailure


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "chain", make_genesis())
    yield n
    n.chain.close()


def _passed(net: Net, kind: str, params: object) -> int:
    pid = net.propose(ADMIN["org1"], kind, params)
    ok(net.gov(ADMIN["org2"], "vote", id=pid))
    return pid


def test_a_remembered_answer_is_dropped_when_governance_changes_a_record(net: Net) -> None:
    ok(net.send(BOB, "probe", "note"))  # answered and remembered
    net.chain.check_admission(net.tx(BOB, "probe", "note"))  # remembered too
    net.forget()
    net.enact("freeze", {"address": BOB.address})
    with pytest.raises(ExecutionFailure) as admission:
        net.chain.check_admission(net.tx(BOB, "probe", "note"))
    assert admission.value.code == ErrorCode.FROZEN
    net.forget()
    refused(net.send(BOB, "probe", "note"), ErrorCode.FROZEN, "is frozen")


def test_a_change_applies_to_the_rest_of_its_own_block(net: Net) -> None:
    ok(net.send(BOB, "probe", "note"))  # remembered from the committed state
    pid = _passed(net, "freeze", {"address": BOB.address})
    execute = net.tx(ADMIN["org1"], "gov", "execute", {"id": pid})
    before, after = (net.tx(BOB, "probe", "note") for _ in range(2))
    r_before, r_execute, r_after = net.block(before, execute, after)
    ok(r_before)
    ok(r_execute)
    refused(r_after, ErrorCode.FROZEN, "is frozen")


def test_a_member_registered_in_a_block_can_act_later_in_it(net: Net) -> None:
    register = net.tx(
        ADMIN["org1"],
        "gov",
        "register_member",
        {"public_key": DAVE.public_key, "org": "org1", "roles": ["member"]},
    )
    first = net.tx(DAVE, "probe", "note")
    r_register, r_first = net.block(register, first)
    ok(r_register)
    ok(r_first)


@pytest.fixture
def cnet(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "cert-chain", make_genesis("certificate", policies={}))
    yield n
    n.chain.close()


def test_a_remembered_answer_ends_when_the_certificate_expires(cnet: Net) -> None:
    end = START + timedelta(days=30)
    ok(cnet.gov(DAVE, "enroll", cert=cert(DAVE, not_after=end)))
    ok(cnet.send(DAVE, "probe", "note"))  # remembered, valid until the certificate's end
    (late,) = cnet.block(cnet.tx(DAVE, "probe", "note"), at=ms(end) + 1000)
    refused(late, ErrorCode.REVOKED, "has expired")


def test_good_standing_follows_governance_without_being_forgotten_by_hand(net: Net) -> None:
    """What the API asks before it shows a subscriber another account's private call: the
    memoised answer goes with the block that changed the records, both ways."""
    assert net.chain.in_good_standing(BOB.address)
    assert net.chain.in_good_standing(BOB.address)  # the memo
    assert not net.chain.in_good_standing(DAVE.address)
    net.enact("freeze", {"address": BOB.address})
    assert not net.chain.in_good_standing(BOB.address)
    ok(
        net.gov(
            ADMIN["org1"],
            "register_member",
            public_key=DAVE.public_key,
            org="org1",
            roles=["member"],
        )
    )
    assert net.chain.in_good_standing(DAVE.address)


def test_good_standing_ends_with_the_certificate_though_no_record_changed(cnet: Net) -> None:
    end = START + timedelta(days=30)
    ok(cnet.gov(DAVE, "enroll", cert=cert(DAVE, not_after=end)))
    assert cnet.chain.in_good_standing(DAVE.address)  # memoised until the certificate's end
    cnet.block(at=ms(end))
    assert cnet.chain.in_good_standing(DAVE.address)
    cnet.block(at=ms(end) + 1000)
    assert not cnet.chain.in_good_standing(DAVE.address)
