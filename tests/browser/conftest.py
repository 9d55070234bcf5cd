"""Browser tests: the real `prunelab serve` as a subprocess (temporary PRUNELAB_HOME, embedded SQLite database
and broker, its own worker) and Debian's Chromium driven by Playwright. Playwright never downloads a browser.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen
IN_CI = os.environ.get("CI", "").lower() == "true"

sys.path.insert(0, str(Path(__file__).resolve().parent))  # seed_runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base_url: str
    home: Path
    proc: subprocess.Popen
    log: Path

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'prunelab.sqlite'}"

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


def prunelab_command() -> list[str]:
    script = Path(sys.executable).with_name("prunelab")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from backend.cli import app; app(prog_name='prunelab')"]


def start_server(home: Path, *, worker: bool, env: dict[str, str] | None = None) -> Server:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRUNELAB_")}
    environment.update(PRUNELAB_HOME=str(home), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **(env or {}))
    log = home / "serve.log"
    cmd = prunelab_command() + ["serve", "--port", str(port)] + ([] if worker else ["--no-worker"])
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=environment, stdout=out, stderr=subprocess.STDOUT, cwd=home)
    server = Server(f"http://127.0.0.1:{port}", home, proc, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prunelab serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{server.base_url}/api/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"prunelab serve did not answer within 90 s:\n{log.read_text()[-4000:]}")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)  # what Ctrl-C does: serve stops uvicorn, then its worker
        try:
            server.proc.wait(40)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


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
    page.on("request", lambda req: elsewhere.append(req.url)
            if not req.url.startswith(("http://127.0.0.1:", "data:", "blob:", "about:")) else None)
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
