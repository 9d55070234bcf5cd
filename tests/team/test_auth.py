"""The auth matrix of a team server (PRUNELAB_AUTH=tokens), against the real app on a temporary SQLite file:
anonymous, a bad token, viewer, owner, another user and admin, on every endpoint; anonymous reading with
PRUNELAB_PUBLIC_READ; revoked tokens; the per-user limit on queued jobs; the request size limit.

Jobs are enqueued for real, on a Celery SQLite broker in the temporary directory (no worker runs them here).
"""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from backend import db, store
from backend.api import create_app
from backend.broker import enqueue_job
from core.masks import density_grid, encode_density, encode_grid
from core.settings import Settings
from core.spec import parse_spec

SPEC = {
    "name": "auth",
    "model": "lenet300_100",
    "dataset": "digits",
    "device": "cpu",
    "method": {"kind": "block", "block_size": 2},
    "schedule": {"kind": "oneshot", "sparsities": [0.5]},
}
ROLES = {"viewer": "viewer", "owner": "user", "other": "user", "admin": "admin"}
ACTORS = ["anonymous", "bad_token", "viewer", "owner", "other", "admin"]


def a_step(index: int) -> dict:
    keep = np.random.default_rng(index).random((2, 3)) > 0.5
    mask = np.kron(keep, np.ones((2, 2), dtype=bool))
    return {
        "index": index,
        "target_sparsity": 0.5,
        "sparsity": 1 - mask.mean(),
        "accuracy": 0.9,
        "accuracy_before_finetune": 0.85,
        "accuracy_drop": 0.05,
        "flops_dense": 24,
        "flops_effective": 12,
        "size_sparse_bytes": 60,
        "latency": {"dense_ms": 1.0, "realised_ms": 0.8, "speedup": 1.25},
        "checkpoint": f"checkpoints/step_{index}.pt",
        "layers": [
            {
                "name": "fc1",
                "kind": "linear",
                "shape": [4, 6],
                "params": 24,
                "nonzero": int(mask.sum()),
                "sparsity": 1 - mask.mean(),
                "target_sparsity": 0.5,
                "mask": {"block_shape": [2, 2], "grid": encode_grid(keep)},
                "density": encode_density(density_grid(mask)),
            }
        ],
    }


class Team:
    """A migrated SQLite team database with one user per role, their tokens, and a finished job of `owner`
    with a step, a mask and a checkpoint file on disk."""

    def __init__(self, tmp_path):
        self.settings = Settings(
            home=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'team.sqlite'}",
            broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
            artifact_dir=tmp_path / "artifacts",
            auth="tokens",
            allowed_hosts="testserver",  # Starlette's TestClient
        )
        db.upgrade(self.settings.database_url)
        self.tokens: dict[str, str] = {}
        self.user_ids: dict[str, int] = {}
        with self.session() as s:
            for name, role in ROLES.items():
                user, token = store.create_user(s, name, role)
                self.tokens[name], self.user_ids[name] = token, user.id
        self.finished_job = self.make_job("succeeded", with_step=True)

    def session(self):
        return db.session_scope(self.settings.database_url)

    def client(self, **overrides) -> TestClient:
        settings = self.settings.model_copy(update=overrides)
        return TestClient(create_app(settings, enqueue=lambda job_id, queue: enqueue_job(job_id, queue, settings)))

    def make_job(self, status: str = "queued", owner: str = "owner", with_step: bool = False) -> int:
        with self.session() as s:
            job = store.create_job(s, parse_spec(SPEC), owner_id=self.user_ids[owner])
            if with_step:
                store.add_step(s, job.id, a_step(0))
                path = store.job_artifact_dir(self.settings.artifact_dir, job.id) / "checkpoints" / "step_0.pt"
                path.parent.mkdir(parents=True)
                path.write_bytes(b"checkpoint bytes")
            if status != "queued":
                store.set_status(s, job.id, status, error="boom" if status == "failed" else None)
            return job.id

    def headers(self, actor: str) -> dict[str, str]:
        if actor == "anonymous":
            return {}
        if actor == "bad_token":
            return {"Authorization": "Bearer pl_this-token-was-never-issued"}
        return {"Authorization": f"Bearer {self.tokens[actor]}"}


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    yield Team(tmp_path_factory.mktemp("team"))
    db.dispose_engines()


