"""Tokens mode (PRUNELAB_AUTH=tokens): 401 without a valid token, 403 for viewers and non-owners,
revoked tokens refused, a per-user limit on queued jobs. (The full matrix is tests/team.)"""

import pytest
from sqlalchemy import select

from backend import store
from backend.auth import hash_token, new_token
from backend.db import session_scope
from backend.models import ApiToken, User


@pytest.fixture
def users(db_url):
    with session_scope(db_url) as s:
        tokens = {
            name: store.create_user(s, name, role)[1]
            for name, role in (("ada", "admin"), ("uma", "user"), ("otto", "user"), ("vic", "viewer"))
        }
    return tokens


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_random_and_only_hashes_stored(db_url, users):
    assert new_token() != new_token() and len(new_token()) > 40
    with session_scope(db_url) as s:
        listed = {u["name"]: u for u in store.list_users(s)}
        assert listed["vic"]["role"] == "viewer" and listed["uma"]["active_tokens"] == 1
        assert store.user_for_token(s, users["uma"]).name == "uma"
        assert store.user_for_token(s, users["uma"] + "x") is None
        hashes = set(s.scalars(select(ApiToken.token_hash)))
    assert hash_token(users["uma"]) in hashes and users["uma"] not in hashes
    with session_scope(db_url) as s, pytest.raises(store.StoreError, match="allowed: admin, user, viewer"):
        store.create_user(s, "x", "root")


def test_reading_needs_a_token_unless_public(make_client, users):
    client = make_client(auth="tokens")
    assert client.get("/api/jobs").status_code == 401
    assert client.get("/api/jobs", headers=bearer("nope")).status_code == 401
    assert client.get("/api/jobs", headers=bearer(users["vic"])).status_code == 200
    assert client.get("/api/health").status_code == 200  # for load balancers
    # EventSource / download links cannot set headers: ?access_token= works for reads only
    assert client.get("/api/jobs", params={"access_token": users["vic"]}).status_code == 200
    assert client.get("/api/jobs", params={"access_token": "bad"}).status_code == 401
    assert client.post("/api/jobs", params={"access_token": users["uma"]}, json={}).status_code == 401
    public = make_client(auth="tokens", public_read=True)
    assert public.get("/api/jobs").status_code == 200
    assert public.get("/api/catalog").status_code == 200
    assert public.post("/api/jobs", json={}).status_code == 401


def test_writes_owner_admin_viewer(make_client, users, spec_dict):
    client = make_client(auth="tokens")
    assert client.post("/api/jobs", json=spec_dict()).status_code == 401
    r = client.post("/api/jobs", json=spec_dict(), headers=bearer(users["vic"]))
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    assert r.json()["errors"] == [{"field": None, "message": r.json()["detail"], "allowed": None, "value": None}]
    job = client.post("/api/jobs", json=spec_dict(), headers=bearer(users["uma"])).json()
    assert job["owner"] == "uma"
    assert client.post(f"/api/jobs/{job['id']}/cancel", headers=bearer(users["otto"])).status_code == 403
    assert client.delete(f"/api/jobs/{job['id']}", headers=bearer(users["otto"])).status_code == 403
    assert client.post(f"/api/jobs/{job['id']}/cancel", headers=bearer(users["vic"])).status_code == 403
    assert client.post(f"/api/jobs/{job['id']}/cancel", headers=bearer(users["uma"])).status_code == 200
    assert client.post(f"/api/jobs/{job['id']}/retry", headers=bearer(users["otto"])).status_code == 403
    assert client.post(f"/api/jobs/{job['id']}/retry", headers=bearer(users["ada"])).status_code == 200
    other = client.post("/api/jobs", json=spec_dict(), headers=bearer(users["otto"])).json()
    listed = client.get("/api/jobs", params={"owner": "otto"}, headers=bearer(users["vic"])).json()
    assert [j["id"] for j in listed["items"]] == [other["id"]]
    assert client.delete(f"/api/jobs/{other['id']}", headers=bearer(users["ada"])).status_code == 200


