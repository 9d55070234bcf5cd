"""backend/store.py on SQLite and Postgres: what the API and the worker rely on."""

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend import store
from backend.db import session_scope
from backend.models import Job, LayerMask, Step
from core.spec import parse_spec


def new_job(db_url, **overrides) -> int:
    spec = {
        "model": "lenet300_100",
        "dataset": "digits",
        "method": {"kind": "block"},
        "schedule": {"kind": "iterative", "rounds": 4},
        "device": "cuda",
        "tags": ["a", "a", "b"],
        **overrides,
    }
    with session_scope(db_url) as s:
        return store.create_job(s, parse_spec(spec)).id


def test_create_job_columns(db_url):
    job_id = new_job(db_url)
    with session_scope(db_url) as s:
        job = store.get_job(s, job_id)
        assert (job.status, job.queue, job.method, job.schedule, job.tags) == (
            "queued",
            "gpu",
            "block",
            "iterative",
            ["a", "b"],
        )
        assert job.spec["method"]["block_size"] == 2 and job.attempts == 0 and job.progress == 0.0
        assert store.list_jobs(s, tag="b")[1] == 1


def test_add_step_splits_masks_and_is_idempotent(db_url, step_factory):
    job_id = new_job(db_url)
    with session_scope(db_url) as s:
        assert store.add_step(s, job_id, step_factory(0, accuracy=0.91)) is not None
    with session_scope(db_url) as s:
        assert store.add_step(s, job_id, step_factory(0, accuracy=0.5)) is None  # redelivered: ignored
        store.add_step(s, job_id, step_factory(1, accuracy=0.85, sparsity=0.7))
    with session_scope(db_url) as s:
        steps = store.list_steps(s, job_id)
        assert [st.index for st in steps] == [0, 1] and steps[0].metrics["accuracy"] == 0.91
        assert all("mask" not in layer and "density" not in layer for layer in steps[0].metrics["layers"])
        masks = s.scalars(select(LayerMask).where(LayerMask.step_id == steps[0].id)).all()
        assert {m.layer for m in masks} == {"fc1", "fc2"}
        fc1 = next(m for m in masks if m.layer == "fc1")
        assert fc1.grid_shape == [150, 32] and fc1.block_shape == [2, 2] and fc1.weight_shape == [300, 64]
        job = store.get_job(s, job_id)
        assert job.steps_done == 2 and job.best_accuracy == 0.91 and job.last_accuracy == 0.85
        assert job.last_sparsity == pytest.approx(steps[1].metrics["sparsity"])


def test_unique_step_index_enforced_by_the_database(db_url):
    job_id = new_job(db_url)
    with session_scope(db_url) as s:
        s.add(Step(job_id=job_id, index=0, metrics={}))
    with pytest.raises(IntegrityError), session_scope(db_url) as s:
        s.add(Step(job_id=job_id, index=0, metrics={}))


def test_concurrent_writers_store_a_step_once(db_url, step_factory):
    job_id = new_job(db_url)
    step = step_factory(0, layers={"l": (16, 16)})
    barrier = threading.Barrier(4)
    errors = []

    def write():
        barrier.wait()
        try:
            with session_scope(db_url) as s:
                store.add_step(s, job_id, step)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    with session_scope(db_url) as s:
        assert len(store.list_steps(s, job_id)) == 1
        assert len(s.scalars(select(LayerMask)).all()) == 1
    assert errors == []


def test_completed_steps_counts_the_leading_run(db_url, step_factory):
    job_id = new_job(db_url)
    with session_scope(db_url) as s:
        assert store.completed_steps(s, job_id) == 0
        for i in (0, 1, 3):
            store.add_step(s, job_id, step_factory(i, layers={"l": (4, 4)}))
    with session_scope(db_url) as s:
        assert store.completed_steps(s, job_id) == 2


def test_lifecycle_start_cancel_retry(db_url):
    job_id = new_job(db_url)
    with session_scope(db_url) as s:
        job = store.start_job(s, job_id)
        assert job.status == "running" and job.started_at is not None
        assert store.start_job(s, job_id) is not None  # redelivered after a crash: still claimable
        store.request_cancel(s, job)
        assert store.cancel_requested(s, job_id)
        store.set_status(s, job_id, "cancelled")
    with session_scope(db_url) as s:
        job = store.get_job(s, job_id)
        assert job.finished_at is not None and not job.cancel_requested
        assert store.start_job(s, job_id) is None  # finished: the worker drops the task
        store.retry_job(s, job)
        assert (job.status, job.finished_at, job.cancel_requested) == ("queued", None, False)
        with pytest.raises(store.StoreError, match="only failed or cancelled"):
            store.retry_job(s, job)
    other = new_job(db_url)
    with session_scope(db_url) as s:
        s.execute(Job.__table__.update().where(Job.id == other).values(cancel_requested=True))
    with session_scope(db_url) as s:
        assert store.start_job(s, other) is None
        assert store.get_job(s, other).status == "cancelled"
        assert store.cancel_requested(s, 424242)  # gone: stop


def test_delete_cascades_and_removes_artifacts(db_url, step_factory, tmp_path):
    job_id, keep_id = new_job(db_url), new_job(db_url)
    for j in (job_id, keep_id):
        with session_scope(db_url) as s:
            store.add_step(s, j, step_factory(0, layers={"l": (4, 4)}))
        (store.job_artifact_dir(tmp_path, j) / "checkpoints").mkdir(parents=True)
    with session_scope(db_url) as s:
        store.delete_job(s, store.get_job(s, job_id), tmp_path)
    with session_scope(db_url) as s:
        assert store.get_job(s, job_id) is None and store.list_steps(s, job_id) == []
        assert len(s.scalars(select(LayerMask)).all()) == 1  # only the other job's
        assert store.list_jobs(s, tag="a")[1] == 1
    assert not store.job_artifact_dir(tmp_path, job_id).exists() and store.job_artifact_dir(tmp_path, keep_id).exists()


def test_ids_are_not_reused_after_delete(db_url, tmp_path):
    first = new_job(db_url)
    newest = new_job(db_url)
    with session_scope(db_url) as s:
        store.delete_job(s, store.get_job(s, newest), tmp_path)
    assert new_job(db_url) > newest > first  # a leftover queue message for `newest` cannot run a new job
