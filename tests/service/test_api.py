"""The HTTP API against a real database (SQLite file and Postgres), enqueueing on a real Celery broker
(kombu's SQLAlchemy transport in a temp dir). Steps are stored through backend.store, as the worker does."""

import csv
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from backend import store
from backend.db import session_scope
from core.masks import MAX_CELLS

REPO = Path(__file__).resolve().parents[2]


def submit(client, spec) -> dict:
    r = client.post("/api/jobs", json=spec)
    assert r.status_code == 201, r.text
    return r.json()


def add_steps(db_url, job_id, steps):
    with session_scope(db_url) as s:
        for step in steps:
            store.add_step(s, job_id, step)


def count_jobs(db_url) -> int:
    with session_scope(db_url) as s:
        return store.list_jobs(s)[1]


def test_submit_get_list(client, spec_dict):
    job = submit(client, spec_dict())
    assert job["id"] >= 1 and job["status"] == "queued" and job["tags"] == ["demo"]
    assert job["method"] == "block" and job["schedule"] == "iterative" and job["queue"] == "cpu"
    assert job["summary"] == {
        "steps": 0,
        "sparsity": None,
        "accuracy": None,
        "best_accuracy": None,
        "baseline_accuracy": None,
        "speedup": None,
    }
    got = client.get(f"/api/jobs/{job['id']}").json()
    assert got["spec"]["method"]["block_size"] == 2 and got["name"] == "lenet-block"
    listed = client.get("/api/jobs").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]
    assert client.get("/api/jobs/999").status_code == 404


def errors_of(r, status: int) -> list[dict]:
    """The structured error body: a one-line `detail` string and one entry per problem."""
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["detail"], str) and "\n" not in body["detail"]
    assert body["errors"] and all(set(e) == {"field", "message", "allowed", "value"} for e in body["errors"])
    return body["errors"]


@pytest.mark.parametrize(
    "change, field, words, allowed",
    [
        ({"model": "alexnet"}, "model", ["lenet300_100", "resnet18"], "lenet300_100, vgg, vgg16_bn"),
        ({"method": {"kind": "block", "block_size": 0}}, "method.block_size", ["1 to 4096"], "1 <= block_size <= 4096"),
        ({"schedule": {"kind": "iterative", "rate": 1.5}}, "schedule.rate", ["less than 1"], "0 < rate < 1"),
        ({"method": {"kind": "block", "layers": ["fc9"]}}, "method.layers", ["fc9", "fc1, fc2, fc3"], "fc1, fc2, fc3"),
        ({"dataset": "imagenet"}, "dataset", ["digits", "cifar10"], "digits, mnist, fashion_mnist, cifar10"),
    ],
)
def test_bad_spec_is_422_and_stores_nothing(client, spec_dict, db_url, change, field, words, allowed):
    r = client.post("/api/jobs", json=spec_dict(**change))
    [error] = errors_of(r, 422)
    assert error["field"] == field and error["allowed"].startswith(allowed)
    for word in words:
        assert word in error["message"]
    assert r.json()["detail"] == f"{field}: {error['message']}"  # the line `prunelab run` prints
    assert count_jobs(db_url) == 0


def test_rate_error_reads_like_the_cli(client, spec_dict):
    r = client.post("/api/jobs", json=spec_dict(schedule={"kind": "iterative", "rate": 1.5}))
    assert r.json()["detail"] == "schedule.rate: Input should be less than 1 (allowed: 0 < rate < 1)"


