"""The one exceptions module of citychain: every exception class, and each code's class and status.

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
    │   └── InsufficientTrust           light client: too little trusted power signed a header
    ├── KeystoreError                   wrong passphrase, corrupt or plaintext keystore
    ├── NotFound                        no such block, transaction or key     (API: 404)
    ├── Unavailable                     transient: mempool full, node busy    (API: 503/429)
    ├── PeerRefused                     transport: a connection between nodes was refused
    ├── DoubleSignRefused               the validator's signer refused: signing could equivocate
    └── InternalError                   a bug or a broken disk; never a user's fault

Where the less obvious ones sit, and why:

* :class:`InsufficientTrust` is a :class:`ProofError` (code ``bad_proof``): the header is not
  proven, and whoever catches ``ProofError`` catches it too. It is a class of its own because
  the light client bisects on it (an intermediate header may bridge the change) and reports
  the signed and total power; any other proof failure is final.
* :class:`PeerRefused` is a transport refusal, directly under the base: neither the caller's
  bad input (``except InvalidInput`` never catches a network refusal) nor transient (a wrong
  CA stays wrong until an operator acts). Its ``code`` is picked per reason from the existing
  codes (``unauthorized``, ``expired``, ``wrong_chain``, ...); its ``reason_code`` and words
  are the p2p vocabulary (:data:`REFUSAL_REASONS`).
* :class:`DoubleSignRefused` (``double_sign``) is directly under the base as well: the message
  to sign was well formed and the signer works as designed, and retrying never helps. The
  validator must not sign; consensus skips that step.

Codes, classes and HTTP statuses
--------------------------------
Each code has exactly one row in one table (:data:`CLASS_BY_CODE` and
:data:`HTTP_STATUS_BY_CODE` are its two columns): the class it is raised as, which is also the
class the SDK rebuilds from a node's ``{"code", "message"}`` answer, and the HTTP status the
API answers it with. The status follows the code alone, never the class that carried it, so a
code always gets the same status. A 5xx other than 503 is the node's fault: the API logs it
and answers a generic 500 (:mod:`citychain.api._errors`). A code added without a row fails
``tests/test_errors.py``, which names it. In-process a code may ride on a class that says more
(a consensus vote with a bad signature is a ``ProofError`` with ``bad_signature``); the row is
what a client sees.

This module imports only the standard library: the SDK, installed without the node's extras,
and every layer of the node import it. ``code`` is part of the public API: clients switch on
it, so codes are never renamed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, get_args


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
    SIGNATURE_NOT_RAW = "signature_not_raw"  # e.g. DER where a suite wants fixed r||s
    SIGNATURE_OUT_OF_RANGE = "signature_out_of_range"  # r or s outside [1, n-1]
    POINT_NOT_ON_CURVE = "point_not_on_curve"
    WRONG_SUITE = "wrong_suite"  # a key, signature or certificate of another crypto suite
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
    # the identity service: DIDs, trusted issuers, status lists
    DID_NOT_FOUND = "did_not_found"  # no such DID (or not at that version or time)
    DID_DEACTIVATED = "did_deactivated"  # the DID was deactivated: it changes no more
    NOT_CONTROLLER = "not_controller"  # the signer controls neither the DID nor its controllers
    KEY_ROTATED = "key_rotated"  # the signer's key controlled the DID once, not any more
    INVALID_DID_DOCUMENT = "invalid_did_document"  # a DID document this method does not take
    VERSION_CONFLICT = "version_conflict"  # the DID changed since the version the update names
    ISSUER_NOT_TRUSTED = "issuer_not_trusted"  # not in the trusted-issuer registry for that type
    POLICY_REQUIRED = "policy_required"  # a governed change with no governance policy in force
    STATUS_LIST_NOT_FOUND = "status_list_not_found"
    REVOCATION_FINAL = "revocation_final"  # a revocation bit, once set, is never cleared
    # data directory (services/data): the catalogue, access requests, grants and downloads
    RESOURCE_NOT_FOUND = "resource_not_found"  # no data resource with that code (or version)
    RESOURCE_RETIRED = "resource_retired"  # the resource was retired: no new versions or grants
    NOT_PROVIDER = "not_provider"  # the signer is no member of the resource's provider org
    NOT_APPROVER = "not_approver"  # the signer is not a named approver of the resource
    NOT_SUBJECT = "not_subject"  # a citizen asked about records that are not about them
    REQUEST_NOT_FOUND = "request_not_found"  # no access request with that id
    REQUEST_DECIDED = "request_decided"  # the request was already granted or refused
    NO_GRANT = "no_grant"  # no grant with that id (or none for that grantee)
    GRANT_EXPIRED = "grant_expired"  # the grant's period ended at this block's time
    GRANT_REVOKED = "grant_revoked"  # the provider revoked the grant
    ACCESS_STALE = "access_stale"  # a download's recorded access is too old: record anew
    WRONG_GRANTEE = "wrong_grantee"  # the grant belongs to another account
    INVALID_CATALOGUE = "invalid_catalogue"  # a DCAT JSON-LD document this service cannot take
    COLLECTION_NOT_FOUND = "collection_not_found"  # no private data collection of that name
    NOT_IN_COLLECTION = "not_in_collection"  # signer's (or node's) org is not in the collection
    PRIVATE_PURGED = "private_purged"  # the private item's value was purged (its hash stays)
    PRIVATE_MISSING = "private_missing"  # this node does not hold the private value (not yet)
    DISSEMINATION_FAILED = "dissemination_failed"  # too few peers acked a private value in time
    # the identity service: verifying credentials and presentations (Data Integrity, SD-JWT)
    INVALID_CREDENTIAL = "invalid_credential"  # not a VC/VP of the data model (shape, types)
    TAMPERED = "tampered"  # the proof or signature does not match the signed content
    WRONG_KEY = "wrong_key"  # the verification method is not the issuer's or holder's key
    KEY_NOT_AUTHORIZED = "key_not_authorized"  # the key is not in the proof's relationship
    CREDENTIAL_EXPIRED = "credential_expired"  # past validUntil (or the SD-JWT's exp)
    NOT_YET_VALID = "not_yet_valid"  # before validFrom (or the SD-JWT's nbf)
    WRONG_CHALLENGE = "wrong_challenge"  # the presentation's challenge (KB-JWT nonce) differs
    WRONG_DOMAIN = "wrong_domain"  # the presentation's domain (KB-JWT aud) differs
    UNKNOWN_CONTEXT = "unknown_context"  # a JSON-LD context that is not bundled: never fetched
    SCHEMA_VIOLATION = "schema_violation"  # the subject breaks its credentialSchema
    DISCLOSURE_INVALID = "disclosure_invalid"  # an SD-JWT disclosure not signed by the issuer
    KEY_BINDING_INVALID = "key_binding_invalid"  # the SD-JWT key binding is missing or wrong
    CREDENTIAL_REVOKED = "credential_revoked"  # its revocation bit is set in the status list
    CREDENTIAL_SUSPENDED = "credential_suspended"  # its suspension bit is set
    WRONG_ISSUER = "wrong_issuer"  # an issuing service asked to sign for another issuer
    UNAUTHENTICATED = "unauthenticated"  # no (or a wrong) bearer token for a service that needs one
    # signed reads: RFC 9421 HTTP Message Signatures over API requests (citychain.api._httpsig)
    SIGNATURE_MISSING = "signature_missing"  # the route reads only signed requests; none was
    SIGNATURE_INVALID = "signature_invalid"  # malformed, wrong key, digest or coverage, bad bytes
    SIGNATURE_EXPIRED = "signature_expired"  # created too far from the node's clock, or expired
    SIGNATURE_REPLAYED = "signature_replayed"  # this signature's nonce was already used
    NOT_AUTHORIZED = "not_authorized"  # signed, but by an account that may not read this
    # the blob store and envelope encryption (citychain.blobs, citychain.crypto.envelope)
    KEY_UNWRAP_FAILED = "key_unwrap_failed"  # this key cannot open the wrapped data key
    CHUNK_TAMPERED = "chunk_tampered"  # ciphertext altered, reordered, dropped or cut short
    HASH_MISMATCH = "hash_mismatch"  # content does not hash to what its manifest records
    CHUNK_ID_MISMATCH = "chunk_id_mismatch"  # bytes offered under an id they do not hash to
    CHUNK_MISSING = "chunk_missing"  # a chunk or manifest is not in the blob store
    CHUNK_CORRUPT = "chunk_corrupt"  # a stored chunk no longer hashes to its id (disk fault)
    STORE_FULL = "store_full"  # the blob store is at its capacity or its disk is full
    BACKEND_DOWN = "backend_down"  # the blob store's backend (S3) cannot be reached
    # Reads
    NOT_FOUND = "not_found"
    HEIGHT_PRUNED = "height_pruned"
    HEIGHT_NOT_COMMITTED = "height_not_committed"
    # Files
    BAD_CONFIG = "bad_config"
    BAD_DISTID = "bad_distid"  # an SM2 distinguishing ID that is missing or unusable
    BAD_KEYSTORE = "bad_keystore"
    WRONG_PASSPHRASE = "wrong_passphrase"  # noqa: S105 (an error code, not a secret)
    WEAK_PASSPHRASE = "weak_passphrase"  # noqa: S105 (a key file's: too easy to guess)
    PLAINTEXT_KEY = "plaintext_key"
    # Proofs
    BAD_PROOF = "bad_proof"
    # Consensus
    DOUBLE_SIGN = "double_sign"
    WAL_CORRUPT = "wal_corrupt"
    # Starting a node
    PORT_IN_USE = "port_in_use"  # the API or p2p port is taken by another program
    HOME_IN_USE = "home_in_use"  # a node (or another process) already runs on this home
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


class BatchRefused(InvalidInput):
    """One item of a batch is refused, so the whole batch is: ``code`` is that item's reason,
    ``index`` its position (from 0) among ``total``; nothing of the batch was done."""

    def __init__(self, item: CitychainError, index: int, total: int) -> None:
        super().__init__(f"item {index} of {total}: {item.message}", item.code)
        self.index = index
        self.total = total


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


class InsufficientTrust(ProofError):
    """A header's commit lacks the trust level of the trusted set's power (bisection may help)."""

    def __init__(self, message: str, signed_power: int, total_power: int) -> None:
        super().__init__(message, ErrorCode.BAD_PROOF)
        self.signed_power = signed_power
        self.total_power = total_power


class DoubleSignRefused(CitychainError):
    """Signing this message could contradict one already signed: refused, nothing signed."""

    default_code = ErrorCode.DOUBLE_SIGN


RefusalReason = Literal[
    "wrong_ca",
    "expired",
    "not_yet_valid",
    "wrong_chain",
    "wrong_genesis",
    "wrong_suite",
    "unknown_peer",
    "duplicate",
    "protocol",
    "node_key",
    "gm_cert",
]
#: Why a peer connection may be refused; the stable codes of the p2p Refuse frame.
REFUSAL_REASONS: Final[frozenset[str]] = frozenset(get_args(RefusalReason))

#: reason -> (the words operators read, what the refused side says was refused)
_REFUSAL_WORDS: Final[dict[RefusalReason, tuple[str, str]]] = {
    "wrong_ca": ("wrong CA", "our certificate"),
    "expired": ("expired", "our certificate"),
    "not_yet_valid": ("clock skew / not yet valid", "our certificate"),
    "wrong_chain": ("wrong chain id", "us"),
    "wrong_genesis": ("wrong genesis", "us"),
    "wrong_suite": ("wrong crypto suite", "us"),
    "unknown_peer": ("no such peer", "us"),
    "duplicate": ("duplicate connection", "this connection"),
    "protocol": ("protocol error", "us"),
    "node_key": ("node key not proven", "our node key proof"),
    "gm_cert": ("SM2 certificate not accepted", "our SM2 certificate"),
}

#: reason -> the stable error code it is reported under.
_REFUSAL_CODES: Final[dict[RefusalReason, ErrorCode]] = {
    "wrong_ca": ErrorCode.UNAUTHORIZED,
    "expired": ErrorCode.EXPIRED,
    "not_yet_valid": ErrorCode.UNAUTHORIZED,
    "wrong_chain": ErrorCode.WRONG_CHAIN,
    "wrong_genesis": ErrorCode.WRONG_CHAIN,
    "wrong_suite": ErrorCode.WRONG_CHAIN,
    "unknown_peer": ErrorCode.UNAUTHORIZED,
    "duplicate": ErrorCode.DUPLICATE,
    "protocol": ErrorCode.MALFORMED,
    "node_key": ErrorCode.UNAUTHORIZED,
    "gm_cert": ErrorCode.UNAUTHORIZED,
}


class PeerRefused(CitychainError):
    """A connection to or from a peer was refused, by us or (``by_peer=True``) by the peer.

    ``reason_code`` is one of :data:`REFUSAL_REASONS`; ``message`` is the detail sentence. How
    TLS failures become refusals is in :mod:`citychain.p2p.refusals`.
    """

    def __init__(
        self,
        reason_code: str,
        message: str,
        *,
        by_peer: bool = False,
        peer_name: str | None = None,
    ) -> None:
        if reason_code not in REFUSAL_REASONS:
            raise ValueError(f"unknown refusal reason {reason_code!r}")
        reason: RefusalReason = reason_code  # type: ignore[assignment]  # checked just above
        super().__init__(message, _REFUSAL_CODES[reason])
        self.reason_code: RefusalReason = reason
        self.by_peer = by_peer
        #: The peer's node name, once its certificate has been read (else None).
        self.peer_name = peer_name

    @property
    def words(self) -> str:
        """The plain words for the reason: "wrong CA", "expired", ..."""
        return _REFUSAL_WORDS[self.reason_code][0]

    def log_line(self, peer: str) -> str:
        """The sentence to log, from our side of the refusal.

        ``peer`` describes the peer: ``"n2 at 127.0.0.1:4000"``, or ``"at 127.0.0.1:4000"``
        before its name is known.
        """
        if self.by_peer:
            what = _REFUSAL_WORDS[self.reason_code][1]
            return f"peer {peer} refused {what}: {self.words} — {self.message}"
        return f"refused peer {peer}: {self.words} — {self.message}"

    def short(self) -> str:
        """A few words for ``PeerInfo.last_error``: ``refused: wrong CA``."""
        return f"refused by peer: {self.words}" if self.by_peer else f"refused: {self.words}"


# Every code, exactly once (in the enum's order): the class it is raised as and rebuilt as by
# the SDK, and the HTTP status the API answers it with. 4xx: the caller's to fix; 429 and 503:
# try again later; 500: the node's fault (logged, and hidden behind a generic answer).
_BY_CODE: Final[dict[ErrorCode, tuple[type[CitychainError], int]]] = {
    ErrorCode.OK: (CitychainError, 500),  # not a refusal: an exception carrying it is a bug
    ErrorCode.MALFORMED: (DecodeError, 400),
    ErrorCode.NON_CANONICAL: (DecodeError, 400),
    ErrorCode.TOO_LARGE: (InvalidInput, 413),
    ErrorCode.BAD_ARGUMENTS: (InvalidInput, 400),
    ErrorCode.BAD_SIGNATURE: (TxRejected, 400),
    ErrorCode.BAD_PUBLIC_KEY: (TxRejected, 400),
    ErrorCode.SIGNATURE_NOT_RAW: (TxRejected, 400),
    ErrorCode.SIGNATURE_OUT_OF_RANGE: (TxRejected, 400),
    ErrorCode.POINT_NOT_ON_CURVE: (TxRejected, 400),
    ErrorCode.WRONG_SUITE: (InvalidInput, 400),
    ErrorCode.WRONG_CHAIN: (TxRejected, 400),
    ErrorCode.NONCE_TOO_LOW: (TxRejected, 400),
    ErrorCode.NONCE_GAP: (TxRejected, 400),
    ErrorCode.EXPIRED: (TxRejected, 400),
    ErrorCode.DUPLICATE: (TxRejected, 400),
    ErrorCode.GAS_LIMIT_TOO_HIGH: (TxRejected, 400),
    ErrorCode.GAS_LIMIT_TOO_LOW: (TxRejected, 400),
    ErrorCode.MEMPOOL_FULL: (Unavailable, 429),
    ErrorCode.OUT_OF_GAS: (ExecutionFailure, 400),
    ErrorCode.UNKNOWN_CONTRACT: (ExecutionFailure, 404),
    ErrorCode.UNKNOWN_METHOD: (ExecutionFailure, 404),
    ErrorCode.UNAUTHORIZED: (ExecutionFailure, 400),
    ErrorCode.INSUFFICIENT_FUNDS: (ExecutionFailure, 400),
    ErrorCode.CONTRACT_ERROR: (ExecutionFailure, 400),
    ErrorCode.CALL_DEPTH: (ExecutionFailure, 400),
    ErrorCode.NOT_MEMBER: (ExecutionFailure, 403),
    ErrorCode.REVOKED: (ExecutionFailure, 403),
    ErrorCode.FROZEN: (ExecutionFailure, 403),
    ErrorCode.POLICY_NOT_MET: (ExecutionFailure, 403),
    ErrorCode.PROPOSAL_EXPIRED: (ExecutionFailure, 400),
    ErrorCode.PROPOSAL_EXECUTED: (ExecutionFailure, 400),
    ErrorCode.PROPOSAL_NOT_PASSED: (ExecutionFailure, 400),
    ErrorCode.DID_NOT_FOUND: (NotFound, 404),
    ErrorCode.DID_DEACTIVATED: (ExecutionFailure, 410),
    ErrorCode.NOT_CONTROLLER: (ExecutionFailure, 403),
    ErrorCode.KEY_ROTATED: (ExecutionFailure, 403),
    ErrorCode.INVALID_DID_DOCUMENT: (InvalidInput, 400),
    ErrorCode.VERSION_CONFLICT: (ExecutionFailure, 409),
    ErrorCode.ISSUER_NOT_TRUSTED: (ExecutionFailure, 403),
    ErrorCode.POLICY_REQUIRED: (ExecutionFailure, 403),
    ErrorCode.STATUS_LIST_NOT_FOUND: (NotFound, 404),
    ErrorCode.REVOCATION_FINAL: (ExecutionFailure, 400),
    ErrorCode.RESOURCE_NOT_FOUND: (NotFound, 404),
    ErrorCode.RESOURCE_RETIRED: (ExecutionFailure, 410),
    ErrorCode.NOT_PROVIDER: (ExecutionFailure, 403),
    ErrorCode.NOT_APPROVER: (ExecutionFailure, 403),
    ErrorCode.NOT_SUBJECT: (ExecutionFailure, 403),
    ErrorCode.REQUEST_NOT_FOUND: (NotFound, 404),
    ErrorCode.REQUEST_DECIDED: (ExecutionFailure, 409),
    ErrorCode.NO_GRANT: (ExecutionFailure, 403),
    ErrorCode.GRANT_EXPIRED: (ExecutionFailure, 403),
    ErrorCode.GRANT_REVOKED: (ExecutionFailure, 403),
    ErrorCode.ACCESS_STALE: (InvalidInput, 403),
    ErrorCode.WRONG_GRANTEE: (ExecutionFailure, 403),
    ErrorCode.INVALID_CATALOGUE: (InvalidInput, 400),
    ErrorCode.COLLECTION_NOT_FOUND: (NotFound, 404),
    ErrorCode.NOT_IN_COLLECTION: (ExecutionFailure, 403),
    ErrorCode.PRIVATE_PURGED: (NotFound, 410),
    ErrorCode.PRIVATE_MISSING: (NotFound, 404),
    ErrorCode.DISSEMINATION_FAILED: (Unavailable, 503),
    ErrorCode.INVALID_CREDENTIAL: (InvalidInput, 400),
    ErrorCode.TAMPERED: (InvalidInput, 400),
    ErrorCode.WRONG_KEY: (InvalidInput, 400),
    ErrorCode.KEY_NOT_AUTHORIZED: (InvalidInput, 400),
    ErrorCode.CREDENTIAL_EXPIRED: (InvalidInput, 400),
    ErrorCode.NOT_YET_VALID: (InvalidInput, 400),
    ErrorCode.WRONG_CHALLENGE: (InvalidInput, 400),
    ErrorCode.WRONG_DOMAIN: (InvalidInput, 400),
    ErrorCode.UNKNOWN_CONTEXT: (InvalidInput, 400),
    ErrorCode.SCHEMA_VIOLATION: (InvalidInput, 422),
    ErrorCode.DISCLOSURE_INVALID: (InvalidInput, 400),
    ErrorCode.KEY_BINDING_INVALID: (InvalidInput, 400),
    ErrorCode.CREDENTIAL_REVOKED: (InvalidInput, 400),
    ErrorCode.CREDENTIAL_SUSPENDED: (InvalidInput, 400),
    ErrorCode.WRONG_ISSUER: (InvalidInput, 400),
    ErrorCode.UNAUTHENTICATED: (InvalidInput, 401),
    ErrorCode.SIGNATURE_MISSING: (InvalidInput, 401),
    ErrorCode.SIGNATURE_INVALID: (InvalidInput, 401),
    ErrorCode.SIGNATURE_EXPIRED: (InvalidInput, 401),
    ErrorCode.SIGNATURE_REPLAYED: (InvalidInput, 401),
    ErrorCode.NOT_AUTHORIZED: (InvalidInput, 403),
    ErrorCode.KEY_UNWRAP_FAILED: (InvalidInput, 403),
    ErrorCode.CHUNK_TAMPERED: (InvalidInput, 400),
    ErrorCode.HASH_MISMATCH: (InvalidInput, 400),
    ErrorCode.CHUNK_ID_MISMATCH: (InvalidInput, 400),
    ErrorCode.CHUNK_MISSING: (NotFound, 404),
    ErrorCode.CHUNK_CORRUPT: (InternalError, 500),  # the node's disk or backend altered it
    ErrorCode.STORE_FULL: (Unavailable, 503),  # 507 would say more; clients retry on 503
    ErrorCode.BACKEND_DOWN: (Unavailable, 503),
    ErrorCode.NOT_FOUND: (NotFound, 404),
    ErrorCode.HEIGHT_PRUNED: (NotFound, 410),
    ErrorCode.HEIGHT_NOT_COMMITTED: (NotFound, 404),
    ErrorCode.BAD_CONFIG: (ConfigError, 400),
    ErrorCode.BAD_DISTID: (ConfigError, 400),
    ErrorCode.BAD_KEYSTORE: (KeystoreError, 500),
    ErrorCode.WRONG_PASSPHRASE: (KeystoreError, 500),
    ErrorCode.WEAK_PASSPHRASE: (InvalidInput, 400),
    ErrorCode.PLAINTEXT_KEY: (KeystoreError, 500),
    ErrorCode.BAD_PROOF: (ProofError, 500),  # a proof the node serves that fails is its fault
    ErrorCode.DOUBLE_SIGN: (DoubleSignRefused, 500),
    ErrorCode.WAL_CORRUPT: (InternalError, 500),
    ErrorCode.PORT_IN_USE: (Unavailable, 503),
    ErrorCode.HOME_IN_USE: (Unavailable, 503),
    ErrorCode.UNAVAILABLE: (Unavailable, 503),
    ErrorCode.UNSUPPORTED: (InvalidInput, 415),  # a media type the endpoint does not take
    ErrorCode.INTERNAL: (InternalError, 500),
}

#: code -> the exception class it is raised as, and that the SDK rebuilds it as.
CLASS_BY_CODE: Final[dict[ErrorCode, type[CitychainError]]] = {
    code: cls for code, (cls, _) in _BY_CODE.items()
}
#: code -> the HTTP status the API answers it with, whichever class carried it.
HTTP_STATUS_BY_CODE: Final[dict[ErrorCode, int]] = {
    code: status for code, (_, status) in _BY_CODE.items()
}
