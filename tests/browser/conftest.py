"""Browser tests: the real `prunelab serve` as a subprocess (temporary PRUNELAB_HOME, embedded SQLite database
and broker, its own worker) and Debian's Chromium driven by Playwright. Playwright never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from prunelab_server import CHROMIUM_ARGS, VIEWPORT, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class PageErrors(list):
    """Uncaught exceptions and console errors of a page; a test fails if any appear."""


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    errors = PageErrors()
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.errors = errors
    # The page must work with no network: every request goes to our own server.
    elsewhere = []
    page.on(
        "request",
        lambda req: (
            elsewhere.append(req.url)
            if not req.url.startswith(("http://127.0.0.1:", "data:", "blob:", "about:"))
            else None
        ),
    )
    page.set_default_timeout(20_000)
    yield page
    context.close()
    # 4xx answers a test provokes on purpose show up as console errors ("Failed to load resource").
    unexpected = [e for e in errors if "Failed to load resource" not in e]
    assert not unexpected, unexpected
    assert not elsewhere, f"requests to other hosts: {elsewhere}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def worker_server(tmp_path_factory):
    """`prunelab serve` with its own worker: jobs really run."""
    server = start_server(tmp_path_factory.mktemp("serve-worker"), worker=True)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def stored_server(tmp_path_factory):
    """The API alone, with 100 stored runs written through backend.store (no worker needed)."""
    from seed_runs import insert_runs

    server = start_server(tmp_path_factory.mktemp("serve-stored"), worker=False)
    server.run_ids = insert_runs(server.database_url, 100, steps=8)
    yield server
    stop_server(server)