@pytest.mark.parametrize(
    "change, field, allowed",
    [
        ({"schedule": {"kind": "iterative", "rate": "0.2"}}, "schedule.rate", "0 < rate < 1"),  # string for a float
        ({"train": {"lr": True}}, "train.lr", "0 < lr <= 10"),  # bool for a float
        ({"train": {"epochs": True}}, "train.epochs", "0 <= epochs <= 1000"),  # bool for an int
        ({"train": {"epochs": "3"}}, "train.epochs", "0 <= epochs <= 1000"),  # string for an int
        ({"train": {"epochs": 2.5}}, "train.epochs", "0 <= epochs <= 1000"),  # fraction for an int
        ({"measure": {"latency": 1}}, "measure.latency", "true or false"),  # int for a bool
        ({"seed": False}, "seed", "0 <= seed <= 2147483647"),
        ({"method": {"kind": "block", "block_size": True}}, "method.block_size", "1 <= block_size <= 4096"),
        ({"method": {"kind": "block", "block_size": ["2", 2]}}, "method.block_size", "1 <= block_size <= 4096"),
    ],
)
def test_strict_numbers_and_booleans(client, spec_dict, db_url, change, field, allowed):
    [error] = errors_of(client.post("/api/jobs", json=spec_dict(**change)), 422)
    assert error["field"] == field and error["allowed"].startswith(allowed), error
    assert count_jobs(db_url) == 0


def test_ints_are_numbers(client, spec_dict):
    """JSON writes 1 for 1.0: integers are accepted for float fields (and stored as given)."""
    job = submit(client, spec_dict(train={"epochs": 1, "lr": 1, "momentum": 0}, schedule={"kind": "oneshot"}))
    assert job["spec"]["train"]["lr"] == 1 and job["spec"]["train"]["momentum"] == 0


def test_every_bad_field_is_reported_at_once(client, spec_dict, db_url):
    bad = spec_dict(
        model="alexnet",
        train={"epochs": True, "lr": "fast"},
        schedule={"kind": "iterative", "rate": 1.5, "rounds": 0},
        colour="red",
    )
    r = client.post("/api/jobs", json=bad)
    errors = errors_of(r, 422)
    by_field = {e["field"]: e for e in errors}
    assert set(by_field) == {"model", "train.epochs", "train.lr", "schedule.rate", "schedule.rounds", "colour"}
    assert len(errors) == len(by_field)  # one entry per field
    assert by_field["schedule.rounds"]["allowed"] == "1 <= rounds <= 200"
    assert "not permitted" in by_field["colour"]["message"]
    assert r.json()["detail"] == "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    assert count_jobs(db_url) == 0


def test_body_not_an_object_is_422(client, db_url):
    not_json = client.post("/api/jobs", content=b"{not json", headers={"content-type": "application/json"})
    for r, words in (
        (client.post("/api/jobs", json=[1, 2]), "must be a job spec"),
        (not_json, "not valid JSON"),
        (client.post("/api/jobs"), "must be a job spec"),
    ):
        [error] = errors_of(r, 422)
        assert error["field"] is None and words in error["message"], error
    assert count_jobs(db_url) == 0


def test_filters_sort_paging(client, spec_dict, db_url, step_factory):
    ids = {}
    ids["a"] = submit(client, spec_dict(name="a", tags=["x", "shared"]))["id"]
    ids["b"] = submit(client, spec_dict(name="b", method={"kind": "magnitude"}, tags=["shared"]))["id"]
    ids["c"] = submit(
        client, spec_dict(name="c", model="vgg", dataset="cifar10", schedule={"kind": "oneshot"}, tags=[])
    )["id"]
    add_steps(db_url, ids["a"], [step_factory(0, accuracy=0.8, sparsity=0.2)])
    add_steps(db_url, ids["b"], [step_factory(0, accuracy=0.95, sparsity=0.6)])
    with session_scope(db_url) as s:
        store.set_status(s, ids["b"], "running")

    def names(**params):
        body = client.get("/api/jobs", params=params).json()
        return [j["name"] for j in body["items"]], body["total"]

    assert names(tag="shared", sort="name") == (["a", "b"], 2)
    assert names(tag="x") == (["a"], 1)
    assert names(method="magnitude") == (["b"], 1)
    assert names(model="vgg", dataset="cifar10", schedule="oneshot") == (["c"], 1)
    assert names(status="running") == (["b"], 1)
    assert names(status="queued,running", sort="name") == (["a", "b", "c"], 3)
    assert names(sort="-name") == (["c", "b", "a"], 3)
    assert names(sort="-created_at")[0][0] == "c"
    assert names(sort="-best_accuracy") == (["b", "a", "c"], 3)  # nulls last
    assert names(sort="last_sparsity") == (["a", "b", "c"], 3)
    assert names(sort="name", limit=2, offset=1) == (["b", "c"], 3)
    assert names(owner="nobody") == ([], 0)
    for bad in ({"sort": "colour"}, {"status": "done"}, {"limit": 0}):
        [error] = errors_of(client.get("/api/jobs", params=bad), 422)
        assert error["field"] == f"query.{next(iter(bad))}"
    [error] = errors_of(client.get("/api/jobs", params={"sort": "colour"}), 422)
    assert "allowed" in error["message"]


