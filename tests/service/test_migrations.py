"""Alembic migrations create exactly the ORM schema on an empty SQLite file and an empty Postgres schema."""

import uuid

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from backend.db import alembic_config, current_revision, downgrade, make_engine, upgrade
from backend.models import Base

TABLES = {"users", "api_tokens", "jobs", "job_tags", "steps", "layer_masks", "alembic_version"}


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
