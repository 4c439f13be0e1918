"""A real node's /docs page, rendered by a real headless Chromium on a network without
internet: Swagger UI must come from the node itself (the installed package), not a CDN."""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import httpx
import pytest
from nodeproc import NodeProcess  # type: ignore[import-not-found]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import browser  # type: ignore[import-not-found]

pytestmark = pytest.mark.slow

OPERATION = re.compile(r'class="opblock opblock-(get|post|put|delete|patch)\b')


def test_docs_render_the_operations_without_internet(node: NodeProcess, tmp_path: Path) -> None:
    url = f"{node.url}/docs"
    # Offline: every host name but localhost fails to resolve, as on a city's internal network.
    html = browser.dump_dom(url, offline=True)

    # Swagger UI ran: it fetched /openapi.json and rendered one block per operation.
    assert len(OPERATION.findall(html)) >= 20, html[:2000]
    assert 'data-path="/v1/status"' in html
    assert 'data-path="/v1/txs/{tx_hash}"' in html

    # Everything the page loads comes from the node, and the node serves all of it.
    loaded = browser.loaded_urls(html, url)
    assert browser.foreign_hosts(html, url) == set(), loaded
    names = {u.rsplit("/", 1)[-1] for u in loaded}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"} <= names
    for asset in loaded:
        answer = httpx.get(asset, timeout=10)
        assert answer.status_code == 200 and answer.content, asset

    # A screenshot of the rendered page (a PNG of the window's size).
    shot = browser.screenshot(url, tmp_path / "docs.png", size=(1280, 1024), offline=True)
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1280, 1024)


def test_redoc_is_not_served(node: NodeProcess) -> None:
    # Its page would load ReDoc from a CDN; the node serves only the offline Swagger UI.
    assert httpx.get(f"{node.url}/redoc", timeout=10).status_code == 404
