"""The citychain Python SDK: talk to a node, sign transactions, verify what it answers.

Installable without the node (``pip install citychain``): it depends only on the canonical
types, the codec, the crypto suites and proof verification, plus httpx and websockets.

    from citychain.sdk import Client

    with Client("http://127.0.0.1:26657") as node:
        receipt = node.send(signer, "token", "transfer", {"to": bob, "amount": 5})
        proven = node.get_state(key)      # checked: proof -> header -> 2/3+ signatures

        pid = node.gov.propose(admin, "add_validator", {...})   # governance: client.gov
        node.gov.vote(other_admin, pid); node.gov.execute(admin, pid)
        params = build_params("set_params", param=["params.chain.block_max_txs=5000"])

    with Client(url, signer=alice) as node:     # signed reads: every request signed (RFC 9421)
        ...

The platform services' helpers (``client.gov``, ``client.token``) come from their folders
under :mod:`citychain.services`, found through the service registry; what they export
(``Gov``, ``build_params``...) can be imported from here too.

Errors are :mod:`citychain.errors` exceptions carrying the node's stable ``code``. Read the
trust model in :mod:`citychain.sdk._client` (what a verified answer does and does not prove)
and how the client follows validator-set changes in :mod:`citychain.sdk._light`.
"""

from typing import Any

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
from citychain.sdk._httpsig import SignedRequests, sign_request
from citychain.sdk._light import (
    MAX_FETCHES,
    TRUST_LEVEL,
    Fetch,
    LightBlock,
    LightClient,
    TrustedSet,
    verify_skipping,
)
from citychain.sdk._memory import keep_freed_memory
from citychain.sdk._probe import PROBE_TIMEOUT, NodeProbe, ProbeFailure, probe_node
from citychain.sdk._services import exported
from citychain.sdk._types import (
    AccountInfo,
    BlockInfo,
    CommittedEvent,
    EvidenceInfo,
    NodeStatus,
    StateProof,
    SubmitResult,
    TxInfo,
    TxStatus,
    VerifiedValue,
    WithheldTx,
)
from citychain.sdk._url import check_node_url
from citychain.sdk._verify import prove_value, verify_state


def __getattr__(name: str) -> Any:
    """What a registered service's SDK part exports (``Gov``, ``AsyncGov``, ``build_params``,
    ``parse_param_value`` from ``gov``...), found through the service registry."""
    return exported(name)


__all__ = [
    "DEFAULT_COMMIT_TIMEOUT",
    "DEFAULT_GAS_LIMIT",
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "MAX_FETCHES",
    "PROBE_TIMEOUT",
    "TRUST_LEVEL",
    "AccountInfo",
    "AsyncClient",
    "AsyncEventSubscription",
    "BlockInfo",
    "Client",
    "CommittedEvent",
    "EventSubscription",
    "EvidenceInfo",
    "Fetch",
    "LightBlock",
    "LightClient",
    "NodeProbe",
    "NodeStatus",
    "ProbeFailure",
    "SignedRequests",
    "StateProof",
    "SubmitResult",
    "TrustedSet",
    "TxInfo",
    "TxStatus",
    "VerifiedValue",
    "WithheldTx",
    "check_node_url",
    "error_from",
    "keep_freed_memory",
    "probe_node",
    "prove_value",
    "sign_request",
    "verify_skipping",
    "verify_state",
]
