"""Leases in the store, on SQLite and Postgres: one conditional claim per attempt, writes fenced by the
attempt, renewal, release, the reaper (also two of them racing), and cancel / retry of a job whose worker
is gone. Expired leases are made by claiming with a negative lease, never by waiting."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from backend import store
from backend.db import session_scope
from backend.models import Job, LayerMask, Step, utcnow
from core.settings import Settings
from core.spec import parse_spec
from worker import lease

SPEC = {
    "model": "lenet300_100",
    "dataset": "digits",
    "method": {"kind": "block"},
    "schedule": {"kind": "iterative", "rounds": 4},
    "device": "cpu",
}


def new_job(db_url) -> int:
    with session_scope(db_url) as s:
        return store.create_job(s, parse_spec(SPEC)).id


def claim(db_url, job_id, worker="w1", lease_s=60.0, **kw):
    with session_scope(db_url) as s:
        return store.claim_job(s, job_id, worker, lease_s, **kw)


def job_row(db_url, job_id) -> Job:
    with session_scope(db_url) as s:
        return store.get_job(s, job_id)


def history(db_url, job_id) -> list[tuple]:
    with session_scope(db_url) as s:
        return [(a.attempt, a.worker, a.outcome) for a in store.job_attempts(s, job_id)]


def test_claim_is_one_attempt_per_holder_and_takes_over_an_expired_lease(db_url):
    job_id = new_job(db_url)
    assert claim(db_url, job_id, "w1") == 1
    assert claim(db_url, job_id, "w2") is None  # live lease: the second delivery is skipped
    job = job_row(db_url, job_id)
    assert (job.status, job.attempts, job.lease_owner) == ("running", 1, "w1")

    other = new_job(db_url)
    assert claim(db_url, other, "dead", lease_s=-1) == 1  # a lease that has run out already
    assert claim(db_url, other, "w2") == 2
    assert history(db_url, other) == [(1, "dead", "lost"), (2, "w2", None)]
    assert job_row(db_url, other).lease_owner == "w2"


def test_two_workers_claiming_at_once_get_one_attempt(db_url):
    jobs = [new_job(db_url) for _ in range(4)]
    barrier = threading.Barrier(2)
    got: dict[str, list] = {"a": [], "b": []}

    def worker(name: str) -> None:
        barrier.wait()
        for job_id in jobs:
            got[name].append(claim(db_url, job_id, name))

    threads = [threading.Thread(target=worker, args=(n,)) for n in got]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for i, job_id in enumerate(jobs):
        assert sorted([got["a"][i], got["b"][i]], key=str) == [1, None]
        assert job_row(db_url, job_id).attempts == 1 and len(history(db_url, job_id)) == 1


def test_writes_of_a_stale_attempt_are_refused_and_store_nothing(db_url, step_factory):
    job_id = new_job(db_url)
    assert claim(db_url, job_id, "old", lease_s=-1) == 1
    with session_scope(db_url) as s:
        store.add_step(s, job_id, step_factory(0), attempt=1)  # while it still held the job
    assert claim(db_url, job_id, "new") == 2
    with session_scope(db_url) as s:
        before = store.job_to_dict(store.get_job(s, job_id))

    stale = [
        lambda s: store.set_progress(s, job_id, 0.9, "stale", attempt=1),
        lambda s: store.set_baseline(s, job_id, {"accuracy": 0.1}, attempt=1),
        lambda s: store.add_step(s, job_id, step_factory(1), attempt=1),
        lambda s: store.finish_job(s, job_id, 1, "succeeded"),
        lambda s: store.release_job(s, job_id, 1),
    ]
    for write in stale:
        with pytest.raises(store.LeaseLost), session_scope(db_url) as s:
            write(s)
    with session_scope(db_url) as s:
        assert store.renew_lease(s, job_id, 1, 60) is False
        assert store.attempt_state(s, job_id, 1) == "lost"
        assert store.attempt_state(s, job_id, 2) == "run"
        after = store.job_to_dict(store.get_job(s, job_id))
        assert [st.index for st in store.list_steps(s, job_id)] == [0]
        assert s.scalar(select(func.count()).select_from(LayerMask)) == 2  # step 0's two layers only
    assert after == before

    with session_scope(db_url) as s:  # the holder writes as usual
        store.set_progress(s, job_id, 0.5, "step 2", attempt=2)
        store.add_step(s, job_id, step_factory(1), attempt=2)
        store.finish_job(s, job_id, 2, "succeeded", message="done")
    job = job_row(db_url, job_id)
    assert (job.status, job.steps_done, job.lease_owner, job.lease_expires_at) == ("succeeded", 2, None, None)
    assert history(db_url, job_id) == [(1, "old", "lost"), (2, "new", "succeeded")]
    with pytest.raises(store.LeaseLost), session_scope(db_url) as s:  # finished: nobody holds it
        store.set_progress(s, job_id, 0.1, attempt=2)


def test_a_deleted_job_refuses_writes(db_url, step_factory, tmp_path):
    job_id = new_job(db_url)
    claim(db_url, job_id)
    with session_scope(db_url) as s:
        store.delete_job(s, store.get_job(s, job_id), tmp_path)
    with pytest.raises(store.LeaseLost), session_scope(db_url) as s:
        store.add_step(s, job_id, step_factory(0), attempt=1)
    with session_scope(db_url) as s:
        assert store.attempt_state(s, job_id, 1) == "deleted"
        assert s.scalar(select(func.count()).select_from(Step)) == 0


def test_renewal_extends_the_lease_without_touching_updated_at(db_url):
    job_id = new_job(db_url)
    claim(db_url, job_id, lease_s=5)
    job = job_row(db_url, job_id)
    with session_scope(db_url) as s:
        assert store.renew_lease(s, job_id, 1, 600)
    renewed = job_row(db_url, job_id)
    assert renewed.lease_expires_at > job.lease_expires_at + timedelta(seconds=500)
    assert renewed.updated_at == job.updated_at  # no event for listeners, no list-cache invalidation
    with session_scope(db_url) as s:
        (attempt,) = store.job_attempts(s, job_id)
        assert attempt.renewed_at > attempt.started_at


def test_release_queues_the_job_again_or_cancels_it(db_url):
    job_id = new_job(db_url)
    claim(db_url, job_id)
    with session_scope(db_url) as s:
        assert store.release_job(s, job_id, 1) == "queued"
    job = job_row(db_url, job_id)
    assert (job.status, job.lease_owner, job.lease_expires_at) == ("queued", None, None)
    assert claim(db_url, job_id, "w2") == 2  # at once, no lease to wait for
    with session_scope(db_url) as s:
        store.request_cancel(s, store.get_job(s, job_id))
        assert store.release_job(s, job_id, 2) == "cancelled"
    assert job_row(db_url, job_id).status == "cancelled"
    assert history(db_url, job_id) == [(1, "w1", "released"), (2, "w2", "cancelled")]


def test_reaper_requeues_expired_leases_only(db_url):
    dead, alive, cancelling = new_job(db_url), new_job(db_url), new_job(db_url)
    claim(db_url, dead, "dead", lease_s=-1)
    claim(db_url, alive, "alive")
    claim(db_url, cancelling, "dead", lease_s=60)
    with session_scope(db_url) as s:
        store.request_cancel(s, store.get_job(s, cancelling))  # flagged while its worker lived
        later = utcnow() + timedelta(seconds=61)
        assert [j for j, _, _ in store.expired_leases(s)] == [dead]
        assert [j for j, _, _ in store.expired_leases(s, later)] == [dead, alive, cancelling]
        assert store.requeue_expired(s, dead, 1) == "queued"
        assert store.requeue_expired(s, dead, 1) is None  # nothing left to reap
        assert store.requeue_expired(s, alive, 1) is None  # live lease
        assert store.requeue_expired(s, cancelling, 1, now=later) == "cancelled"
    assert job_row(db_url, dead).status == "queued" and job_row(db_url, alive).status == "running"
    assert job_row(db_url, cancelling).status == "cancelled"
    assert history(db_url, dead) == [(1, "dead", "lost")]


@pytest.mark.parametrize("rounds", [6])
def test_two_reapers_racing_requeue_each_job_exactly_once(db_url, tmp_path, rounds):
    settings = Settings(home=tmp_path, database_url=db_url)
    jobs = [new_job(db_url) for _ in range(rounds)]
    for job_id in jobs:
        claim(db_url, job_id, "dead", lease_s=-1)
    enqueued: list[int] = []
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def reaper() -> None:
        barrier.wait()
        try:
            lease.reap(settings, enqueue=lambda job_id, queue: enqueued.append(job_id))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reaper) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    assert sorted(enqueued) == jobs  # each job enqueued once, by one of the two
    for job_id in jobs:
        assert job_row(db_url, job_id).status == "queued"
        assert history(db_url, job_id) == [(1, "dead", "lost")]


def test_a_failed_enqueue_leaves_the_job_to_the_next_reaper_round(db_url, tmp_path):
    settings = Settings(home=tmp_path, database_url=db_url)
    job_id = new_job(db_url)
    claim(db_url, job_id, "dead", lease_s=-1)

    def broker_down(job_id, queue):
        raise ConnectionError("broker down")

    assert lease.reap(settings, enqueue=broker_down) == []
    assert job_row(db_url, job_id).status == "running"  # rolled back: still expired, still reapable
    sent = []
    assert lease.reap(settings, enqueue=lambda j, q: sent.append((j, q))) == [job_id]
    assert sent == [(job_id, "cpu")]


def test_cancel_and_retry_of_a_job_whose_worker_is_gone_act_at_once(db_url):
    cancel_me, retry_me, live = new_job(db_url), new_job(db_url), new_job(db_url)
    for job_id in (cancel_me, retry_me):
        claim(db_url, job_id, "dead", lease_s=-1)
    claim(db_url, live, "alive")
    with session_scope(db_url) as s:
        job = store.request_cancel(s, store.get_job(s, cancel_me))
        assert (job.status, job.cancel_requested, job.lease_owner) == ("cancelled", False, None)
        assert job.finished_at is not None
        job = store.retry_job(s, store.get_job(s, retry_me))
        assert (job.status, job.lease_owner, job.lease_expires_at) == ("queued", None, None)
        with pytest.raises(store.StoreError, match="whose worker was lost"):
            store.retry_job(s, store.get_job(s, live))  # its worker lives: not retryable
        assert store.request_cancel(s, store.get_job(s, live)).status == "running"  # flagged only
        assert store.requeue_expired(s, retry_me, 1) is None  # the reaper finds nothing more to do
    assert history(db_url, cancel_me) == [(1, "dead", "lost")]
    assert history(db_url, retry_me) == [(1, "dead", "lost")]
    assert claim(db_url, retry_me, "w2") == 2


def test_a_job_lost_too_often_in_a_row_fails(db_url):
    job_id = new_job(db_url)
    for _ in range(3):
        claim(db_url, job_id, "dead", lease_s=-1, max_lost=3)
    assert claim(db_url, job_id, "w", max_lost=3) is None
    job = job_row(db_url, job_id)
    assert job.status == "failed" and "the worker died 3 times in a row" in job.error
    assert [o for _, _, o in history(db_url, job_id)] == ["lost", "lost", "lost", "failed"]
    with session_scope(db_url) as s:  # retried by hand: the count starts again
        store.retry_job(s, store.get_job(s, job_id))
    assert claim(db_url, job_id, "w", max_lost=3) == 5


def test_api_cancel_and_retry_of_a_job_whose_worker_is_gone(client, db_url, spec_dict, submit):
    cancel_me, retry_me = submit(client, spec_dict()), submit(client, spec_dict())
    for job_id in (cancel_me, retry_me):
        claim(db_url, job_id, "killed", lease_s=-1)
    body = client.post(f"/api/jobs/{cancel_me}/cancel").json()
    assert (body["status"], body["cancel_requested"]) == ("cancelled", False) and body["finished_at"]
    resp = client.post(f"/api/jobs/{retry_me}/retry")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "queued"
    assert claim(db_url, retry_me, "w2") == 2  # the enqueued message finds it claimable at once
    resp = client.post(f"/api/jobs/{retry_me}/retry")
    assert resp.status_code == 409 and "whose worker was lost" in resp.json()["detail"]
