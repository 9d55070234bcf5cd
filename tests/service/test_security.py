"""Browser-facing protections: allowed hosts (DNS rebinding), same-origin writes with auth off, security
headers on every response, the limit on failed authentications per client, and `access_token` kept out of
a real uvicorn server's access log."""

import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from backend import store
from backend.api import allowed_hosts
from backend.api.security import CSP, RedactTokens, default_allowed_hosts
from backend.db import session_scope


@pytest.fixture
def db_url(tmp_path):
    """SQLite only (nothing here depends on the database): overrides the parametrised fixture of conftest."""
    from backend.db import dispose_engines, upgrade

    url = f"sqlite:///{tmp_path / 'security.sqlite'}"
    upgrade(url)
    yield url
    dispose_engines()


def test_default_allowed_hosts(api_settings):
    assert default_allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "::1"]
    assert default_allowed_hosts("localhost") == ["localhost", "127.0.0.1", "::1"]
    assert default_allowed_hosts("0.0.0.0") == ["*"] and default_allowed_hosts("::") == ["*"]
    assert default_allowed_hosts("lab.example.org") == ["lab.example.org"]
    assert allowed_hosts(api_settings.model_copy(update={"allowed_hosts": ""})) == ["127.0.0.1", "localhost", "::1"]
    given = api_settings.model_copy(update={"allowed_hosts": " lab.example.org, 10.0.0.5 "})
    assert allowed_hosts(given) == ["lab.example.org", "10.0.0.5"]


def test_foreign_host_is_400(make_client):
    product = make_client(allowed_hosts="")  # the product default for a 127.0.0.1 bind
    r = product.get("/api/health")  # TestClient's Host: testserver, not an allowed name
    assert r.status_code == 400
    body = r.json()
    assert "PRUNELAB_ALLOWED_HOSTS" in body["detail"] and body["errors"][0]["field"] == "host"
    assert set(body["errors"][0]) == {"field", "message", "allowed", "value"}
    assert r.headers["content-security-policy"] == CSP  # refusals carry the headers too
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
        assert product.get("/api/health", headers={"host": host}).status_code == 200, host
    assert product.get("/api/health", headers={"host": "rebound.attacker.example:8000"}).status_code == 400
    anywhere = make_client(allowed_hosts="", host="0.0.0.0")
    assert anywhere.get("/api/health", headers={"host": "lab.example.org"}).status_code == 200


