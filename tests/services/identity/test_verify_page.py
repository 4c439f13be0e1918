"""The public verification page (``GET /verify``) in a real headless Chromium, at a phone's
size: served with a strict Content-Security-Policy, loading nothing from any other host, and
saying in words what it was given."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nodeproc import NodeProcess, running_demo  # type: ignore[import-not-found]

import browser  # type: ignore[import-not-found]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with running_demo(tmp_path_factory.mktemp("verify-page") / "node") as n:
        yield n


def verdict_of(page: Page) -> str:
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#verdict")).not_to_have_text(re.compile(r"^(Checking…)?$"))
    return page.locator("#verdict").inner_text()


def test_the_page_is_served_locked_down_and_loads_nothing_foreign(node: NodeProcess) -> None:
    r = httpx.get(node.url + "/verify")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    dom = browser.dump_dom(node.url + "/verify")
    assert "Check a certificate" in dom
    assert browser.foreign_hosts(dom, node.url) == set()
    for asset in browser.loaded_urls(dom, node.url):
        assert httpx.get(asset).status_code == 200, asset


def test_what_is_no_certificate_is_said_so(node: NodeProcess) -> None:
    with browser.page() as page:
        page.goto(node.url + "/verify")
        page.fill("#credential", "hello, I am not a certificate")
        page.click("#check")
        assert verdict_of(page) == "Not a certificate"
        page.fill("#credential", "{not json")
        page.click("#check")
        assert verdict_of(page) == "Not a certificate"
        assert "cannot be read" in page.locator("#explain").inner_text()
