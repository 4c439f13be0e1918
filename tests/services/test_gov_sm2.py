"""Governance on an ``sm2-sm3`` chain: organisations name their SM2 CA, and members are
certified by it in certificate identity mode.

A chain on RocksDB in ``tmp_path`` with two organisations, each with a P-256 TLS CA
(``ca_cert``) and an SM2 CA (``gm_ca_cert``); blocks are built with a solo commit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from citychain.chain import Chain
from citychain.crypto import SM2_SM3, Signer
from citychain.crypto.member_certs import issue_member_cert
from citychain.crypto.sm2_certs import issue_sm2_ca, issue_sm2_member_cert
from citychain.errors import ConfigError, ErrorCode, InvalidInput
from citychain.execution import BlockContext
from citychain.execution.contract import default_registry
from citychain.p2p.certs import generate_org_ca
from citychain.store.kv import KVStore
from citychain.types import Commit, Receipt, Transaction, Validator
from citychain.types.genesis import Genesis, Governance, Organisation

CHAIN = "gm-gov"
START = datetime(2025, 1, 1, tzinfo=UTC)
T0 = int(START.timestamp() * 1000)
ORGS = ("org1", "org2")


def key(n: int) -> Signer:
    return Signer(SM2_SM3, bytes([n]) * 32)


VAL = key(0x10)
ADMIN = {o: key(0x20 + i) for i, o in enumerate((*ORGS, "org3"))}
DAVE, ERIN = key(0x30), key(0x31)
TLS_CAS = {o: generate_org_ca(o, f"Org {o}") for o in (*ORGS, "org3")}
GM_KEYS = {o: key(0x40 + i) for i, o in enumerate((*ORGS, "org3"))}
GM_CAS = {o: issue_sm2_ca(o, f"Org {o}", GM_KEYS[o].secret) for o in (*ORGS, "org3")}


def _genesis(**org_extra: Any) -> Genesis:
    return Genesis(
        chain_id=CHAIN,
        genesis_time=T0,
        crypto_suite="sm2-sm3",
        validators=(Validator(VAL.public_key, 10, "val"),),
        organisations=tuple(
            Organisation(
                o,
                f"Org {o}",
                TLS_CAS[o][0].decode(),
                admins=(ADMIN[o].public_key,),
                gm_ca_cert=org_extra.get(o, GM_CAS[o].decode()),
            )
            for o in ORGS
        ),
        governance=Governance("certificate", policies={}),
        validator_orgs=((VAL.public_key, "org1"),),
    )


class Net:
    def __init__(self, path: Path) -> None:
        self.chain = Chain(KVStore(path), _genesis(), default_registry())
        self.nonces: dict[bytes, int] = {}

    def send(self, s: Signer, method_name: str, **args: Any) -> Receipt:
        nonce = self.nonces.get(s.address, 0)
        self.nonces[s.address] = nonce + 1
        tx = Transaction.create(
            s,
            chain_id=CHAIN,
            nonce=nonce,
            contract="gov",
            method=method_name,
            args=args,
            gas_limit=20_000_000,
        )
        pending = self.chain.build_block([tx], T0 + 1000 * (self.chain.height + 1), VAL.public_key)
        self.chain.commit(pending, Commit.sign_single(VAL, CHAIN, pending.header))
        (r,) = pending.receipts
        return r

    def query(self, method_name: str, **args: Any) -> Any:
        h = self.chain.last_header()
        ctx = BlockContext(CHAIN, self.chain.height, h.time if h else T0, b"")
        return self.chain.executor.query(self.chain.state, ctx, "gov", method_name, args)


@pytest.fixture
def net(tmp_path: Path) -> Any:
    n = Net(tmp_path / "chain")
    yield n
    n.chain.close()


def _sm2_cert(s: Signer, org: str, *, roles: tuple[str, ...] = ("member",)) -> bytes:
    return issue_sm2_member_cert(
        GM_CAS[org],
        GM_KEYS[org].secret,
        s.public_key,
        name=f"member {s.public_key.hex()[:8]}",
        org_id=org,
        roles=roles,
        not_before=START,
        not_after=START + timedelta(days=30),
    )


def test_the_registry_keeps_each_organisations_sm2_ca(net: Net) -> None:
    org1 = net.query("org", id="org1")
    assert org1["gm_ca_cert"] == GM_CAS["org1"].decode()
    assert len(org1["gm_ca_fp"]) == 32


def test_a_member_enrols_with_an_sm2_certificate_from_its_organisations_sm2_ca(net: Net) -> None:
    r = net.send(DAVE, "enroll", cert=_sm2_cert(DAVE, "org1", roles=("auditor", "member")))
    assert r.code == "ok", r.message
    m = net.query("member", address=DAVE.address)
    assert (m["org"], m["roles"], m["public_key"]) == (
        "org1",
        ["auditor", "member"],
        DAVE.public_key,
    )


def test_a_member_certificate_not_from_the_organisations_sm2_ca_is_refused(net: Net) -> None:
    # an SM2 CA of the same name as org1's but another key (not the one the chain lists)
    twin_key = key(0x50)
    twin = issue_sm2_ca("org1", "Org org1", twin_key.secret)
    forged = issue_sm2_member_cert(
        twin,
        twin_key.secret,
        ERIN.public_key,
        name="erin",
        org_id="org1",
        roles=("member",),
        not_before=START,
        not_after=START + timedelta(days=30),
    )
    r = net.send(ERIN, "enroll", cert=forged)
    assert r.code == ErrorCode.UNAUTHORIZED.value, r.message
    # a certificate from org1's TLS (P-256) CA is of the other suite
    ecdsa = issue_member_cert(
        TLS_CAS["org1"][0],
        TLS_CAS["org1"][1],
        bytes(range(32)),
        name="x",
        org_id="org1",
        roles=["member"],
        not_before=START,
        not_after=START + timedelta(days=30),
    )
    r = net.send(ERIN, "enroll", cert=ecdsa)
    assert r.code == ErrorCode.WRONG_SUITE.value, r.message
    assert net.query("member", address=ERIN.address) is None


def test_a_gm_genesis_refuses_an_organisation_without_its_sm2_ca() -> None:
    raw = json.loads(json.dumps(_genesis().to_json()))
    del raw["organisations"][1]["gm_ca_cert"]
    with pytest.raises(ConfigError, match="organisation 'org2' has no gm_ca_cert"):
        Genesis.from_json(raw)
    ed = json.loads(json.dumps(_genesis().to_json()))
    # an SM2 CA on an ed25519 chain is refused as the other suite's
    ed["crypto_suite"] = "ed25519"
    del ed["crypto_params"]
    ed["validators"][0]["public_key"] = bytes(32).hex()
    ed["organisations"] = ed["organisations"][:1]
    ed["organisations"][0]["admins"] = ["01" * 32]
    ed["validators"][0]["org"] = "org1"
    with pytest.raises(ConfigError, match="has a gm_ca_cert on a ed25519 chain") as err:
        Genesis.from_json(ed)
    assert err.value.code is ErrorCode.WRONG_SUITE


def test_add_org_on_a_gm_chain_needs_the_organisations_sm2_ca(net: Net) -> None:
    base = {
        "id": "org3",
        "name": "Org org3",
        "ca_cert": TLS_CAS["org3"][0].decode(),
        "admins": [ADMIN["org3"].public_key],
    }
    r = net.send(ADMIN["org1"], "propose", kind="add_org", params=base)
    assert r.code == ErrorCode.BAD_ARGUMENTS.value and "needs gm_ca_cert" in r.message, r.message
    wrong = base | {"gm_ca_cert": GM_CAS["org2"].decode()}
    r = net.send(ADMIN["org1"], "propose", kind="add_org", params=wrong)
    assert "is the CA of organisation 'org2'" in r.message, r.message
    r = net.send(
        ADMIN["org1"],
        "propose",
        kind="add_org",
        params=base | {"gm_ca_cert": GM_CAS["org3"].decode()},
    )
    assert r.code == "ok", r.message


def test_gov_propose_takes_the_sm2_ca_as_a_flag() -> None:
    from citychain.services.gov.sdk._params import build_params, check_flags

    pem = GM_CAS["org3"].decode()
    check_flags("add_org", ["--gm-ca-cert"])
    check_flags("update_org", ["--gm-ca-cert"])
    params = build_params("add_org", flags={"--org-id": "org3", "--gm-ca-cert": pem})
    assert params == {"id": "org3", "gm_ca_cert": pem}
    with pytest.raises(InvalidInput, match="--gm-ca-cert is for add_org, update_org"):
        check_flags("remove_org", ["--gm-ca-cert"])
