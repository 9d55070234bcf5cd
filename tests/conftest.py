"""Shared test fixtures: real services of this machine (and the CI rule that a missing one fails), the
`prunelab` command as a subprocess, and small helpers every folder uses. Helper modules beside this file
(fake_steps) import by name through pytest's `pythonpath = ["tests"]` (pyproject.toml)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("PRUNELAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("PRUNELAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_INSTALLED = Path(sys.executable).parent / "prunelab"
PRUNELAB = (
    [str(_INSTALLED)]
    if _INSTALLED.exists()
    else [sys.executable, "-c", "from cli.main import app; app(prog_name='prunelab')"]
)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a service is missing on a developer's machine; fail under CI=true."""
    if _port_open(host, port):
        return
    message = f"{name} is not running on {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing service is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_url() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


# ---------------------------------------------------------------- helpers (as fixtures returning functions)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prunelab_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRUNELAB_")}
    env.update(PRUNELAB_HOME=str(home), OMP_NUM_THREADS="1", **extra)
    return env


def _prunelab(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*PRUNELAB, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _wait_until(predicate: Callable, timeout_s: float, what: str, interval_s: float = 0.2):
    """predicate()'s first truthy value; AssertionError naming `what` (a string or a callable giving one,
    e.g. a log tail) after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what() if callable(what) else what}")
        time.sleep(interval_s)


def _wait_healthy(base_url: str, proc: subprocess.Popen, output: Callable[[], str], timeout_s: float = 90) -> None:
    """Wait until `GET base_url/api/health` answers 200; fail at once if `proc` (the server) exits."""

    def healthy() -> bool:
        assert proc.poll() is None, f"the server exited:\n{output()}"
        try:
            return httpx.get(base_url + "/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_until(healthy, timeout_s, lambda: f"{base_url}/api/health:\n{output()}", interval_s=0.3)


@pytest.fixture(scope="session")
def prunelab_argv() -> list[str]:
    """The argv that runs the `prunelab` command (the installed console script when there is one)."""
    return list(PRUNELAB)


@pytest.fixture(scope="session")
def prunelab_env():
    """prunelab_env(home, **extra): this environment without PRUNELAB_*, with PRUNELAB_HOME=home, one
    OpenMP thread, and `extra`."""
    return _prunelab_env


@pytest.fixture(scope="session")
def prunelab():
    """prunelab(*args, env=..., timeout=60): `prunelab ARGS` as a subprocess, output captured as text."""
    return _prunelab


@pytest.fixture(scope="session")
def free_port():
    """free_port(): a TCP port on 127.0.0.1 that nothing listens on right now."""
    return _free_port


@pytest.fixture(scope="session")
def wait_until():
    """wait_until(predicate, timeout_s, what): poll until predicate() is truthy, return that value."""
    return _wait_until


@pytest.fixture(scope="session")
def wait_healthy():
    """wait_healthy(base_url, proc, output, timeout_s=90): a server subprocess answers /api/health."""
    return _wait_healthy


@pytest.fixture(scope="session")
def small_spec():
    """small_spec(**overrides): a LeNet-300-100 / digits job of 3 iterative block-pruning rounds that a
    worker finishes in well under a minute on a CPU."""

    def make(**overrides) -> dict:
        return {
            "name": "small",
            "model": "lenet300_100",
            "dataset": "digits",
            "device": "cpu",
            "train": {"epochs": 2},
            "method": {"kind": "block", "block_size": 2},
            "schedule": {"kind": "iterative", "rate": 0.3, "rounds": 3, "finetune_epochs": 1},
            "measure": {"latency": False},
            **overrides,
        }

    return make
