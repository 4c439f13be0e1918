"""The trusted-issuer registry: changed only under a governance policy (here MAJORITY of the
organisations' admins to trust, ANY admin to withdraw), with its history; each refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_contract_genesis import (  # type: ignore[import-not-found]
    ADMIN,
    ALICE,
    BOB,
    K1,
    UNKNOWN,
    Net,
    document,
    make_genesis,
    mk,
    net,
    ok,
    refused,
)

from citychain.errors import ErrorCode, ExecutionFailure
from citychain.services.identity.shapes import issuer_key
from citychain.types.state_keys import contract_key

__all__ = ["net"]
LICENCE = "BusinessLicence"
BUREAU = "Market Regulation Bureau"


def trust(net: Net, issuer: str, ctype: str = LICENCE, name: str = BUREAU) -> int:
    """Trust ``issuer`` as org1's admin, endorsed by org2's (the MAJORITY policy)."""
    r = net.send(
        ADMIN["org1"],
        "trust_issuer",
        {"issuer": issuer, "type": ctype, "name": name},
        endorsers=[ADMIN["org2"]],
    )
    seq: int = ok(r).result
    return seq


def test_governance_trusts_and_withdraws_an_issuer_with_history(net: Net) -> None:
    bureau = net.create(ALICE, document(ALICE))
    assert not net.query("is_trusted", issuer=bureau, type=LICENCE)
    assert trust(net, bureau) == 1
    h_trust = net.height
    assert net.query("is_trusted", issuer=bureau, type=LICENCE)
    assert not net.query("is_trusted", issuer=bureau, type="Diploma")
    entry = net.query("issuer", issuer=bureau, type=LICENCE)
    assert (entry["issuer"], entry["type"], entry["name"], entry["height"]) == (
        bureau,
        LICENCE,
        BUREAU,
        h_trust,
    )
    assert entry["tx"] == net.blocks[-1].txs[0].hash
    did_key = "did:key:" + mk(K1)  # any DID method may be trusted (conformance runs use did:key)
    trust(net, did_key, name="Test issuer")
    assert [e["issuer"] for e in net.query("issuers", type=LICENCE)] == sorted([bureau, did_key])
    # The entry is a state key a node can prove.
    assert net.chain.state.get(issuer_key(bureau, LICENCE)) is not None
    r = ok(
        net.send(
            ADMIN["org2"],
            "untrust_issuer",
            {"issuer": bureau, "type": LICENCE, "reason": "licence authority moved"},
        )
    )
    assert [(e.type, e.attributes) for e in r.events] == [
        ("issuer_untrusted", {"issuer": bureau, "type": LICENCE, "seq": 3})
    ]
    assert not net.query("is_trusted", issuer=bureau, type=LICENCE)
    assert [e["issuer"] for e in net.query("issuers", type=LICENCE)] == [did_key]
    hist = net.query("issuer_history")
    assert [(h["seq"], h["action"], h["issuer"], h["by"]) for h in hist] == [
        (1, "trust", bureau, ADMIN["org1"].address),
        (2, "trust", did_key, ADMIN["org1"].address),
        (3, "untrust", bureau, ADMIN["org2"].address),
    ]
    assert hist[2]["reason"] == "licence authority moved"
    assert (hist[2]["since"], hist[2]["height"]) == (net.time_of(h_trust), net.height)
    assert net.query("issuer_history", after=1, limit=1) == [hist[1]]
    # Whether it was trusted at some time (a credential's validFrom, say) stays answerable.
    t = net.time_of
    for at, was in [(t(h_trust) - 1, False), (t(h_trust), True), (t(net.height) - 1, True)]:
        assert net.query("is_trusted", issuer=bureau, type=LICENCE, at=at) is was, at
    assert not net.query("is_trusted", issuer=bureau, type=LICENCE, at=t(net.height))
    trust(net, bureau)  # trusted again, later: both periods count
    again = net.height
    assert net.query("is_trusted", issuer=bureau, type=LICENCE, at=t(h_trust))
    assert not net.query("is_trusted", issuer=bureau, type=LICENCE, at=t(again) - 1)
    assert net.query("is_trusted", issuer=bureau, type=LICENCE, at="2100-01-01T00:00:00Z")


def test_one_organisation_alone_cannot_trust_an_issuer(net: Net) -> None:
    bureau = net.create(ALICE, document(ALICE))
    args = {"issuer": bureau, "type": LICENCE, "name": BUREAU}
    net.refused_twice(ADMIN["org1"], "trust_issuer", args, ErrorCode.POLICY_NOT_MET, "MAJORITY")
    # a member who is not an admin, even endorsed, is not admitted by the policy
    r = net.send(ALICE, "trust_issuer", args, endorsers=[BOB])
    refused(r, ErrorCode.POLICY_NOT_MET, "identity.trust_issuer")


@pytest.mark.parametrize(
    ("mode", "policies", "words"),
    [
        ("open", {}, "'open' identity mode"),
        ("key", {}, "set one for identity.trust_issuer (or identity.*)"),
    ],
)
def test_without_a_governance_policy_the_registry_does_not_change(
    tmp_path: Path, mode: str, policies: dict[str, object], words: str
) -> None:
    n = Net(tmp_path / "c", make_genesis(mode, policies=policies))
    try:
        n.refused_twice(
            ADMIN["org1"],
            "trust_issuer",
            {"issuer": "did:web:x.example", "type": LICENCE, "name": BUREAU},
            ErrorCode.POLICY_REQUIRED,
            words,
            endorsers=[ADMIN["org2"]],
        )
    finally:
        n.chain.close()


def test_a_contract_wide_policy_governs_the_registry_too(tmp_path: Path) -> None:
    pol = {"identity.*": {"rule": "ANY", "orgs": ["org2"], "roles": ["admin"]}}
    n = Net(tmp_path / "c", make_genesis(policies=pol))
    try:
        args = {"issuer": "did:web:x.example", "type": LICENCE, "name": BUREAU}
        ok(n.send(ADMIN["org2"], "trust_issuer", args))
    finally:
        n.chain.close()


@pytest.fixture
def trusted(net: Net) -> Iterator[tuple[Net, str]]:
    bureau = net.create(ALICE, document(ALICE))
    trust(net, bureau)
    yield net, bureau


def test_registry_refusals(trusted: tuple[Net, str]) -> None:
    net, bureau = trusted
    endorse = [ADMIN["org2"]]
    a1 = ADMIN["org1"]
    net.refused_twice(
        a1,
        "trust_issuer",
        {"issuer": bureau, "type": LICENCE, "name": BUREAU},
        ErrorCode.DUPLICATE,
        f"{bureau} is already trusted to issue {LICENCE}",
        endorsers=endorse,
    )
    net.refused_twice(
        a1,
        "untrust_issuer",
        {"issuer": bureau, "type": "Diploma"},
        ErrorCode.ISSUER_NOT_TRUSTED,
        f"{bureau} is not in the trusted-issuer registry for Diploma",
    )
    net.refused_twice(
        a1,
        "trust_issuer",
        {"issuer": UNKNOWN, "type": LICENCE, "name": BUREAU},
        ErrorCode.DID_NOT_FOUND,
        f"{UNKNOWN} is not on this chain",
        endorsers=endorse,
    )
    for args, words in [
        ({"issuer": "bureau", "type": LICENCE, "name": BUREAU}, "argument 'issuer'"),
        ({"issuer": bureau, "type": "Business Licence", "name": BUREAU}, "argument 'type'"),
        ({"issuer": bureau, "type": "Diploma", "name": ""}, "argument 'name'"),
    ]:
        net.refused_twice(a1, "trust_issuer", args, ErrorCode.BAD_ARGUMENTS, words, endorse)
    ok(net.send(ALICE, "deactivate_did", {"did": bureau}))
    net.refused_twice(
        a1,
        "trust_issuer",
        {"issuer": bureau, "type": "Diploma", "name": BUREAU},
        ErrorCode.DID_DEACTIVATED,
        f"{bureau} was deactivated",
        endorsers=endorse,
    )
    with pytest.raises(ExecutionFailure) as info:
        net.query("issuer", issuer=bureau, type="Diploma")
    assert info.value.code == ErrorCode.ISSUER_NOT_TRUSTED
    assert contract_key("identity", b"ti/") in issuer_key(bureau, LICENCE)
