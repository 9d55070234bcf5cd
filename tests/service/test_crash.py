"""Crash safety: kill -9 a real Celery worker in the middle of an iterative job: the job completes with every
step stored exactly once, resuming after its last stored step, within two lease periods.

Liveness is the lease in the database, on Redis and on the embedded SQLite broker alike: the killed worker
stops renewing, another worker's reaper re-queues the job once the lease expired and enqueues it again, and
that worker claims it. The broker's visibility timeout stays at its default (12 h): it plays no part.
A second worker is already running when the first is killed, so what the lease history measures is the
lease mechanism, not how long a new process takes to start."""

import json
import os
import signal
import socket
import sqlite3
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select

from backend import store
from backend.broker import enqueue_job, get_app
from backend.db import session_scope
from backend.models import Step
from cli.serve import requeue_unfinished
from core.settings import Settings
from core.spec import parse_spec

REDIS_DB = 12  # this file's own Redis database, flushed before use
# Short for the test suite; PRUNELAB_TEST_LEASE_S=60 measures recovery with the default lease.
LEASE_S = float(os.environ.get("PRUNELAB_TEST_LEASE_S", "4"))
ROUNDS = 8


@pytest.fixture
def spec(small_spec) -> dict:
    return small_spec(name="crash", schedule={"kind": "iterative", "rate": 0.2, "rounds": ROUNDS, "finetune_epochs": 3})


@pytest.fixture(params=["redis", "sqlite"])
def settings(request, tmp_path, worker_settings) -> Settings:
    if request.param == "redis":
        broker = request.getfixturevalue("redis_broker")(REDIS_DB)
    else:
        broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    return worker_settings(tmp_path, broker, lease_s=LEASE_S)


def job_state(settings: Settings, job_id: int) -> tuple[str, int, str | None]:
    with session_scope(settings.database_url) as session:
        job = store.get_job(session, job_id)
        return job.status, job.steps_done, job.error


def online_workers(settings: Settings) -> set[str]:
    with session_scope(settings.database_url) as session:
        return {
            w["name"]
            for w in (store.worker_to_dict(x, settings.worker_online_s) for x in store.list_workers(session))
            if w["online"]
        }


