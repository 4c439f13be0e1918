"""The offline proof bundle: one file that proves a credential with no network at all.

Theory of operation
-------------------
A certificate must be checkable years later, on a laptop with no network, by someone who
trusts only the chain itself. :func:`make_bundle` asks a node, at *one* height, for the state
records a verifier needs, each with its ICS-23 proof, and puts them in one JSON file with the
credential and the validator set that signed that height::

    {"version": "citychain-offline-proof-bundle/1", "chainId", "height",
     "cryptoSuite": "sm2-sm3",             the chain's crypto suite; absent on an ed25519
                                           chain (so such a bundle is the bytes it always was)
     "credential": {...} | "<SD-JWT>",     the credential as issued: a VC 2.0 credential, or
                                           an SD-JWT VC with the disclosures its holder keeps
     "validators": [...],                  the set that signed the header (its hash is in it)
     "light": [...],                       what a light client needs to reach that set from
                                           the trusted one: sets and signed headers
     "proofs": [StateProof, ...]}          key, value, ICS-23 proof, header, commit

The proofs are, in order: the issuer's DID head and the document's latest version (the
document is rebuilt from the record with the contract's own codec), the trusted-issuer entry
for the credential's type (an SD-JWT VC's ``vct``; with the issuer's name), and for each
status entry of the credential (a ``BitstringStatusListEntry``, or an SD-JWT VC's ``status``
claim) the list's head (its purpose) and the 1 KiB chunk holding its bit (proven absent when
no bit of it is set).

An SD-JWT VC is bundled without a Key Binding JWT: the bundle proves the credential (its
issuer's signature, the disclosures it holds, trust and status at the bundle's height), not
a presentation, whose freshness (nonce, audience) is a live verifier's question. A citizen
bundles the credential with every disclosure, or only those they will show: the undisclosed
claims stay hidden in the file too.

:func:`verify_bundle` needs, besides the file, only what a light client needs: the chain id,
the validator set the verifier trusts (from genesis, or a later set checked out of band) and
the chain's crypto suite (genesis's ``crypto_suite``), and the time to check validity dates at.
Every hash is the trusted suite's (SHA-256 on an ``ed25519`` chain, SM3 on an ``sm2-sm3``
one): the headers', the validator sets', the ICS-23 proofs' (``SMT_SPEC`` or
``SMT_SPEC_SM3``), and the commits' signatures are checked under it (Ed25519 or SM2). The
suite the bundle names is only a claim, checked against the trusted one, never used to
choose a hash. It refuses, with a named code, unless:

0. the bundle names the trusted suite (``wrong_suite`` otherwise: a SHA-256 bundle against
   an SM3 chain's genesis, or the reverse, is refused before any proof is read);

1. the file is exactly the canonical JSON (RFC 8785) of its content and every proof renders
   back to the same JSON (so no byte of the file can change without a refusal: a changed
   space, a hex digit in upper case, a reordered key are all refused as ``tampered``);
2. a light client anchored at the trusted set (the SDK's :class:`LightClient`, with the
   bundle as its only source: it asks for nothing the bundle does not hold) reaches the set
   that signed the bundle's header across any validator-set changes since, and every header
   is for the chain and the bundle's height and signed by more than 2/3 of that set's power
   (``bad_proof``);
3. every proof checks against its header's state root, and the proven keys are exactly the
   ones this credential calls for (nothing missing, nothing extra: ``bad_proof``);
4. the issuer's DID is not deactivated at that height (``did_deactivated``), and the
   credential's proof verifies with a key of the proven document's ``assertionMethod``
   (``tampered``, ``wrong_key``...), within its validity dates at ``now``;
5. the registry trusts the issuer for the credential's type (``issuer_not_trusted``);
6. no status bit of it is set (``credential_revoked``, ``credential_suspended``).

What the bundle proves is the chain's state *at its height*: a revocation after it is not in
it. A verifier that can reach a node later asks it (``POST /credentials/verify``); one that
cannot knows as of when it knows, :attr:`BundleVerdict.time`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from citychain import codec
from citychain.crypto import ED25519, CryptoSuite, HashNew, suite_for
from citychain.errors import CitychainError, ErrorCode, InvalidInput, ProofError
from citychain.sdk import _parse
from citychain.sdk._light import Answer, Fetch, LightBlock, LightClient, drive
from citychain.sdk._verify import verify_state
from citychain.services.identity.sdk._di import canonicalize_jcs
from citychain.services.identity.sdk._sdjwt import _parse_jwt, _split, verify_sd_jwt
from citychain.services.identity.sdk._status import status_entries
from citychain.services.identity.sdk._vc import verify_credential
from citychain.services.identity.shapes import (
    STATUS_CHUNK_BITS,
    DidHead,
    DidVersion,
    did_head_key,
    did_key_document,
    did_version_key,
    issuer_key,
    split_status_list_id,
    status_bit,
    status_chunk_key,
    status_list_key,
    xsd_datetime,
)
from citychain.services.identity.shapes._document import to_json
from citychain.types import StateProof, ValidatorSet
from citychain.types.answers import BlockInfo, NodeStatus

VERSION = "citychain-offline-proof-bundle/1"
#: Most proofs one bundle carries (a DID, an issuer entry, and status entries).
MAX_PROOFS = 16
#: Most light blocks (validator-set changes to follow) one bundle carries.
MAX_LIGHT_STEPS = 64
#: Largest bundle file read.
MAX_BUNDLE_BYTES = 4 * 1024 * 1024


class _Node(Protocol):
    def status(self) -> NodeStatus: ...

    def state_proof(self, key: bytes, height: int | None = None) -> StateProof: ...

    def validators(self, height: int | None = None) -> ValidatorSet: ...

    def block(self, height: int | None = None) -> BlockInfo: ...


@dataclass(frozen=True, slots=True)
class BundleVerdict:
    """What a verified bundle says: who issued the credential (and the name the registry
    gives), which type the registry trusts it for, and as of which block."""

    issuer: str
    issuer_name: str
    credential_type: str
    height: int
    #: the block time of that height (ms since the epoch): what the verifier knows is as of it
    time: int

    def to_json(self) -> dict[str, Any]:
        """The verdict as ``citychain vc verify --offline --json`` prints it and a node's
        ``POST /bundles/verify`` answers it."""
        return {
            "verified": True,
            "issuer": self.issuer,
            "issuerName": self.issuer_name,
            "credentialType": self.credential_type,
            "height": self.height,
            "asOf": xsd_datetime(self.time),
        }


def _tampered(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.TAMPERED)


def _bad_proof(message: str) -> ProofError:
    return ProofError(message, ErrorCode.BAD_PROOF)


Credential = Mapping[str, Any] | str


def _sd_jwt_claims(sd_jwt: str) -> dict[str, Any]:
    """The issuer-signed claims of an SD-JWT in a bundle (not verified: :func:`_judge` does)."""
    jwt, _, key_binding = _split(sd_jwt)
    if key_binding is not None:
        raise InvalidInput(
            "an SD-JWT is bundled as issued (with the disclosures its holder keeps), without a "
            "Key Binding JWT: a bundle proves the credential, not a presentation",
            ErrorCode.INVALID_CREDENTIAL,
        )
    return _parse_jwt(jwt, "the issuer-signed JWT", ErrorCode.INVALID_CREDENTIAL)[1]


def _issuer(credential: Credential) -> str:
    if isinstance(credential, str):
        did: Any = _sd_jwt_claims(credential).get("iss")
    else:
        issuer = credential.get("issuer")
        did = issuer.get("id") if isinstance(issuer, Mapping) else issuer
    if not isinstance(did, str) or not did.startswith("did:citychain:"):
        raise InvalidInput(
            "an offline bundle proves credentials whose issuer is a did:citychain",
            ErrorCode.INVALID_CREDENTIAL,
        )
    return did


def _types(credential: Credential) -> list[str]:
    if isinstance(credential, str):
        vct = _sd_jwt_claims(credential).get("vct")
        return [vct] if isinstance(vct, str) else []
    raw = credential.get("type")
    types = raw if isinstance(raw, list) else [raw]
    return [t for t in types if isinstance(t, str) and t != "VerifiableCredential"]


def _status_entries(credential: Credential) -> list[tuple[str, int]]:
    out = []
    for list_id, index, _ in status_entries(credential):
        split_status_list_id(list_id)  # a list of this chain, or bad_arguments
        out.append((list_id, index))
    return out


def _status_keys(entries: Sequence[tuple[str, int]]) -> list[bytes]:
    keys: list[bytes] = []
    for list_id, index in entries:
        keys += [status_list_key(list_id), status_chunk_key(list_id, index)]
    return keys


def make_bundle(
    node: _Node,
    credential: Credential,
    *,
    trust: ValidatorSet | None = None,
    suite: CryptoSuite | None = None,
) -> dict[str, Any]:
    """The offline proof bundle of ``credential`` at the node's latest height (a JSON value:
    write it with :func:`bundle_bytes`). ``trust`` is the validator set the bundle's readers
    will trust (default: the chain's first set, as in genesis); the bundle carries the light
    blocks a light client anchored there needs to reach the bundle's height, checked here as
    the reader will check them. ``suite`` is the chain's crypto suite (default: the one the
    node's status names); the bundle names it."""
    if suite is None:
        status = node.status()
        suite = suite_for(status.crypto_suite, status.crypto_params)
    issuer = _issuer(credential)
    head = node.state_proof(did_head_key(issuer))
    if head.value is None:
        raise CitychainError(f"{issuer} is not on this chain", ErrorCode.DID_NOT_FOUND)
    height = head.height
    versions = DidHead.from_value(codec.decode(head.value)).versions
    proofs = [head, node.state_proof(did_version_key(issuer, versions), height)]
    for ctype in _types(credential):
        entry = node.state_proof(issuer_key(issuer, ctype), height)
        if entry.value is not None:
            proofs.append(entry)
            break
    else:
        raise CitychainError(
            f"{issuer[:80]} is not trusted for {', '.join(_types(credential))[:120]} on this "
            "chain, so there is nothing to prove",
            ErrorCode.ISSUER_NOT_TRUSTED,
        )
    proofs += [node.state_proof(k, height) for k in _status_keys(_status_entries(credential))]
    chain_id = head.header.chain_id
    light: list[dict[str, Any]] = []

    def fetch(need: Fetch) -> Answer:
        vs = node.validators(need.height)
        step: dict[str, Any] = {"height": need.height, "validators": vs.to_json()}
        light.append(step)
        if not need.block:
            return vs
        b = node.block(need.height)
        step["header"], step["commit"] = b.header.to_json(), b.commit.to_json()
        return LightBlock(b.header, b.commit, vs)

    client = LightClient(suite, chain_id, trust or node.validators(1))
    signers = drive(client.verify(head.header, head.commit), fetch)
    return {
        "version": VERSION,
        "chainId": chain_id,
        "height": height,
        **({} if suite.name == ED25519.name else {"cryptoSuite": suite.name}),
        "credential": credential if isinstance(credential, str) else dict(credential),
        "validators": signers.to_json(),
        "light": light,
        "proofs": [p.to_json() for p in proofs],
    }


def is_bundle(value: Any) -> bool:
    """Whether a parsed JSON file is an offline proof bundle (not whether it holds: that is
    :func:`verify_bundle`)."""
    return isinstance(value, Mapping) and value.get("version") == VERSION


def bundle_bytes(bundle: Mapping[str, Any]) -> bytes:
    """The bundle's file: its canonical JSON (RFC 8785), the only form :func:`verify_bundle`
    accepts."""
    return canonicalize_jcs(dict(bundle))


def _parse_file(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_BUNDLE_BYTES:
        raise InvalidInput(
            f"a bundle is at most {MAX_BUNDLE_BYTES} bytes, this one {len(data)}",
            ErrorCode.TOO_LARGE,
        )
    try:
        value = json.loads(data)
        # The C path for plain JSON (RFC 8785's bytes, held to the library by hypothesis):
        # the pure-Python library was half of an offline verification.
        canonical = canonicalize_jcs(value)
    except (ValueError, InvalidInput) as exc:
        raise _tampered(f"the bundle is not JSON ({str(exc)[:120]})") from None
    if canonical != data:
        raise _tampered("the bundle is not exactly its canonical JSON: it was changed")
    if not isinstance(value, dict):
        raise _tampered("the bundle is not a JSON object")
    return value


def verify_bundle(
    bundle: bytes | Mapping[str, Any],
    *,
    chain_id: str,
    validators: ValidatorSet,
    now: datetime,
    suite: CryptoSuite = ED25519,
) -> BundleVerdict:
    """Verify an offline proof bundle with no network (see the module docstring); raise with
    the reason's code otherwise. ``bundle`` is the file's bytes (preferred: then no byte of it
    can change unnoticed) or its parsed JSON. ``chain_id``, ``validators`` and ``suite`` are
    the trust anchors (genesis's ``chain_id``, validator set and crypto suite): every hash and
    signature is checked under ``suite``, whatever the bundle says."""
    b = _parse_file(bundle) if isinstance(bundle, bytes) else dict(bundle)
    if set(b) - {"cryptoSuite"} != _FIELDS:
        raise _tampered("the bundle's fields are not those of " + VERSION)
    if b["version"] != VERSION:
        raise InvalidInput(
            f"unknown bundle version {str(b['version'])[:60]!r}", ErrorCode.BAD_ARGUMENTS
        )
    _check_suite(b, suite)
    hash_new = suite.hash_new
    if b["chainId"] != chain_id:
        raise _bad_proof(f"the bundle is for chain {str(b['chainId'])[:60]!r}, not {chain_id!r}")
    height, credential, raw_proofs = b["height"], b["credential"], b["proofs"]
    if type(height) is not int or not isinstance(credential, (dict, str)):
        raise _tampered("the bundle's height or credential is malformed")
    if not isinstance(raw_proofs, list) or not 2 <= len(raw_proofs) <= MAX_PROOFS:
        raise _tampered(f"a bundle carries 2 to {MAX_PROOFS} proofs")

    signers = _validator_set(b["validators"], hash_new)
    answers = _light_answers(b["light"], hash_new)

    proven: dict[bytes, bytes | None] = {}
    time = 0
    followed: ValidatorSet | None = None
    for raw in raw_proofs:
        p = _parse.parsed("a proof of the bundle", partial(_parse.state_proof, raw, hash_new))
        if p.to_json() != raw:
            raise _tampered("a proof of the bundle is not in its canonical form")
        if p.height != height:
            raise _bad_proof(f"a proof is for height {p.height}, the bundle's is {height}")
        if p.key in proven:
            raise _bad_proof("the bundle proves the same key twice")
        if followed is None:
            followed = _follow(suite, chain_id, validators, p, answers)
            if followed.hash != signers.hash:
                raise _bad_proof("the bundle's validator set is not the one that signed it")
        verify_state(
            suite=suite,
            chain_id=chain_id,
            validators=followed,
            key=p.key,
            value=p.value,
            height=p.height,
            proof=p.proof,
            header=p.header,
            commit=p.commit,
        )
        proven[p.key] = p.value
        time = p.header.time
    return _judge(credential, proven, height, time, now)


_FIELDS = frozenset({"version", "chainId", "height", "credential", "validators", "light", "proofs"})


def _check_suite(b: Mapping[str, Any], suite: CryptoSuite) -> None:
    """Refuse (``wrong_suite``) a bundle naming another suite than the trusted chain's. An
    ``ed25519`` bundle names none, so an explicit ``"ed25519"`` is not the canonical form."""
    if b.get("cryptoSuite") == ED25519.name:
        raise _tampered("an ed25519 bundle names no cryptoSuite: this one was changed")
    claimed = b.get("cryptoSuite", ED25519.name)
    if claimed != suite.name:
        raise InvalidInput(
            f"the bundle is of a chain on the {str(claimed)[:40]!r} crypto suite, but the chain "
            f"you trust runs {suite.name!r} (its genesis's crypto_suite): its hashes and "
            "signatures cannot be checked against that chain",
            ErrorCode.WRONG_SUITE,
        )


def _validator_set(raw: Any, hash_new: HashNew) -> ValidatorSet:
    vs = _parse.parsed(
        "a validator set of the bundle",
        lambda: _parse.validator_set({"validators": raw}, hash_new),
    )
    if vs.to_json() != raw:
        raise _tampered("a validator set of the bundle is not in its canonical form")
    return vs


def _light_answers(raw: Any, hash_new: HashNew) -> dict[tuple[int, bool], Answer]:
    """The light blocks and validator sets the bundle carries, by what a light client asks."""
    if not isinstance(raw, list) or len(raw) > MAX_LIGHT_STEPS:
        raise _tampered(f"the bundle's light blocks are a list of at most {MAX_LIGHT_STEPS}")
    answers: dict[tuple[int, bool], Answer] = {}
    for step in raw:
        if not isinstance(step, dict) or not (
            set(step) == {"height", "validators"}
            or set(step) == {"height", "validators", "header", "commit"}
        ):
            raise _tampered("a light block of the bundle is malformed")
        height = step["height"]
        if type(height) is not int:
            raise _tampered("a light block's height is not an integer")
        vs = _validator_set(step["validators"], hash_new)
        if "header" not in step:
            answers[(height, False)] = vs
            continue
        header = _parse.parsed(
            "a light block's header", partial(_parse.header, step["header"], hash_new)
        )
        commit = _parse.parsed("a light block's commit", partial(_parse.commit, step["commit"]))
        if header.to_json() != step["header"] or commit.to_json() != step["commit"]:
            raise _tampered("a light block of the bundle is not in its canonical form")
        answers[(height, True)] = LightBlock(header, commit, vs)
    return answers


def _follow(
    suite: CryptoSuite,
    chain_id: str,
    trusted: ValidatorSet,
    proof: StateProof,
    answers: Mapping[tuple[int, bool], Answer],
) -> ValidatorSet:
    """The validator set that signed ``proof``'s header, as a light client anchored at the
    trusted set finds it, asking only the bundle."""

    def fetch(need: Fetch) -> Answer:
        answer = answers.get((need.height, need.block))
        if answer is None:
            raise _bad_proof(
                f"the bundle lacks what a light client needs at height {need.height} to go from "
                "the validator set you trust to the one that signed it"
            )
        return answer

    client = LightClient(suite, chain_id, trusted)
    return drive(client.verify(proof.header, proof.commit), fetch)


def _judge(
    credential: dict[str, Any] | str,
    proven: dict[bytes, bytes | None],
    height: int,
    time: int,
    now: datetime,
) -> BundleVerdict:
    issuer = _issuer(credential)
    head_value = proven.get(did_head_key(issuer))
    if head_value is None:
        raise _bad_proof(f"the bundle does not prove {issuer}'s DID")
    head = _parse.parsed("the DID head", lambda: DidHead.from_value(codec.decode(head_value)))
    version_key = did_version_key(issuer, head.versions)
    version_value = proven.get(version_key)
    if version_value is None:
        raise _bad_proof(f"the bundle does not prove version {head.versions} of {issuer}")
    version = _parse.parsed(
        "the DID version", lambda: DidVersion.from_value(head.versions, codec.decode(version_value))
    )
    if version.record is None:
        raise CitychainError(f"{issuer} was deactivated", ErrorCode.DID_DEACTIVATED)
    document = to_json(version.record, issuer)

    def resolve(did: str) -> Mapping[str, Any]:
        if did == issuer:
            return document
        return did_key_document(did)

    if isinstance(credential, str):
        verify_sd_jwt(
            credential,
            now=int(now.timestamp()),
            nonce=None,
            aud=None,
            resolver=resolve,
            require_key_binding=False,
        )
    else:
        verify_credential(credential, now=now, resolver=resolve)

    trusted = [t for t in _types(credential) if proven.get(issuer_key(issuer, t)) is not None]
    if not trusted:
        raise CitychainError(
            f"the bundle does not prove that {issuer[:80]} is trusted for the credential's type",
            ErrorCode.ISSUER_NOT_TRUSTED,
        )
    entry_value = proven[issuer_key(issuer, trusted[0])]
    assert entry_value is not None
    entry = _parse.obj(codec.decode(entry_value))

    entries = _status_entries(credential)
    expected = {
        did_head_key(issuer),
        version_key,
        issuer_key(issuer, trusted[0]),
        *_status_keys(entries),
    }
    if set(proven) != expected:
        raise _bad_proof("the bundle's proofs are not exactly those this credential calls for")
    for list_id, index in entries:
        list_value = proven[status_list_key(list_id)]
        if list_value is None:
            raise CitychainError(
                f"status list {list_id} is proven absent", ErrorCode.STATUS_LIST_NOT_FOUND
            )
        list_head = _parse.obj(codec.decode(list_value))
        if index >= int(list_head["size"]):
            raise InvalidInput(f"index {index} is past {list_id}", ErrorCode.INVALID_CREDENTIAL)
        chunk = proven[status_chunk_key(list_id, index)] or bytes(STATUS_CHUNK_BITS // 8)
        if status_bit(chunk, index % STATUS_CHUNK_BITS):
            if list_head["purpose"] == "suspension":
                raise InvalidInput(
                    f"suspended as of block {height}", ErrorCode.CREDENTIAL_SUSPENDED
                )
            raise InvalidInput(f"revoked as of block {height}", ErrorCode.CREDENTIAL_REVOKED)
    return BundleVerdict(issuer, str(entry.get("name", "")), trusted[0], height, time)


def bundle_time(verdict: BundleVerdict) -> datetime:
    """The block time a verdict is as of, as a datetime (UTC)."""
    return datetime.fromtimestamp(verdict.time / 1000, tz=UTC)
