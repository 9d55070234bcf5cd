"""Crash safety: kill -9 a real Celery worker in the middle of an iterative job, start a new one: the job
completes with every step stored exactly once, resuming after its last stored step.

Redis (team mode) hands the unacknowledged task out again after the visibility timeout. The embedded SQLite
broker loses a killed worker's task; `prunelab serve` re-enqueues unfinished jobs from the database when it
starts its worker (cli.serve.requeue_unfinished), which the second case does the same way."""

import json
import os
import signal
import sqlite3
import time
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
VISIBILITY_TIMEOUT_S = 5
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
    return worker_settings(tmp_path, broker, visibility_timeout_s=VISIBILITY_TIMEOUT_S)


def job_state(settings: Settings, job_id: int) -> tuple[str, int, str | None]:
    with session_scope(settings.database_url) as session:
        job = store.get_job(session, job_id)
        return job.status, job.steps_done, job.error


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


def test_kill_9_mid_job_then_new_worker_completes_every_step_once(settings, spec, tmp_path, worker_process):
    with session_scope(settings.database_url) as session:
        job = store.create_job(session, parse_spec(spec))
        job_id, queue = job.id, job.queue
    enqueue_job(job_id, queue, settings)

    first_log = tmp_path / "worker1.log"
    with worker_process(settings, first_log, queues=[queue]) as first:
        try:
            deadline = time.monotonic() + 180
            while job_state(settings, job_id)[1] < 1:
                assert first.poll() is None, f"the worker died on its own:\n{tail(first_log)}"
                assert time.monotonic() < deadline, f"no step stored within 180 s:\n{tail(first_log)}"
                time.sleep(0.1)
        finally:
            kill_group(first.pid)  # the worker and its pool process, no clean-up of any kind
            first.wait()
    status, stored_at_kill, _ = job_state(settings, job_id)
    assert status == "running" and 1 <= stored_at_kill < ROUNDS, (status, stored_at_kill)

    if settings.broker_url.startswith("sqla+"):
        assert requeue_unfinished(settings) == 1  # what `prunelab serve` does before starting its worker
    second_log = tmp_path / "worker2.log"
    with worker_process(settings, second_log, queues=[queue]) as second:
        deadline = time.monotonic() + 240
        while (state := job_state(settings, job_id))[0] == "running":
            assert second.poll() is None, f"the second worker exited:\n{tail(second_log)}"
            assert time.monotonic() < deadline, f"job not finished after the crash: {state}\n{tail(second_log)}"
            time.sleep(0.2)

    status, steps_done, error = job_state(settings, job_id)
    assert status == "succeeded", error
    with session_scope(settings.database_url) as session:
        indices = session.scalars(select(Step.index).where(Step.job_id == job_id).order_by(Step.index)).all()
        attempts = store.get_job(session, job_id).attempts
    assert list(indices) == list(range(ROUNDS))  # each step exactly once, none missing
    assert steps_done == ROUNDS
    assert attempts == 2
    # The second worker resumed after the last stored step instead of starting over.
    assert f"job {job_id}: running from step {stored_at_kill}" in second_log.read_text()


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
