"""Alembic migrations create exactly the ORM schema on an empty SQLite file and an empty Postgres schema,
and carry existing rows along."""

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from backend import store
from backend.db import alembic_config, current_revision, downgrade, make_engine, session_scope, upgrade
from backend.models import Base

TABLES = {
    "users",
    "api_tokens",
    "jobs",
    "job_tags",
    "steps",
    "layer_masks",
    "job_attempts",
    "workers",
    "job_groups",
    "sensitivity_points",
    "alembic_version",
}


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def assert_matches_models(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == TABLES
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
            assert diff == []
    finally:
        engine.dispose()
    assert current_revision(url) == head()


def test_upgrade_empty_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'prunelab.sqlite'}"  # directory created too
    upgrade(url)
    upgrade(url)  # a second run is a no-op
    assert_matches_models(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    engine.dispose()


def test_downgrade_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    upgrade(url)
    downgrade(url, "base")
    assert current_revision(url) is None
    upgrade(url)
    assert_matches_models(url)


def test_upgrade_empty_postgres(postgres_url):
    schema = f"pl_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
        upgrade(url)
        assert_matches_models(url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def schema_url(request) -> str:
    """A new empty database: a SQLite file, or a Postgres schema dropped at the end of the test."""
    if request.param == "sqlite":
        return f"sqlite:///{request.getfixturevalue('tmp_path') / 'p.sqlite'}"
    base = request.getfixturevalue("postgres_url")
    schema = f"pl_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    request.addfinalizer(drop)
    return f"{base}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request):
    return schema_url(request)


def test_0002_keeps_jobs_steps_masks_and_tags(empty_url):
    """0002 drops a column of jobs; on SQLite a copy-and-rename of the table would cascade-delete every
    step and tag (foreign keys are on), so the rows are checked after the upgrade."""
    upgrade(empty_url, "0001")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, name, spec, model, dataset, method, schedule, tags, status, "
                "cancel_requested, progress, message, queue, created_at, updated_at, attempts, steps_done) "
                "VALUES (1, 'old', '{}', 'vgg', 'cifar10', 'block', 'oneshot', '[\"t\"]', 'succeeded', "
                "false, 1.0, 'done', 'default', '2026-01-01', '2026-01-01', 1, 1)"
            )
        )
        conn.execute(text("INSERT INTO job_tags (job_id, tag) VALUES (1, 't')"))
        conn.execute(
            text("INSERT INTO steps (id, job_id, \"index\", metrics, created_at) VALUES (1, 1, 0, '{}', '2026-01-01')")
        )
        conn.execute(text("INSERT INTO layer_masks (step_id, layer) VALUES (1, 'fc1')"))
    engine.dispose()

    upgrade(empty_url)
    assert_matches_models(empty_url)
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        counts = [
            conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("jobs", "job_tags", "steps", "layer_masks")
        ]
    engine.dispose()
    assert counts == [1, 1, 1, 1]
    with session_scope(empty_url) as s:
        assert store.list_jobs(s, tag="t")[1] == 1 and len(store.list_steps(s, 1)) == 1

    downgrade(empty_url, "0001")
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        assert "deleted_at" in {c["name"] for c in inspect(conn).get_columns("jobs")}
        assert conn.execute(text("SELECT count(*) FROM steps")).scalar() == 1
    engine.dispose()
