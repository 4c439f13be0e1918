"""A node's API URL as a person gives it (``--node``, ``CITYCHAIN_NODE``), checked before any
request is made: :func:`check_node_url`."""

from __future__ import annotations

from citychain.errors import ErrorCode, InvalidInput
from citychain.sdk._client import DEFAULT_URL


def check_node_url(value: str) -> str:
    """``value`` unchanged if it is the http:// or https:// URL of a node's API (a scheme and
    a host); else :class:`~citychain.errors.InvalidInput` (``bad_arguments``) saying why."""
    import httpx  # as the client does: not with the SDK's import (see _client._http_error)

    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"{value!r} is not a URL ({exc})", ErrorCode.BAD_ARGUMENTS) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidInput(
            f"{value!r} is not the http:// or https:// URL of a node's API, e.g. {DEFAULT_URL}",
            ErrorCode.BAD_ARGUMENTS,
        )
    return value