def live_group_members(pgid: int) -> list[int]:
    """Processes of process group `pgid` that can still run (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def kill_group(pgid: int, timeout_s: float = 30) -> None:
    """SIGKILL a worker and its pool process; return once none of them can write to the database."""
    os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while members := live_group_members(pgid):
        assert time.monotonic() < deadline, f"still alive {timeout_s} s after SIGKILL: {members}"
        time.sleep(0.05)


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_kill_9_mid_job_another_worker_resumes_it_within_two_leases(
    settings, spec, tmp_path, worker_process, wait_until
):
    assert settings.visibility_timeout_s == 12 * 3600  # the default: recovery must not depend on it
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    with ExitStack() as stack:
        procs = [stack.enter_context(worker_process(settings, log, queues=["cpu"])) for log in logs]
        output = lambda: "\n".join(f"{log.name}:\n{tail(log)}" for log in logs)  # noqa: E731
        names = {f"prunelab-{p.pid}@{socket.gethostname()}": (p, log) for p, log in zip(procs, logs)}
        wait_until(lambda: online_workers(settings) == set(names), 60, lambda: f"two workers online:\n{output()}")

        with session_scope(settings.database_url) as session:
            job = store.create_job(session, parse_spec(spec))
            job_id, queue = job.id, job.queue
        enqueue_job(job_id, queue, settings)
        wait_until(lambda: job_state(settings, job_id)[1] >= 1, 180, lambda: f"a stored step:\n{output()}")
        with session_scope(settings.database_url) as session:
            holder = store.get_job(session, job_id).lease_owner
        (killed_proc, _), (other, other_log) = names.pop(holder), names.popitem()[1]
        kill_group(killed_proc.pid)  # the worker and its pool process, no clean-up of any kind
        killed_proc.wait()
        status, stored_at_kill, _ = job_state(settings, job_id)  # nothing can change it for a lease period
        assert status == "running" and 1 <= stored_at_kill < ROUNDS, (status, stored_at_kill)

        def finished():
            assert other.poll() is None, f"the other worker exited:\n{output()}"
            return job_state(settings, job_id)[0] not in ("queued", "running")

        wait_until(finished, 240, lambda: f"job {job_id} to finish after the kill:\n{output()}")

    status, steps_done, error = job_state(settings, job_id)
    assert status == "succeeded", error
    with session_scope(settings.database_url) as session:
        indices = session.scalars(select(Step.index).where(Step.job_id == job_id).order_by(Step.index)).all()
        attempts = store.job_attempts(session, job_id)
    assert list(indices) == list(range(ROUNDS))  # each step exactly once, none missing
    assert steps_done == ROUNDS
    killed, resumed = attempts
    assert (killed.attempt, killed.outcome, resumed.attempt, resumed.outcome) == (1, "lost", 2, "succeeded")
    assert killed.worker != resumed.worker
    # From the killed worker's last renewal (its last sign of life) to the claim by the other worker:
    # at least the lease (claimable only once it expired), under two lease periods.
    recovery = (resumed.started_at - killed.renewed_at).total_seconds()
    print(f"{settings.broker_url.split(':')[0]}: lease {LEASE_S:g} s, resumed {recovery:.2f} s after the last renewal")
    assert LEASE_S <= recovery < 2 * LEASE_S, recovery
    # The other worker resumed after the last stored step instead of starting over.
    assert resumed.worker == f"prunelab-{other.pid}@{socket.gethostname()}"
    assert f"job {job_id}: attempt 2 running from step {stored_at_kill}" in other_log.read_text()


def test_requeue_unfinished_drops_taken_messages_and_queues_each_active_job_once(tmp_path, spec, worker_settings):
    """The SQLite broker keeps a message a killed worker had taken (invisible, no visibility timeout);
    requeue_unfinished leaves exactly one visible message per queued or running job."""
    s = worker_settings(tmp_path, f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}")
    with session_scope(s.database_url) as session:
        running = store.create_job(session, parse_spec(spec))
        queued = store.create_job(session, parse_spec({**spec, "device": "auto"}))
        done = store.create_job(session, parse_spec(spec))
        ids = {"running": running.id, "queued": queued.id, "done": done.id}
        assert (running.queue, queued.queue) == ("cpu", "default")
    for job_id in ids.values():
        enqueue_job(job_id, "cpu" if job_id != ids["queued"] else "default", s)
    with session_scope(s.database_url) as session:
        store.start_job(session, ids["running"])
        store.start_job(session, ids["done"])
        store.set_status(session, ids["done"], "succeeded")
    with get_app(s).connection_for_write() as conn:  # a worker takes a message, then is killed
        channel = conn.default_channel
        channel.do_restore = False  # killed: no chance to put it back
        assert channel.basic_get("cpu", no_ack=False) is not None
    assert broker_rows(tmp_path) == [("cpu", False), ("cpu", True), ("default", True)]

    assert requeue_unfinished(s) == 2
    assert requeue_unfinished(s) == 2  # idempotent: no duplicates
    assert broker_rows(tmp_path) == [("cpu", True, ids["running"]), ("default", True, ids["queued"])]


def broker_rows(tmp_path: Path) -> list[tuple]:
    """(queue, visible) of every message in the SQLite broker; plus the job id once all are visible."""
    with sqlite3.connect(tmp_path / "broker.sqlite") as broker:
        rows = broker.execute(
            "SELECT q.name, m.visible, m.payload FROM kombu_message m "
            "JOIN kombu_queue q ON q.id = m.queue_id ORDER BY q.name, m.visible"
        ).fetchall()
    if all(visible for _, visible, _ in rows):
        return sorted(
            (name, True, json.loads(json.loads(payload)["headers"]["argsrepr"])[0]) for name, _, payload in rows
        )
    return [(name, bool(visible)) for name, visible, _ in rows]