def test_steps_after_and_summary(client, spec_dict, db_url, step_factory):
    job_id = submit(client, spec_dict())["id"]
    add_steps(db_url, job_id, [step_factory(i, sparsity=0.2 * (i + 1), accuracy=0.9 - 0.01 * i) for i in range(3)])
    add_steps(db_url, job_id, [step_factory(1)])  # stored twice: ignored
    steps = client.get(f"/api/jobs/{job_id}/steps").json()["items"]
    assert [s["index"] for s in steps] == [0, 1, 2]
    layer = steps[0]["layers"][0]
    assert layer["name"] == "fc1" and layer["shape"] == [300, 64] and "mask" not in layer and "density" not in layer
    assert steps[0]["latency"]["speedup"] == 1.33 and "flops_effective" in steps[0]
    assert [s["index"] for s in client.get(f"/api/jobs/{job_id}/steps", params={"after": 0}).json()["items"]] == [1, 2]
    assert client.get(f"/api/jobs/{job_id}/steps", params={"after": 2}).json()["items"] == []
    summary = client.get(f"/api/jobs/{job_id}").json()["summary"]
    assert summary["steps"] == 3 and summary["best_accuracy"] == pytest.approx(0.9)
    assert summary["accuracy"] == pytest.approx(0.88) and summary["speedup"] == 1.33


def test_mask_small_layer_is_block_grid(client, spec_dict, db_url, step_factory):
    job_id = submit(client, spec_dict())["id"]
    add_steps(db_url, job_id, [step_factory(0, sparsity=0.3), step_factory(1, sparsity=0.6)])
    latest = client.get(f"/api/jobs/{job_id}/layers/fc1/mask").json()
    assert latest["step"] == 1 and latest["kind"] == "blocks"
    assert latest["shape"] == [150, 32] and latest["cell"] == [2, 2] and latest["weight_shape"] == [300, 64]
    assert len(latest["values"]) == 150 and len(latest["values"][0]) == 32
    kept = sum(map(sum, latest["values"])) / (150 * 32)
    assert kept == pytest.approx(1 - latest["sparsity"], abs=1e-9)
    first = client.get(f"/api/jobs/{job_id}/layers/fc1/mask", params={"step": 0}).json()
    assert first["step"] == 0 and first["values"] != latest["values"]
    r = client.get(f"/api/jobs/{job_id}/layers/fc7/mask")
    [error] = errors_of(r, 404)
    assert "fc1, fc2" in r.json()["detail"] and error["field"] == "layer" and error["allowed"] == "fc1, fc2"
    assert client.get(f"/api/jobs/{job_id}/layers/fc1/mask", params={"step": 5}).status_code == 404


def test_mask_of_huge_layer_is_at_most_256_cells(client, spec_dict, db_url, step_factory):
    job_id = submit(client, spec_dict())["id"]
    add_steps(db_url, job_id, [step_factory(0, layers={"big": (4096, 4096)}, block=(1, 1), sparsity=0.75)])
    body = client.get(f"/api/jobs/{job_id}/layers/big/mask").json()
    assert body["kind"] == "density" and body["shape"] == [MAX_CELLS, MAX_CELLS] and body["cell"] == [16, 16]
    assert len(body["values"]) <= 256 and all(len(row) <= 256 for row in body["values"])
    mean = sum(map(sum, body["values"])) / 256**2
    assert mean == pytest.approx(0.25, abs=0.01)


