"""`prunelab serve` and `prunelab db upgrade` as real subprocesses, embedded mode (SQLite database, SQLite
broker) under a temporary PRUNELAB_HOME: submit over HTTP, the job completes, Ctrl-C stops both processes."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import httpx
import pytest


class Served:
    """A `prunelab serve` subprocess whose output is collected by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, *args: str):
        self.port = port
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*argv, "serve", "--port", str(self.port), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def worker_pid(self) -> int:
        found = re.search(r"worker started \(pid (\d+)", self.output)
        assert found, self.output
        return int(found.group(1))

    def stop(self, sig: int, timeout_s: float = 40) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"serve did not stop within {timeout_s} s:\n{self.output}") from None


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def served(tmp_path, prunelab_argv, prunelab_env, free_port, wait_healthy):
    """served(*args, **env): `prunelab serve ARGS` on an embedded HOME (env: more PRUNELAB_* variables), once
    it answers /api/health."""
    started: list[Served] = []

    def start(*args: str, **env: str) -> Served:
        s = Served(prunelab_argv, prunelab_env(tmp_path / "home", **env), free_port(), *args)
        started.append(s)
        wait_healthy(s.base, s.proc, lambda: s.output, timeout_s=60)
        return s

    yield start
    for s in started:  # a failed test must not leave servers or workers behind
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        pid = re.search(r"worker started \(pid (\d+)", s.output)
        if pid and process_group_alive(int(pid.group(1))):
            os.killpg(int(pid.group(1)), signal.SIGKILL)


def test_serve_runs_a_job_submitted_over_http_and_ctrl_c_stops_both(served, tmp_path, small_spec, wait_until):
    server = served()
    worker_pid = server.worker_pid()
    assert "open http://127.0.0.1:" in server.output

    started = time.monotonic()
    resp = httpx.post(server.base + "/api/jobs", json=small_spec(name="served"), timeout=10)
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["id"]

    def finished():
        job = httpx.get(f"{server.base}/api/jobs/{job_id}", timeout=10).json()
        return job["status"] not in ("queued", "running") and job

    job = wait_until(finished, 240, lambda: f"job {job_id}:\n{server.output[-3000:]}", interval_s=0.5)
    took = time.monotonic() - started
    assert job["status"] == "succeeded", job["error"]
    steps = httpx.get(f"{server.base}/api/jobs/{job_id}/steps", timeout=10).json()["items"]
    assert [s["index"] for s in steps] == [0, 1, 2]
    assert (tmp_path / "home" / "artifacts" / "jobs" / str(job_id) / "checkpoints" / "step_2.pt").is_file()
    print(f"submit -> succeeded through `prunelab serve` in {took:.1f} s")

    assert server.stop(signal.SIGINT) == 0
    assert "stopped" in server.output
    # serve returns once its worker's main process is reaped; its pool children follow within moments
    wait_until(lambda: not process_group_alive(worker_pid), 10, "the worker's pool processes to exit with serve")


def test_serve_is_quiet_one_line_per_job_event_and_no_request_lines(served, small_spec, wait_until):
    server = served()
    job_id = httpx.post(server.base + "/api/jobs", json=small_spec(name="quiet"), timeout=10).json()["id"]

    def finished():
        job = httpx.get(f"{server.base}/api/jobs/{job_id}", timeout=10).json()  # many requests: none printed
        return job["status"] not in ("queued", "running") and job

    assert wait_until(finished, 240, lambda: server.output[-3000:], interval_s=0.2)["status"] == "succeeded"
    wait_until(lambda: f"job #{job_id} quiet succeeded" in server.output, 10, lambda: server.output)
    assert server.stop(signal.SIGINT) == 0
    lines = [line for line in server.output.splitlines() if line.strip()]
    print("\n".join(lines))
    head = f"PruneLab: job #{job_id} quiet"
    assert f"{head} started (attempt 1)" in lines
    steps = [line.split(": sparsity ")[0] for line in lines if line.startswith(f"{head} step ")]
    assert steps == [f"{head} step {k}/3" for k in (1, 2, 3)]
    assert any(line.startswith(f"{head} succeeded (3 steps, best accuracy 0.") for line in lines)
    assert len(lines) <= 12, lines  # serve's own few lines, the job's lines, nothing else
    out = server.output
    assert "HTTP/1.1" not in out and "GET /api" not in out  # no access log by default
    assert "superuser privileges" not in out and "celery@" not in out and "[config]" not in out  # no banner
    assert "Uvicorn running" not in out


def test_serve_access_log_prints_requests(served):
    server = served("--no-worker", "--access-log")
    assert httpx.get(server.base + "/api/jobs", timeout=10).status_code == 200
    assert server.stop(signal.SIGINT) == 0
    assert '"GET /api/jobs HTTP/1.1" 200' in server.output


