"""Fixtures for the service tests: a migrated database (SQLite file or a fresh Postgres schema), settings
pointing at temporary directories, an API client, and realistic engine step dicts (tests/fake_steps.py).
"""

import os
import uuid
from pathlib import Path

import pytest
from fake_steps import make_step
from sqlalchemy import create_engine, text

from backend.db import dispose_engines, upgrade
from core.settings import Settings, get_settings

TABLES = ["layer_masks", "steps", "job_tags", "jobs", "api_tokens", "users"]


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
