"""The ``identity`` contract on a real chain: the helpers the other ``test_contract_*`` files
share (a two-organisation chain in key mode, whose trusted-issuer methods are governed by
policies), and the contract's genesis and registration.

Each test runs a :class:`Chain` on RocksDB in ``tmp_path`` and builds blocks with a solo
commit, as ``tests/services/test_gov.py`` does; receipts are checked by code and message.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from citychain.chain import Chain
from citychain.crypto import ED25519, Signer
from citychain.crypto.keystore import load_key
from citychain.errors import CitychainError, ConfigError, ErrorCode
from citychain.execution import BlockContext, ContractRegistry, default_registry
from citychain.execution.keys import account_nonce
from citychain.node.home import init_home
from citychain.p2p.certs import generate_org_ca
from citychain.services.gov.contract import Gov
from citychain.services.identity.contract import Identity
from citychain.services.identity.shapes import citychain_did, multikey_encode
from citychain.services.token.contract import Token
from citychain.store.kv import KVStore
from citychain.types import Block, Commit, Receipt, Transaction, Validator
from citychain.types.genesis import ChainParams, Genesis, Governance, Member, Organisation

CHAIN = "identity-chain"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ORGS = ("org1", "org2")
CAS = {o: generate_org_ca(o, f"Org {o}") for o in ORGS}


def key(n: int) -> Signer:
    return Signer(ED25519, bytes([n]) * 32)


VAL = key(0x10)
ADMIN = {o: key(0x20 + i) for i, o in enumerate(ORGS)}
ALICE, BOB = key(0x31), key(0x32)  # members of org1 and org2
#: Keys that are not accounts: DID keys held by no member (a did:key controller, say).
K1, K2, K3 = key(0x51), key(0x52), key(0x53)
#: A did:citychain that no transaction created.
UNKNOWN = citychain_did(bytes(range(16)))
POLICIES: dict[str, Any] = {
    "identity.trust_issuer": {"rule": "MAJORITY", "roles": ["admin"]},
    "identity.untrust_issuer": {"rule": "ANY", "roles": ["admin"]},
}


def mk(s: Signer) -> str:
    return multikey_encode(s.public_key)


def registry() -> ContractRegistry:
    reg = ContractRegistry()
    for c in (Gov(), Token(), Identity()):
        reg.register(c)
    return reg


def make_genesis(
    mode: str = "key",
    policies: dict[str, Any] | None = None,
    identity: dict[str, Any] | None = None,
) -> Genesis:
    members = {"org1": (ALICE,), "org2": (BOB,)}
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=T0,
        crypto_suite="ed25519",
        validators=(Validator(VAL.public_key, 10, "val"),),
        params=ChainParams(block_max_txs=100),
        contracts={"identity": identity} if identity is not None else {},
        organisations=tuple(
            Organisation(
                o,
                f"Org {o}",
                CAS[o][0].decode(),
                admins=(ADMIN[o].public_key,),
                members=tuple(Member(m.public_key, ("member",)) for m in members[o]),
            )
            for o in ORGS
        ),
        governance=Governance(mode, 20, POLICIES if policies is None else policies),
        validator_orgs=((VAL.public_key, "org1"),),
    )
    return Genesis.from_json(genesis.to_json())


class Net:
    """A chain, its blocks, and a nonce count per sender for the block being built."""

    def __init__(self, path: Path, genesis: Genesis) -> None:
        self.genesis = genesis
        self.chain = Chain(KVStore(path), genesis, registry())
        self.blocks: list[Block] = []
        self._sent: dict[bytes, int] = {}

    @property
    def height(self) -> int:
        return self.chain.height

    def time_of(self, height: int) -> int:
        """The block time of ``height`` when blocks are made by :meth:`block` without ``at``."""
        return T0 + 1000 * height

    def tx(
        self,
        s: Signer,
        method_name: str,
        args: dict[str, Any] | None = None,
        endorsers: Sequence[Signer] = (),
        contract: str = "identity",
        gas_limit: int = 5_000_000,
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
            endorsers=endorsers,
        )

    def block(self, *txs: Transaction, at: int | None = None) -> tuple[Receipt, ...]:
        t = self.time_of(self.height + 1) if at is None else at
        pending = self.chain.build_block(list(txs), t, VAL.public_key)
        self.chain.commit(pending, Commit.sign_single(VAL, CHAIN, pending.header))
        self._sent.clear()
        self.blocks.append(pending.block)
        return pending.receipts

    def send(
        self,
        s: Signer,
        method_name: str,
        args: dict[str, Any] | None = None,
        endorsers: Sequence[Signer] = (),
    ) -> Receipt:
        (r,) = self.block(self.tx(s, method_name, args, endorsers))
        return r

    def query(self, method_name: str, **args: Any) -> Any:
        header = self.chain.last_header()
        ctx = BlockContext(
            CHAIN, self.height, header.time if header else T0, header.proposer if header else b""
        )
        return self.chain.executor.query(self.chain.state, ctx, "identity", method_name, args)

    def create(self, s: Signer, document: dict[str, Any]) -> str:
        """Create a DID signed by ``s``; checks the receipt and the derived identifier."""
        r = ok(self.send(s, "create_did", {"document": document}))
        did: str = r.result
        return did

    def refused_twice(
        self,
        s: Signer,
        method_name: str,
        args: dict[str, Any],
        code: ErrorCode,
        words: str,
        endorsers: Sequence[Signer] = (),
    ) -> Receipt:
        """Admission refuses ``s``'s call with ``code`` and ``words``, writing nothing, and
        the same transaction in a block fails with the same code and message."""
        tx = self.tx(s, method_name, args, endorsers)
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


def document(
    *keys: Signer,
    invoke: Sequence[int] = (0,),
    controller: str | list[str] | None = None,
    services: Sequence[tuple[str, str, Any]] = (),
) -> dict[str, Any]:
    """A new document with ``keys`` as ``#key-1``, ``#key-2``...: each authenticates and
    asserts; those at ``invoke`` may change the DID (``capabilityInvocation``)."""
    ids = [f"#key-{i + 1}" for i in range(len(keys))]
    d: dict[str, Any] = {
        "verificationMethod": [
            {"id": i, "type": "Multikey", "publicKeyMultibase": mk(k)}
            for i, k in zip(ids, keys, strict=True)
        ],
        "authentication": list(ids),
        "assertionMethod": list(ids),
    }
    if invoke:
        d["capabilityInvocation"] = [ids[i] for i in invoke]
    if controller is not None:
        d["controller"] = controller
    if services:
        d["service"] = [{"id": f"#{n}", "type": t, "serviceEndpoint": e} for n, t, e in services]
    return d


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path / "chain", make_genesis())
    yield n
    n.chain.close()


# -- genesis and registration --------------------------------------------------------------------
def test_every_node_runs_the_identity_contract() -> None:
    """One registry line: the node's default registry has the contract."""
    assert "identity" in default_registry().names()
    assert "create_did" in default_registry().get("identity").entries