def test_kill_9_serve_mid_job_then_serve_again_never_two_workers_on_the_job(served, tmp_path, small_spec, wait_until):
    """serve killed with SIGKILL: its worker gets SIGTERM (PR_SET_PDEATHSIG), stops its job at the next
    check and releases it; serve started again resumes the job. The lease history shows at most one lease
    period during which two workers held the job, and one success."""
    from backend import store
    from backend.db import session_scope

    lease_s = 4.0
    first = served(PRUNELAB_LEASE_S=str(lease_s))
    orphan = first.worker_pid()
    rounds = 8
    spec = small_spec(
        name="serve-kill", schedule={"kind": "iterative", "rate": 0.2, "rounds": rounds, "finetune_epochs": 3}
    )
    job_id = httpx.post(first.base + "/api/jobs", json=spec, timeout=10).json()["id"]

    def job(server):
        return httpx.get(f"{server.base}/api/jobs/{job_id}", timeout=10).json()

    wait_until(lambda: job(first)["summary"]["steps"] >= 1, 180, lambda: f"a stored step:\n{first.output[-3000:]}")
    first.proc.kill()
    first.proc.wait()
    second = served(PRUNELAB_LEASE_S=str(lease_s))  # started again at once, as a supervisor would

    def finished():
        state = job(second)
        return state["status"] not in ("queued", "running") and state

    done = wait_until(finished, 240, lambda: f"job {job_id}:\n{second.output[-3000:]}", interval_s=0.5)
    assert done["status"] == "succeeded", done["error"]
    wait_until(lambda: not process_group_alive(orphan), 30, "the orphaned worker to exit")
    steps = httpx.get(f"{second.base}/api/jobs/{job_id}/steps", timeout=10).json()["items"]
    assert [s["index"] for s in steps] == list(range(rounds))
    assert second.stop(signal.SIGINT) == 0

    with session_scope(f"sqlite:///{tmp_path / 'home' / 'prunelab.sqlite'}") as session:
        attempts = store.job_attempts(session, job_id)
    # The orphan stopped on SIGTERM and gave the job back; the new serve's worker finished it.
    assert [a.outcome for a in attempts] == ["released", "succeeded"]
    assert attempts[0].worker == f"prunelab-{orphan}@{socket.gethostname()}" != attempts[1].worker
    for held, taken in zip(attempts, attempts[1:]):
        overlap = ((held.ended_at or held.renewed_at) - taken.started_at).total_seconds()
        print(f"attempt {held.attempt} ({held.outcome}) -> {taken.attempt}: overlap {overlap:.2f} s")
        assert overlap < lease_s


def test_serve_example_queues_only_the_quick_presets_and_sigterm_stops_it(served):
    from core.presets import PRESETS

    quick = [p["name"] for p in PRESETS if p.get("quick")]
    slower = [p["name"] for p in PRESETS if not p.get("quick")]
    assert quick and slower
    assert {p["spec"]["model"] for p in PRESETS if p.get("quick")} == {"lenet300_100"}  # minutes, not hours

    server = served("--no-worker", "--example")
    jobs = httpx.get(server.base + "/api/jobs", params={"sort": "id"}, timeout=10).json()["items"]
    assert [j["name"] for j in jobs] == quick
    assert all(j["status"] == "queued" for j in jobs)
    out = server.output
    assert f"queued {len(quick)} quick example job(s)" in out
    for job, name in zip(jobs, quick):
        assert f"#{job['id']} {name}" in out and f"{server.base}/#/run/{job['id']}" in out
    assert "New run" in out and f"{server.base}/#/new?preset={slower[0]}" in out
    assert all(name in out for name in slower)  # named, one click away, not queued
    assert "worker started" not in out
    assert server.stop(signal.SIGTERM) == 0


def test_serve_example_again_queues_no_duplicates_and_brings_back_a_deleted_example(served):
    from core.presets import PRESETS

    quick = [p["name"] for p in PRESETS if p.get("quick")]
    first = served("--no-worker", "--example")
    jobs = httpx.get(first.base + "/api/jobs", params={"sort": "id"}, timeout=10).json()["items"]
    assert [j["name"] for j in jobs] == quick
    # A job of the same name with another spec is no stored example.
    other = {**PRESETS[0]["spec"], "seed": 7}
    assert httpx.post(first.base + "/api/jobs", json=other, timeout=10).status_code == 201
    deleted = jobs[1]
    assert httpx.delete(f"{first.base}/api/jobs/{deleted['id']}", timeout=10).status_code == 200
    assert first.stop(signal.SIGTERM) == 0

    second = served("--no-worker", "--example")
    again = httpx.get(second.base + "/api/jobs", params={"sort": "id", "limit": 100}, timeout=10).json()["items"]
    names = [j["name"] for j in again]
    assert sorted(names) == sorted([*quick, quick[0]])  # the deleted one is back once; the others once each
    kept = {j["id"] for j in jobs} - {deleted["id"]}
    assert kept <= {j["id"] for j in again}
    (back,) = [j for j in again if j["name"] == deleted["name"]]
    assert back["id"] > deleted["id"]
    out = second.output
    assert "queued 1 quick example job(s)" in out and f"#{back['id']} {deleted['name']}" in out
    assert f"{len(quick) - 1} example job(s) already stored, not queued again" in out
    assert second.stop(signal.SIGTERM) == 0


def test_serve_refuses_a_port_in_use(tmp_path, prunelab, prunelab_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = prunelab("serve", "--port", str(port), env=prunelab_env(tmp_path))
    assert done.returncode == 1
    assert f"port {port}" in done.stderr and "--port" in done.stderr


def test_db_upgrade_creates_the_schema(tmp_path, prunelab, prunelab_env):
    db = tmp_path / "team.sqlite"
    env = prunelab_env(tmp_path, PRUNELAB_DATABASE_URL=f"sqlite:///{db}")
    done = prunelab("db", "upgrade", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert {"jobs", "steps", "layer_masks", "alembic_version"} <= tables
    again = prunelab("db", "upgrade", env=env, timeout=120)
    assert again.returncode == 0, again.stderr  # idempotent


def test_worker_rejects_an_unknown_queue(tmp_path, prunelab, prunelab_env):
    env = prunelab_env(tmp_path, COLUMNS="200")  # one line: no wrapping inside the error box
    done = prunelab("worker", "--queues", "cpu,tpu", env=env)
    assert done.returncode == 2
    assert "--queues" in done.stderr and "'tpu'" in done.stderr and "default, cpu, gpu" in done.stderr
