"""The genesis document: what every node of a chain agrees on before block 1.

A JSON file (``genesis.json``)::

    {
      "chain_id": "citychain-demo",
      "genesis_time": 1767225600000,          # ms since the epoch: the time of "block 0"
      "crypto_suite": "ed25519",
      "validators": [{"name": "node0", "public_key": "<hex>", "power": 10}],
      "params": {"block_max_txs": 5000, ...},  # see ChainParams
      "contracts": {"token": {...}},           # each system contract's genesis parameters;
                                               # byte strings as {"hex": "..."}
      "organisations": [{"id": "org1", "name": "...", "ca_cert": "<PEM>"}]
    }                                          # node TLS certificates chain to these CAs

Its hash (sha256 of its canonical CBOR form) identifies the chain's starting point; a node
refuses to start on a data directory made from another genesis.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from citychain import codec
from citychain.crypto import get_suite
from citychain.errors import ConfigError, InvalidInput
from citychain.types import Validator, ValidatorSet
from citychain.types.tx import json_to_codec


@dataclass(frozen=True, slots=True)
class ChainParams:
    """Limits every node enforces identically (part of consensus)."""

    block_max_txs: int = 10_000
    block_max_bytes: int = 16 * 1024 * 1024
    block_max_gas: int = 10_000_000_000
    max_tx_bytes: int = 64 * 1024
    max_gas_per_tx: int = 50_000_000
    #: Target time between blocks when there are transactions to include (under BFT: the
    #: pause after a commit before the next height starts, Tendermint's "timeout commit").
    block_interval_ms: int = 200
    #: Tendermint timeouts of round r are ``timeout_X_ms + r * timeout_delta_ms``.
    timeout_propose_ms: int = 3000
    timeout_prevote_ms: int = 1000
    timeout_precommit_ms: int = 1000
    timeout_delta_ms: int = 500
    #: Evidence older than this many blocks is no longer accepted into a block.
    evidence_max_age_blocks: int = 100_000
    #: At most this much evidence in one block.
    block_max_evidence: int = 50

    @classmethod
    def from_json(cls, raw: Any, where: str) -> ChainParams:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: 'params' must be an object")
        known = {f.name for f in fields(cls)}
        for k, v in raw.items():
            if k not in known:
                raise ConfigError(
                    f"{where}: unknown chain parameter {k!r} (known: {sorted(known)})"
                )
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{where}: chain parameter {k!r} must be a positive integer")
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class Organisation:
    """A member organisation: its nodes' TLS certificates must chain to ``ca_cert`` (PEM)."""

    id: str
    name: str
    ca_cert: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "ca_cert": self.ca_cert}

    @classmethod
    def from_json(cls, raw: Any, where: str) -> Organisation:
        if not isinstance(raw, dict) or set(raw) != {"id", "name", "ca_cert"}:
            raise ConfigError(f"{where}: an organisation is an object with id, name and ca_cert")
        oid, name, ca = raw["id"], raw["name"], raw["ca_cert"]
        if not isinstance(oid, str) or not 0 < len(oid) <= 64 or not oid.isprintable():
            raise ConfigError(f"{where}: organisation id must be a text of 1 to 64 characters")
        if not isinstance(name, str) or not isinstance(ca, str):
            raise ConfigError(f"{where}: organisation {oid!r}: name and ca_cert must be texts")
        if "-----BEGIN CERTIFICATE-----" not in ca:
            raise ConfigError(
                f"{where}: organisation {oid!r}: ca_cert must be a PEM certificate "
                "(-----BEGIN CERTIFICATE-----)"
            )
        return cls(oid, name, ca)


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time: int
    crypto_suite: str
    validators: tuple[Validator, ...]
    params: ChainParams = field(default_factory=ChainParams)
    contracts: dict[str, Any] = field(default_factory=dict)
    #: Member organisations and their CAs (the trust roots of node-to-node TLS).
    organisations: tuple[Organisation, ...] = ()

    @property
    def validator_set(self) -> ValidatorSet:
        return ValidatorSet(self.validators)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time": self.genesis_time,
            "crypto_suite": self.crypto_suite,
            "validators": [v.to_json() for v in self.validators],
            "params": asdict(self.params),
            "contracts": self.contracts,
            "organisations": [o.to_json() for o in self.organisations],
        }

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(codec.encode(self.to_json())).digest()

    def contract_params(self) -> dict[str, dict[str, Any]]:
        """Contract genesis parameters with ``{"hex": ...}`` turned into bytes."""
        out: dict[str, dict[str, Any]] = json_to_codec(self.contracts)
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Genesis:
        where = str(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{where}: genesis file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: not valid JSON: {exc}") from None
        return cls.from_json(raw, where)

    @classmethod
    def from_json(cls, raw: Any, where: str = "genesis") -> Genesis:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: the genesis document must be a JSON object")
        allowed = {
            "chain_id",
            "genesis_time",
            "crypto_suite",
            "validators",
            "params",
            "contracts",
            "organisations",
        }
        for k in raw:
            if k not in allowed:
                raise ConfigError(f"{where}: unknown field {k!r}")
        chain_id = raw.get("chain_id")
        if not isinstance(chain_id, str) or not 0 < len(chain_id) <= 64:
            raise ConfigError(f"{where}: 'chain_id' must be a text of 1 to 64 characters")
        gtime = raw.get("genesis_time")
        if not isinstance(gtime, int) or isinstance(gtime, bool) or gtime < 0:
            raise ConfigError(f"{where}: 'genesis_time' must be milliseconds since the epoch")
        suite_name = raw.get("crypto_suite", "ed25519")
        try:
            suite = get_suite(suite_name)
        except InvalidInput as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        vals_raw = raw.get("validators")
        if not isinstance(vals_raw, list) or not vals_raw:
            raise ConfigError(f"{where}: 'validators' must be a non-empty list")
        validators = []
        for i, v in enumerate(vals_raw):
            if not isinstance(v, dict):
                raise ConfigError(f"{where}: validators[{i}] must be an object")
            try:
                pk = bytes.fromhex(v["public_key"])
                power = v["power"]
            except (KeyError, TypeError, ValueError):
                raise ConfigError(
                    f"{where}: validators[{i}] needs 'public_key' (hex) and 'power'"
                ) from None
            try:
                suite.check_public_key(pk)
            except InvalidInput as exc:
                raise ConfigError(f"{where}: validators[{i}]: {exc.message}") from None
            if not isinstance(power, int) or isinstance(power, bool) or power <= 0:
                raise ConfigError(f"{where}: validators[{i}].power must be a positive integer")
            validators.append(Validator(pk, power, str(v.get("name", ""))))
        params = ChainParams.from_json(raw.get("params", {}), where)
        contracts = raw.get("contracts", {})
        if not isinstance(contracts, dict):
            raise ConfigError(f"{where}: 'contracts' must be an object")
        orgs_raw = raw.get("organisations", [])
        if not isinstance(orgs_raw, list):
            raise ConfigError(f"{where}: 'organisations' must be a list")
        orgs = tuple(
            Organisation.from_json(o, f"{where}: organisations[{i}]")
            for i, o in enumerate(orgs_raw)
        )
        if len({o.id for o in orgs}) != len(orgs):
            raise ConfigError(f"{where}: two organisations share an id")
        genesis = cls(chain_id, gtime, suite_name, tuple(validators), params, contracts, orgs)
        try:
            genesis.validator_set  # noqa: B018 (validates duplicates)
            codec.check_value(genesis.contract_params())
        except InvalidInput as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        return genesis
