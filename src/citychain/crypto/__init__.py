"""Keys, signatures and hashes behind one :class:`CryptoSuite` interface.

The default suite is Ed25519 (libsodium through PyNaCl) with SHA-256. Callers never name an
algorithm: they ask the chain's suite (``get_suite(name)``), so a national-crypto suite
(SM2/SM3) plugs in by registering another :class:`CryptoSuite`.
"""

from citychain.crypto._suite import (
    CryptoSuite as CryptoSuite,
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
from citychain.crypto.ed25519 import ED25519 as ED25519
from citychain.crypto.ed25519 import Ed25519Suite as Ed25519Suite
from citychain.crypto.sm2 import SM2_SM3 as SM2_SM3
from citychain.crypto.sm2 import Sm2Suite as Sm2Suite

__all__ = [
    "ED25519",
    "SM2_SM3",
    "CryptoSuite",
    "Ed25519Suite",
    "Signer",
    "Sm2Suite",
    "VerifyItem",
    "get_suite",
    "register_suite",
    "sha256",
]
