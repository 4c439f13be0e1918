"""base58btc (the Bitcoin alphabet), as multibase ``z`` keys and signatures and
``did:citychain`` identifiers write it.

Through ``based58`` (the Rust ``bs58`` crate): the pure-Python ``base58`` library spent ~40
µs of a DID resolution's ~140 µs in process (encoding a key: ~10 µs; decoding an identifier
or a signature: 19-27 µs; here ~2 µs each). That library stays in the tests as the oracle
(``tests/services/identity/test_base58.py``): these functions must give exactly its bytes
and strings, its ``rstrip()`` of the text included, because state holds what they make
(DIDs in records and registry keys) and every node must make the same.
"""

from __future__ import annotations

import based58

__all__ = ["b58decode", "b58encode"]


def b58encode(data: bytes) -> str:
    """The base58btc text of ``data`` (a ``1`` for each leading zero byte)."""
    return based58.b58encode(bytes(data)).decode("ascii")


def b58decode(text: str) -> bytes:
    """The bytes of base58btc ``text`` (trailing whitespace ignored, as the ``base58``
    library always did). ``ValueError`` for a character outside the alphabet (a
    ``UnicodeEncodeError``, which is one, for a non-ASCII character)."""
    return based58.b58decode(text.rstrip().encode("ascii"))
