"""The researcher's view, API side: PATCH /api/jobs/{id} (name, tags, notes; owner or admin; 422 naming the
field), and the queue position and expected start of queued jobs in the job dicts (detail, list, events)."""

from datetime import timedelta

import pytest

from backend import store
from backend.db import session_scope
from backend.models import Job, utcnow
from core.spec import parse_spec


def errors_of(r, status: int) -> list[dict]:
    assert r.status_code == status, r.text
    return r.json()["errors"]


def test_edit_name_tags_notes(client, spec_dict, db_url):
    job = client.post("/api/jobs", json=spec_dict(tags=["demo", "old"])).json()
    assert job["notes"] == ""
    r = client.patch(f"/api/jobs/{job['id']}", json={"notes": "fc3 at 0.1 as in the paper\nsecond line"})
    assert r.status_code == 200
    edited = r.json()
    assert edited["notes"] == "fc3 at 0.1 as in the paper\nsecond line"
    assert edited["name"] == job["name"] and edited["tags"] == ["demo", "old"]  # absent fields stay
    assert edited["updated_at"] >= job["updated_at"]
    r = client.patch(f"/api/jobs/{job['id']}", json={"name": "LeNet <b>block</b>", "tags": ["paper", "paper", "fig3"]})
    assert r.json()["name"] == "LeNet <b>block</b>" and r.json()["tags"] == ["paper", "fig3"]
    assert client.get(f"/api/jobs/{job['id']}").json()["notes"].startswith("fc3 at 0.1")
    listed = client.get("/api/jobs", params={"tag": "paper"}).json()  # the tag filter follows the edit
    assert [j["id"] for j in listed["items"]] == [job["id"]] and listed["items"][0]["notes"]
    assert client.get("/api/jobs", params={"tag": "old"}).json()["total"] == 0
    assert client.patch(f"/api/jobs/{job['id']}", json={"tags": []}).json()["tags"] == []
    assert client.patch(f"/api/jobs/{job['id']}", json={}).status_code == 200  # nothing to change
    assert client.patch("/api/jobs/99999", json={"notes": "x"}).status_code == 404
    exported = client.get(f"/api/jobs/{job['id']}/export.json").json()
    assert exported["job"]["notes"].startswith("fc3")


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"notes": "a\x00b"}, "notes", "NUL"),
        ({"name": "x\x00"}, "name", "NUL"),
        ({"tags": ["ok", "b\x00d"]}, "tags.1", "NUL"),
        ({"name": ""}, "name", "at least 1"),
        ({"name": "n" * 201}, "name", "at most 200"),
        ({"tags": ["t" * 51]}, "tags.0", "at most 50"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags", "at most 20"),
        ({"tags": "paper"}, "tags", "list"),
        ({"notes": 5}, "notes", "string"),
        ({"notes": "n" * 10_001}, "notes", "at most 10000"),
        ({"colour": "red"}, "colour", "not permitted"),
        ({"status": "succeeded"}, "status", "not permitted"),
    ],
)
def test_bad_edits_are_422_naming_the_field(client, spec_dict, db_url, body, field, words):
    job = client.post("/api/jobs", json=spec_dict()).json()
    [error] = errors_of(client.patch(f"/api/jobs/{job['id']}", json=body), 422)
    assert error["field"] == field and words in error["message"], error
    after = client.get(f"/api/jobs/{job['id']}").json()
    assert (after["name"], after["tags"], after["notes"], after["status"]) == (job["name"], job["tags"], "", "queued")


def test_edit_body_must_be_an_object(client, spec_dict):
    job = client.post("/api/jobs", json=spec_dict()).json()
    [error] = errors_of(client.patch(f"/api/jobs/{job['id']}", json=["notes"]), 422)
    assert error["field"] is None and "the fields to change (name, tags, notes)" in error["message"]


