"""What ``/openapi.json`` says beyond what FastAPI derives from the routes.

* Error answers: :func:`error_responses` declares the ``ErrorBody`` statuses of a route.
* Bodies the handlers read raw (CBOR or JSON): :func:`cbor_or_json_body` describes them,
  since no pydantic parameter does.
* :func:`install_openapi` replaces ``app.openapi``: validation errors are answered 400 with
  an ``ErrorBody``, never 422, so FastAPI's 422 answers and their schemas are dropped; and the
  WebSocket messages of ``/v1/events`` (which no HTTP route declares) are added to the
  components.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from citychain.api import models as m
from citychain.api._body import JSON_TYPE

__all__ = ["DESCRIPTION", "cbor_or_json_body", "error_responses", "install_openapi"]

DESCRIPTION = """\
REST and WebSocket API of a citychain node.

* Byte strings are lowercase hex (a `0x` prefix is accepted on input); hashes are 32 bytes.
* Contract arguments, results and event attributes are canonical values in JSON, with byte
  strings written as `{"hex": "..."}`. Floats are not allowed.
* Every error is `{"code": ..., "message": ...}`; `code` is stable and machine-readable
  (400 bad input, 404 not found, 410 pruned, 413 too large, 415 media type, 429 mempool full,
  503 unavailable).
* State answers carry an ICS-23 proof, the header it checks against and the commit that signs
  that header, so a client can verify them (the Python SDK does).
* `WS /v1/events?contract=&type=&from_height=&progress=` streams committed events: one
  `EventMessage` per text message (with `progress=true`, a `PositionMessage` too when the
  chain moved on without a matching event); the server ends the stream with a
  `ClosedMessage` saying why (for example, a subscriber too slow to keep up).
"""

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.ErrorBody, "description": "bad input"},
    404: {"model": m.ErrorBody, "description": "not found"},
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """400 and 404 with an ``ErrorBody``, plus ``codes`` (also answered with one)."""
    out = dict(_ERRORS)
    for c in codes:
        out[c] = {"model": m.ErrorBody}
    return out


def cbor_or_json_body(json_model: type[m._Model], cbor_desc: str) -> dict[str, Any]:
    """``openapi_extra`` for a body sent as CBOR wire bytes or as JSON of ``json_model``."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/cbor": {
                    "schema": {"type": "string", "format": "binary", "description": cbor_desc}
                },
                JSON_TYPE: {"schema": json_model.model_json_schema()},
            },
        }
    }


def json_body(json_model: type[m._Model]) -> dict[str, Any]:
    """``openapi_extra`` for a required JSON body of ``json_model``."""
    return {
        "requestBody": {
            "required": True,
            "content": {JSON_TYPE: {"schema": json_model.model_json_schema()}},
        }
    }


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi`` build (once) the schema described in this module's docstring."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=None,
            )
            _drop_422(schema)
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            # The WebSocket messages of /v1/events, which no HTTP route declares.
            _, defs = models_json_schema(
                [
                    (m.EventMessage, "serialization"),
                    (m.PositionMessage, "serialization"),
                    (m.ClosedMessage, "serialization"),
                ],
                ref_template="#/components/schemas/{model}",
            )
            comps.update(defs.get("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_422(schema: dict[str, Any]) -> None:
    """Validation errors are answered 400 with an ErrorBody, never 422."""
    for path in schema.get("paths", {}).values():
        for op in path.values():
            op.get("responses", {}).pop("422", None)
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
