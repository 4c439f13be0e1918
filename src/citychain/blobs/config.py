"""Building a blob store from a configuration table (the node's ``[blobs]`` section).

``{backend = "local", path = "...", capacity = <bytes, 0 for none>}`` or
``{backend = "s3", bucket = "...", endpoint = "http://...", access_key = "...",
secret_key = "..." | secret_key_env = "<VARIABLE>", region = "...", prefix = "..."}``.
Empty strings and a zero capacity count as not given. Anything else is refused as
``bad_config`` naming the key, before anything is opened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from citychain.blobs._store import HASHES, BlobStore
from citychain.errors import ConfigError

__all__ = ["BACKENDS", "config_problem", "open_store"]

_TEXT = "text"
_KEYS: dict[str, dict[str, str]] = {
    "local": {"backend": _TEXT, "path": _TEXT, "capacity": "int"},
    "s3": {
        "backend": _TEXT,
        "bucket": _TEXT,
        "endpoint": _TEXT,
        "access_key": _TEXT,
        "secret_key": _TEXT,
        "secret_key_env": _TEXT,
        "region": _TEXT,
        "prefix": _TEXT,
    },
}
#: The backends a configuration may name.
BACKENDS = tuple(_KEYS)


def _given(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if v not in ("", 0, None) or k == "backend"}


def config_problem(config: Mapping[str, Any]) -> str | None:
    """Why ``config`` cannot make a store (None when it can). Opens nothing."""
    backend = config.get("backend", "local")
    if backend not in _KEYS:
        return f'backend must be "local" or "s3", got {backend!r}'
    allowed = _KEYS[backend]
    given = _given(config)
    for key, value in sorted(given.items()):
        if key not in allowed:
            return f"{key} is not a setting of the {backend} backend (known: {sorted(allowed)})"
        if allowed[key] == "int":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return f"{key} must be a whole number of bytes, 0 or more, got {value!r}"
        elif not isinstance(value, str):
            return f"{key} must be a text, got {value!r}"
    if backend == "local":
        if "path" not in given:
            return "path must name the local blob store's directory"
        return None
    if "bucket" not in given:
        return "bucket must be set for the s3 backend"
    if ("access_key" in given) != ("secret_key" in given or "secret_key_env" in given):
        return (
            "give access_key with secret_key (or secret_key_env), or neither "
            "(boto3's credential chain: environment, profile, instance role)"
        )
    if "secret_key" in given and "secret_key_env" in given:
        return "give secret_key or secret_key_env, not both"
    endpoint = given.get("endpoint", "")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        return f"endpoint must be an http:// or https:// URL, got {endpoint!r}"
    return None


def open_store(
    config: Mapping[str, Any], *, base: Path | None = None, hash_name: str = "sha256"
) -> BlobStore:
    """The store ``config`` describes; ``ConfigError`` (``bad_config``) if it cannot be made.

    A relative local ``path`` is taken from ``base`` (the node's home). ``hash_name`` is the
    chain suite's hash (``"sha256"`` or ``"sm3"``): chunk ids are made with it. Nothing is
    contacted: an S3 backend that is down is reported by the first call that needs it.
    """
    why = config_problem(config)
    if why is None and hash_name not in HASHES:
        why = f"unknown chunk hash {hash_name!r}"
    if why is not None:
        raise ConfigError(f"[blobs] {why}")
    given = _given(config)
    if given.get("backend", "local") == "local":
        from citychain.blobs.local import LocalStore

        path = Path(given["path"])
        if not path.is_absolute() and base is not None:
            path = base / path
        return LocalStore(path, given.get("capacity"), hash_name=hash_name)
    from citychain.blobs.s3 import S3Store

    secret = given.get("secret_key")
    if "secret_key_env" in given:
        secret = os.environ.get(given["secret_key_env"])
        if not secret:
            raise ConfigError(
                f"[blobs] secret_key_env names {given['secret_key_env']}, which is not set"
            )
    return S3Store(
        given["bucket"],
        given.get("endpoint"),
        given.get("access_key"),
        secret,
        given.get("region", "us-east-1"),
        given.get("prefix", ""),
        hash_name=hash_name,
    )
