"""The node's REST + WebSocket API (FastAPI) over the :class:`NodeService` a node implements.

``create_app(service)`` gives the ASGI app; ``/openapi.json`` documents every route and shape.
"""

from citychain.api.app import DEFAULT_MAX_BATCH_TXS, DEFAULT_MAX_BODY_BYTES, create_app
from citychain.api.service import (
    AccountInfo,
    BlockInfo,
    CommittedEvent,
    EventStream,
    NodeService,
    NodeStatus,
    StateProof,
    SubmitResult,
    TxInfo,
    TxStatus,
    WithheldTx,
)

__all__ = [
    "DEFAULT_MAX_BATCH_TXS",
    "DEFAULT_MAX_BODY_BYTES",
    "AccountInfo",
    "BlockInfo",
    "CommittedEvent",
    "EventStream",
    "NodeService",
    "NodeStatus",
    "StateProof",
    "SubmitResult",
    "TxInfo",
    "TxStatus",
    "WithheldTx",
    "create_app",
]
