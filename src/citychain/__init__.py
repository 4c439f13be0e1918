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

from __future__ import annotations

import os as _os
import sys as _sys
from collections.abc import Sequence as _Sequence
from importlib.machinery import ModuleSpec as _ModuleSpec
from importlib.util import spec_from_file_location as _spec_from_file_location
from types import ModuleType as _ModuleType

__version__ = "0.1.0"

#: Modules an install may have compiled with mypyc (``setup.py``): the same sources, run as C
#: extensions that Python imports before them. ``CITYCHAIN_PURE=1`` runs the sources instead.
COMPILED = ("citychain.codec", "citychain.state._nodes", "citychain.state._smt")
#: C extensions of our own (``setup.py``'s ``NATIVE``), each beside the Python path it speeds
#: up: ``crypto/_ed25519_batch.c``, many Ed25519 checks with the interpreter lock released
#: once (``citychain.crypto.ed25519``). Built where a compiler is; ``CITYCHAIN_PURE=1`` at run
#: time takes the Python path instead.
NATIVE = ("citychain.crypto._ed25519_batch",)


class _Sources:
    """Finds the source of a module of :data:`COMPILED` ahead of its extension."""

    @staticmethod
    def find_spec(
        name: str, path: _Sequence[str] | None = None, target: _ModuleType | None = None
    ) -> _ModuleSpec | None:
        if name not in COMPILED or path is None:
            return None
        for folder in path:
            source = _os.path.join(folder, name.rpartition(".")[2] + ".py")
            if _os.path.isfile(source):
                return _spec_from_file_location(name, source)
        return None


if _os.environ.get("CITYCHAIN_PURE") == "1":
    _sys.meta_path.insert(0, _Sources())


def compiled() -> dict[str, str]:
    """Each module of :data:`COMPILED` and :data:`NATIVE`: ``"compiled"``, ``"source"`` (the
    Python runs: no extension was built, or ``CITYCHAIN_PURE=1``), or ``"stale"`` (an
    extension older than its source, which was edited after the install built it: install
    again, ``pip install -e .``)."""
    from importlib import import_module
    from importlib.util import find_spec

    pure = _os.environ.get("CITYCHAIN_PURE") == "1"
    states: dict[str, str] = {}
    for name in (*COMPILED, *NATIVE):
        if name in COMPILED:  # the extension, or the source ahead of it when pure
            file, suffix = import_module(name).__file__ or "", ".py"
        else:  # nothing but the extension: found, unless pure
            spec = None if pure else find_spec(name)
            file, suffix = ((spec.origin or "") if spec else ""), ".c"
        if not file or file.endswith(".py"):
            states[name] = "source"
            continue
        source = _os.path.join(_os.path.dirname(file), name.rpartition(".")[2] + suffix)
        fresh = not _os.path.exists(source) or _os.path.getmtime(source) <= _os.path.getmtime(file)
        states[name] = "compiled" if fresh else "stale"
    return states
