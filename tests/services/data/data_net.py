"""A two-organisation chain in key mode for the ``data`` contract's tests, run in process.

``org1`` provides the resources (``PROV`` and ``APPROVER`` are its members), ``org2`` asks
for them (``DEPT``, and ``AUDITOR`` with the auditor role); ``CITIZEN`` is no member: its key
is the Ed25519 key of its did:key. Blocks are built with a solo commit, one second apart
unless told otherwise, as in ``tests/services/identity/test_contract_genesis.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from citychain.chain import Chain
from citychain.crypto import ED25519, Signer
from citychain.errors import CitychainError, ErrorCode
from citychain.execution import BlockContext, ContractRegistry
from citychain.execution.keys import account_nonce
from citychain.p2p.certs import generate_org_ca
from citychain.services.data.contract import Data
from citychain.services.data.shapes import subject_tag
from citychain.services.gov.contract import Gov
from citychain.services.identity.contract import Identity
from citychain.services.identity.shapes import did_key
from citychain.services.token.contract import Token
from citychain.store.kv import KVStore
from citychain.types import Block, Commit, Receipt, Transaction, Validator
from citychain.types.genesis import ChainParams, Genesis, Governance, Member, Organisation

CHAIN = "data-chain"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ORGS = ("org1", "org2")
CAS = {o: generate_org_ca(o, f"Org {o}") for o in ORGS}


def key(n: int) -> Signer:
    return Signer(ED25519, bytes([n]) * 32)


VAL = key(0x10)
ADMIN = {o: key(0x20 + i) for i, o in enumerate(ORGS)}
PROV, APPROVER, DEPT, AUDITOR = key(0x31), key(0x32), key(0x33), key(0x34)
CITIZEN, OTHER_CITIZEN = key(0x61), key(0x62)
CITIZEN_TAG = subject_tag(did_key(CITIZEN.public_key))
OTHER_TAG = subject_tag(did_key(OTHER_CITIZEN.public_key))


def registry() -> ContractRegistry:
    reg = ContractRegistry()
    for c in (Gov(), Token(), Identity(), Data()):
        reg.register(c)
    return reg


def make_genesis(mode: str = "key") -> Genesis:
    members = {
        "org1": ((PROV, ("member",)), (APPROVER, ("member",))),
        "org2": ((DEPT, ("member",)), (AUDITOR, ("auditor",))),
    }
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=T0,
        crypto_suite="ed25519",
        validators=(Validator(VAL.public_key, 10, "val"),),
        params=ChainParams(block_max_txs=200),
        organisations=tuple(
            Organisation(
                o,
                f"Org {o}",
                CAS[o][0].decode(),
                admins=(ADMIN[o].public_key,),
                members=tuple(Member(m.public_key, roles) for m, roles in members[o]),
            )
            for o in ORGS
        ),
        governance=Governance(mode, 20, {}),
        validator_orgs=((VAL.public_key, "org1"),),
    )
    return Genesis.from_json(genesis.to_json())


class Net:
    """A chain, its blocks, and a nonce count per sender for the block being built."""

    def __init__(self, path: Path, genesis: Genesis | None = None) -> None:
        self.chain = Chain(KVStore(path), genesis or make_genesis(), registry())
        self.blocks: list[Block] = []
        self._sent: dict[bytes, int] = {}
        self.time = T0

    @property
    def height(self) -> int:
        return self.chain.height

    def tx(
        self,
        s: Signer,
        method_name: str,
        args: dict[str, Any] | None = None,
        *,
        contract: str = "data",
        gas_limit: int = 20_000_000,
    ) -> Transaction:
        address = s.address
        nonce = account_nonce(self.chain.state, address) + self._sent.get(address, 0)
        self._sent[address] = self._sent.get(address, 0) + 1
        return Transaction.create(
            s,
            chain_id=CHAIN,
            nonce=nonce,
            contract=contract,
            method=method_name,
            args=args or {},
            gas_limit=gas_limit,
        )

    def block(self, *txs: Transaction, at: int | None = None) -> tuple[Receipt, ...]:
        self.time = self.time + 1000 if at is None else at
        pending = self.chain.build_block(list(txs), self.time, VAL.public_key)
        self.chain.commit(pending, Commit.sign_single(VAL, CHAIN, pending.header))
        self._sent.clear()
        self.blocks.append(pending.block)
        return pending.receipts

    def send(
        self, s: Signer, method_name: str, args: dict[str, Any] | None = None, at: int | None = None
    ) -> Receipt:
        (r,) = self.block(self.tx(s, method_name, args), at=at)
        return r

    def query(self, method_name: str, **args: Any) -> Any:
        header = self.chain.last_header()
        ctx = BlockContext(
            CHAIN, self.height, header.time if header else T0, header.proposer if header else b""
        )
        return self.chain.executor.query(self.chain.state, ctx, "data", method_name, args)

    def refused_twice(
        self, s: Signer, method_name: str, args: dict[str, Any], code: ErrorCode, words: str
    ) -> Receipt:
        """Admission refuses with ``code`` and ``words``, writing nothing, and the same
        transaction in a block fails with the same code and message."""
        tx = self.tx(s, method_name, args)
        root = self.chain.state.root
        with pytest.raises(CitychainError) as info:
            self.chain.check_admission(tx)
        early = info.value
        assert (early.code, words in early.message) == (code, True), early
        assert self.chain.state.root == root
        (late,) = self.block(tx)
        assert (late.code, late.message) == (early.code.value, early.message)
        assert late.events == () and late.result is None
        return late


def ok(r: Receipt) -> Receipt:
    assert r.code == ErrorCode.OK, f"{r.code}: {r.message}"
    return r


def refused(r: Receipt, code: ErrorCode, words: str) -> None:
    assert (r.code, words in r.message) == (code.value, True), f"{r.code}: {r.message}"
    assert r.result is None and r.events == ()


def resource(code: str = "101001/000001", **over: Any) -> dict[str, Any]:
    """A resource of org1's, unconditionally shared, with ``over`` changed."""
    base: dict[str, Any] = {
        "code": code,
        "title": "常住人口基本信息 Resident population",
        "description": "Residents registered in the city",
        "provider": "org1",
        "themes": ["population", "人口"],
        "keywords": ["residents", "census"],
        "data_items": [{"name": "name", "type": "string"}, {"name": "born", "type": "date"}],
        "sharing": "unconditional",
        "open_class": "closed",
        "update_cycle": "monthly",
        "media_type": "text/csv",
        "license": "https://creativecommons.org/licenses/by/4.0/",
    }
    base.update(over)
    return base


def conditional(code: str = "101001/000002", **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "sharing": "conditional",
        "sharing_condition": "for social-security checks only",
        "approvers": [APPROVER.address],
    }
    return resource(code, **{**fields, **over})


def version_args(code: str, n: int = 1, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "code": code,
        "manifest_id": bytes([n]) * 32,
        "plain_hash": bytes([0x40 + n]) * 32,
        "cipher_hash": bytes([0x80 + n]) * 32,
        "plain_size": 1000 * n,
        "cipher_size": 1000 * n + 16,
        "cipher": "aes-256-gcm",
    }
    base.update(over)
    if isinstance(base.get("wraps"), dict):
        base["wraps"] = [{"grantee": a, "wrapped": w} for a, w in base["wraps"].items()]
    return base


__all__ = [
    "ADMIN",
    "APPROVER",
    "AUDITOR",
    "CITIZEN",
    "CITIZEN_TAG",
    "DEPT",
    "OTHER_CITIZEN",
    "OTHER_TAG",
    "PROV",
    "T0",
    "Net",
    "Sequence",
    "conditional",
    "ok",
    "refused",
    "resource",
    "version_args",
]
