"""End to end with real parts: the FastAPI app, a SQLite database file, Redis as the broker and a real
Celery worker process running the real engine on small lenet300_100 / digits jobs."""

from datetime import timedelta

import pytest
import torch
from PIL import Image
from sqlalchemy import func, select

from backend import store
from backend.broker import enqueue_job
from backend.db import session_scope
from backend.models import LayerMask, Step, utcnow
from core.queues import TASK_NAME
from core.spec import parse_spec
from worker.celery_app import worker_app
from worker.tasks import MAX_CRASH_REDELIVERIES

REDIS_DB = 13  # this file's own Redis database, flushed before use
ROUNDS = 3


@pytest.fixture(scope="module")
def spec(small_spec) -> dict:
    return small_spec(name="e2e", train={"epochs": 2, "batch_size": 64}, tags=["worker-test"])


def test_the_task_is_acknowledged_late_and_rejected_on_worker_loss(e2e_settings):
    # Set once, in the app configuration (backend.broker.make_celery), for every task.
    task = worker_app(e2e_settings).tasks[TASK_NAME]
    assert task.acks_late is True and task.reject_on_worker_lost is True and task.ignore_result is True


def test_job_runs_to_success_with_steps_and_masks(e2e_client, e2e_settings, spec, submit, wait_for_job):
    job_id = submit(e2e_client, spec)
    job = wait_for_job(e2e_client, job_id, 240)
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0
    assert job["started_at"] and job["finished_at"]
    assert job["baseline"]["accuracy"] > 0.5
    assert job["summary"]["steps"] == ROUNDS
    assert 0.5 < job["summary"]["sparsity"] < 0.8  # 1 - 0.7**3 = 0.657 over the pruned layers

    steps = e2e_client.get(f"/api/jobs/{job_id}/steps").json()["items"]
    assert [s["index"] for s in steps] == list(range(ROUNDS))
    sparsities = [s["sparsity"] for s in steps]
    assert sparsities == sorted(sparsities) and sparsities[0] > 0.2
    assert all(0.0 <= s["accuracy"] <= 1.0 for s in steps)
    assert [layer["name"] for layer in steps[-1]["layers"]] == ["fc1", "fc2", "fc3"]

    with session_scope(e2e_settings.database_url) as session:
        masks = session.scalar(
            select(func.count())
            .select_from(LayerMask)
            .join(Step, LayerMask.step_id == Step.id)
            .where(Step.job_id == job_id)
        )
    assert masks == ROUNDS * 3
    mask = e2e_client.get(f"/api/jobs/{job_id}/layers/fc1/mask", params={"step": ROUNDS - 1}).json()
    values = [v for row in mask["values"] for v in row]
    assert values and 0.0 < sum(values) / len(values) < 1.0  # some blocks removed, some kept
    last = e2e_settings.artifact_dir / "jobs" / str(job_id) / "checkpoints" / f"step_{ROUNDS - 1}.pt"
    assert last.is_file()
    assert job["disk_bytes"] > last.stat().st_size  # the run directory: checkpoints kept, the spec, the index


def _wait_for_dataset(client, wait_until, name: str) -> None:
    """Until the worker's published catalog (republished when its data directory changes) offers `name`."""

    def offered():
        datasets = client.get("/api/catalog").json()["datasets"]
        return any(d["name"] == name and d["workers"] for d in datasets)

    wait_until(offered, 180, f"the worker's catalog to offer {name}")


