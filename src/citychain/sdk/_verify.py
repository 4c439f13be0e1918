"""Checking a state answer: value -> proof -> state root -> header -> commit -> validators.

Pure functions with no I/O, so they can be used on answers obtained any way.

The proof spec is the chain's: ICS-23 ``SmtSpec`` over the suite's hash (:func:`state_spec`).
On an ``ed25519`` chain that is upstream's ``SmtSpec`` (SHA-256); on an ``sm2-sm3`` chain every
op is SM3, citychain's extension op (:attr:`citychain.proof.ics23.HashOp.SM3`). SM3 proofs are
therefore accepted only for SM3 chains: checked against a SHA-256 chain's spec, an SM3 proof
fails at its first op, and the reverse.
"""

from __future__ import annotations

from citychain.crypto import CryptoSuite
from citychain.errors import DecodeError, ErrorCode, ProofError
from citychain.proof import ics23
from citychain.sdk._types import VerifiedValue
from citychain.types import Commit, Header, ValidatorSet


def verify_state(
    *,
    suite: CryptoSuite,
    chain_id: str,
    validators: ValidatorSet,
    key: bytes,
    value: bytes | None,
    height: int,
    proof: bytes,
    header: Header,
    commit: Commit,
) -> VerifiedValue:
    """Raise :class:`ProofError` unless the answer is final and proves ``key = value``.

    ``validators`` and ``chain_id`` are the caller's trust anchors; nothing else is taken on
    the node's word. Checks, each failing with a message saying which link broke:

    1. the header is for ``chain_id`` and ``height``;
    2. the header names ``validators`` (its ``validators_hash``), the commit is for this
       header, every signer is a distinct member, every signature verifies, and the signers
       hold more than 2/3 of the power (:meth:`Commit.verify`);
    3. the ICS-23 proof (the spec of ``suite``'s chains, :func:`state_spec`) shows
       ``key = value``, or that ``key`` is absent when ``value`` is None, under
       ``header.state_root``.
    """
    check_header(chain_id, height, header)
    if header.validators_hash != validators.hash:
        raise ProofError(
            f"header {height} was signed by a validator set this client does not trust "
            f"(validators_hash {header.validators_hash.hex()}, trusted set "
            f"{validators.hash.hex()}); if the set changed, check the new one out of band and "
            "pass it as Client(validators=...), or let the client follow the change "
            "(citychain.sdk.LightClient)",
            ErrorCode.BAD_PROOF,
        )
    try:
        commit.verify(suite, chain_id, header, validators)
    except ProofError as exc:
        raise ProofError(f"header {height} is not final: {exc.message}", exc.code) from None
    return prove_value(
        validators=validators,
        key=key,
        value=value,
        proof=proof,
        header=header,
        commit=commit,
        spec=state_spec(suite),
    )


def state_spec(suite: CryptoSuite) -> ics23.ProofSpec:
    """The ICS-23 spec of the state tree of a chain on ``suite``: ``SmtSpec`` with the suite's
    hash (``ics23.SMT_SPEC`` for SHA-256, ``ics23.SMT_SPEC_SM3`` for SM3)."""
    return ics23.smt_spec(ics23.hash_op_named(suite.hash_name))


def check_header(chain_id: str, height: int, header: Header) -> None:
    """Raise :class:`ProofError` unless ``header`` is for ``chain_id`` and ``height``."""
    if header.chain_id != chain_id:
        raise ProofError(
            f"the header is for chain {header.chain_id!r}, not {chain_id!r}", ErrorCode.BAD_PROOF
        )
    if header.height != height:
        raise ProofError(
            f"the header is for height {header.height}, the answer claims {height}",
            ErrorCode.BAD_PROOF,
        )


def prove_value(
    *,
    validators: ValidatorSet,
    key: bytes,
    value: bytes | None,
    proof: bytes,
    header: Header,
    commit: Commit,
    spec: ics23.ProofSpec = ics23.SMT_SPEC,
) -> VerifiedValue:
    """Step 3 of :func:`verify_state` alone, for a ``header`` already known final under
    ``validators`` (e.g. by :class:`~citychain.sdk.LightClient`): the ICS-23 proof shows
    ``key = value`` (or its absence) under ``header.state_root``, checked against ``spec``
    (the chain's, :func:`state_spec`; a SHA-256 chain's unless given)."""
    height = header.height
    try:
        parsed = ics23.decode_commitment_proof(proof)
        if value is None:
            ics23.verify_non_membership(spec, header.state_root, parsed, key)
        else:
            ics23.verify_membership(spec, header.state_root, parsed, key, value)
    except (ProofError, DecodeError) as exc:
        what = "absence" if value is None else "value"
        raise ProofError(
            f"the proof of the {what} of key {key.hex()[:80]} does not check against the "
            f"state root of header {height}: {exc.message}",
            ErrorCode.BAD_PROOF,
        ) from None
    signers = {s.validator for s in commit.signatures}
    return VerifiedValue(
        key=key,
        value=value,
        height=height,
        header=header,
        verified=True,
        signed_power=sum(validators.power_of(v) for v in signers),
        total_power=validators.total_power,
        signers=len(signers),
        validators=len(validators),
    )
