"""A sweep through the real worker: the group's jobs run on a Celery worker process (Redis broker, SQLite file)
and each one's training curves land in the database: the baseline's in jobs.baseline, every step's
fine-tuning curve in steps.history."""

from backend import store
from backend.db import session_scope

REDIS_DB = 7  # this file's own Redis database, flushed before use


def test_sweep_runs_and_stores_training_curves(e2e_client, e2e_settings, small_spec, wait_for_job):
    spec = small_spec(
        name="curves",
        train={"epochs": 2},
        schedule={"kind": "iterative", "rate": 0.3, "rounds": 2, "finetune_epochs": 2},
    )
    r = e2e_client.post("/api/groups", json={**spec, "sweep": {"seed": [0, 1]}})
    assert r.status_code == 201, r.text
    jobs = r.json()["jobs"]
    for job in jobs:
        done = wait_for_job(e2e_client, job["id"], 300)
        assert done["status"] == "succeeded", done["error"]
        assert [h["epoch"] for h in done["baseline"]["history"]] == [0, 1, 2]
        steps = e2e_client.get(f"/api/jobs/{job['id']}/steps").json()["items"]
        assert [[h["epoch"] for h in s["history"]] for s in steps] == [[0, 1, 2], [0, 1, 2]]
        with session_scope(e2e_settings.database_url) as session:
            rows = store.list_steps(session, job["id"])
            assert all(len(row.history) == 3 and "history" not in row.metrics for row in rows)
            assert all(0 <= h["val_accuracy"] <= 1 for row in rows for h in row.history)
    group = e2e_client.get(f"/api/groups/{r.json()['group']['id']}").json()
    assert group["counts"]["succeeded"] == 2
