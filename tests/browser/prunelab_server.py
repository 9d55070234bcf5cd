"""Start and stop the real `prunelab serve` for browser tests and bench/bench_pages.py: a subprocess with a
temporary PRUNELAB_HOME (embedded SQLite database and broker, and its own worker unless told not to)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen


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
    return [sys.executable, "-c", "from cli.main import app; app(prog_name='prunelab')"]


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
