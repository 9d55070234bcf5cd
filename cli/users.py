"""Bodies of `prunelab user ...` and `prunelab token ...`: team-server users and their API tokens.

They work on the configured database (PRUNELAB_DATABASE_URL, or the SQLite file under PRUNELAB_HOME) and
bring its schema up to date first, so `prunelab user add` works before the server has ever started.
A token is printed once, on stdout alone (`TOKEN=$(prunelab user add alice)` works); only its hash is stored.
"""

import sys

from backend import db, store
from cli.client import format_table


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _fail(message: str) -> int:
    _say(f"error: {message}")
    return 2


def _database_url() -> str:
    from core.settings import get_settings

    url = get_settings().database_url
    db.upgrade(url)
    return url


def add_user(name: str, role: str) -> int:
    url = _database_url()
    try:
        with db.session_scope(url) as session:
            user, token = store.create_user(session, name, role)
            user_name, user_role = user.name, user.role
    except store.StoreError as err:
        return _fail(str(err))
    _say(f"Created {user_role} {user_name!r}. Its API token (shown only this once; only a hash is stored):")
    print(token)
    return 0


def list_users() -> int:
    with db.session_scope(_database_url()) as session:
        users = store.list_users(session)
    if not users:
        _say("No users yet: `prunelab user add NAME [--admin | --viewer]` makes one.")
        return 0
    rows = [(str(u["id"]), u["name"], u["role"], str(u["active_tokens"]), (u["created_at"] or "")[:19]) for u in users]
    print(format_table(("ID", "NAME", "ROLE", "TOKENS", "CREATED"), rows))
    return 0


def add_token(name: str) -> int:
    with db.session_scope(_database_url()) as session:
        user = store.get_user(session, name)
        if user is None:
            return _fail(f"user: no user named {name!r}; `prunelab user list` shows them")
        token = store.add_token(session, user)
    _say(f"New API token for {name!r} (shown only this once; only a hash is stored):")
    print(token)
    return 0


def list_tokens(name: str | None) -> int:
    with db.session_scope(_database_url()) as session:
        tokens = store.list_tokens(session, name)
    rows = [
        (str(t["id"]), t["user"], t["prefix"] + "...", t["created_at"][:19], (t["revoked_at"] or "")[:19] or "active")
        for t in tokens
    ]
    if not rows:
        _say("No tokens.")
        return 0
    print(format_table(("ID", "USER", "TOKEN", "CREATED", "REVOKED"), rows))
    return 0


def revoke(token_or_id: str | None, user: str | None) -> int:
    """Revoke one token (the whole token, its id from `token list`, or the prefix shown there), or every
    token of a user."""
    if (token_or_id is None) == (user is None):
        return _fail("token: give a TOKEN_OR_ID or --user NAME (one of them)")
    try:
        with db.session_scope(_database_url()) as session:
            if user is not None:
                count = store.revoke_user_tokens(session, user)
            elif token_or_id.isdigit():
                count = store.revoke_token_id(session, int(token_or_id))
                if count is None:
                    return _fail(f"token: no token with id {token_or_id}; `prunelab token list` shows them")
            else:
                count = store.revoke_token(session, token_or_id.removesuffix("..."))
    except store.StoreError as err:
        return _fail(str(err))
    if count == 0:
        return _fail("token: no active token matched (already revoked, or unknown)")
    _say(f"Revoked {count} token{'s' if count != 1 else ''}.")
    return 0