def test_failing_job_stores_its_error_and_the_worker_goes_on(
    e2e_client, e2e_settings, spec, submit, wait_for_job, wait_until
):
    _wait_for_dataset(e2e_client, wait_until, "digits")  # the worker has published its catalog
    # mnist with an empty data directory is refused at submit: no online worker has its files
    refused = e2e_client.post("/api/jobs", json={**spec, "name": "no-data", "dataset": "mnist"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "dataset"
    # mnist files that are there but empty: the catalog lists mnist, the worker cannot load it
    raw = e2e_settings.data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / stem).write_bytes(b"")
    _wait_for_dataset(e2e_client, wait_until, "mnist")
    broken = submit(e2e_client, {**spec, "name": "empty-files", "dataset": "mnist"})
    after = submit(e2e_client, {**spec, "name": "after-failure"})
    failed = wait_for_job(e2e_client, broken, 180)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("ValueError: invalid literal"), failed["error"]
    assert failed["finished_at"]
    ok = wait_for_job(e2e_client, after, 240)
    assert ok["status"] == "succeeded", ok["error"]
    assert ok["summary"]["steps"] == ROUNDS


def test_a_failed_job_keeps_one_line_without_server_paths_and_the_traceback_goes_to_the_log(
    e2e_client, e2e_settings, e2e_worker_log, spec, submit, wait_for_job, wait_until
):
    # An image folder whose files are no images: PIL's error names the file by its full path on the server.
    # The first training image is a real one, so the worker's catalog lists the folder (it reads one image).
    root = e2e_settings.data_dir / "broken"
    for part, cls in (("train", "a"), ("train", "b"), ("test", "a")):
        (root / part / cls).mkdir(parents=True, exist_ok=True)
        (root / part / cls / "0.png").write_bytes(b"not a png")
    Image.new("L", (8, 8)).save(root / "train" / "a" / "0.png")
    _wait_for_dataset(e2e_client, wait_until, "imagefolder:broken")
    job_id = submit(e2e_client, {**spec, "name": "broken-images", "dataset": "imagefolder:broken"})
    failed = wait_for_job(e2e_client, job_id, 180)
    assert failed["status"] == "failed"
    error = failed["error"]
    assert error.startswith("UnidentifiedImageError: cannot identify image file"), error
    assert "\n" not in error and "/" not in error and "0.png" in error
    log = e2e_worker_log.read_text()
    assert f"job {job_id}: attempt 1 failed" in log
    assert "Traceback (most recent call last)" in log and str(root) in log


def test_a_worker_whose_lease_was_taken_over_stops_without_writing(
    e2e_client, e2e_settings, e2e_worker_log, spec, submit, wait_for_job
):
    """As if this worker had been cut off from the database for a lease period: a reaper re-queues its job
    (requeue_expired, judged at a time past the lease) while the worker still trains. Its next write or check
    is refused; it stops without writing and, free again, claims the job's next message as attempt 2."""
    long = {**spec, "name": "taken-over", "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 6}}
    job_id = submit(e2e_client, long)
    job = wait_for_job(e2e_client, job_id, 180, until=lambda j: j["summary"]["steps"] >= 1)
    later = utcnow() + timedelta(seconds=e2e_settings.lease_s + 1)
    with session_scope(e2e_settings.database_url) as session:
        assert store.requeue_expired(session, job_id, 1, now=later) == "queued"
        steps_then = store.completed_steps(session, job_id)
    enqueue_job(job_id, job["queue"], e2e_settings)
    done = wait_for_job(e2e_client, job_id, 240)
    assert done["status"] == "succeeded", done["error"]
    with session_scope(e2e_settings.database_url) as session:
        history = [(a.attempt, a.outcome) for a in store.job_attempts(session, job_id)]
        indices = [s.index for s in store.list_steps(session, job_id)]
    assert history == [(1, "lost"), (2, "succeeded")]
    assert indices == list(range(6))  # none twice, none missing
    log = e2e_worker_log.read_text()
    assert f"job {job_id}: attempt 1 lost its lease; stopped without writing" in log
    assert f"job {job_id}: attempt 2 running from step {steps_then}" in log  # nothing stored after the loss


def test_job_whose_worker_keeps_dying_fails_instead_of_looping(e2e_client, e2e_settings, spec, wait_for_job):
    # As if workers had died MAX_CRASH_REDELIVERIES times in a row on this job (out of memory, say): each
    # claimed it and let its lease run out. The next delivery ends it as failed rather than running it again.
    with session_scope(e2e_settings.database_url) as session:
        job = store.create_job(session, parse_spec({**spec, "name": "poison"}))
        job_id, queue = job.id, job.queue
    for _ in range(MAX_CRASH_REDELIVERIES):
        with session_scope(e2e_settings.database_url) as session:
            store.claim_job(session, job_id, "killed-worker", lease_s=-1)
    enqueue_job(job_id, queue, e2e_settings)
    job = wait_for_job(e2e_client, job_id, 60)
    assert job["status"] == "failed"
    assert f"the worker died {MAX_CRASH_REDELIVERIES} times in a row" in job["error"]
    assert job["summary"]["steps"] == 0


def test_the_worker_registers_itself_online_with_its_device(e2e_client, e2e_settings, wait_until):
    def registered():
        items = e2e_client.get("/api/workers").json()["items"]
        return [w for w in items if w["online"] and w["torch_version"]]

    (w,) = wait_until(registered, 60, "the worker in /api/workers with its device")
    assert w["name"] == f"prunelab-{w['pid']}@{w['host']}"
    assert set(w["queues"]) == {"default", "cpu"} and w["concurrency"] == 1
    assert w["torch_version"] == torch.__version__
    assert w["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (w["gpu_name"] is None) == (w["device"] == "cpu")
