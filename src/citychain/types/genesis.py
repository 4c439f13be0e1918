"""The genesis document: what every node of a chain agrees on before block 1.

A JSON file (``genesis.json``)::

    {
      "chain_id": "citychain-demo",
      "genesis_time": 1767225600000,          # ms since the epoch: the time of "block 0"
      "crypto_suite": "ed25519",
      "crypto_params": {"distid": "1234567812345678"},  # sm2-sm3 only: the SM2 ID
      "validators": [{"name": "node0", "public_key": "<hex>", "power": 10}],
      "params": {"block_max_txs": 5000, ...},  # see ChainParams
      "contracts": {"token": {...}},           # each system contract's genesis parameters;
                                               # byte strings as {"hex": "..."}
      "organisations": [{"id": "org1", "name": "...", "ca_cert": "<PEM>"}]
    }                                          # node TLS certificates chain to these CAs

Its hash (the chain's hash, i.e. its ``crypto_suite``'s: SHA-256 for ``ed25519``, SM3 for
``sm2-sm3``, of its canonical CBOR form) identifies the chain's starting point; a node refuses
to start on a data directory made from another genesis. The suite named here decides every
hash of the chain (:attr:`Genesis.suite`); nothing else may. An ``sm2-sm3`` genesis also
states the SM2 distinguishing ID every signature of the chain is made and checked under
(``crypto_params``, GM/T 0009's ``1234567812345678`` as written by ``init`` and ``net up``);
one without it is refused (``bad_distid``) rather than left to a library's default.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from citychain import codec
from citychain.crypto import CryptoSuite, get_suite, suite_for
from citychain.errors import ConfigError, ErrorCode, InvalidInput
from citychain.types import Validator, ValidatorSet
from citychain.types.policy import Policy, check_name
from citychain.types.tx import json_to_codec

#: A genesis file larger than this is refused before it is read (JSON is read whole).
MAX_GENESIS_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChainParams:
    """Limits every node enforces identically (part of consensus)."""

    block_max_txs: int = 10_000
    block_max_bytes: int = 16 * 1024 * 1024
    block_max_gas: int = 10_000_000_000
    max_tx_bytes: int = 64 * 1024
    max_gas_per_tx: int = 50_000_000
    #: Target time between blocks when there are transactions to include (under BFT: from a
    #: height's start to the next one's, which starts at once if deciding took longer).
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
class Member:
    """An account registered in genesis: its public key and roles in its organisation."""

    public_key: bytes
    roles: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"public_key": self.public_key.hex(), "roles": list(self.roles)}


@dataclass(frozen=True, slots=True)
class Organisation:
    """A member organisation: its nodes' TLS certificates and its members' certificates chain
    to ``ca_cert`` (PEM); ``admins`` are the public keys of its administrators, ``members``
    further accounts registered from the start, ``roles`` the roles it defines beyond the
    built-in admin, member, validator and auditor.

    On an ``sm2-sm3`` chain ``gm_ca_cert`` is the organisation's SM2 CA (a GM certificate,
    :mod:`citychain.crypto.sm2_certs`): it certifies its nodes' SM2 keys, which authenticate
    them to their peers inside the TLS channel (:mod:`citychain.p2p.nodekey`), and its members'
    SM2 keys in certificate identity mode. ``ca_cert`` stays the CA of the TLS certificates,
    because OpenSSL's TLS cannot carry SM2 certificates."""

    id: str
    name: str
    ca_cert: str
    admins: tuple[bytes, ...] = ()
    members: tuple[Member, ...] = ()
    roles: tuple[str, ...] = ()
    gm_ca_cert: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "ca_cert": self.ca_cert}
        if self.gm_ca_cert:
            out["gm_ca_cert"] = self.gm_ca_cert
        if self.admins:
            out["admins"] = [a.hex() for a in self.admins]
        if self.members:
            out["members"] = [m.to_json() for m in self.members]
        if self.roles:
            out["roles"] = list(self.roles)
        return out

    @classmethod
    def from_json(cls, raw: Any, where: str) -> Organisation:
        if not isinstance(raw, dict) or not {"id", "name", "ca_cert"} <= set(raw):
            raise ConfigError(f"{where}: an organisation is an object with id, name and ca_cert")
        known = {"id", "name", "ca_cert", "gm_ca_cert", "admins", "members", "roles"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"{where}: unknown field(s) {', '.join(unknown)} "
                "(known: id, name, ca_cert, gm_ca_cert, admins, members, roles)"
            )
        oid, name, ca = raw["id"], raw["name"], raw["ca_cert"]
        try:
            check_name(oid, "organisation id")
        except InvalidInput as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        if not isinstance(name, str) or not isinstance(ca, str):
            raise ConfigError(f"{where}: organisation {oid!r}: name and ca_cert must be texts")
        gm_ca = raw.get("gm_ca_cert")  # optional: only sm2-sm3 chains have one
        for field_name, pem in (("ca_cert", ca), ("gm_ca_cert", gm_ca)):
            if pem is None and field_name == "gm_ca_cert":
                continue
            if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
                raise ConfigError(
                    f"{where}: organisation {oid!r}: {field_name} must be a PEM certificate "
                    "(-----BEGIN CERTIFICATE-----)"
                )
        admins = tuple(
            _hex_key(a, f"{where}: organisation {oid!r}: admins[{i}]")
            for i, a in enumerate(_list(raw.get("admins", []), f"{where}: admins"))
        )
        members = []
        for i, m in enumerate(_list(raw.get("members", []), f"{where}: members")):
            at = f"{where}: organisation {oid!r}: members[{i}]"
            if not isinstance(m, dict) or set(m) - {"public_key", "roles"}:
                raise ConfigError(f"{at}: a member is an object with public_key and roles")
            roles = _list(m.get("roles", ["member"]), f"{at}: roles")
            try:
                for r in roles:
                    check_name(r, "role")
            except InvalidInput as exc:
                raise ConfigError(f"{at}: {exc.message}") from None
            members.append(Member(_hex_key(m.get("public_key"), at), tuple(sorted(set(roles)))))
        roles = _list(raw.get("roles", []), f"{where}: roles")
        try:
            for r in roles:
                check_name(r, "role")
        except InvalidInput as exc:
            raise ConfigError(f"{where}: organisation {oid!r}: {exc.message}") from None
        return cls(oid, name, ca, admins, tuple(members), tuple(sorted(set(roles))), gm_ca or "")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list")
    return value


