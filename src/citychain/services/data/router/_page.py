"""The citizen's page: ``GET /my-data``, who accessed records about me, from a phone.

A citizen with no terminal signs in with the key file their wallet exported (``citychain
wallet export-key``: a passphrase-protected JWE, :mod:`citychain.services.identity.sdk._keyfile`)
and sees the same view as ``client.data.accesses``: which department asked for, was given or
downloaded records about them, when and for what stated purpose, and which resources hold
records about them. The page is static: its script opens the key file with WebCrypto, keeps
the key in memory only, and makes the signed reads (RFC 9421) of
``/v1/data/subjects/{tag}/accesses`` and ``/records`` itself; the node answers them as it
answers the SDK, to the subject's own did:key or an auditor. Beside each resource that holds
records about them the citizen may ask for a copy: the script builds the SDK's
``request_access`` transaction in canonical CBOR (held to ``tests/vectors/canonical/`` in
Chromium), signs it, submits it to ``POST /v1/tx`` and reads its receipt signed. A granted
copy is downloaded and opened there too, as ``client.data.download`` does (the data key
unwrapped with the X25519 twin of the citizen's key, ``record_access``, the manifest and
ciphertext read signed, each chunk opened with AES-256-GCM, the plaintext hash checked). Like
every page of the node it loads and calls nothing else (:mod:`citychain.api._pages`): a page
that holds a person's key must not run anyone else's script.
"""

from __future__ import annotations

from fastapi import APIRouter

from citychain.api._pages import add_page

router = APIRouter(tags=["data"])
add_page(
    router,
    "/my-data",
    __name__.rpartition(".")[0],
    "mine",
    "The citizen's page: who accessed records about me (HTML, for people)",
)
