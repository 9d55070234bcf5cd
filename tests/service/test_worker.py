"""End to end with real parts: the FastAPI app, a SQLite database file, Redis as the broker and a real
Celery worker process running the real engine on small lenet300_100 / digits jobs."""

import functools
import subprocess
import time

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend import store
from backend.api import create_app
from backend.broker import enqueue_job
from backend.db import session_scope, upgrade
from backend.models import LayerMask, Step
from cli.serve import start_worker_process, stop_worker_process
from core.settings import Settings
from core.spec import parse_spec
from worker.tasks import MAX_CRASH_REDELIVERIES

REDIS_DB = 13  # this file's own Redis database, flushed before use
ROUNDS = 3
SPEC = {
    "name": "e2e",
    "model": "lenet300_100",
    "dataset": "digits",
    "device": "cpu",
    "train": {"epochs": 2, "batch_size": 64},
    "method": {"kind": "block", "block_size": 2},
    "schedule": {"kind": "iterative", "rate": 0.3, "rounds": ROUNDS, "finetune_epochs": 1},
    "measure": {"latency": False},
    "tags": ["worker-test"],
}


def redis_db_url(redis_url: str, db: int) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture(scope="module")
def settings(tmp_path_factory, redis_url) -> Settings:
    home = tmp_path_factory.mktemp("prunelab-home")
    broker = redis_db_url(redis_url, REDIS_DB)
    redis.Redis.from_url(broker).flushdb()
    s = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'jobs.sqlite'}",
        broker_url=broker,
        data_dir=home / "data",
        visibility_timeout_s=3600,
    )
    upgrade(s.database_url)
    return s


@pytest.fixture(scope="module")
def worker(settings, tmp_path_factory):
    log = (tmp_path_factory.mktemp("logs") / "worker.log").open("w")
    proc = start_worker_process(
        settings, ["default", "cpu"], env_extra={"OMP_NUM_THREADS": "1"}, stdout=log, stderr=subprocess.STDOUT
    )
    yield proc
    stop_worker_process(proc)
    log.close()


@pytest.fixture(scope="module")
def client(settings, worker):
    app = create_app(settings, enqueue=functools.partial(enqueue_job, settings=settings))
    with TestClient(app) as c:
        yield c


def wait_for_status(client, job_id: int, statuses: tuple[str, ...], timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} ({job['message']}) after {timeout_s} s")
        time.sleep(0.5)


def test_job_runs_to_success_with_steps_and_masks(client, settings):
    resp = client.post("/api/jobs", json=SPEC)
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["id"]
    job = wait_for_status(client, job_id, ("succeeded", "failed", "cancelled"), timeout_s=240)
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0
    assert job["started_at"] and job["finished_at"]
    assert job["baseline"]["accuracy"] > 0.5
    assert job["summary"]["steps"] == ROUNDS
    assert 0.5 < job["summary"]["sparsity"] < 0.8  # 1 - 0.7**3 = 0.657 over the pruned layers

    steps = client.get(f"/api/jobs/{job_id}/steps").json()["items"]
    assert [s["index"] for s in steps] == list(range(ROUNDS))
    sparsities = [s["sparsity"] for s in steps]
    assert sparsities == sorted(sparsities) and sparsities[0] > 0.2
    assert all(0.0 <= s["accuracy"] <= 1.0 for s in steps)
    assert [layer["name"] for layer in steps[-1]["layers"]] == ["fc1", "fc2", "fc3"]

    with session_scope(settings.database_url) as session:
        masks = session.scalar(
            select(func.count())
            .select_from(LayerMask)
            .join(Step, LayerMask.step_id == Step.id)
            .where(Step.job_id == job_id)
        )
    assert masks == ROUNDS * 3
    mask = client.get(f"/api/jobs/{job_id}/layers/fc1/mask", params={"step": ROUNDS - 1}).json()
    values = [v for row in mask["values"] for v in row]
    assert values and 0.0 < sum(values) / len(values) < 1.0  # some blocks removed, some kept
    assert (settings.artifact_dir / "jobs" / str(job_id) / "checkpoints" / f"step_{ROUNDS - 1}.pt").is_file()


def test_failing_job_stores_its_error_and_the_worker_goes_on(client):
    # mnist with an empty data directory (and no network download allowed to help) cannot load
    broken = client.post("/api/jobs", json={**SPEC, "name": "no-data", "dataset": "mnist"}).json()
    after = client.post("/api/jobs", json={**SPEC, "name": "after-failure"}).json()
    failed = wait_for_status(client, broken["id"], ("succeeded", "failed", "cancelled"), timeout_s=180)
    assert failed["status"] == "failed"
    assert "mnist" in failed["error"].lower()
    assert failed["finished_at"]
    ok = wait_for_status(client, after["id"], ("succeeded", "failed", "cancelled"), timeout_s=240)
    assert ok["status"] == "succeeded", ok["error"]
    assert ok["summary"]["steps"] == ROUNDS


def test_job_whose_worker_keeps_dying_fails_instead_of_looping(client, settings):
    # As if workers had died MAX_CRASH_REDELIVERIES times on this job (out of memory, say): the next
    # delivery ends it as failed rather than running it once more.
    with session_scope(settings.database_url) as session:
        job = store.create_job(session, parse_spec({**SPEC, "name": "poison"}))
        job.status, job.attempts = "running", MAX_CRASH_REDELIVERIES
        job_id, queue = job.id, job.queue
    enqueue_job(job_id, queue, settings)
    job = wait_for_status(client, job_id, ("succeeded", "failed", "cancelled"), timeout_s=60)
    assert job["status"] == "failed"
    assert f"the worker died {MAX_CRASH_REDELIVERIES} times" in job["error"]
    assert job["summary"]["steps"] == 0
