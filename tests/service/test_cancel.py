"""Cooperative cancel and delete of a running job, with a real Celery worker on Redis and a SQLite file."""

import time

import pytest

REDIS_DB = 11  # this file's own Redis database, flushed before use
LONG_ROUNDS = 40


@pytest.fixture(scope="module")
def long_spec(small_spec) -> dict:
    return small_spec(
        name="long",
        method={"kind": "magnitude"},
        schedule={"kind": "iterative", "rate": 0.1, "rounds": LONG_ROUNDS, "finetune_epochs": 3},
    )


@pytest.fixture(scope="module")
def short_spec(small_spec) -> dict:
    return small_spec(
        name="short",
        method={"kind": "magnitude"},
        schedule={"kind": "iterative", "rate": 0.3, "rounds": 2, "finetune_epochs": 1},
    )


def has_a_step(job: dict) -> bool:
    return job["summary"]["steps"] >= 1


def left(status: str):
    return lambda job: job["status"] != status


def test_cancel_running_job_ends_cancelled_within_seconds(
    e2e_client, long_spec, short_spec, submit, job_of, wait_for_job
):
    job_id = submit(e2e_client, long_spec)
    wait_for_job(e2e_client, job_id, 180, until=has_a_step)

    asked = time.monotonic()
    resp = e2e_client.post(f"/api/jobs/{job_id}/cancel")
    assert resp.status_code == 200, resp.text
    job = wait_for_job(e2e_client, job_id, 30, until=left("running"))
    took = time.monotonic() - asked
    assert job["status"] == "cancelled"
    assert job["finished_at"] and not job["cancel_requested"]
    steps_at_cancel = job["summary"]["steps"]
    assert 1 <= steps_at_cancel < LONG_ROUNDS
    time.sleep(2)  # nothing more is written after the cancel
    assert job_of(e2e_client, job_id)["summary"]["steps"] == steps_at_cancel
    print(f"cancel -> cancelled in {took:.2f} s")

    # The worker is free again: the next job runs to the end.
    next_id = submit(e2e_client, short_spec)
    done = wait_for_job(e2e_client, next_id, 180)
    assert done["status"] == "succeeded", done["error"]


def test_delete_running_job_stops_it_and_removes_its_artifacts(
    e2e_client, e2e_settings, long_spec, short_spec, submit, wait_for_job
):
    job_id = submit(e2e_client, long_spec)
    wait_for_job(e2e_client, job_id, 180, until=has_a_step)
    out_dir = e2e_settings.artifact_dir / "jobs" / str(job_id)
    assert (out_dir / "checkpoints").is_dir()

    assert e2e_client.delete(f"/api/jobs/{job_id}").status_code in (200, 204)
    assert e2e_client.get(f"/api/jobs/{job_id}").status_code == 404
    # The worker notices within seconds, stops, and removes anything it wrote after the API's clean-up.
    next_id = submit(e2e_client, short_spec)
    wait_for_job(e2e_client, next_id, 30, until=left("queued"))  # the worker dropped the deleted job
    assert not out_dir.exists()
    done = wait_for_job(e2e_client, next_id, 180)
    assert done["status"] == "succeeded", done["error"]
