"""A sensitivity job through the real parts: the API, a SQLite file, Redis and a real worker process. The
grid lands in sensitivity_points (layers in network order), the allocation endpoint returns a per-layer
map that meets the goal, and a run submitted from it links back to its sensitivity job. The store's write
is fenced by the attempt like add_step."""

import pytest

from backend import store
from backend.db import session_scope
from core.spec import parse_spec

REDIS_DB = 6  # this file's own Redis database, flushed before use
SPARSITIES = [0.5, 0.8, 0.9, 0.95]


@pytest.fixture(scope="module")
def scan_job(e2e_client, small_spec, submit, wait_for_job):
    spec = small_spec(
        name="sens-e2e",
        train={"epochs": 10},
        method={"kind": "magnitude"},
        schedule={"kind": "sensitivity", "sparsities": SPARSITIES},
    )
    job_id = submit(e2e_client, spec)
    job = wait_for_job(e2e_client, job_id, 240)
    assert job["status"] == "succeeded", job["error"]
    return job


def test_the_grid_lands_in_the_database(e2e_client, scan_job):
    grid = e2e_client.get(f"/api/jobs/{scan_job['id']}/sensitivity").json()
    assert [layer["layer"] for layer in grid["layers"]] == ["fc1", "fc2", "fc3"]
    assert [(p["layer"], p["sparsity"]) for p in grid["points"]] == [
        (n, s) for n in ("fc1", "fc2", "fc3") for s in SPARSITIES
    ]
    assert grid["baseline"]["val_accuracy"] > 0.5
    assert scan_job["progress"] == 1.0 and scan_job["summary"]["steps"] == 0
    at = {(p["layer"], p["sparsity"]): p for p in grid["points"]}
    assert at[("fc3", 0.9)]["accuracy"] < at[("fc1", 0.9)]["accuracy"]


@pytest.mark.parametrize("goal", [{"target_sparsity": 0.85}, {"flop_reduction": "4x"}, {"max_drop": 0.02}])
def test_the_allocation_meets_its_goal(e2e_client, scan_job, goal):
    alloc = e2e_client.get(f"/api/jobs/{scan_job['id']}/allocation", params=goal)
    assert alloc.status_code == 200, alloc.text
    body = alloc.json()
    sizes = {layer["layer"]: layer["params"] for layer in body["layers"]}
    chosen = body["layer_sparsity"]
    overall = sum(chosen[n] * sizes[n] for n in sizes) / sum(sizes.values())
    predicted = body["predicted"]
    assert predicted["sparsity"] == pytest.approx(overall, abs=1e-4)
    if "target_sparsity" in goal:
        assert overall == pytest.approx(0.85, abs=1e-4)
    elif "flop_reduction" in goal:
        assert predicted["flop_reduction"] == pytest.approx(4.0, rel=1e-4)
    else:
        assert predicted["accuracy_drop"] <= 0.02 + 1e-9
    assert all(0 <= chosen[n] <= max(SPARSITIES) for n in chosen)
    spec = parse_spec(body["spec"])
    assert spec.method.layer_sparsity == pytest.approx(chosen)
    assert spec.model == "lenet300_100" and spec.train.epochs == 10


def test_unreachable_goal_and_wrong_job(e2e_client, scan_job, small_spec, submit):
    resp = e2e_client.get(f"/api/jobs/{scan_job['id']}/allocation", params={"target_sparsity": 0.99})
    assert resp.status_code == 422
    (error,) = resp.json()["errors"]
    assert error["field"] == "query.target_sparsity" and error["allowed"] == "0 to 0.9500"
    other = submit(e2e_client, small_spec(name="not-a-scan"))
    resp = e2e_client.get(f"/api/jobs/{other}/allocation", params={"target_sparsity": 0.5})
    assert resp.status_code == 409
    assert e2e_client.get(f"/api/jobs/{other}/sensitivity").status_code == 409


def test_a_run_from_the_allocation_links_back(e2e_client, scan_job):
    alloc = e2e_client.get(f"/api/jobs/{scan_job['id']}/allocation", params={"target_sparsity": 0.8, "iterative": True})
    spec = alloc.json()["spec"]
    assert spec["schedule"]["kind"] == "iterative"
    resp = e2e_client.post(f"/api/jobs?source_job_id={scan_job['id']}", json=spec)
    assert resp.status_code == 201, resp.text
    assert resp.json()["source_job_id"] == scan_job["id"]
    assert e2e_client.get(f"/api/jobs/{resp.json()['id']}").json()["source_job_id"] == scan_job["id"]
    resp = e2e_client.post("/api/jobs?source_job_id=999999", json=spec)
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "query.source_job_id"


def test_add_sensitivity_is_fenced_by_the_attempt(e2e_settings, scan_job):
    row = {"layer": "fc1", "position": 0, "sparsity": 0.33, "accuracy": 0.5, "val_accuracy": 0.5, "loss": 1.0}
    with session_scope(e2e_settings.database_url) as session:
        with pytest.raises(store.LeaseLost):  # the job finished: no attempt holds it
            store.add_sensitivity(session, scan_job["id"], [row], attempt=scan_job["attempts"])
    with session_scope(e2e_settings.database_url) as session:
        sparsities = {p["sparsity"] for p in store.sensitivity_grid(session, scan_job["id"])}
    assert 0.33 not in sparsities
