"""Submit limits on both databases: spec strings never NUL (every string field, name, tags, layer names and
the keys of layer maps), 1 to 100 one-shot sparsities, the planned epochs of a job against
PRUNELAB_MAX_JOB_EPOCHS, every cross-field problem reported at once, and the queued-job limit: atomic under
40 parallel submits to a real uvicorn server, with auth off (the anonymous owner) and per user."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from backend import store
from backend.db import session_scope

REDIS_DB = 9  # this file's own Redis database, flushed before use


def errors_of(r, status: int) -> list[dict]:
    assert r.status_code == status, r.text
    return r.json()["errors"]


def count_jobs(db_url) -> int:
    with session_scope(db_url) as s:
        return store.list_jobs(s)[1]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "a\x00b"}, "name"),
        ({"tags": ["fine", "bad\x00"]}, "tags.1"),
        ({"method": {"kind": "block", "layers": ["fc1\x00"]}}, "method.layers.0"),
        ({"method": {"kind": "magnitude", "layer_sparsity": {"fc1\x00": 0.5}}}, "method.layer_sparsity"),
        (
            {"schedule": {"kind": "iterative", "rate": 0.2, "rounds": 2, "layer_rates": {"\x00": 0.1}}},
            "schedule.layer_rates",
        ),
    ],
)
def test_nul_in_any_spec_string_is_422_naming_the_field(client, spec_dict, db_url, change, field):
    [error] = errors_of(client.post("/api/jobs", json=spec_dict(**change)), 422)
    assert error["field"] == field and "NUL" in error["message"], error
    assert count_jobs(db_url) == 0


@pytest.mark.parametrize("sparsities, words", [([], "at least 1"), ([0.5] * 101, "at most 100")])
def test_oneshot_sparsities_are_1_to_100(client, spec_dict, db_url, sparsities, words):
    spec = spec_dict(schedule={"kind": "oneshot", "sparsities": sparsities, "finetune_epochs": 0})
    [error] = errors_of(client.post("/api/jobs", json=spec), 422)
    assert error["field"] == "schedule.sparsities" and words in error["message"], error
    ok = spec_dict(schedule={"kind": "oneshot", "sparsities": [0.5] * 100, "finetune_epochs": 0})
    assert client.post("/api/jobs", json=ok).status_code == 201


def test_planned_epochs_limit_from_settings(make_client, spec_dict, db_url):
    client = make_client(max_job_epochs=100)
    # 10 baseline + 20 rounds x 5 fine-tune = 110 > 100: the fine-tuning drives it
    spec = spec_dict(
        train={"epochs": 10}, schedule={"kind": "iterative", "rate": 0.2, "rounds": 20, "finetune_epochs": 5}
    )
    r = client.post("/api/jobs", json=spec)
    [error] = errors_of(r, 422)
    assert error["field"] == "schedule.finetune_epochs" and "110" in error["message"], error
    assert "PRUNELAB_MAX_JOB_EPOCHS" in error["message"] and error["allowed"] == "at most 100 planned epochs"
    assert r.json()["detail"].startswith("schedule.finetune_epochs: the job plans 110 training epochs")
    # group lasso's regularised epochs count per step
    lasso = spec_dict(
        method={"kind": "group_lasso", "epochs": 60},
        schedule={"kind": "oneshot", "sparsities": [0.5, 0.7], "finetune_epochs": 1},
    )
    [error] = errors_of(client.post("/api/jobs", json=lasso), 422)
    assert error["field"] == "method.epochs", error
    assert count_jobs(db_url) == 0
    # exactly at the limit is fine; and a server may allow more than the default 5000
    spec["schedule"]["rounds"] = 18
    assert client.post("/api/jobs", json=spec).status_code == 201
    big = make_client(max_job_epochs=20_000)
    huge = spec_dict(
        train={"epochs": 1000}, schedule={"kind": "iterative", "rate": 0.2, "rounds": 200, "finetune_epochs": 50}
    )
    assert big.post("/api/jobs", json=huge).status_code == 201  # 11000 planned epochs
    [error] = errors_of(make_client().post("/api/jobs", json=huge), 422)  # the default: 5000
    assert "at most 5000" in error["message"]


def test_every_cross_field_problem_at_once(client, spec_dict, db_url):
    spec = spec_dict(
        train={"epochs": 2},
        method={"kind": "block", "layers": ["fc1", "fc9", "conv0"]},
        schedule={
            "kind": "iterative",
            "rate": 0.2,
            "rounds": 3,
            "layer_rates": {"fc7": 0.1},
            "after": "rewind",
            "rewind_epoch": 5,
        },
    )
    r = client.post("/api/jobs", json=spec)
    errors = errors_of(r, 422)
    by_field = {e["field"]: e for e in errors}
    assert set(by_field) == {"method.layers", "schedule.layer_rates", "schedule.rewind_epoch"}
    assert len(errors) == 3
    assert (
        "'fc9', 'conv0'" in by_field["method.layers"]["message"]
        and by_field["method.layers"]["allowed"] == "fc1, fc2, fc3"
    )
    assert "'fc7'" in by_field["schedule.layer_rates"]["message"]
    assert by_field["schedule.rewind_epoch"]["allowed"] == "0 <= rewind_epoch <= 2"
    assert r.json()["detail"] == "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    assert count_jobs(db_url) == 0


# ---------------------------------------------------------------- the queued-job limit under concurrency


@pytest.fixture
def server(db_url, tmp_path, free_port, prunelab_env, wait_healthy, redis_broker):
    """start(**env) -> base URL of a real uvicorn server (the API factory, 40 threads) on db_url."""
    procs = []

    def start(**env) -> str:
        port = free_port()
        settings_env = {
            "PRUNELAB_DATABASE_URL": db_url,
            "PRUNELAB_BROKER_URL": redis_broker(REDIS_DB),
            **{f"PRUNELAB_{k.upper()}": str(v) for k, v in env.items()},
        }
        log = (tmp_path / f"uvicorn-{port}.log").open("w+")
        argv = [sys.executable, "-m", "uvicorn", "backend.api:create_app", "--factory", "--port", str(port)]
        proc = subprocess.Popen(argv, env=prunelab_env(tmp_path, **settings_env), stdout=log, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc, lambda: (log.seek(0), log.read())[1])
        return base

    yield start
    for proc, log in procs:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def parallel_submits(url: str, spec: dict, n: int, headers: dict | None = None) -> list[int]:
    with httpx.Client(timeout=60, headers=headers or {}) as http, ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: http.post(url + "/api/jobs", json=spec).status_code, range(n)))


def test_queued_limit_is_atomic_with_auth_off(server, spec_dict, db_url):
    base = server(max_queued_jobs_anonymous=20)
    codes = parallel_submits(base, spec_dict(), 40)
    assert sorted(codes) == [201] * 20 + [429] * 20, codes
    with session_scope(db_url) as s:
        assert store.count_active_jobs_of(s, None) == 20
    r = httpx.post(base + "/api/jobs", json=spec_dict())
    [error] = errors_of(r, 429)
    assert "PRUNELAB_MAX_QUEUED_JOBS_ANONYMOUS" in r.json()["detail"] and error["allowed"].startswith("at most 20")


def test_queued_limit_is_atomic_per_user(server, spec_dict, db_url):
    with session_scope(db_url) as s:
        _, token = store.create_user(s, "ada", "user")
        _, other = store.create_user(s, "bob", "user")
    base = server(auth="tokens", max_queued_jobs_per_user=20)
    codes = parallel_submits(base, spec_dict(), 40, {"Authorization": f"Bearer {token}"})
    assert sorted(codes) == [201] * 20 + [429] * 20, codes
    assert parallel_submits(base, spec_dict(), 1, {"Authorization": f"Bearer {other}"}) == [201]  # per user
    with session_scope(db_url) as s:
        assert store.count_active_jobs(s, store.get_user(s, "ada").id) == 20


def test_default_anonymous_limit_and_retry_counts(make_client, spec_dict, db_url):
    from core.settings import Settings

    assert Settings(max_queued_jobs_anonymous=100).max_queued_jobs_anonymous == Settings().max_queued_jobs_anonymous
    client = make_client(max_queued_jobs_anonymous=2)
    ids = [client.post("/api/jobs", json=spec_dict()).json()["id"] for _ in range(2)]
    assert client.post("/api/jobs", json=spec_dict()).status_code == 429
    assert client.post(f"/api/jobs/{ids[0]}/cancel").status_code == 200
    third = client.post("/api/jobs", json=spec_dict())
    assert third.status_code == 201
    # a retry makes a job active again: it counts too
    assert errors_of(client.post(f"/api/jobs/{ids[0]}/retry"), 429)
    assert client.post(f"/api/jobs/{third.json()['id']}/cancel").status_code == 200
    assert client.post(f"/api/jobs/{ids[0]}/retry").status_code == 200
