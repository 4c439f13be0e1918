"""The one exceptions module of citychain.

Every refusal a user can see carries a stable, machine-readable :class:`ErrorCode` and a
message a person understands. The tree separates *deterministic* refusals (the same input is
refused the same way on every node, forever) from *transient* or *internal* faults (try again,
or tell an operator)::

    CitychainError                      base of everything raised on purpose
    ├── InvalidInput                    deterministic: the input itself is wrong   (API: 4xx)
    │   ├── DecodeError                 bytes are not a canonical encoding of the type
    │   ├── TxRejected                  a transaction refused at admission or execution
    │   └── ConfigError                 a config, genesis or keystore file is malformed
    ├── ExecutionFailure                a contract call failed; the tx gets a failed receipt
    ├── ProofError                      a proof does not verify
    ├── KeystoreError                   wrong passphrase, corrupt or plaintext keystore
    ├── NotFound                        no such block, transaction or key     (API: 404)
    ├── Unavailable                     transient: mempool full, node busy    (API: 503/429)
    └── InternalError                   a bug or a broken disk; never a user's fault

``code`` is part of the public API: clients switch on it, so codes are never renamed.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable error codes. The value is what the API and receipts show."""

    OK = "ok"
    # Encoding and shape
    MALFORMED = "malformed"
    NON_CANONICAL = "non_canonical"
    TOO_LARGE = "too_large"
    BAD_ARGUMENTS = "bad_arguments"
    # Transaction admission
    BAD_SIGNATURE = "bad_signature"
    BAD_PUBLIC_KEY = "bad_public_key"
    WRONG_CHAIN = "wrong_chain"
    NONCE_TOO_LOW = "nonce_too_low"
    NONCE_GAP = "nonce_gap"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"
    GAS_LIMIT_TOO_HIGH = "gas_limit_too_high"
    GAS_LIMIT_TOO_LOW = "gas_limit_too_low"
    MEMPOOL_FULL = "mempool_full"
    # Execution
    OUT_OF_GAS = "out_of_gas"
    UNKNOWN_CONTRACT = "unknown_contract"
    UNKNOWN_METHOD = "unknown_method"
    UNAUTHORIZED = "unauthorized"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    CONTRACT_ERROR = "contract_error"
    CALL_DEPTH = "call_depth"
    # identity, access policies and governance
    NOT_MEMBER = "not_member"
    REVOKED = "revoked"
    FROZEN = "frozen"
    POLICY_NOT_MET = "policy_not_met"
    PROPOSAL_EXPIRED = "proposal_expired"
    PROPOSAL_EXECUTED = "proposal_executed"
    PROPOSAL_NOT_PASSED = "proposal_not_passed"
    # Reads
    NOT_FOUND = "not_found"
    HEIGHT_PRUNED = "height_pruned"
    HEIGHT_NOT_COMMITTED = "height_not_committed"
    # Files
    BAD_CONFIG = "bad_config"
    BAD_KEYSTORE = "bad_keystore"
    WRONG_PASSPHRASE = "wrong_passphrase"  # noqa: S105 (an error code, not a secret)
    PLAINTEXT_KEY = "plaintext_key"
    # Proofs
    BAD_PROOF = "bad_proof"
    # Consensus
    DOUBLE_SIGN = "double_sign"
    WAL_CORRUPT = "wal_corrupt"
    # Other
    UNAVAILABLE = "unavailable"
    UNSUPPORTED = "unsupported"  # API: method, media type or protocol the endpoint does not take
    INTERNAL = "internal"


class CitychainError(Exception):
    """Base class. ``code`` is stable; ``message`` is for people."""

    default_code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code: ErrorCode = code if code is not None else self.default_code

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        """The shape every API error body has: ``{"code": ..., "message": ...}``."""
        return {"code": self.code.value, "message": self.message}


class InvalidInput(CitychainError):
    """The input is wrong and will always be wrong; refused the same way everywhere."""

    default_code = ErrorCode.MALFORMED


class DecodeError(InvalidInput):
    """Bytes that are not the one canonical encoding of the expected type."""

    default_code = ErrorCode.MALFORMED


class TxRejected(InvalidInput):
    """A transaction refused at admission (mempool) or when its block is built."""

    default_code = ErrorCode.MALFORMED


class ConfigError(InvalidInput):
    """A config, genesis or other operator file is malformed or inconsistent."""

    default_code = ErrorCode.BAD_CONFIG


class ExecutionFailure(CitychainError):
    """A contract call failed. Its writes are rolled back and its receipt carries ``code``."""

    default_code = ErrorCode.CONTRACT_ERROR


class ProofError(CitychainError):
    """A proof does not verify against the given root or spec."""

    default_code = ErrorCode.BAD_PROOF


class KeystoreError(CitychainError):
    """A keystore cannot be opened: wrong passphrase, corrupt file, refused plaintext key."""

    default_code = ErrorCode.BAD_KEYSTORE


class NotFound(CitychainError):
    """No such block, transaction, receipt or key."""

    default_code = ErrorCode.NOT_FOUND


class Unavailable(CitychainError):
    """Transient: the node cannot take this now (full, busy, starting). Try again later."""

    default_code = ErrorCode.UNAVAILABLE


class InternalError(CitychainError):
    """A bug or a broken environment (disk, database). Never the caller's fault."""

    default_code = ErrorCode.INTERNAL
