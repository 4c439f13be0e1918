"""The JSON-LD contexts this library knows, bundled as package data, and the offline loader.

A verifier that fetched contexts from the network would let whoever serves a context URL
change what a signed credential means (and would leak who verifies what). So every context a
credential may name is shipped with the package and loaded from it; any other URL is refused
with ``unknown_context`` before anything is canonicalised. Nothing here opens a socket.

=========================================================  =================================
context URL                                                source of the bundled copy
=========================================================  =================================
``https://www.w3.org/ns/credentials/v2``                    w3c/vc-data-model
                                                           ``contexts/credentials/v2``
``https://w3id.org/security/data-integrity/v2``             w3c/vc-data-integrity
                                                           ``contexts/data-integrity/v2``
``https://w3id.org/security/multikey/v1``                   w3c/vc-data-integrity
                                                           ``contexts/multikey/v1.jsonld``
``https://www.w3.org/ns/credentials/examples/v2``           w3c/vc-data-model
                                                           ``contexts/credentials/examples/v2``
``https://www.w3.org/ns/credentials/undefined-terms/v2``    w3c/vc-data-model ``contexts/
                                                           credentials/undefined-terms/v2``
``https://w3id.org/citizenship/v4rc1``                      ``@digitalbazaar/citizenship-context``
                                                           4.1.0 (the EdDSA spec's vectors)
``https://w3id.org/citychain/v1``                           ours: the city's credential types
                                                           and their claims (``cc:`` terms)
=========================================================  =================================

The w3c/vc-data-model files are copied from commit 979c4af1 (2026-08-22). The W3C documents are
under the W3C Software and Document License.

Since the Recommendation, credentials/v2 has no ``@vocab``: a term no context defines would be
dropped by JSON-LD expansion, so an RDFC signature would not cover it. Canonicalisation here
refuses such a document (``invalid_credential``) instead of dropping the term; an issuer that
wants ad-hoc terms names ``undefined-terms/v2`` explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

from citychain.errors import ErrorCode, InvalidInput

CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
EXAMPLES_V2 = "https://www.w3.org/ns/credentials/examples/v2"
UNDEFINED_TERMS_V2 = "https://www.w3.org/ns/credentials/undefined-terms/v2"
CITIZENSHIP_V4RC1 = "https://w3id.org/citizenship/v4rc1"
CITYCHAIN_V1 = "https://w3id.org/citychain/v1"

#: context URL -> the file under ``contexts/`` holding it.
CONTEXT_FILES: Mapping[str, str] = {
    CREDENTIALS_V2: "credentials-v2.jsonld",
    DATA_INTEGRITY_V2: "data-integrity-v2.jsonld",
    MULTIKEY_V1: "multikey-v1.jsonld",
    EXAMPLES_V2: "credentials-examples-v2.jsonld",
    UNDEFINED_TERMS_V2: "credentials-undefined-terms-v2.jsonld",
    CITIZENSHIP_V4RC1: "citizenship-v4rc1.jsonld",
    CITYCHAIN_V1: "citychain-v1.jsonld",
}


def unknown_context(url: str) -> InvalidInput:
    """The refusal (``unknown_context``) of a JSON-LD context URL that is not bundled."""
    return InvalidInput(
        f"unknown context {url[:200]!r}: only the bundled contexts are loaded, never the "
        f"network ({', '.join(sorted(CONTEXT_FILES))})",
        ErrorCode.UNKNOWN_CONTEXT,
    )


@cache
def _load(url: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath("contexts", CONTEXT_FILES[url]).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def context_document(url: str) -> dict[str, Any]:
    """A fresh copy of the bundled context ``url``; ``unknown_context`` for any other."""
    if not isinstance(url, str) or url not in CONTEXT_FILES:
        raise unknown_context(str(url))
    copied: dict[str, Any] = json.loads(json.dumps(_load(url)))
    return copied


def document_loader(url: str, options: Any = None) -> dict[str, Any]:
    """A PyLD document loader that serves the bundled contexts and refuses every other URL."""
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": context_document(url),
    }


def _context_urls(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "@context":
                for entry in value if isinstance(value, list) else [value]:
                    if isinstance(entry, dict):
                        yield from _context_urls(entry)
                    else:
                        yield entry
            else:
                yield from _context_urls(value)
    elif isinstance(node, list):
        for item in node:
            yield from _context_urls(item)


def check_contexts(document: Any) -> None:
    """Refuse (``unknown_context``) a document naming any context that is not bundled, anywhere
    in it (the top, an embedded credential, a proof): before anything is canonicalised or
    signed, and for eddsa-jcs-2022 too, whose signature never loads a context."""
    for url in _context_urls(document):
        if url is not None and (not isinstance(url, str) or url not in CONTEXT_FILES):
            raise unknown_context(str(url))
