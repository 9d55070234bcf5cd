"""Fixtures for the service tests: a migrated database (SQLite file or a fresh Postgres schema), settings
pointing at temporary directories, an API client, realistic engine step dicts (tests/fake_steps.py), and for
the end-to-end tests a real Celery worker process with an API client that enqueues to it.
"""

import functools
import os
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from fake_steps import make_step
from sqlalchemy import create_engine, text

from backend.db import dispose_engines, upgrade
from backend.models import FINAL_STATUSES
from core.settings import Settings, get_settings

# Starlette's TestClient sends Host: testserver; the product default allows only the bound host's names.
TEST_HOSTS = "testserver,127.0.0.1,localhost"
TABLES = ["workers", "job_attempts", "layer_masks", "steps", "job_tags", "jobs", "api_tokens", "users"]


@pytest.fixture(scope="session", autouse=True)
def _service_home(tmp_path_factory):
    """Every process-wide setting (the Celery broker the API enqueues on included) points into a temp HOME."""
    home = tmp_path_factory.mktemp("prunelab-home")
    saved = {k: os.environ.get(k) for k in ("PRUNELAB_HOME", "PRUNELAB_BROKER_URL")}
    os.environ["PRUNELAB_HOME"] = str(home)
    os.environ["PRUNELAB_BROKER_URL"] = f"sqla+sqlite:///{home / 'broker.sqlite'}"
    get_settings.cache_clear()
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_schema_url(request):
    """A fresh schema in database `test`, migrated once per session, dropped at the end."""
    base = request.getfixturevalue("postgres_url")
    schema = f"pl_api_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}?options=-csearch_path%3D{schema}"
    upgrade(url)
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A migrated, empty database: a new SQLite file, or the session's Postgres schema emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'prunelab.sqlite'}"
        upgrade(url)
        yield url
        dispose_engines()
        return
    url = request.getfixturevalue("postgres_schema_url")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def api_settings(db_url, tmp_path) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=db_url,
        artifact_dir=tmp_path / "artifacts",
        broker_url=os.environ["PRUNELAB_BROKER_URL"],
        allowed_hosts=TEST_HOSTS,
    )


@pytest.fixture
def make_client(api_settings):
    """make_client(**setting_overrides) -> a TestClient on a fresh app."""
    from fastapi.testclient import TestClient

    from backend.api import create_app

    clients = []

    def make(**overrides):
        settings = api_settings.model_copy(update=overrides)
        client = TestClient(create_app(settings))
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def step_factory():
    return make_step


@pytest.fixture
def spec_dict():
    def make(**overrides) -> dict:
        spec = {
            "name": "lenet-block",
            "model": "lenet300_100",
            "dataset": "digits",
            "method": {"kind": "block", "block_size": 2},
            "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 3},
            "train": {"epochs": 1},
            "device": "cpu",
            "tags": ["demo"],
        }
        spec.update(overrides)
        return spec

    return make


def artifact_path(settings: Settings, job_id: int) -> Path:
    return Path(settings.artifact_dir) / "jobs" / str(job_id)


# ---------------------------------------------------------------- real workers (end-to-end tests)


@pytest.fixture(scope="session")
def redis_broker(redis_url):
    """redis_broker(db): the URL of Redis database `db` (each test file has its own), emptied."""
    import redis

    def make(db: int) -> str:
        url = redis_url.rsplit("/", 1)[0] + f"/{db}"
        redis.Redis.from_url(url).flushdb()
        return url

    return make


@pytest.fixture(scope="session")
def worker_settings():
    """worker_settings(home, broker_url, **overrides): settings on a migrated SQLite file under `home`."""

    def make(home: Path, broker_url: str, **overrides) -> Settings:
        settings = Settings(
            home=home,
            database_url=f"sqlite:///{home / 'jobs.sqlite'}",
            broker_url=broker_url,
            **{"allowed_hosts": TEST_HOSTS, **overrides},
        )
        upgrade(settings.database_url)
        return settings

    return make


@pytest.fixture(scope="session")
def worker_process():
    """`with worker_process(settings, log_path, queues=...) as proc:` a real `prunelab worker` child (one
    OpenMP thread, output to log_path), stopped with its whole process group at the end of the block."""
    from cli.serve import start_worker_process, stop_worker_process

    @contextmanager
    def run(settings: Settings, log_path: Path, queues=("default", "cpu")):
        with Path(log_path).open("w") as log:
            proc = start_worker_process(
                settings, list(queues), env_extra={"OMP_NUM_THREADS": "1"}, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                yield proc
            finally:
                stop_worker_process(proc)

    return run


@pytest.fixture(scope="module")
def e2e_settings(request, tmp_path_factory, redis_broker, worker_settings) -> Settings:
    """A test module's own end-to-end settings: a SQLite file in a new HOME, and as broker the Redis
    database the module names in REDIS_DB (emptied)."""
    return worker_settings(tmp_path_factory.mktemp("prunelab-home"), redis_broker(request.module.REDIS_DB))


@pytest.fixture(scope="module")
def e2e_worker_log(tmp_path_factory) -> Path:
    """Where the output of the module's worker (e2e_client) goes."""
    return tmp_path_factory.mktemp("logs") / "worker.log"


@pytest.fixture(scope="module")
def e2e_client(e2e_settings, e2e_worker_log, worker_process, enqueuing_client):
    """An API client on e2e_settings with a real worker (queues default and cpu) running for the module."""
    with worker_process(e2e_settings, e2e_worker_log):
        with enqueuing_client(e2e_settings) as client:
            yield client


@pytest.fixture(scope="session")
def enqueuing_client():
    """`with enqueuing_client(settings) as client:` a TestClient whose submits go to settings' broker."""
    from fastapi.testclient import TestClient

    from backend.api import create_app
    from backend.broker import enqueue_job

    @contextmanager
    def make(settings: Settings):
        with TestClient(create_app(settings, enqueue=functools.partial(enqueue_job, settings=settings))) as c:
            yield c

    return make


def _submit(client, spec: dict) -> int:
    resp = client.post("/api/jobs", json=spec)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def _job_of(client, job_id: int) -> dict:
    return client.get(f"/api/jobs/{job_id}").json()


@pytest.fixture(scope="session")
def submit():
    """submit(client, spec) -> the new job's id (the POST must answer 201)."""
    return _submit


@pytest.fixture(scope="session")
def job_of():
    """job_of(client, job_id) -> the job's JSON."""
    return _job_of


@pytest.fixture(scope="session")
def wait_for_job(wait_until):
    """wait_for_job(client, job_id, timeout_s, until=lambda job: ...) -> the job's JSON once `until` holds
    (default: it reached a final status)."""

    def wait(client, job_id: int, timeout_s: float, until=lambda job: job["status"] in FINAL_STATUSES) -> dict:
        last = {}

        def check():
            last["job"] = _job_of(client, job_id)
            return until(last["job"]) and last["job"]

        return wait_until(check, timeout_s, lambda: f"job {job_id} (now {last.get('job', {}).get('status')})")

    return wait
