"""A real headless Chromium for tests of web pages: the DOM after the page's scripts ran, and
a screenshot.

Theory of operation
-------------------
Each call runs Debian's ``chromium`` once, as a subprocess, with a fresh profile directory
(``--user-data-dir``) that is deleted afterwards, so no call sees another's cache or cookies.
The flags below are the ones this machine needs: no sandbox (tests run as root), no GPU, no
QUIC, and none of Chromium's own background traffic (component updates, sync, first-run
pages), so the only requests are the page's own.

``--virtual-time-budget`` lets the page run its scripts (and the requests they make) for that
many milliseconds of *virtual* time before the DOM is dumped or the screenshot taken; Chromium
advances virtual time as fast as the page lets it, so this bounds the page's work, not the
test's wall-clock time.

``offline=True`` makes every host name fail to resolve except ``localhost`` (IP literals such
as ``127.0.0.1`` need no resolver): a page that loads anything from the internet (a CDN)
then renders as it would on a network without internet.

Chromium missing is a failure, not a skip: the README's test command (``bash scripts/test.sh``)
installs Debian's chromium, and a web page that was never rendered is a page never tested.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import pytest

#: Where Debian's chromium package installs its launcher.
DEFAULT_CHROMIUM = "/usr/bin/chromium"

BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Every host name fails to resolve but localhost: a network without internet.
OFFLINE_FLAG = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"


def chromium() -> str:
    """The chromium executable; fails the test (with how to install it) when there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path(DEFAULT_CHROMIUM).exists():
        found = DEFAULT_CHROMIUM
    if found is None:
        pytest.fail(
            "chromium is not installed, and web pages are tested in a real browser: install "
            "Debian's chromium (`apt-get install chromium`), or run the README's test command "
            "`bash scripts/test.sh`, which installs it"
        )
    return found


def run_chromium(
    url: str, *extra: str, budget_ms: int = 10_000, offline: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run headless chromium once on ``url`` with ``extra`` flags; fail on a non-zero exit."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        args = [
            chromium(),
            *BASE_FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            *((OFFLINE_FLAG,) if offline else ()),
            *extra,
            url,
        ]
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(f"chromium exited with {done.returncode} on {url}:\n{done.stderr[-3000:]}")
    return done


def dump_dom(url: str, *, budget_ms: int = 10_000, offline: bool = True) -> str:
    """The page's DOM as HTML once its scripts ran for ``budget_ms`` of virtual time."""
    return run_chromium(url, "--dump-dom", budget_ms=budget_ms, offline=offline).stdout


def screenshot(
    url: str,
    path: Path,
    *,
    size: tuple[int, int] = (1280, 1024),
    budget_ms: int = 10_000,
    offline: bool = True,
) -> Path:
    """A PNG of the page (``size`` is the window, width by height) written to ``path``."""
    run_chromium(
        url,
        f"--screenshot={path}",
        f"--window-size={size[0]},{size[1]}",
        "--hide-scrollbars",
        budget_ms=budget_ms,
        offline=offline,
    )
    if not path.exists() or path.stat().st_size == 0:
        pytest.fail(f"chromium wrote no screenshot of {url} to {path}")
    return path


class _Resources(HTMLParser):
    """The URLs a page loads: scripts, stylesheets and icons, images, frames, media."""

    ATTRS: ClassVar[dict[str, str]] = {
        "script": "src",
        "link": "href",
        "img": "src",
        "iframe": "src",
        "source": "src",
    }

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = self.ATTRS.get(tag)
        for name, value in attrs:
            if value and (name == wanted or (tag == "img" and name == "srcset")):
                self.urls.append(value.split()[0])


def loaded_urls(html: str, base: str) -> list[str]:
    """Every resource URL ``html`` loads (``<script src>``, ``<link href>``, ``<img src>`` ...),
    made absolute against ``base``; ``data:`` URLs are left out (they load nothing)."""
    parser = _Resources()
    parser.feed(html)
    return [urljoin(base, u) for u in parser.urls if not u.startswith("data:")]


def foreign_hosts(html: str, base: str) -> set[str]:
    """The hosts other than ``base``'s from which ``html`` loads anything."""
    own = urlsplit(base).netloc
    return {urlsplit(u).netloc for u in loaded_urls(html, base)} - {own}


@contextmanager
def page(*, viewport: tuple[int, int] = (390, 844), offline: bool = True) -> Iterator[Any]:
    """A Playwright page in Debian's chromium, for pages a person clicks, types into and feeds
    files: the same binary and flags as :func:`run_chromium`, driven over the DevTools
    protocol. ``viewport`` defaults to a phone's (390 x 844 CSS pixels)."""
    from playwright.sync_api import sync_playwright

    flags = [f for f in BASE_FLAGS if f != "--headless"]
    if offline:
        flags.append(OFFLINE_FLAG)
    with sync_playwright() as pw:
        chrome = pw.chromium.launch(executable_path=chromium(), args=flags, headless=True)
        try:
            context = chrome.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, is_mobile=True
            )
            yield context.new_page()
        finally:
            chrome.close()