def test_revoked_token_refused(make_client, users, db_url):
    client = make_client(auth="tokens")
    assert client.get("/api/jobs", headers=bearer(users["otto"])).status_code == 200
    with session_scope(db_url) as s:
        assert store.revoke_token(s, users["otto"][:12]) == 1
        assert store.revoke_token(s, users["otto"]) == 0  # already revoked
    assert client.get("/api/jobs", headers=bearer(users["otto"])).status_code == 401
    assert client.get("/api/jobs", headers=bearer(users["uma"])).status_code == 200


def test_per_user_queue_limit(make_client, users, spec_dict):
    client = make_client(auth="tokens", max_queued_jobs_per_user=2)
    for _ in range(2):
        assert client.post("/api/jobs", json=spec_dict(), headers=bearer(users["uma"])).status_code == 201
    r = client.post("/api/jobs", json=spec_dict(), headers=bearer(users["uma"]))
    assert r.status_code == 429 and "queued or running" in r.json()["detail"]
    [error] = r.json()["errors"]
    assert error["allowed"] == "at most 2 queued or running jobs per user"
    assert client.post("/api/jobs", json=spec_dict(), headers=bearer(users["otto"])).status_code == 201


def test_revoke_by_short_prefix(db_url, users):
    with session_scope(db_url) as s:
        uma = s.scalar(select(User).where(User.name == "uma"))
        second = store.add_token(s, uma)
    with session_scope(db_url) as s, pytest.raises(store.StoreError, match="at least 6 characters"):
        store.revoke_token(s, "pl_a")  # "pl_" starts every token
    # the shortest prefix (at least 6 characters) that tells this token apart from every other one
    others = [*users.values(), second]
    target = users["vic"]
    length = next(n for n in range(6, 11) if not any(t != target and t.startswith(target[:n]) for t in others))
    with session_scope(db_url) as s:
        assert store.revoke_token(s, target[:length]) == 1
        assert store.user_for_token(s, target) is None
        assert store.user_for_token(s, second) is not None  # nothing else revoked
        assert store.revoke_token(s, target[:length]) == 0  # already revoked: no active match
        assert store.revoke_token(s, "pl_~~~~") == 0  # matches nothing ("~" is never in a token)


def test_short_prefix_matching_two_tokens_is_refused(db_url, users):
    with session_scope(db_url) as s:
        uma = s.scalar(select(User).where(User.name == "uma"))
        for _ in range(2):
            store.add_token(s, uma)
        rows = s.scalars(select(ApiToken).where(ApiToken.user_id == uma.id)).all()
        # Give two tokens the same first 8 characters (their stored prefixes differ after that).
        rows[0].prefix, rows[1].prefix = "pl_SAME1a", "pl_SAME1b"
    with session_scope(db_url) as s:
        with pytest.raises(store.StoreError, match=r"'pl_SAME1' matches 2 active tokens \(pl_SAME1a, pl_SAME1b\)"):
            store.revoke_token(s, "pl_SAME1")
        assert store.revoke_token(s, "pl_SAME1b") == 1
        assert store.revoke_token(s, "pl_SAME1") == 1  # only one active token left with that start


def test_401_is_the_error_body_with_a_challenge(make_client, users):
    client = make_client(auth="tokens")
    for r in (client.get("/api/jobs"), client.get("/api/jobs", headers=bearer("nope"))):
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        body = r.json()
        assert "token" in body["detail"] and body["errors"][0]["message"] == body["detail"]
    # a scheme other than Bearer is no token at all
    r = client.get("/api/jobs", headers={"Authorization": f"Basic {users['vic']}"})
    assert r.status_code == 401 and "required" in r.json()["detail"]
    assert client.get("/api/jobs", headers={"Authorization": f"bearer  {users['vic']} "}).status_code == 200


def test_me(make_client, users):
    assert make_client().get("/api/me").json() == {"name": None, "role": "admin", "auth": "off"}
    client = make_client(auth="tokens")
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me", headers=bearer("pl_never-issued")).status_code == 401
    for name, role in (("ada", "admin"), ("uma", "user"), ("vic", "viewer")):
        assert client.get("/api/me", headers=bearer(users[name])).json() == {
            "name": name,
            "role": role,
            "auth": "tokens",
        }
    public = make_client(auth="tokens", public_read=True)
    assert public.get("/api/me").json() == {"name": None, "role": "anonymous", "auth": "tokens"}
    assert public.get("/api/me", headers=bearer("pl_never-issued")).status_code == 401
