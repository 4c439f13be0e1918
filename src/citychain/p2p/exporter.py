"""The TLS 1.3 exporter (RFC 8446 section 7.5) of a live connection, which Python's ssl hides.

Theory of operation
-------------------
A signature "bound to the TLS exporter" covers a secret that both ends of *this* TLS session,
and nobody else, can compute: ``TLS-Exporter(label, context, length)``, derived from the
session's exporter master secret. A proof over it cannot be relayed into another session, even
by someone holding both nodes' TLS keys, which the certificate-and-nonce binding of
:mod:`citychain.p2p.nodekey` cannot promise.

Python's :mod:`ssl` has no ``export_keying_material`` (it never landed in CPython; pyOpenSSL
has it, but asyncio's streams only take :class:`ssl.SSLContext`). OpenSSL has it:
``SSL_export_keying_material`` in ``libssl``. So this module calls it by :mod:`ctypes` on the
``SSL *`` that CPython's ``_ssl`` module keeps inside each connection object. That pointer is
not public: it is the field after ``PyObject_HEAD`` and the socket weak reference in
``PySSLSocket`` (``Modules/_ssl.c``), and the ``SSL_CTX *`` is the field after
``PyObject_HEAD`` in ``PySSLContext``. Reading it is only safe where that layout holds, so the
call is made only when every check passes, in this order (1 and 2 establish the layout and
the library before any pointer read from an object is followed; 3 confirms it per
connection):

1. the interpreter is CPython 3.11 or 3.12 (the versions whose layout this reads), not a
   debug build (whose ``PyObject_HEAD`` is larger);
2. ``ctypes`` finds ``libssl.so.3`` and its ``OpenSSL_version_num()`` equals
   :data:`ssl.OPENSSL_VERSION_NUMBER`, i.e. the library ``_ssl`` is linked to, not a second
   copy;
3. per connection: ``SSL_get_SSL_CTX`` of the ``SSL *`` read from the connection equals the
   ``SSL_CTX *`` read from the :class:`ssl.SSLContext` it was made with, and
   ``SSL_version`` says TLS 1.3.

Anything else is :class:`~citychain.errors.Unavailable` with the reason. Checks 1 and 2 run once
(:func:`unavailable_reason`), so a node that needs the exporter refuses to start with words
rather than failing per connection. The label is ``EXPORTER-citychain-p2p-node-key-proof``
with an empty context (RFC 8446 7.5: exporters with and without an empty context differ, and
both ends use the same), 32 bytes long.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import ssl
import sys
from typing import Any, Final

from citychain.errors import Unavailable

__all__ = ["EXPORTER_BYTES", "EXPORTER_LABEL", "tls_exporter", "unavailable_reason"]

#: The exporter label of node-key proofs (RFC 8446 7.5: "EXPORTER-" and the protocol's name).
EXPORTER_LABEL: Final = b"EXPORTER-citychain-p2p-node-key-proof"
#: How many exporter bytes a proof covers.
EXPORTER_BYTES: Final = 32
_TLS1_3_VERSION: Final = 0x0304
#: Byte offsets of ``SSL *ssl`` in ``PySSLSocket`` and ``SSL_CTX *ctx`` in ``PySSLContext``
#: (after ``PyObject_HEAD``, 16 bytes on 64-bit release builds, and for the socket one weak
#: reference pointer); CPython 3.11 and 3.12.
_SSL_OFFSET: Final = 24
_CTX_OFFSET: Final = 16


@functools.cache
def _libssl() -> Any:
    """libssl, its functions typed; or the reason it cannot be used (a str)."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] not in ((3, 11), (3, 12)):
        return f"the interpreter is {sys.implementation.name} {sys.version.split()[0]}"
    if hasattr(sys, "gettotalrefcount") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return "the interpreter is a debug or 32-bit build"
    name = ctypes.util.find_library("ssl") or "libssl.so.3"
    try:
        lib = ctypes.CDLL(name)
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        lib.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
        lib.SSL_get_SSL_CTX.restype = ctypes.c_void_p
        lib.SSL_version.argtypes = [ctypes.c_void_p]
        lib.SSL_version.restype = ctypes.c_int
        lib.SSL_export_keying_material.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_int,
        ]
        lib.SSL_export_keying_material.restype = ctypes.c_int
    except (OSError, AttributeError) as exc:
        return f"libssl cannot be loaded by ctypes ({exc})"
    if lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
        return (
            f"ctypes found {name} (OpenSSL {lib.OpenSSL_version_num():#x}), not the OpenSSL "
            f"Python's ssl module runs ({ssl.OPENSSL_VERSION})"
        )
    return lib


def unavailable_reason() -> str | None:
    """Why :func:`tls_exporter` cannot work in this process, or None if it can."""
    lib = _libssl()
    return lib if isinstance(lib, str) else None


def _field(obj: object, offset: int) -> int:
    """The pointer-sized field at ``offset`` inside ``obj``'s own memory (read, not followed)."""
    return ctypes.c_void_p.from_address(id(obj) + offset).value or 0


def tls_exporter(ssl_object: ssl.SSLObject, context: ssl.SSLContext) -> bytes:
    """The connection's 32-byte TLS 1.3 exporter under :data:`EXPORTER_LABEL`.

    ``ssl_object`` is the connection's (``writer.get_extra_info("ssl_object")``) and
    ``context`` the :class:`ssl.SSLContext` it was made with. :class:`Unavailable` if
    any check of the module docstring fails."""
    lib = _libssl()
    if isinstance(lib, str):
        raise Unavailable(lib)
    inner = getattr(ssl_object, "_sslobj", None)
    if inner is None or not isinstance(context, ssl.SSLContext):
        raise Unavailable("the connection has no OpenSSL session object")
    ctx_ptr = _field(context, _CTX_OFFSET)
    ssl_ptr = _field(inner, _SSL_OFFSET)
    if not ctx_ptr or not ssl_ptr or lib.SSL_get_SSL_CTX(ssl_ptr) != ctx_ptr:
        raise Unavailable("the connection's OpenSSL session is not where it was expected")
    if lib.SSL_version(ssl_ptr) != _TLS1_3_VERSION:
        raise Unavailable("the connection is not TLS 1.3")
    out = ctypes.create_string_buffer(EXPORTER_BYTES)
    done = lib.SSL_export_keying_material(
        ssl_ptr, out, EXPORTER_BYTES, EXPORTER_LABEL, len(EXPORTER_LABEL), b"", 0, 1
    )
    if done != 1:
        raise Unavailable("OpenSSL could not derive the exporter")
    return out.raw
