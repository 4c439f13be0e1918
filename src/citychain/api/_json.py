"""Fast JSON in and out (orjson), with the standard library as the fallback for what orjson
refuses but canonical values allow: integers beyond 64 bits (token amounts can be larger)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi.responses import ORJSONResponse


def dumps(content: Any, *, sort_keys: bool = False) -> bytes:
    """Compact JSON. With ``sort_keys`` every object's keys are in sorted order: the same
    value always gives the same bytes, however its dicts were built (decoded from canonical
    CBOR or made in Python)."""
    try:
        return orjson.dumps(content, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except TypeError:
        # orjson refuses ints outside 64 bits; json writes them exactly.
        return json.dumps(
            content, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys
        ).encode()


class JSONResponse(ORJSONResponse):
    """orjson-rendered JSON that also carries integers of any size."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def _has_float(value: Any) -> bool:
    stack = [value]  # iterative: JSON may nest deeper than Python's recursion limit
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            return True
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return False


def depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, list | dict):
            deepest = max(deepest, d + 1)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def loads(data: bytes | str) -> Any:
    """Parse JSON text, keeping integers of any size exact.

    Raises ``ValueError`` with a readable reason if it is not JSON. orjson reads integers
    beyond 64 bits as floats (silently losing digits), so a document with any float in it is
    read again by the standard library, which keeps integers exact.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    if not _has_float(value):
        return value
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # pragma: no cover - orjson accepted it
        raise ValueError(str(exc)) from None
