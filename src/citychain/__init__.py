"""citychain: a permissioned, BFT-final ledger for city public services.

The base package (``pip install citychain``) is the SDK: keys, canonical data types, signing,
proof verification and an HTTP/WebSocket client. A node needs the ``[node]`` extra.

The node is built by part, the platform services by folder (``citychain/services/<name>/``,
one module per role: shapes, contract, sdk, router, cli; listed in
``citychain/registry.py``). The one layer table, drawn here as in the README:

    LAYERS: a part imports only parts below it (tests/arch/test_layers.py holds this table)
    cli/  services/*/cli               | `citychain ...`; each service adds its own commands
    api/  bench/  services/*/router    | REST/WebSocket API by subject (api/routes/); benchmarks
    node/                              | wiring, config, home directory, replay, local networks
    consensus/                         | Tendermint machine + engine, WAL, signer, evidence; solo
    sync/                              | block sync: catching up block by block
    chain/  mempool/  p2p/             | blocks applied atomically; pending transactions; mTLS
    services/*/contract                | the services' system contracts (on-chain state machines)
    execution/                         | executor, runtime, gas, contract context, access checks
    state/                             | versioned sparse Merkle tree, ICS-23 proofs, pruning
    store/  blobs/                     | RocksDB column families, block store; off-chain blob store
    services/*/sdk                     | each service's client helpers (client.gov, client.token)
    sdk/                               | the client SDK: HTTP/WebSocket, light client, verification
    services/*/shapes                  | each service's pure data shapes and state key layout
    types/                             | canonical data: transactions, blocks, votes, answers
    proof/  crypto/                    | ICS-23 + Merkle proofs; suites, keystore, certificates
    codec                              | canonical CBOR
    errors  registry  stages           | exceptions tree; services' registry; stage clock
"""

__version__ = "0.1.0"
