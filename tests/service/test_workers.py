"""The workers registry: rows written by the LeaseKeeper of a worker (register, heartbeat, device, stopped),
GET /api/workers with online / offline computed from the last heartbeat. A real worker process registering
itself is checked in test_worker.py."""

from datetime import timedelta

from backend import store
from backend.db import session_scope
from backend.models import utcnow
from worker.lease import LeaseKeeper

INFO = {"name": "prunelab-1@gpu-box", "queues": ["gpu", "default"], "concurrency": 2}
DEVICE = {"device": "cuda", "gpu_name": "NVIDIA H200", "gpu_memory_bytes": 150_000_000_000, "torch_version": "2.9.0"}
CATALOG = {"models": [{"name": "plugin:tiny", "label": "tiny", "family": "plugin"}], "datasets": [], "devices": []}


def test_a_lease_keeper_registers_its_worker_beats_and_marks_it_stopped(api_settings, client, wait_until):
    settings = api_settings.model_copy(update={"lease_s": 3.0})
    keeper = LeaseKeeper(settings, INFO, probe=lambda: DEVICE, catalog=lambda: CATALOG).start()
    try:
        workers = wait_until(
            lambda: [w for w in client.get("/api/workers").json()["items"] if w["device"] and w["catalog"]],
            10,
            "the device and catalog probes",
        )
        (w,) = workers
        assert w["name"] == INFO["name"] and w["queues"] == ["gpu", "default"] and w["concurrency"] == 2
        assert (w["gpu_name"], w["gpu_memory_bytes"], w["torch_version"]) == ("NVIDIA H200", 150e9, "2.9.0")
        assert w["online"] is True and w["stopped_at"] is None and w["catalog"] == CATALOG
        first = w["last_heartbeat"]
        wait_until(lambda: client.get("/api/workers").json()["items"][0]["last_heartbeat"] > first, 10, "a heartbeat")
    finally:
        keeper.stop()
    body = client.get("/api/workers").json()
    assert body["online"] == 0
    (w,) = body["items"]
    assert w["online"] is False and w["stopped_at"] is not None


def test_online_means_a_heartbeat_younger_than_the_lease(api_settings, make_client):
    with session_scope(api_settings.database_url) as s:
        store.register_worker(s, "fresh", host="a", pid=1, queues=["cpu"], concurrency=1)
        store.register_worker(s, "silent", host="b", pid=2, queues=["cpu"], concurrency=1)
        store.worker_heartbeat(s, "silent", now=utcnow() - timedelta(seconds=61))
    client = make_client(lease_s=60.0)
    body = client.get("/api/workers").json()
    assert [(w["name"], w["online"]) for w in body["items"]] == [("fresh", True), ("silent", False)]
    assert body["online"] == 1
    assert body["items"][1]["seconds_since_heartbeat"] > 60


def test_current_job_and_forgetting_old_workers(db_url, spec_dict):
    from core.spec import parse_spec

    with session_scope(db_url) as s:
        job_id = store.create_job(s, parse_spec(spec_dict())).id
        store.register_worker(s, "w", host="h", pid=1, queues=["cpu"], concurrency=1)
        store.set_worker_job(s, "w", job_id)
    with session_scope(db_url) as s:
        assert store.list_workers(s)[0].current_job_id == job_id
        store.set_worker_job(s, "w", None, was=job_id + 1)  # another job ended: this one still runs
        assert store.list_workers(s)[0].current_job_id == job_id
        store.set_worker_job(s, "w", None, was=job_id)
        assert store.list_workers(s)[0].current_job_id is None
        assert store.update_worker(s, "w", catalog={"models": ["lenet300_100"]})
        assert store.forget_workers(s, 3600) == 0
        assert store.forget_workers(s, 3600, now=utcnow() + timedelta(hours=2)) == 1
        assert store.list_workers(s) == []
