"""The citychain Python SDK: talk to a node, sign transactions, verify what it answers.

Installable without the node (``pip install citychain``): it depends only on the canonical
types, the codec, the crypto suites and proof verification, plus httpx and websockets.

    from citychain.sdk import Client

    with Client("http://127.0.0.1:26657") as node:
        receipt = node.send(signer, "token", "transfer", {"to": bob, "amount": 5})
        proven = node.get_state(key)      # checked: proof -> header -> 2/3+ signatures

Errors are :mod:`citychain.errors` exceptions carrying the node's stable ``code``. Read the
trust model in :mod:`citychain.sdk._client` (what a verified answer does and does not prove).
"""

from citychain.sdk._client import (
    DEFAULT_COMMIT_TIMEOUT,
    DEFAULT_GAS_LIMIT,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    AsyncClient,
    Client,
)
from citychain.sdk._errors import error_from
from citychain.sdk._events import AsyncEventSubscription, EventSubscription
from citychain.sdk._types import (
    AccountInfo,
    BlockInfo,
    CommittedEvent,
    EvidenceInfo,
    NodeStatus,
    SubmitResult,
    TxInfo,
    VerifiedValue,
)
from citychain.sdk._verify import verify_state

__all__ = [
    "DEFAULT_COMMIT_TIMEOUT",
    "DEFAULT_GAS_LIMIT",
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "AccountInfo",
    "AsyncClient",
    "AsyncEventSubscription",
    "BlockInfo",
    "Client",
    "CommittedEvent",
    "EventSubscription",
    "EvidenceInfo",
    "NodeStatus",
    "SubmitResult",
    "TxInfo",
    "VerifiedValue",
    "error_from",
    "verify_state",
]