def _hex_key(value: Any, where: str) -> bytes:
    try:
        key = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: a public key is a hex string") from None
    if not key:
        raise ConfigError(f"{where}: a public key must not be empty")
    return key


@dataclass(frozen=True, slots=True)
class Governance:
    """How the chain governs itself (see :mod:`citychain.services.gov.contract`)::

        "governance": {
          "identity_mode": "key",             # "open" | "key" | "certificate"
          "voting_period": 1000,              # blocks a proposal stays open by default
          "policies": {"token.mint": {"rule": "ANY", "roles": ["admin"]},
                       "gov:add_org": {"rule": "MAJORITY", "roles": ["admin"]}}
        }

    Without the section a chain is ``open`` (any signature may call anything): a development
    chain. ``citychain net up`` and ``citychain init`` write ``key`` mode.
    """

    identity_mode: str = "open"
    voting_period: int = 1000
    policies: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "identity_mode": self.identity_mode,
            "voting_period": self.voting_period,
            "policies": self.policies,
        }

    @classmethod
    def from_json(cls, raw: Any, where: str) -> Governance:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: 'governance' must be an object")
        unknown = sorted(set(raw) - {"identity_mode", "voting_period", "policies"})
        if unknown:
            raise ConfigError(
                f"{where}: governance: unknown field(s) {', '.join(unknown)} "
                "(known: identity_mode, voting_period, policies)"
            )
        mode = raw.get("identity_mode", "key")
        if mode not in ("open", "key", "certificate"):
            raise ConfigError(
                f"{where}: governance.identity_mode must be open, key or certificate, got {mode!r}"
            )
        period = raw.get("voting_period", 1000)
        if not isinstance(period, int) or isinstance(period, bool) or not 0 < period <= 10**7:
            raise ConfigError(
                f"{where}: governance.voting_period must be a number of blocks in 1..10000000"
            )
        policies = raw.get("policies", {})
        if not isinstance(policies, dict):
            raise ConfigError(f"{where}: governance.policies must be an object")
        for target, pol in policies.items():
            try:
                Policy.from_value(pol, f"policy {target!r}")
            except InvalidInput as exc:
                raise ConfigError(f"{where}: governance: {exc.message}") from None
        return cls(mode, period, policies)


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
    governance: Governance | None = None
    #: The organisation of each validator, by public key (``"org"`` in ``validators``).
    validator_orgs: tuple[tuple[bytes, str], ...] = ()
    #: The suite's parameters (``"crypto_params"``): the SM2 distinguishing ID on an
    #: ``sm2-sm3`` chain. Empty means the suite's defaults, which :meth:`to_json` writes out.
    crypto_params: dict[str, str] = field(default_factory=dict)

    @property
    def suite(self) -> CryptoSuite:
        """The chain's crypto suite, under its genesis parameters: its signatures and every
        hash of the chain."""
        return suite_for(self.crypto_suite, self.crypto_params)

    @property
    def validator_set(self) -> ValidatorSet:
        return ValidatorSet(self.validators, hash_new=self.suite.hash_new)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time": self.genesis_time,
            "crypto_suite": self.crypto_suite,
            **({"crypto_params": params} if (params := self.suite.params) else {}),
            "validators": [self._validator_json(v) for v in self.validators],
            "params": asdict(self.params),
            "contracts": self.contracts,
            "organisations": [o.to_json() for o in self.organisations],
            **({"governance": self.governance.to_json()} if self.governance else {}),
        }

    def _validator_json(self, v: Validator) -> dict[str, Any]:
        out = v.to_json()
        org = dict(self.validator_orgs).get(v.public_key)
        if org is not None:
            out["org"] = org
        return out

    @property
    def identity_mode(self) -> str:
        return self.governance.identity_mode if self.governance else "open"

    @property
    def hash(self) -> bytes:
        return self.suite.hash(codec.encode(self.to_json()))

    def contract_params(self) -> dict[str, dict[str, Any]]:
        """Contract genesis parameters with ``{"hex": ...}`` turned into bytes; the governance
        contract's come from the organisations, validators, parameters and policies."""
        out: dict[str, dict[str, Any]] = json_to_codec(self.contracts)
        gov = self.governance or Governance()
        orgs_of = dict(self.validator_orgs)
        out["gov"] = {
            "mode": gov.identity_mode,
            "voting_period": gov.voting_period,
            "policies": gov.policies,
            "orgs": [
                {
                    "id": o.id,
                    "name": o.name,
                    "ca_cert": o.ca_cert,
                    **({"gm_ca_cert": o.gm_ca_cert} if o.gm_ca_cert else {}),
                    "admins": list(o.admins),
                    "members": [[m.public_key, list(m.roles)] for m in o.members],
                    "roles": list(o.roles),
                }
                for o in self.organisations
            ],
            "validators": [
                [v.public_key, v.power, v.name, orgs_of.get(v.public_key, "")]
                for v in self.validators
            ],
            "params": asdict(self.params),
        }
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Genesis:
        where = str(path)
        try:
            size = path.stat().st_size
            if size > MAX_GENESIS_BYTES:  # bounded before it is read (it may come from others)
                raise ConfigError(
                    f"{where}: {size} bytes; a genesis file is at most {MAX_GENESIS_BYTES}"
                )
            # json's C scanner refuses nesting deeper than the recursion limit (RecursionError).
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{where}: genesis file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: not valid JSON: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{where}: not valid JSON: nested too deeply") from None
        return cls.from_json(raw, where)

    @classmethod
    def from_json(cls, raw: Any, where: str = "genesis") -> Genesis:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: the genesis document must be a JSON object")
        allowed = {
            "chain_id",
            "genesis_time",
            "crypto_suite",
            "crypto_params",
            "validators",
            "params",
            "contracts",
            "organisations",
            "governance",
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
        crypto_params = raw.get("crypto_params", {})
        if not isinstance(crypto_params, dict) or not all(
            isinstance(v, str) for v in crypto_params.values()
        ):
            raise ConfigError(f"{where}: 'crypto_params' must be an object of texts")
        if suite.params and not crypto_params:
            # The suite's parameters are part of what every node verifies under (the SM2 ID
            # enters every signature), so a genesis must state them rather than lean on a
            # library default.
            raise ConfigError(
                f"{where}: the {suite_name} crypto suite needs 'crypto_params' "
                f"(for example {json.dumps(suite.params)})",
                ErrorCode.BAD_DISTID if "distid" in suite.params else ErrorCode.BAD_CONFIG,
            )
        try:
            suite = suite.with_params(crypto_params) if crypto_params else suite
        except ConfigError as exc:
            raise ConfigError(f"{where}: 'crypto_params': {exc.message}", exc.code) from None
        vals_raw = raw.get("validators")
        if not isinstance(vals_raw, list) or not vals_raw:
            raise ConfigError(f"{where}: 'validators' must be a non-empty list")
        validators = []
        validator_orgs: list[tuple[bytes, str]] = []
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
            org = v.get("org")
            if org is not None:
                if not isinstance(org, str):
                    raise ConfigError(f"{where}: validators[{i}].org must be an organisation id")
                validator_orgs.append((pk, org))
            validators.append(Validator(pk, power, str(v.get("name", ""))))
        params = ChainParams.from_json(raw.get("params", {}), where)
        contracts = raw.get("contracts", {})
        if not isinstance(contracts, dict):
            raise ConfigError(f"{where}: 'contracts' must be an object")
        if "gov" in contracts:
            raise ConfigError(
                f"{where}: the gov contract is configured by 'organisations', 'validators', "
                "'params' and 'governance', not under 'contracts'"
            )
        orgs_raw = raw.get("organisations", [])
        if not isinstance(orgs_raw, list):
            raise ConfigError(f"{where}: 'organisations' must be a list")
        orgs = tuple(
            Organisation.from_json(o, f"{where}: organisations[{i}]")
            for i, o in enumerate(orgs_raw)
        )
        if len({o.id for o in orgs}) != len(orgs):
            raise ConfigError(f"{where}: two organisations share an id")
        governance = Governance.from_json(raw["governance"], where) if "governance" in raw else None
        org_ids = {o.id for o in orgs}
        for pk, org in validator_orgs:
            if org not in org_ids:
                raise ConfigError(
                    f"{where}: validator {pk.hex()[:16]}… names organisation {org!r}, which "
                    "is not in 'organisations'"
                )
        if governance is not None and governance.identity_mode != "open":
            if not orgs:
                raise ConfigError(
                    f"{where}: identity mode {governance.identity_mode!r} needs organisations"
                )
            for o in orgs:
                if not o.admins:
                    raise ConfigError(
                        f"{where}: organisation {o.id!r} has no admin keys; every organisation "
                        "needs at least one admin to govern"
                    )
        for o in orgs:
            # An SM2 chain authenticates nodes by their SM2 certificates: every organisation
            # names the GM CA that issues them (and none elsewhere, where nothing would use it).
            if suite.name == "sm2-sm3" and not o.gm_ca_cert:
                raise ConfigError(
                    f"{where}: organisation {o.id!r} has no gm_ca_cert; on an sm2-sm3 chain "
                    "every organisation names its SM2 CA (citychain net up --crypto sm2 and "
                    "init --crypto sm2 make one)"
                )
            if suite.name != "sm2-sm3" and o.gm_ca_cert:
                raise ConfigError(
                    f"{where}: organisation {o.id!r} has a gm_ca_cert on a {suite.name} chain; "
                    "SM2 CAs belong to sm2-sm3 chains",
                    ErrorCode.WRONG_SUITE,
                )
            for k in (*o.admins, *(m.public_key for m in o.members)):
                try:
                    suite.check_public_key(k)
                except InvalidInput as exc:
                    raise ConfigError(f"{where}: organisation {o.id!r}: {exc.message}") from None
        genesis = cls(
            chain_id,
            gtime,
            suite_name,
            tuple(validators),
            params,
            contracts,
            orgs,
            governance,
            tuple(validator_orgs),
            dict(crypto_params),
        )
        try:
            genesis.validator_set  # noqa: B018 (validates duplicates)
            codec.check_value(genesis.contract_params())
        except InvalidInput as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        return genesis
