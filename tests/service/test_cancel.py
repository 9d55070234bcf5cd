"""Cooperative cancel and delete of a running job, with a real Celery worker on Redis and a SQLite file."""

import functools
import subprocess
import time

import pytest
import redis
from fastapi.testclient import TestClient

from backend.api import create_app
from backend.broker import enqueue_job
from backend.db import upgrade
from cli.serve import start_worker_process, stop_worker_process
from core.settings import Settings

REDIS_DB = 11  # this file's own Redis database, flushed before use
LONG_ROUNDS = 40
LONG_SPEC = {
    "name": "long",
    "model": "lenet300_100",
    "dataset": "digits",
    "device": "cpu",
    "train": {"epochs": 2},
    "method": {"kind": "magnitude"},
    "schedule": {"kind": "iterative", "rate": 0.1, "rounds": LONG_ROUNDS, "finetune_epochs": 3},
    "measure": {"latency": False},
}
SHORT_SPEC = {
    **LONG_SPEC,
    "name": "short",
    "schedule": {"kind": "iterative", "rate": 0.3, "rounds": 2, "finetune_epochs": 1},
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory, redis_url) -> Settings:
    home = tmp_path_factory.mktemp("prunelab-home")
    broker = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    s = Settings(
        home=home, database_url=f"sqlite:///{home / 'jobs.sqlite'}", broker_url=broker, visibility_timeout_s=3600
    )
    upgrade(s.database_url)
    return s


@pytest.fixture(scope="module")
def client(settings, tmp_path_factory):
    log = (tmp_path_factory.mktemp("logs") / "worker.log").open("w")
    proc = start_worker_process(
        settings, ["default", "cpu"], env_extra={"OMP_NUM_THREADS": "1"}, stdout=log, stderr=subprocess.STDOUT
    )
    app = create_app(settings, enqueue=functools.partial(enqueue_job, settings=settings))
    with TestClient(app) as c:
        yield c
    stop_worker_process(proc)
    log.close()


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


def job_of(client, job_id: int) -> dict:
    return client.get(f"/api/jobs/{job_id}").json()


def submit(client, spec: dict) -> int:
    resp = client.post("/api/jobs", json=spec)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def test_cancel_running_job_ends_cancelled_within_seconds(client):
    job_id = submit(client, LONG_SPEC)
    wait_until(lambda: job_of(client, job_id)["summary"]["steps"] >= 1, 180, "the first stored step")

    asked = time.monotonic()
    resp = client.post(f"/api/jobs/{job_id}/cancel")
    assert resp.status_code == 200, resp.text
    job = wait_until(lambda: (j := job_of(client, job_id))["status"] != "running" and j, 30, "the cancel")
    took = time.monotonic() - asked
    assert job["status"] == "cancelled"
    assert took < 10, f"cancel took {took:.1f} s"
    assert job["finished_at"] and not job["cancel_requested"]
    steps_at_cancel = job["summary"]["steps"]
    assert 1 <= steps_at_cancel < LONG_ROUNDS
    time.sleep(2)  # nothing more is written after the cancel
    assert job_of(client, job_id)["summary"]["steps"] == steps_at_cancel
    print(f"cancel -> cancelled in {took:.2f} s")

    # The worker is free again: the next job runs to the end.
    next_id = submit(client, SHORT_SPEC)
    done = wait_until(
        lambda: (j := job_of(client, next_id))["status"] in ("succeeded", "failed") and j, 180, "the next job"
    )
    assert done["status"] == "succeeded", done["error"]


def test_delete_running_job_stops_it_and_removes_its_artifacts(client, settings):
    job_id = submit(client, LONG_SPEC)
    wait_until(lambda: job_of(client, job_id)["summary"]["steps"] >= 1, 180, "the first stored step")
    out_dir = settings.artifact_dir / "jobs" / str(job_id)
    assert (out_dir / "checkpoints").is_dir()

    assert client.delete(f"/api/jobs/{job_id}").status_code in (200, 204)
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    # The worker notices within seconds, stops, and removes anything it wrote after the API's clean-up.
    next_id = submit(client, SHORT_SPEC)
    wait_until(lambda: job_of(client, next_id)["status"] != "queued", 30, "the worker to drop the deleted job")
    assert not out_dir.exists()
    done = wait_until(
        lambda: (j := job_of(client, next_id))["status"] in ("succeeded", "failed") and j, 180, "the next job"
    )
    assert done["status"] == "succeeded", done["error"]
