"""Tokens mode (PRUNELAB_AUTH=tokens): 401 without a valid token, 403 for viewers and non-owners,
revoked tokens refused, a per-user limit on queued jobs. (The full matrix is tests/team.)"""
import pytest

from backend import store
from backend.auth import hash_token, new_token
from backend.db import session_scope


@pytest.fixture
def users(db_url):
    with session_scope(db_url) as s:
        tokens = {name: store.create_user(s, name, role)[1]
                  for name, role in (("ada", "admin"), ("uma", "user"), ("otto", "user"), ("vic", "viewer"))}
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
        from sqlalchemy import select

        from backend.models import ApiToken
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
    assert client.post("/api/jobs", json=spec_dict(), headers=bearer(users["otto"])).status_code == 201