def test_genesis_may_list_trusted_issuers(tmp_path: Path) -> None:
    issuers = [
        {"issuer": "did:key:" + mk(K1), "type": "BusinessLicence", "name": "Market Bureau"},
        {"issuer": "did:web:edu.example.gov", "type": "Diploma", "name": "Education Bureau"},
    ]
    n = Net(tmp_path / "c", make_genesis(identity={"trusted_issuers": issuers}))
    try:
        assert n.query("is_trusted", issuer=issuers[0]["issuer"], type="BusinessLicence")
        assert not n.query("is_trusted", issuer=issuers[0]["issuer"], type="Diploma")
        (entry,) = n.query("issuers", type="Diploma")
        assert (entry["issuer"], entry["name"], entry["since"]) == (
            "did:web:edu.example.gov",
            "Education Bureau",
            T0,
        )
        hist = n.query("issuer_history")
        assert [(h["seq"], h["action"], h["type"]) for h in hist] == [
            (1, "trust", "BusinessLicence"),
            (2, "trust", "Diploma"),
        ]
    finally:
        n.chain.close()


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"issuers": []}, "unknown parameter(s) issuers"),
        ({"trusted_issuers": {}}, "'trusted_issuers' must be a list"),
        ({"trusted_issuers": [{"issuer": "nope", "type": "T", "name": "N"}]}, "is not a DID"),
        (
            {"trusted_issuers": [{"issuer": UNKNOWN, "type": "T", "name": "N"}]},
            "is not on this chain",
        ),
        ({"trusted_issuers": [{"issuer": "did:web:x", "type": "a b", "name": "N"}]}, "'type'"),
        ({"trusted_issuers": [{"issuer": "did:web:x", "type": "T"}]}, "issuer, type and name"),
    ],
)
def test_bad_genesis_parameters_are_refused(
    tmp_path: Path, params: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Chain(KVStore(tmp_path / "bad"), make_genesis(identity=params), registry())
    assert words in info.value.message, info.value.message


def test_the_demo_genesis_lets_its_admin_govern_the_registry_and_alice_create_a_did(
    tmp_path: Path,
) -> None:
    """``citychain init`` (and ``net up``) write the policies the registry needs: the demo
    organisation's admin trusts an issuer; the demo account alice creates a DID."""
    made = init_home(tmp_path / "home", plaintext_key=True, kdf_level="interactive")
    genesis = Genesis.load(tmp_path / "home" / "config" / "genesis.json")
    admin = load_key(tmp_path / "home" / "keys" / "org1-admin.json", "", allow_plaintext=True)
    alice = made.accounts["alice"]
    chain = Chain(KVStore(tmp_path / "db"), genesis, default_registry())
    try:
        txs = [
            Transaction.create(
                s,
                chain_id=genesis.chain_id,
                nonce=0,
                contract="identity",
                method=m,
                args=a,
                gas_limit=1_000_000,
            )
            for s, m, a in [
                (alice, "create_did", {"document": document(alice)}),
                (admin, "trust_issuer", {"issuer": "did:web:x", "type": "T", "name": "N"}),
            ]
        ]
        pending = chain.build_block(txs, genesis.genesis_time + 1000, made.validator.public_key)
        assert [r.code for r in pending.receipts] == ["ok", "ok"], pending.receipts
    finally:
        chain.close()
