"""Policy targets must name a method that exists; replacing an organisation's admins keeps
the other roles its members hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_gov import (  # type: ignore[import-not-found]
    ADMIN,
    DAVE,
    KVStore,
    Net,
    make_genesis,
    ok,
    refused,
    registry,
)

from citychain.chain import Chain
from citychain.errors import ConfigError, ErrorCode


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "chain", make_genesis())
    yield n
    n.chain.close()


def test_a_policy_for_a_method_that_does_not_exist_is_refused(net: Net, tmp_path: Path) -> None:
    r = net.gov(
        ADMIN["org1"],
        "propose",
        kind="set_policy",
        params={"target": "token.mnit", "policy": {"rule": "ANY"}},
    )
    refused(r, ErrorCode.UNKNOWN_METHOD, "contract 'token' has no method 'mnit'")
    assert "mint" in r.message and "transfer" in r.message
    # a query is not a method transactions call, so no policy guards it
    r = net.gov(
        ADMIN["org1"],
        "propose",
        kind="set_policy",
        params={"target": "token.balance", "policy": {"rule": "ANY"}},
    )
    refused(r, ErrorCode.UNKNOWN_METHOD, "has no method 'balance'")
    ok(
        net.gov(
            ADMIN["org1"],
            "propose",
            kind="set_policy",
            params={"target": "token.*", "policy": {"rule": "ANY"}},
        )
    )
    with pytest.raises(ConfigError, match=r"policy 'token\.mnit': the target must be"):
        Chain(
            KVStore(tmp_path / "other"),
            make_genesis(policies={"token.mnit": {"rule": "ANY"}}),
            registry(),
        )


def test_replacing_the_admins_keeps_their_other_roles(net: Net) -> None:
    ok(
        net.gov(
            ADMIN["org1"],
            "register_member",
            public_key=DAVE.public_key,
            org="org1",
            roles=["auditor", "member"],
        )
    )
    net.enact("update_org", {"id": "org1", "admins": [DAVE.public_key]})
    dave = net.query("gov", "member", address=DAVE.address)
    assert dave["roles"] == ["admin", "auditor", "member"]
    old = net.query("gov", "member", address=ADMIN["org1"].address)
    assert old is None  # it held only the admin role
