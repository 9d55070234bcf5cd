"""Crash safety: kill -9 a real Celery worker in the middle of an iterative job, start a new one: the job
completes with every step stored exactly once, resuming after its last stored step.

Redis (team mode) hands the unacknowledged task out again after the visibility timeout. The embedded SQLite
broker loses a killed worker's task; `prunelab serve` re-enqueues unfinished jobs from the database when it
starts its worker (backend.serve.requeue_unfinished), which the second case does the same way."""
import os
import signal
import time

import pytest
import redis
from sqlalchemy import select

from backend import store
from backend.db import session_scope, upgrade
from backend.models import Step
from backend.serve import requeue_unfinished, start_worker_process, stop_worker_process
from backend.settings import Settings
from worker.celery_app import enqueue_job
from worker.spec import parse_spec

REDIS_DB = 12  # this file's own Redis database, flushed before use
VISIBILITY_TIMEOUT_S = 5
ROUNDS = 8
SPEC = {"name": "crash", "model": "lenet300_100", "dataset": "digits", "device": "cpu",
        "train": {"epochs": 2}, "method": {"kind": "block", "block_size": 2},
        "schedule": {"kind": "iterative", "rate": 0.2, "rounds": ROUNDS, "finetune_epochs": 3},
        "measure": {"latency": False}}


@pytest.fixture(params=["redis", "sqlite"])
def settings(request, tmp_path) -> Settings:
    if request.param == "redis":
        broker = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + f"/{REDIS_DB}"
        redis.Redis.from_url(broker).flushdb()
    else:
        broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    s = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'jobs.sqlite'}", broker_url=broker,
                 visibility_timeout_s=VISIBILITY_TIMEOUT_S)
    upgrade(s.database_url)
    return s


def job_state(settings: Settings, job_id: int) -> tuple[str, int, str | None]:
    with session_scope(settings.database_url) as session:
        job = store.get_job(session, job_id)
        return job.status, job.steps_done, job.error


def test_kill_9_mid_job_then_new_worker_completes_every_step_once(settings, tmp_path):
    with session_scope(settings.database_url) as session:
        job = store.create_job(session, parse_spec(SPEC))
        job_id, queue = job.id, job.queue
    enqueue_job(job_id, queue, settings)

    first_log = (tmp_path / "worker1.log").open("w")
    first = start_worker_process(settings, [queue], env_extra={"OMP_NUM_THREADS": "1"},
                                 stdout=first_log, stderr=first_log)
    deadline = time.monotonic() + 180
    while job_state(settings, job_id)[1] < 1:
        assert first.poll() is None, "the worker died on its own"
        assert time.monotonic() < deadline, "no step stored within 180 s"
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool process, no clean-up of any kind
    first.wait()
    first_log.close()
    status, stored_at_kill, _ = job_state(settings, job_id)
    assert status == "running" and 1 <= stored_at_kill < ROUNDS, (status, stored_at_kill)

    if settings.broker_url.startswith("sqla+"):
        assert requeue_unfinished(settings) == 1  # what `prunelab serve` does before starting its worker
    second_log_path = tmp_path / "worker2.log"
    with second_log_path.open("w") as second_log:
        second = start_worker_process(settings, [queue], env_extra={"OMP_NUM_THREADS": "1"},
                                      stdout=second_log, stderr=second_log)
        try:
            deadline = time.monotonic() + 240
            while (state := job_state(settings, job_id))[0] == "running":
                assert time.monotonic() < deadline, f"job not finished after the crash: {state}"
                time.sleep(0.5)
        finally:
            stop_worker_process(second)

    status, steps_done, error = job_state(settings, job_id)
    assert status == "succeeded", error
    with session_scope(settings.database_url) as session:
        indices = session.scalars(select(Step.index).where(Step.job_id == job_id).order_by(Step.index)).all()
        attempts = store.get_job(session, job_id).attempts
    assert list(indices) == list(range(ROUNDS))  # each step exactly once, none missing
    assert steps_done == ROUNDS
    assert attempts == 2
    # The second worker resumed after the last stored step instead of starting over.
    assert f"job {job_id}: running from step {stored_at_kill}" in second_log_path.read_text()