def read_requests(job_id: int) -> dict[str, tuple[str, str]]:
    return {
        "list": ("GET", "/api/jobs"),
        "list_by_owner": ("GET", "/api/jobs?owner=owner"),
        "get": ("GET", f"/api/jobs/{job_id}"),
        "steps": ("GET", f"/api/jobs/{job_id}/steps?after=-1"),
        "mask": ("GET", f"/api/jobs/{job_id}/layers/fc1/mask?step=0"),
        "compare": ("GET", f"/api/compare?ids={job_id}"),
        "catalog": ("GET", "/api/catalog"),
        "me": ("GET", "/api/me"),
        "events": ("GET", f"/api/events?job_id={job_id}&max_seconds=0.2"),
        "export_csv": ("GET", f"/api/jobs/{job_id}/export.csv"),
        "export_json": ("GET", f"/api/jobs/{job_id}/export.json"),
        "checkpoint": ("GET", f"/api/jobs/{job_id}/checkpoint?step=0"),
    }


READS = list(read_requests(1))
READ_EXPECTED = {"anonymous": 401, "bad_token": 401, "viewer": 200, "owner": 200, "other": 200, "admin": 200}


@pytest.mark.parametrize("public_read", [False, True], ids=["private", "public_read"])
@pytest.mark.parametrize("endpoint", READS)
def test_reads(team, endpoint, public_read):
    client = team.client(public_read=public_read)
    method, url = read_requests(team.finished_job)[endpoint]
    got = {actor: client.request(method, url, headers=team.headers(actor)).status_code for actor in ACTORS}
    expected = dict(READ_EXPECTED, anonymous=200 if public_read else 401)
    assert got == expected


def test_read_responses_carry_data(team):
    client = team.client()
    headers = team.headers("viewer")
    job = client.get(f"/api/jobs/{team.finished_job}", headers=headers).json()
    assert job["owner"] == "owner" and job["summary"]["steps"] == 1
    assert (
        client.get(f"/api/jobs/{team.finished_job}/checkpoint?step=0", headers=headers).content == b"checkpoint bytes"
    )
    mine = client.get("/api/jobs?owner=owner", headers=headers).json()
    assert team.finished_job in [j["id"] for j in mine["items"]]
    assert client.get("/api/jobs?owner=other", headers=headers).json()["total"] == 0


@pytest.mark.parametrize("public_read", [False, True], ids=["private", "public_read"])
def test_me_says_who_and_what_role(team, public_read):
    client = team.client(public_read=public_read)
    got = {actor: client.get("/api/me", headers=team.headers(actor)) for actor in ACTORS}
    for actor, role in ROLES.items():
        assert got[actor].json() == {"name": actor, "role": role, "auth": "tokens"}
    assert got["bad_token"].status_code == 401
    if public_read:
        assert got["anonymous"].json() == {"name": None, "role": "anonymous", "auth": "tokens"}
    else:
        assert got["anonymous"].status_code == 401 and "token" in got["anonymous"].json()["detail"]
    embedded = team.client(auth="off")
    assert embedded.get("/api/me").json() == {"name": None, "role": "admin", "auth": "off"}


def test_health_needs_no_token(team):
    assert team.client().get("/api/health").status_code == 200


WRITE_EXPECTED = {
    # action: (status of the job it acts on, expected code per actor)
    "submit": (None, {"anonymous": 401, "bad_token": 401, "viewer": 403, "owner": 201, "other": 201, "admin": 201}),
    "cancel": ("queued", {"anonymous": 401, "bad_token": 401, "viewer": 403, "owner": 200, "other": 403, "admin": 200}),
    "retry": ("failed", {"anonymous": 401, "bad_token": 401, "viewer": 403, "owner": 200, "other": 403, "admin": 200}),
    "delete": (
        "succeeded",
        {"anonymous": 401, "bad_token": 401, "viewer": 403, "owner": 200, "other": 403, "admin": 200},
    ),
}


