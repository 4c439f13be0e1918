"""citychain: a permissioned, BFT-final ledger for city public services.

The base package (``pip install citychain``) is the SDK: keys, canonical data types, signing,
proof verification and an HTTP/WebSocket client. A node needs the ``[node]`` extra.

Layers, top to bottom (dependencies point down only; see ``docs`` in the README):

    cli/  api/                       people and programs at the edge
    node/                            wires a node together; config; lifecycle
    consensus/  mempool/             ordering transactions into blocks
    execution/  contracts/           running transactions; system contracts
    state/  store/                   authenticated state; blocks and indexes (RocksDB)
    types/  codec  crypto/  proof/   pure data, canonical bytes, keys, signatures, proofs
    sdk/                             depends on types, codec, crypto and proof only
"""

__version__ = "0.1.0"