def test_cross_origin_writes_refused_with_auth_off(client, spec_dict, db_url):
    refused = [
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver:9999"},  # another port is another origin
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ]
    for headers in refused:
        r = client.post("/api/jobs", json=spec_dict(), headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["errors"][0]["field"] == "origin"
    job = client.post("/api/jobs", json=spec_dict(), headers={"origin": "http://testserver"})
    assert job.status_code == 201  # the page itself
    job_id = job.json()["id"]
    assert client.post(f"/api/jobs/{job_id}/cancel", headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert client.delete(f"/api/jobs/{job_id}", headers={"origin": "http://evil.example"}).status_code == 403
    assert (
        client.patch(f"/api/jobs/{job_id}", json={"notes": "x"}, headers={"origin": "http://evil.example"}).status_code
        == 403
    )
    assert client.post("/api/jobs", json=spec_dict(), headers={"sec-fetch-site": "same-origin"}).status_code == 201
    assert client.post("/api/jobs", json=spec_dict()).status_code == 201  # curl, the prunelab command
    assert client.get("/api/jobs", headers={"origin": "http://evil.example"}).status_code == 200  # reads pass
    with session_scope(db_url) as s:
        assert store.list_jobs(s)[1] == 3 and store.get_job(s, job_id).status == "queued"


def test_with_tokens_the_token_decides(make_client, db_url, spec_dict):
    with session_scope(db_url) as s:
        _, token = store.create_user(s, "ada", "user")
    client = make_client(auth="tokens")
    headers = {"origin": "http://elsewhere.example", "authorization": f"Bearer {token}"}
    assert client.post("/api/jobs", json=spec_dict(), headers=headers).status_code == 201  # a browser sends no token
    assert client.post("/api/jobs", json=spec_dict(), headers={"origin": "http://elsewhere.example"}).status_code == 401


def test_security_headers_on_every_response(make_client, spec_dict):
    client = make_client(max_request_bytes=500)
    responses = [
        client.get("/"),
        client.get("/static/vendor/plotly.min.js"),
        client.get("/api/jobs"),
        client.get("/api/jobs/12345"),
        client.get("/api/nothing"),
        client.post("/api/jobs", json=spec_dict(name="x" * 200, tags=["t" * 50] * 20)),  # 413
        client.get("/openapi.json"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 404, 413, 200]
    for r in responses:
        assert r.headers["content-security-policy"] == CSP
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self';" in CSP and "unsafe-eval" not in CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["x-frame-options"] == "DENY"


def test_failed_authentications_are_limited_per_client(make_client, db_url):
    with session_scope(db_url) as s:
        _, token = store.create_user(s, "ada", "user")
    app = make_client(auth="tokens").app
    guesser = TestClient(app, client=("203.0.113.7", 50000))
    codes = [guesser.get("/api/jobs", headers={"authorization": f"Bearer pl_guess-{i}"}).status_code for i in range(20)]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}, codes
    r = guesser.get("/api/jobs", headers={"authorization": f"Bearer {token}"})  # even a right token waits now
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert "too many failed authentications" in r.json()["detail"]
    assert guesser.get("/api/jobs", params={"access_token": "pl_guess"}).status_code == 429  # the query token too
    assert guesser.post("/api/jobs", json={}, headers={"authorization": "Bearer pl_guess"}).status_code == 429
    neighbour = TestClient(app, client=("203.0.113.8", 50000))  # another address is not affected
    assert neighbour.get("/api/jobs", headers={"authorization": f"Bearer {token}"}).status_code == 200
    assert neighbour.get("/api/jobs", headers={"authorization": "Bearer pl_wrong"}).status_code == 401
    guesser.close()
    neighbour.close()


def test_redaction_filter_on_record_args():
    import logging

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s"',
        ("1.2.3.4", "GET", "/api/events?job_id=1&access_token=pl_SECRET"),
        None,
    )
    RedactTokens().filter(record)
    assert "pl_SECRET" not in record.getMessage() and "access_token=[redacted]" in record.getMessage()
    mapping = logging.LogRecord("x", logging.INFO, __file__, 1, "%(path)s", None, None)
    mapping.args = {"path": "/x?access_token=pl_SECRET"}
    RedactTokens().filter(mapping)
    assert mapping.getMessage() == "/x?access_token=[redacted]"


def test_access_token_never_in_the_access_log(db_url, tmp_path, free_port, prunelab_env, wait_healthy):
    with session_scope(db_url) as s:
        _, token = store.create_user(s, "ada", "user")
    port = free_port()
    env = prunelab_env(tmp_path, PRUNELAB_DATABASE_URL=db_url, PRUNELAB_AUTH="tokens")
    log_path = tmp_path / "uvicorn.log"
    argv = [sys.executable, "-m", "uvicorn", "backend.api:create_app", "--factory", "--port", str(port)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc, log_path.read_text)
        assert httpx.get(f"{base}/api/jobs", params={"access_token": token}).status_code == 200
        assert httpx.get(f"{base}/api/events?max_seconds=0.1&access_token={token}&x=1").status_code == 200
        assert httpx.get(f"{base}/api/jobs", params={"access_token": "pl_wrong-guess"}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    log = log_path.read_text()
    assert "GET /api/jobs?access_token=[redacted] HTTP/1.1" in log, log
    assert "access_token=[redacted]&x=1" in log
    assert token not in log and "pl_wrong-guess" not in log


def test_serve_on_all_interfaces_answers_any_host(tmp_path, free_port, prunelab_argv, prunelab_env, wait_healthy):
    """`prunelab serve --host 0.0.0.0` (the team server's command): the app follows the bind address."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    argv = [*prunelab_argv, "serve", "--no-worker", "--host", "0.0.0.0", "--port", str(port)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, env=prunelab_env(tmp_path), stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc, log_path.read_text)
        r = httpx.get(f"{base}/api/health", headers={"host": f"lab.example.org:{port}"})
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