def test_edit_needs_owner_or_admin(make_client, spec_dict, db_url):
    tokens = {}
    with session_scope(db_url) as s:
        for name, role in (("owner", "user"), ("other", "user"), ("admin", "admin"), ("viewer", "viewer")):
            tokens[name] = store.create_user(s, name, role)[1]
    client = make_client(auth="tokens")

    def auth(name):
        return {"authorization": f"Bearer {tokens[name]}"}

    job_id = client.post("/api/jobs", json=spec_dict(), headers=auth("owner")).json()["id"]
    codes = {
        who: client.patch(f"/api/jobs/{job_id}", json={"notes": f"by {who}"}, headers=auth(who)).status_code
        for who in ("other", "viewer", "owner", "admin")
    }
    assert codes == {"other": 403, "viewer": 403, "owner": 200, "admin": 200}
    assert client.patch(f"/api/jobs/{job_id}", json={"notes": "anonymous"}).status_code == 401
    assert client.get(f"/api/jobs/{job_id}", headers=auth("viewer")).json()["notes"] == "by admin"


# ---------------------------------------------------------------- queue position and expected start


def finished_job(db_url, seconds: float, model="lenet300_100", dataset="digits") -> int:
    """A succeeded job that ran for `seconds`."""
    spec = {
        "model": model,
        "dataset": dataset,
        "method": {"kind": "block"},
        "schedule": {"kind": "oneshot", "sparsities": [0.5]},
    }
    with session_scope(db_url) as s:
        job = store.create_job(s, parse_spec(spec))
        end = utcnow()
        job.status, job.started_at, job.finished_at = "succeeded", end - timedelta(seconds=seconds), end
        return job.id


def test_queue_position_and_expected_start(client, spec_dict, db_url):
    ids = [client.post("/api/jobs", json=spec_dict(name=f"q{i}")).json()["id"] for i in range(3)]
    first = client.get(f"/api/jobs/{ids[0]}").json()
    assert first["queue_position"] == 1 and first["expected_start_s"] is None  # no worker, no measurement
    listed = {j["id"]: j for j in client.get("/api/jobs").json()["items"]}
    assert [listed[i]["queue_position"] for i in ids] == [1, 2, 3]

    finished_job(db_url, 100.0)
    finished_job(db_url, 200.0)  # lenet300_100 on digits: 150 s on average
    finished_job(db_url, 5000.0, model="vgg", dataset="cifar10")  # another model and dataset: not used
    with session_scope(db_url) as s:
        store.register_worker(s, "prunelab-1@lab", host="lab", pid=1, queues=["cpu"], concurrency=1)
    listed = {j["id"]: j for j in client.get("/api/jobs").json()["items"]}
    assert [listed[i]["expected_start_s"] for i in ids] == [0.0, 150.0, 300.0]

    with session_scope(db_url) as s:  # the first one starts; it has run for 50 of its expected 150 s
        store.start_job(s, ids[0])
        s.get(Job, ids[0]).started_at = utcnow() - timedelta(seconds=50)
    running = client.get(f"/api/jobs/{ids[0]}").json()
    assert running["status"] == "running" and running["queue_position"] is None
    assert running["expected_start_s"] is None
    second = client.get(f"/api/jobs/{ids[1]}").json()
    assert second["queue_position"] == 1 and second["expected_start_s"] == pytest.approx(100.0, abs=2)
    listed = {j["id"]: j for j in client.get("/api/jobs").json()["items"]}
    assert listed[ids[2]]["queue_position"] == 2
    assert listed[ids[2]]["expected_start_s"] == pytest.approx(250.0, abs=2)

    # a second worker slot on the queue: the third job starts when the first free slot does
    with session_scope(db_url) as s:
        store.register_worker(s, "prunelab-2@lab", host="lab", pid=2, queues=["cpu", "gpu"], concurrency=1)
    listed = {j["id"]: j for j in client.get("/api/jobs").json()["items"]}
    assert listed[ids[1]]["expected_start_s"] == 0.0
    assert listed[ids[2]]["expected_start_s"] == pytest.approx(100.0, abs=2)

    # a job of a model and dataset never measured: the jobs behind it get no estimate
    other = client.post("/api/jobs", json=spec_dict(name="vgg", model="vgg", dataset="mnist")).json()
    behind = client.post("/api/jobs", json=spec_dict(name="behind")).json()
    assert other["queue_position"] == 3 and other["expected_start_s"] is not None
    assert behind["queue_position"] == 4 and behind["expected_start_s"] is None
