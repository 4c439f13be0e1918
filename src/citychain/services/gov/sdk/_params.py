"""Proposal parameters from text: what ``citychain gov propose`` parses, for SDK users too.

:func:`build_params` turns the three ways a person gives a proposal's parameters into the
``params`` of :meth:`Gov.propose <citychain.sdk.Gov.propose>`, in this order: a JSON object
(``params_json``; byte strings as ``{"hex": "..."}``, ``@FILE`` reads a file), then each
``NAME=VALUE`` (``param``; a dotted NAME nests: ``params.chain.block_max_txs=5000``), then the
convenience flags of :data:`citychain.services.gov.shapes.FLAGS` (``{"--org-id": "org4", ...}``,
values already converted), each refused for a kind it does not apply to. A parameter given
twice is refused rather than silently overridden. A VALUE (:func:`parse_param_value`) is an
integer (``5000``), bytes (``0x0a1b...``), ``true``/``false``/``null``, JSON (starting with
``[``, ``{`` or ``"``), or else text. Every refusal is :class:`~citychain.errors.InvalidInput`
with code ``bad_arguments``, worded as the command line words it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from citychain.errors import DecodeError, ErrorCode, InvalidInput
from citychain.services.gov.shapes import FLAGS

_INT = re.compile(r"-?[0-9]+")
_NAME_PART = re.compile(r"[A-Za-z0-9_]+")
_HEX = re.compile(r"(?:0x)?((?:[0-9a-fA-F]{2})*)")


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def _hex(text: str, what: str) -> bytes:
    m = _HEX.fullmatch(text.strip())
    if m is None or not m.group(1):
        raise _bad(f"{what} must be hex digits (an even number of 0-9, a-f), got {text!r:.80}")
    return bytes.fromhex(m.group(1))


def _json_value(text: str, what: str) -> Any:
    from citychain import codec
    from citychain.types.tx import json_to_codec

    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _bad(f"{what} is not valid JSON: {exc}") from None
    try:
        value = json_to_codec(raw)
        codec.check_value(value)
    except (DecodeError, RecursionError) as exc:
        message = exc.message if isinstance(exc, DecodeError) else "nested too deeply"
        raise _bad(f"{what}: {message}") from None
    return value


def read_text(path: Path, what: str) -> str:
    """A UTF-8 file's text; ``bad_arguments`` naming ``what`` if it cannot be read."""
    try:
        return path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(f"{what}: cannot read {path}: {exc}") from None


def parse_param_value(text: str, name: str) -> Any:
    """One parameter's VALUE: integer, 0x-bytes, true/false/null, JSON, or else text."""
    if text.startswith(("0x", "0X")):
        return _hex(text, f"--param {name}")
    if _INT.fullmatch(text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if text[:1] in ("[", "{", '"'):
        return _json_value(text, f"--param {name}")
    return text


def _set_path(params: dict[str, Any], name: str, value: Any) -> None:
    parts = name.split(".")
    if not all(_NAME_PART.fullmatch(p) for p in parts):
        raise _bad(
            f"--param name {name!r} must be letters, digits and '_', dotted to nest "
            "(e.g. params.chain.block_max_txs)"
        )
    here = params
    for p in parts[:-1]:
        nxt = here.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise _bad(f"--param {name}: {p!r} is already set to a value that is not a map")
        here = nxt
    if parts[-1] in here:
        raise _bad(f"--param {name} is given twice (or also in --params-json)")
    here[parts[-1]] = value


def check_flags(kind: str, given: Iterable[str]) -> None:
    """Refuse a convenience flag (a key of :data:`FLAGS`) given for a kind it is not for."""
    for flag in given:
        kinds = FLAGS[flag][1]
        if kind not in kinds:
            raise _bad(f"{flag} is for {', '.join(kinds)} proposals, not {kind}")


def build_params(
    kind: str,
    params_json: str | None = None,
    param: Sequence[str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``params`` of a ``kind`` proposal: ``params_json``, then each ``NAME=VALUE`` of
    ``param``, then the convenience ``flags`` (flag -> value, already converted; None or []
    when not given; list values of flags setting the same parameter are joined).

    >>> build_params("set_params", param=["params.chain.block_max_txs=5000"])
    {'params': {'chain': {'block_max_txs': 5000}}}
    """
    params: dict[str, Any] = {}
    if params_json:
        text = params_json
        if text.startswith("@"):
            text = read_text(Path(text[1:]), "--params-json")
        value = _json_value(text, "--params-json")
        if not isinstance(value, dict):
            raise _bad('--params-json must be a JSON object, e.g. \'{"id": "org4", ...}\'')
        params = value
    for item in param or []:
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise _bad(f"--param {item!r} must be NAME=VALUE")
        _set_path(params, name, parse_param_value(text, name))
    given = {f: v for f, v in (flags or {}).items() if v is not None and v != []}
    check_flags(kind, given)
    lists: dict[str, list[Any]] = {}
    for flag, value in given.items():
        name, _ = FLAGS[flag]
        if isinstance(value, list):
            lists.setdefault(name, []).extend(value)
        else:
            _set_path(params, name, value)
    for name, values in lists.items():
        _set_path(params, name, values)
    return params
