"""Keys, signatures and hashes behind one :class:`CryptoSuite` interface.

The default suite is Ed25519 (libsodium through PyNaCl) with SHA-256. Callers never name an
algorithm: they ask the chain's suite (``get_suite(name)``), so a national-crypto suite
(SM2/SM3) plugs in by registering another :class:`CryptoSuite`.

Theory of operation: the chain's hash
-------------------------------------
A chain has one hash, its suite's: SHA-256 for ``ed25519``, SM3 for ``sm2-sm3``. Genesis names
the suite and is the only source of truth (``Genesis.suite``). The hash reaches the layers
below as :attr:`CryptoSuite.hash_new`, a hashlib-style constructor (:data:`HashNew`), passed
explicitly: the :class:`~citychain.chain.Chain` gives it to its block store, state tree and
executor; consensus, block sync, the mempool and the node take it from the chain; every
decoder of a hashed value (transactions, headers, blocks, evidence, validator sets, the
consensus and sync messages, the SDK's answer parsers) takes it as an argument, and the value
keeps it beside its data (never encoded, never compared), so ``tx.hash`` or ``header.hash``
is the chain's wherever the value travels. ``proof`` sits beside ``crypto`` and cannot import
it: it takes the constructor (Merkle trees) or the ICS-23 op (specs; ``hash_name`` picks it).

Why a constructor and not a ``bytes -> bytes`` function: ``hashlib.sha256`` is one, so on an
Ed25519 chain every hot loop (state-tree pages, transaction ids) makes exactly the calls it
made when SHA-256 was hard-coded, with no extra Python frame. Why not a process-wide "current
hash": one process runs several chains (the tests do, of both suites), and a global would
make one chain's hashes depend on the last chain opened.

The parameters default to SHA-256 where public APIs had no hash before, so an Ed25519 chain,
its canonical vectors and every existing caller are unchanged. On an SM3 chain a decoder that
was not given the hash would compute SHA-256 hashes: commits, proposals and light-client
checks then disagree loudly, and ``Chain.check_block`` refuses a block whose header carries
another hash function than the chain's before executing anything. Certificate fingerprints
(TLS node certificates, organisation CA fingerprints, the node-key binding) are identities of
X.509 objects, not chain hashes, and stay SHA-256 on every chain.
"""

from citychain.crypto._suite import (
    CryptoSuite as CryptoSuite,
)
from citychain.crypto._suite import (
    Digest as Digest,
)
from citychain.crypto._suite import (
    HashNew as HashNew,
)
from citychain.crypto._suite import (
    Signer as Signer,
)
from citychain.crypto._suite import (
    VerifyItem as VerifyItem,
)
from citychain.crypto._suite import (
    get_suite as get_suite,
)
from citychain.crypto._suite import (
    register_suite as register_suite,
)
from citychain.crypto._suite import (
    sha256 as sha256,
)
from citychain.crypto._suite import (
    suite_for as suite_for,
)
from citychain.crypto.ed25519 import ED25519 as ED25519
from citychain.crypto.ed25519 import Ed25519Suite as Ed25519Suite
from citychain.crypto.sm2 import SM2_SM3 as SM2_SM3
from citychain.crypto.sm2 import Sm2Suite as Sm2Suite

__all__ = [
    "ED25519",
    "SM2_SM3",
    "CryptoSuite",
    "Digest",
    "Ed25519Suite",
    "HashNew",
    "Signer",
    "Sm2Suite",
    "VerifyItem",
    "get_suite",
    "register_suite",
    "sha256",
    "suite_for",
]