def test_cancel_retry_delete(client, spec_dict, db_url, step_factory, api_settings):
    queued = submit(client, spec_dict())["id"]
    r = client.post(f"/api/jobs/{queued}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["finished_at"]
    assert client.post(f"/api/jobs/{queued}/cancel").status_code == 409

    running = submit(client, spec_dict())["id"]
    with session_scope(db_url) as s:
        store.start_job(s, running)
    add_steps(db_url, running, [step_factory(0)])
    body = client.post(f"/api/jobs/{running}/cancel").json()
    assert body["status"] == "running" and body["cancel_requested"] is True
    with session_scope(db_url) as s:
        assert store.cancel_requested(s, running)
        store.set_status(s, running, "cancelled")

    assert client.post(f"/api/jobs/{running}/retry").status_code == 200
    again = client.get(f"/api/jobs/{running}").json()
    assert again["status"] == "queued" and again["cancel_requested"] is False and again["error"] is None
    assert again["summary"]["steps"] == 1  # kept: the worker resumes after it
    assert client.post(f"/api/jobs/{running}/retry").status_code == 409  # queued: not retryable

    job_dir = Path(api_settings.artifact_dir) / "jobs" / str(running)
    (job_dir / "checkpoints").mkdir(parents=True)
    (job_dir / "checkpoints" / "step_0.pt").write_bytes(b"x" * 100)
    assert client.delete(f"/api/jobs/{running}").status_code == 200
    assert not job_dir.exists()
    assert client.get(f"/api/jobs/{running}").status_code == 404
    assert client.get(f"/api/jobs/{running}/steps").status_code == 404
    with session_scope(db_url) as s:
        assert store.list_steps(s, running) == []
        assert store.get_layer_mask(s, running, "fc1") is None
    assert client.delete(f"/api/jobs/{running}").status_code == 404


def test_compare_downsamples(client, spec_dict, db_url, step_factory):
    long_run = submit(client, spec_dict(name="long"))["id"]
    short_run = submit(client, spec_dict(name="short"))["id"]
    small = {"l": (8, 8)}
    add_steps(db_url, long_run, [step_factory(i, layers=small, sparsity=i / 300) for i in range(300)])
    add_steps(db_url, short_run, [step_factory(i, layers=small) for i in range(5)])
    runs = client.get("/api/compare", params={"ids": f"{long_run},{short_run}", "points": 50}).json()["runs"]
    assert [r["job"]["name"] for r in runs] == ["long", "short"]
    long_points = runs[0]["points"]
    assert len(long_points) == 50 and long_points[0]["index"] == 0 and long_points[-1]["index"] == 299
    assert len(runs[1]["points"]) == 5
    assert set(long_points[0]) >= {
        "index",
        "sparsity",
        "accuracy",
        "accuracy_before_finetune",
        "flops_effective",
        "flops_dense",
        "latency_ms",
        "speedup",
        "size_sparse_bytes",
    }
    r = client.get("/api/compare", params={"ids": f"99998,{long_run},99999"})
    assert errors_of(r, 404) == [
        {"field": "ids", "message": "jobs not found", "allowed": None, "value": [99998, 99999]}
    ]
    assert r.json()["detail"] == "jobs not found: 99998, 99999"
    assert client.get("/api/compare", params={"ids": "1,x"}).status_code == 422
    assert client.get("/api/compare", params={"ids": ",".join(map(str, range(1, 202)))}).status_code == 422


def test_exports(client, spec_dict, db_url, step_factory):
    job_id = submit(client, spec_dict(name='lenet, "quoted"'))["id"]
    steps = [step_factory(i) for i in range(2)]
    steps[1]["latency"]["layer_forms"] = {"fc1": "bsr", "fc2": "dense"}
    add_steps(db_url, job_id, steps)
    r = client.get(f"/api/jobs/{job_id}/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    header = r.text.splitlines()[0].split(",")
    assert header[:6] == ["run_id", "run_name", "model", "dataset", "method", "step"]
    assert len(rows) == 2 and [row["step"] for row in rows] == ["1", "2"]  # 1-based, for people
    for row in rows:  # the run on every row
        assert (row["run_id"], row["run_name"], row["model"], row["dataset"], row["method"]) == (
            str(job_id),
            'lenet, "quoted"',
            "lenet300_100",
            "digits",
            "block",
        )
    assert "index" not in header and "layers" not in header
    assert float(rows[1]["sparsity_fc1"]) == pytest.approx(steps[1]["layers"][0]["sparsity"])
    assert float(rows[0]["sparsity_fc2"]) == pytest.approx(steps[0]["layers"][1]["sparsity"])
    assert json.loads(rows[1]["latency_layer_forms"]) == {"fc1": "bsr", "fc2": "dense"}  # JSON, not a repr
    assert rows[0]["latency_layer_forms"] == "" and rows[1]["latency_speedup"] == "1.33"
    exported = json.loads(client.get(f"/api/jobs/{job_id}/export.json").content)
    assert exported["job"]["id"] == job_id and len(exported["steps"]) == 2
    layer = exported["steps"][1]["layers"][0]
    assert layer["mask"]["block_shape"] == [2, 2] and layer["mask"]["grid"]["shape"] == [150, 32]
    assert layer["density"]["shape"]


def test_checkpoint_download_and_traversal_refused(client, spec_dict, db_url, step_factory, api_settings, tmp_path):
    job_id = submit(client, spec_dict())["id"]
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    add_steps(
        db_url,
        job_id,
        [step_factory(0), step_factory(1, checkpoint="../../../secret.txt"), step_factory(2, checkpoint=str(secret))],
    )
    ckpt = Path(api_settings.artifact_dir) / "jobs" / str(job_id) / "checkpoints" / "step_0.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"\x80weights")
    r = client.get(f"/api/jobs/{job_id}/checkpoint", params={"step": 0})
    assert r.status_code == 200 and r.content == b"\x80weights"
    # index 0 on disk (step_0.pt) is the first step: its download is named step-1
    assert r.headers["content-disposition"] == f'attachment; filename="prunelab-job-{job_id}-step-1.pt"'
    for step in (1, 2):
        r = client.get(f"/api/jobs/{job_id}/checkpoint", params={"step": step})
        assert r.status_code == 403 and "do not serve" not in r.text
    assert client.get(f"/api/jobs/{job_id}/checkpoint", params={"step": 7}).status_code == 404


def test_catalog_and_health(client):
    cat = client.get("/api/catalog").json()
    assert {m["name"] for m in cat["models"]} >= {"lenet300_100", "resnet18"}
    assert {m["kind"] for m in cat["methods"]} == {"block", "magnitude", "channel", "group_lasso"}
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["db"] == "ok" and health["version"]
    assert "/api/jobs" in client.get("/openapi.json").json()["paths"]


def test_request_size_limit(make_client, spec_dict, db_url):
    client = make_client(max_request_bytes=1000)
    r = client.post("/api/jobs", json=spec_dict(name="x" * 190, tags=["t" * 50] * 20))
    [error] = errors_of(r, 413)
    assert "limit" in r.json()["detail"] and error["allowed"].startswith("at most 1000 bytes")

    def chunks():  # no Content-Length: counted while read
        yield b'{"name": "'
        yield b"y" * 5000
        yield b'"}'

    r = client.post("/api/jobs", content=chunks(), headers={"content-type": "application/json"})
    errors_of(r, 413)
    assert count_jobs(db_url) == 0


def test_enqueue_failure_marks_job_failed(make_client, spec_dict, api_settings):
    """A broker nobody listens on (a closed port): the job ends failed with the reason, the API answers 201."""
    from backend.broker import make_celery
    from core.queues import TASK_NAME

    dead = make_celery(api_settings.model_copy(update={"broker_url": "redis://127.0.0.1:9/0"}))
    dead.conf.broker_connection_timeout = 1
    dead.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1}
    client = make_client()
    client.app.state.enqueue = lambda job_id, queue: dead.send_task(TASK_NAME, args=[job_id], queue=queue).id
    job = submit(client, spec_dict())
    assert job["status"] == "failed" and "could not enqueue" in job["error"]


def test_events_stream_job_and_step(client, spec_dict, db_url, step_factory):
    job_id = submit(client, spec_dict())["id"]

    def worker_side():
        time.sleep(0.8)
        with session_scope(db_url) as s:
            store.start_job(s, job_id)
            store.set_progress(s, job_id, 0.4, "step 1 of 3")
        with session_scope(db_url) as s:
            store.add_step(s, job_id, step_factory(0, layers={"l": (8, 8)}))

    thread = threading.Thread(target=worker_side)
    thread.start()
    events = []
    with client.stream("GET", "/api/events", params={"max_seconds": 3}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    thread.join()
    jobs = [d for e, d in events if e == "job"]
    steps = [d for e, d in events if e == "step"]
    assert steps == [{"job_id": job_id, "index": 0}]
    assert jobs and jobs[-1]["id"] == job_id and jobs[-1]["status"] == "running"
    assert any(j["progress"] == pytest.approx(0.4) for j in jobs)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_api_process_never_imports_torch(db_url, tmp_path):
    script = f"""
import sys
from fastapi.testclient import TestClient
from backend.api import create_app
from core.settings import Settings
s = Settings(home={str(tmp_path)!r}, database_url={db_url!r}, allowed_hosts="testserver")
c = TestClient(create_app(s))
spec = {{"model": "lenet300_100", "dataset": "digits", "method": {{"kind": "block"}},
        "schedule": {{"kind": "oneshot"}}, "device": "cpu"}}
r = c.post("/api/jobs", json=spec); assert r.status_code == 201, r.text
job = r.json()["id"]
for url in ["/api/jobs", f"/api/jobs/{{job}}", f"/api/jobs/{{job}}/steps", "/api/catalog", "/api/health",
            f"/api/compare?ids={{job}}", f"/api/jobs/{{job}}/export.csv"]:
    assert c.get(url).status_code == 200, url
print("TORCH" if any(m == "torch" or m.startswith("torch.") for m in sys.modules) else "NO-TORCH")
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PRUNELAB_HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NO-TORCH")


def test_list_cache_never_serves_a_stale_page(client, spec_dict, db_url):
    job_id = submit(client, spec_dict())["id"]
    assert client.get("/api/jobs").json()["items"][0]["progress"] == 0.0
    with session_scope(db_url) as s:  # the worker's write, from another connection
        store.start_job(s, job_id)
        store.set_progress(s, job_id, 0.5, "half way")
    item = client.get("/api/jobs").json()["items"][0]
    assert (item["status"], item["progress"], item["message"]) == ("running", 0.5, "half way")
    other = submit(client, spec_dict(name="second"))["id"]
    assert client.get("/api/jobs").json()["total"] == 2
    client.delete(f"/api/jobs/{other}")
    assert [j["id"] for j in client.get("/api/jobs").json()["items"]] == [job_id]


def test_search_by_name(client, spec_dict):
    submit(client, spec_dict(name="LeNet-block-2x2"))
    submit(client, spec_dict(name="lenet magnitude", method={"kind": "magnitude"}))
    submit(client, spec_dict(name="vgg-channel"))
    submit(client, spec_dict(name="100%_sparse"))

    def names(q, **params):  # a set: name order depends on the database's collation
        body = client.get("/api/jobs", params={"q": q, **params}).json()
        assert body["total"] == len(body["items"])
        return {j["name"] for j in body["items"]}

    assert names("lenet") == {"LeNet-block-2x2", "lenet magnitude"}  # substring, any case
    assert names("BLOCK") == {"LeNet-block-2x2"}
    assert names("NeT", method="magnitude") == {"lenet magnitude"}  # combines with the other filters
    assert names("%") == {"100%_sparse"}  # LIKE wildcards match literally
    assert names("_") == {"100%_sparse"}
    assert names("resnet") == set()
    assert len(names("")) == 4  # empty: no filter
    [error] = errors_of(client.get("/api/jobs", params={"q": "a\x00b"}), 422)
    assert error["field"] == "query.q"
