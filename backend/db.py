"""Engine and sessions for SQLite (embedded) and Postgres (team), and migrations run from code.

SQLite runs with WAL (the API reads while the worker writes), a busy timeout (writers wait instead of
failing with "database is locked") and foreign keys on (so deleting a job cascades to its steps).
"""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

try:  # several times faster JSON columns (spec, metrics, masks); the stdlib serves when it is missing
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker] = {}
_lock = threading.Lock()


def _set_sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
    cur.close()


def json_dumps(value) -> str:
    """JSON for the database and responses: numpy scalars/arrays allowed; NaN/inf become null
    (Postgres refuses the NaN token)."""
    if orjson is not None:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
    return json.dumps(value)


def json_loads(text: str | bytes):
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:  # e.g. NaN written by the stdlib encoder
            pass
    return json.loads(text)


def make_engine(database_url: str, pooled: bool = True) -> Engine:
    """A new engine; SQLite files get their directory created and the pragmas above. `pooled=False`: every
    session opens and closes its own connection (a thread of a process that forks children, such as the
    Celery worker's main process, then never leaves an open connection for a child to inherit)."""
    sqlite_pool = {"pool_size": 20, "max_overflow": 20} if pooled else {"poolclass": NullPool}
    server_pool = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20} if pooled else {"poolclass": NullPool}
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):  # plain URLs mean psycopg 3, the driver we install
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **sqlite_pool,
            json_serializer=json_dumps,
            json_deserializer=json_loads,
        )
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(
        url,
        **server_pool,
        json_serializer=json_dumps,
        json_deserializer=json_loads,
    )


def get_engine(database_url: str | None = None) -> Engine:
    """The process-wide engine for a URL (default: the configured database)."""
    if database_url is None:
        from core.settings import get_settings

        database_url = get_settings().database_url
    with _lock:
        if database_url not in _engines:
            _engines[database_url] = make_engine(database_url)
        return _engines[database_url]


def get_sessionmaker(database_url: str | None = None) -> sessionmaker:
    engine = get_engine(database_url)
    key = str(engine.url)
    with _lock:
        if key not in _factories:
            _factories[key] = sessionmaker(engine, expire_on_commit=False)
        return _factories[key]


@contextmanager
def session_scope(database_url: str | None = None, sessions: sessionmaker | None = None) -> Iterator[Session]:
    """A session (of `sessions`, default the process-wide one for the URL) that commits when the block ends
    and rolls back if it raises."""
    session = (sessions or get_sessionmaker(database_url))()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engines(close: bool = True) -> None:
    """Drop every process-wide engine. `close=False` in a child right after fork: the inherited connections
    belong to the parent and are left alone instead of being closed under it."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=close)
        _engines.clear()
        _factories.clear()


def alembic_config(database_url: str):
    """An Alembic config built in code (no alembic.ini), so migrations work from an installed package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option: configparser would choke on '%' in passwords.
    cfg.attributes["database_url"] = database_url
    return cfg


def _run_alembic(database_url: str | None, action: str, revision: str) -> None:
    from alembic import command

    if database_url is None:
        from core.settings import get_settings

        database_url = get_settings().database_url
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(database_url)
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
    finally:
        engine.dispose()


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Apply migrations up to `revision` (default: the newest). Safe to run at every start."""
    _run_alembic(database_url, "upgrade", revision)


def downgrade(database_url: str | None, revision: str) -> None:
    _run_alembic(database_url, "downgrade", revision)


def current_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
