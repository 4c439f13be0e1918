"""Shared by the SDK tests: the in-memory fake node of tests/api, and a transport into it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from fake_node import CHAIN_ID, FakeNode, TestClient, balance_key, seeded_signer, serving

__all__ = ["CHAIN_ID", "URL", "FakeNode", "balance_key", "bridge", "seeded_signer", "serving"]

URL = "http://node.test"
Rewrite = Callable[[httpx.Request, httpx.Response], httpx.Response]


def bridge(app: Any, rewrite: Rewrite | None = None) -> httpx.MockTransport:
    """An httpx transport that hands each request to the ASGI app (optionally rewriting the
    answer, as a malicious node or a man in the middle would)."""
    tc = TestClient(app)

    def handle(request: httpx.Request) -> httpx.Response:
        r = tc.request(
            request.method,
            request.url.raw_path.decode(),
            content=request.content,
            headers={k: v for k, v in request.headers.items() if k == "content-type"},
        )
        answer = httpx.Response(r.status_code, headers=r.headers, content=r.content)
        return rewrite(request, answer) if rewrite is not None else answer

    return httpx.MockTransport(handle)
