"""backend/store.py on SQLite and Postgres: what the API and the worker rely on."""

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend import store
from backend.db import session_scope
from backend.models import ApiToken, Job, JobTag, LayerMask, Step
from core.spec import parse_spec


def new_job(db_url, owner_id: int | None = None, **overrides) -> int:
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
        return store.create_job(s, parse_spec(spec), owner_id=owner_id).id


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


def test_lifecycle_claim_cancel_retry(db_url):
    job_id = new_job(db_url)
    with session_scope(db_url) as s:
        assert store.claim_job(s, job_id, "w1", lease_s=60) == 1
        job = store.get_job(s, job_id)
        s.refresh(job)
        assert job.status == "running" and job.started_at is not None and job.attempts == 1
        assert job.lease_owner == "w1" and job.lease_expires_at is not None
        assert store.claim_job(s, job_id, "w2", lease_s=60) is None  # held by a live lease: skipped
        store.request_cancel(s, job)
        assert store.cancel_requested(s, job_id) and job.status == "running"  # flagged: its worker stops it
        assert store.attempt_state(s, job_id, 1) == "cancel"
        store.finish_job(s, job_id, 1, "cancelled")
    with session_scope(db_url) as s:
        job = store.get_job(s, job_id)
        assert job.finished_at is not None and not job.cancel_requested and job.lease_owner is None
        assert store.claim_job(s, job_id, "w1", lease_s=60) is None  # finished: the worker drops the task
        store.retry_job(s, job)
        assert (job.status, job.finished_at, job.cancel_requested) == ("queued", None, False)
        with pytest.raises(store.StoreError, match="only failed or cancelled"):
            store.retry_job(s, job)
        assert [(a.attempt, a.worker, a.outcome) for a in store.job_attempts(s, job_id)] == [(1, "w1", "cancelled")]
    other = new_job(db_url)
    with session_scope(db_url) as s:
        s.execute(Job.__table__.update().where(Job.id == other).values(cancel_requested=True))
    with session_scope(db_url) as s:
        assert store.claim_job(s, other, "w1", lease_s=60) is None
        assert store.get_job(s, other).status == "cancelled"
        assert store.cancel_requested(s, 424242)  # gone: stop
        assert store.attempt_state(s, 424242, 1) == "deleted"


def test_delete_cascades_and_removes_artifacts(db_url, step_factory, tmp_path):
    job_id, keep_id = new_job(db_url), new_job(db_url)
    for j in (job_id, keep_id):
        with session_scope(db_url) as s:
            store.add_step(s, j, step_factory(0, layers={"l": (4, 4)}))
            store.add_step(s, j, step_factory(1, layers={"l": (4, 4)}))
        (store.job_artifact_dir(tmp_path, j) / "checkpoints").mkdir(parents=True)
    with session_scope(db_url) as s:
        store.delete_job(s, store.get_job(s, job_id), tmp_path)
    with session_scope(db_url) as s:
        # delete_job removes only the jobs row: the database's ON DELETE CASCADE removed the rest
        # (on SQLite only because foreign keys are on for every connection).
        assert store.get_job(s, job_id) is None and store.list_steps(s, job_id) == []
        assert s.scalars(select(Step.job_id)).all() == [keep_id, keep_id]
        assert s.scalars(select(JobTag.job_id).distinct()).all() == [keep_id]
        assert len(s.scalars(select(LayerMask)).all()) == 2  # only the other job's
        assert store.list_jobs(s, tag="a")[1] == 1
    assert not store.job_artifact_dir(tmp_path, job_id).exists() and store.job_artifact_dir(tmp_path, keep_id).exists()


def test_ids_are_not_reused_after_delete(db_url, tmp_path):
    first = new_job(db_url)
    newest = new_job(db_url)
    with session_scope(db_url) as s:
        store.delete_job(s, store.get_job(s, newest), tmp_path)
    assert new_job(db_url) > newest > first  # a leftover queue message for `newest` cannot run a new job


def test_list_jobs_and_get_job_read_jobs_with_their_owner(db_url):
    with session_scope(db_url) as s:
        alice, _ = store.create_user(s, "alice")
    owned_id = new_job(db_url, owner_id=alice.id)
    anonymous_id = new_job(db_url)
    with session_scope(db_url) as s:
        jobs, total = store.list_jobs(s, sort="id")
        assert total == 2 and [j.id for j in jobs] == [owned_id, anonymous_id]
        listed = [store.job_to_dict(j) for j in jobs]
        single = [store.job_to_dict(store.get_job(s, j)) for j in (owned_id, anonymous_id)]
    assert listed == single  # one shape, whichever read it came from
    assert [d["owner"] for d in listed] == ["alice", None]
    with session_scope(db_url) as s:
        assert [j.id for j in store.list_jobs(s, owner="alice")[0]] == [owned_id]


def test_active_job_queues_lists_queued_and_running_jobs_oldest_first(db_url):
    cpu, gpu, done = new_job(db_url, device="cpu"), new_job(db_url), new_job(db_url, device="auto")
    with session_scope(db_url) as s:
        store.claim_job(s, gpu, "w", lease_s=60)
        store.set_status(s, done, "succeeded")
        assert store.active_job_queues(s) == [(cpu, "cpu"), (gpu, "gpu")]


def test_token_is_found_by_prefix_and_its_hash_compared(db_url):
    with session_scope(db_url) as s:
        _, token = store.create_user(s, "tom")
    with session_scope(db_url) as s:
        assert store.user_for_token(s, token).name == "tom"
        # Same stored prefix, wrong secret: the row is found, the hash comparison refuses it.
        forged = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
        assert store.user_for_token(s, forged) is None
        assert store.user_for_token(s, token[:10]) is None
        assert store.user_for_token(s, "") is None
        # Another token sharing the prefix (7 random characters: rare, not impossible) still works.
        twin = s.scalar(select(ApiToken))
        second = store.add_token(s, twin.user)
        s.scalar(select(ApiToken).where(ApiToken.token_hash == store.hash_token(second))).prefix = twin.prefix
    with session_scope(db_url) as s:
        assert store.user_for_token(s, token).name == "tom"
        assert store.user_for_token(s, second) is None  # its row is filed under the other prefix now
        store.revoke_token(s, token)
    with session_scope(db_url) as s:
        assert store.user_for_token(s, token) is None  # revoked


def test_tokens_listed_and_revoked_by_id(db_url):
    with session_scope(db_url) as s:
        store.create_user(s, "ann")
        bob, _ = store.create_user(s, "bob")
        store.add_token(s, bob)
    with session_scope(db_url) as s:
        tokens = store.list_tokens(s)
        assert [t["user"] for t in tokens] == ["ann", "bob", "bob"]
        assert [t["user"] for t in store.list_tokens(s, "bob")] == ["bob", "bob"]
        assert all(t["prefix"].startswith("pl_") and t["revoked_at"] is None for t in tokens)
        first = tokens[1]["id"]
        assert store.revoke_token_id(s, first) == 1
        assert store.revoke_token_id(s, first) == 0
        assert store.revoke_token_id(s, 999999) is None
    with session_scope(db_url) as s:
        assert [t["revoked_at"] is None for t in store.list_tokens(s, "bob")] == [False, True]
        assert store.get_user(s, "bob").id == bob.id and store.get_user(s, "nobody") is None