@pytest.mark.parametrize("public_read", [False, True], ids=["private", "public_read"])
@pytest.mark.parametrize("action", list(WRITE_EXPECTED))
def test_writes(team, action, public_read):
    client = team.client(public_read=public_read)
    job_status, expected = WRITE_EXPECTED[action]
    got = {}
    for actor in ACTORS:
        job_id = team.make_job(job_status) if job_status else None  # a fresh job of `owner` per attempt
        method, url, body = {
            "submit": ("POST", "/api/jobs", SPEC),
            "cancel": ("POST", f"/api/jobs/{job_id}/cancel", None),
            "retry": ("POST", f"/api/jobs/{job_id}/retry", None),
            "delete": ("DELETE", f"/api/jobs/{job_id}", None),
        }[action]
        response = client.request(method, url, json=body, headers=team.headers(actor))
        got[actor] = response.status_code
        with team.session() as s:
            job = store.get_job(s, job_id) if job_id else None
            if response.status_code >= 400 and job_id:  # a refused write changed nothing
                assert job is not None and job.status == job_status, (actor, action)
            if action == "submit" and response.status_code == 201:
                created = store.get_job(s, response.json()["id"])
                assert created.owner_id == team.user_ids[actor]  # the job records who submitted it
                store.set_status(s, created.id, "cancelled")  # keep the queued-job limit out of the way
    assert got == expected


def test_refusals_say_why(team):
    client = team.client()
    anonymous = client.post("/api/jobs", json=SPEC)
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert "token" in anonymous.json()["detail"]
    viewer = client.post("/api/jobs", json=SPEC, headers=team.headers("viewer"))
    assert "viewer" in viewer.json()["detail"]
    other = client.post(f"/api/jobs/{team.make_job()}/cancel", headers=team.headers("other"))
    assert "owner" in other.json()["detail"]


def test_revoked_token_is_refused(team):
    with team.session() as s:
        user = s.get(store.User, team.user_ids["other"])
        token = store.add_token(s, user)
    client = team.client(public_read=True)  # a bad token is refused even where anonymous reading is allowed
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/jobs", headers=auth).status_code == 200
    with team.session() as s:
        assert store.revoke_token(s, token) == 1
    assert client.get("/api/jobs", headers=auth).status_code == 401
    assert client.post("/api/jobs", json=SPEC, headers=auth).status_code == 401
    # the user's other token still works
    assert client.get("/api/jobs", headers=team.headers("other")).status_code == 200


def test_per_user_queued_job_limit(tmp_path):
    team = Team(tmp_path)
    client = team.client(max_queued_jobs_per_user=2)
    owner, other = team.headers("owner"), team.headers("other")
    first = [client.post("/api/jobs", json=SPEC, headers=owner) for _ in range(2)]
    assert [r.status_code for r in first] == [201, 201]
    refused = client.post("/api/jobs", json=SPEC, headers=owner)
    assert refused.status_code == 429
    assert "PRUNELAB_MAX_QUEUED_JOBS_PER_USER" in refused.json()["detail"]
    assert client.post("/api/jobs", json=SPEC, headers=other).status_code == 201  # the limit is per user
    # retrying a failed job counts too
    failed = team.make_job("failed")
    assert client.post(f"/api/jobs/{failed}/retry", headers=owner).status_code == 429
    assert client.post(f"/api/jobs/{first[0].json()['id']}/cancel", headers=owner).status_code == 200
    assert client.post("/api/jobs", json=SPEC, headers=owner).status_code == 201
    with team.session() as s:
        assert store.count_active_jobs(s, team.user_ids["owner"]) == 2


def test_request_size_limit(team):
    client = team.client(max_request_bytes=2000)
    big = dict(SPEC, name="x" * 190, tags=["t" * 50] * 20, padding="y" * 5000)
    response = client.post("/api/jobs", json=big, headers=team.headers("owner"))
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
