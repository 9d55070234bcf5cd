"""Sweeps through the real API on SQLite and Postgres: one group of jobs per sweep, the group filter, the
sweep limit and the queued-jobs limit applied to the whole group, step history in the step responses."""

from backend import store
from backend.db import session_scope


def sweep_spec(spec_dict, **sweep):
    return {**spec_dict(name="lenet-block-sweep"), "sweep": sweep}


def test_five_by_two_sweep_is_ten_jobs_in_one_group(client, spec_dict, db_url):
    r = client.post("/api/groups", json=sweep_spec(spec_dict, **{"method.block_size": [2, 3, 4, 5, 6], "seed": [0, 1]}))
    assert r.status_code == 201, r.text
    body = r.json()
    group, jobs = body["group"], body["jobs"]
    assert group["name"] == "lenet-block-sweep" and group["jobs"] == 10
    assert group["counts"]["queued"] == 10 and group["sweep"] == {"method.block_size": [2, 3, 4, 5, 6], "seed": [0, 1]}
    assert [(j["spec"]["method"]["block_size"], j["spec"]["seed"]) for j in jobs] == [
        (b, s) for b in (2, 3, 4, 5, 6) for s in (0, 1)
    ]
    assert jobs[0]["name"] == "lenet-block-sweep [method.block_size=2, seed=0]"
    assert {j["group_id"] for j in jobs} == {group["id"]}

    # Another job outside the group: the filter leaves it out.
    other = client.post("/api/jobs", json=spec_dict()).json()
    assert other["group_id"] is None
    listed = client.get(f"/api/jobs?group={group['id']}&limit=100").json()
    assert listed["total"] == 10 and {j["id"] for j in listed["items"]} == {j["id"] for j in jobs}
    assert client.get("/api/jobs").json()["total"] == 11

    groups = client.get("/api/groups").json()
    assert groups["total"] == 1 and groups["items"][0]["id"] == group["id"]
    client.post(f"/api/jobs/{jobs[0]['id']}/cancel")
    counts = client.get(f"/api/groups/{group['id']}").json()["counts"]
    assert counts["queued"] == 9 and counts["cancelled"] == 1
    assert client.get("/api/groups/999999").status_code == 404


def test_bad_sweeps_are_422_naming_the_field_and_store_nothing(client, spec_dict, db_url):
    cases = [
        ({"method.block_sizee": [2, 3]}, "sweep.method.block_sizee", "unknown field"),
        ({"seed": []}, "sweep.seed", "non-empty list"),
        ({"schedule.rate": [0.2, 2.0]}, "schedule.rate", "schedule.rate=2.0"),
    ]
    for sweep, field, words in cases:
        r = client.post("/api/groups", json=sweep_spec(spec_dict, **sweep))
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field and words in r.json()["errors"][0]["message"]
    r = client.post("/api/groups", json=spec_dict())
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sweep"
    # A sweep sent as one job names the field and where it goes.
    r = client.post("/api/jobs", json=sweep_spec(spec_dict, seed=[0, 1]))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sweep"
    assert "/api/groups" in r.json()["errors"][0]["message"]
    with session_scope(db_url) as s:
        assert store.list_jobs(s)[1] == 0 and store.list_groups(s)[1] == 0


def test_sweep_limit_is_422(make_client, spec_dict, db_url):
    client = make_client(max_sweep_jobs=8)
    ok = client.post("/api/groups", json=sweep_spec(spec_dict, seed=[0, 1, 2, 3], **{"method.block_size": [2, 3]}))
    assert ok.status_code == 201 and len(ok.json()["jobs"]) == 8
    r = client.post("/api/groups", json=sweep_spec(spec_dict, seed=[0, 1, 2], **{"method.block_size": [2, 3, 4]}))
    assert r.status_code == 422, r.text
    error = r.json()["errors"][0]
    assert error["field"] == "sweep" and "9 jobs" in error["message"] and "at most 8" in error["message"]
    assert "PRUNELAB_MAX_SWEEP_JOBS" in error["message"]
    assert client.get("/api/jobs").json()["total"] == 8


def test_queued_limit_applies_to_the_whole_group(make_client, spec_dict, db_url):
    client = make_client(max_queued_jobs_anonymous=12)
    assert client.post("/api/jobs", json=spec_dict()).status_code == 201
    assert client.post("/api/jobs", json=spec_dict()).status_code == 201
    big = client.post("/api/groups", json=sweep_spec(spec_dict, seed=list(range(11))))
    assert big.status_code == 429, big.text
    assert "11 jobs" in big.json()["detail"]
    assert client.get("/api/jobs").json()["total"] == 2  # none of the group's jobs was stored
    fits = client.post("/api/groups", json=sweep_spec(spec_dict, seed=list(range(10))))
    assert fits.status_code == 201 and len(fits.json()["jobs"]) == 10


def test_step_history_is_stored_apart_and_returned(client, spec_dict, db_url, step_factory):
    job = client.post("/api/jobs", json=spec_dict()).json()
    step = step_factory(0, layers={"fc1": (8, 8)})
    history = [{"epoch": 1, "loss": 0.5, "val_accuracy": 0.8}, {"epoch": 2, "loss": 0.4, "val_accuracy": 0.85}]
    with session_scope(db_url) as s:
        store.add_step(s, job["id"], {**step, "history": history})
        store.add_step(s, job["id"], step_factory(1, layers={"fc1": (8, 8)}))
    with session_scope(db_url) as s:
        rows = store.list_steps(s, job["id"])
        assert rows[0].history == history and "history" not in rows[0].metrics
        assert rows[1].history is None
    items = client.get(f"/api/jobs/{job['id']}/steps").json()["items"]
    assert items[0]["history"] == history and items[1]["history"] is None
