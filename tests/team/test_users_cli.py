"""`prunelab user ...` and `prunelab token ...` on a temporary PRUNELAB_HOME: the first test runs the installed
console script as a subprocess; the rest run the same CLI in-process (each subprocess costs seconds of CPU)."""

import hashlib
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


def in_process(home: Path, *args: str) -> subprocess.CompletedProcess:
    return in_process_with(home, {}, *args)


def in_process_with(home: Path, settings: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    from typer.testing import CliRunner

    from cli.main import app
    from core.settings import get_settings

    env = {k: None for k in os.environ if k.startswith("PRUNELAB_")} | {"PRUNELAB_HOME": str(home), **settings}
    get_settings.cache_clear()
    try:
        result = CliRunner(env=env).invoke(app, list(args))
    finally:
        get_settings.cache_clear()
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def token_rows(home: Path) -> list[tuple]:
    with sqlite3.connect(home / "prunelab.sqlite") as conn:
        return conn.execute(
            "SELECT t.id, u.name, u.role, t.token_hash, t.prefix, t.revoked_at FROM api_tokens t "
            "JOIN users u ON u.id = t.user_id ORDER BY t.id"
        ).fetchall()


def test_user_add_prints_the_token_once_and_stores_only_its_hash(home, prunelab, prunelab_env):
    added = prunelab("user", "add", "alice", "--admin", env=prunelab_env(home))
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("pl_") and "\n" not in token and len(token) > 30  # stdout is the token alone
    assert "only this once" in added.stderr

    [(_, name, role, token_hash, prefix, revoked)] = token_rows(home)
    assert (name, role, revoked) == ("alice", "admin", None)
    assert token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(prefix) and len(prefix) < len(token) // 3
    # The token itself is nowhere on disk (database, WAL, anything under HOME), nor in later listings.
    for path in home.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    listings = prunelab("user", "list", env=prunelab_env(home)).stdout
    listings += prunelab("token", "list", env=prunelab_env(home)).stdout
    assert "alice" in listings and token not in listings


def test_roles_listing_and_bad_input(home):
    assert in_process(home, "user", "add", "vera", "--viewer").returncode == 0
    assert in_process(home, "user", "add", "bob").returncode == 0
    table = in_process(home, "user", "list").stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "NAME", "ROLE", "TOKENS"]
    assert [line.split()[1:4] for line in table[1:]] == [["bob", "user", "1"], ["vera", "viewer", "1"]]

    again = in_process(home, "user", "add", "bob")
    assert again.returncode == 2 and again.stderr.strip() == "error: name: a user named 'bob' already exists"
    both = in_process(home, "user", "add", "x", "--admin", "--viewer")
    assert both.returncode == 2 and "--admin or --viewer" in both.stderr
    assert len(token_rows(home)) == 2  # nothing stored on error


def test_token_revoke_by_token_id_prefix_and_user(home):
    first = in_process(home, "user", "add", "bob").stdout.strip()
    second = in_process(home, "token", "add", "bob").stdout.strip()
    third = in_process(home, "token", "add", "bob").stdout.strip()
    assert len({first, second, third}) == 3

    assert in_process(home, "token", "revoke", first).returncode == 0  # the whole token
    assert in_process(home, "token", "revoke", "2").returncode == 0  # its id from `token list`
    listed = in_process(home, "token", "list", "--user", "bob").stdout
    shown_prefix = next(line.split()[2] for line in listed.splitlines() if line.startswith("3 "))
    assert shown_prefix.endswith("...") and third.startswith(shown_prefix[:-3])
    assert in_process(home, "token", "revoke", shown_prefix).returncode == 0  # the prefix as `token list` shows it
    assert all(row[5] is not None for row in token_rows(home))

    again = in_process(home, "token", "revoke", first)
    assert again.returncode == 2 and "no active token matched" in again.stderr
    fresh = in_process(home, "token", "add", "bob").stdout.strip()
    assert in_process(home, "token", "revoke", "--user", "bob").returncode == 0
    assert token_rows(home)[-1][3] == hashlib.sha256(fresh.encode()).hexdigest()
    assert token_rows(home)[-1][5] is not None
    unknown = in_process(home, "token", "add", "nobody")
    assert unknown.returncode == 2 and "no user named 'nobody'" in unknown.stderr


def test_user_commands_on_postgres(postgres_url, tmp_path):
    """The team deployment's database: `user add` migrates a fresh schema and stores the hash there."""
    import uuid

    from sqlalchemy import create_engine, text

    from backend.db import dispose_engines

    schema = f"pl_team_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    try:
        added = in_process_with(tmp_path, {"PRUNELAB_DATABASE_URL": url}, "user", "add", "pat", "--admin")
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip()
        listed = in_process_with(tmp_path, {"PRUNELAB_DATABASE_URL": url}, "user", "list")
        assert "pat" in listed.stdout and "admin" in listed.stdout
        with admin.connect() as conn:
            stored = conn.execute(text(f"SELECT token_hash FROM {schema}.api_tokens")).scalars().all()
        assert stored == [hashlib.sha256(token.encode()).hexdigest()]
        assert not (tmp_path / "prunelab.sqlite").exists()  # nothing went to the embedded default
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
