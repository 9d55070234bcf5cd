"""`prunelab submit` and `prunelab status` against a real team-mode server: `prunelab serve` as a subprocess
(API + its worker) on a temporary PRUNELAB_HOME with PRUNELAB_AUTH=tokens, users made with `prunelab user add`
on the same HOME. `submit --wait` runs a small digits job to the end."""

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml


class TeamServer:
    def __init__(self, home: Path, argv: list[str], prunelab, prunelab_env, port: int, wait_healthy):
        self.home = home
        self.prunelab_env = prunelab_env
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        added = prunelab("user", "add", "alice", env=prunelab_env(home))
        assert added.returncode == 0, added.stderr
        self.token = added.stdout.strip()
        self.viewer_token = prunelab("user", "add", "vera", "--viewer", env=prunelab_env(home)).stdout.strip()
        self.proc = subprocess.Popen(
            [*argv, "serve", "--port", str(self.port)],
            env=prunelab_env(home, PRUNELAB_AUTH="tokens"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
        wait_healthy(self.url, self.proc, lambda: "".join(self.lines))
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def env(self, **extra: str) -> dict[str, str]:
        return self.prunelab_env(self.home / "client-side", **extra)  # the client needs no HOME of the server's

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory, prunelab_argv, prunelab, prunelab_env, free_port, wait_healthy):
    served = TeamServer(
        tmp_path_factory.mktemp("team-home"), prunelab_argv, prunelab, prunelab_env, free_port(), wait_healthy
    )
    yield served
    served.stop()


@pytest.fixture(scope="module")
def spec(small_spec) -> dict:
    return small_spec(name="from-the-cli", tags=["cli"])


@pytest.fixture(scope="module")
def slow_spec(spec) -> dict:
    """Long enough to be cancelled while we wait on it."""
    return dict(spec, name="to-cancel", train={"epochs": 50}, schedule={"kind": "iterative", "rate": 0.2, "rounds": 20})


@pytest.fixture
def spec_file(tmp_path):
    def write(spec: dict, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec))
        return path

    return write


@pytest.fixture
def waiting_submit(server, prunelab_argv):
    """waiting_submit(spec_path, *more_args): `prunelab submit --wait` as a running subprocess (text pipes)."""

    def start(spec_path: Path, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [
                *prunelab_argv,
                "submit",
                str(spec_path),
                "--server",
                server.url,
                "--token",
                server.token,
                "--wait",
                *args,
            ],
            env=server.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start


def job_count(server: TeamServer) -> int:
    return server.http.get("/api/jobs").json()["total"]


def test_submit_wait_runs_a_job_to_the_end(server, spec_file, spec, prunelab):
    done = prunelab(
        "submit",
        str(spec_file(spec)),
        "--server",
        server.url,
        "--token",
        server.token,
        "--wait",
        "--interval",
        "0.5",
        env=server.env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr + "".join(server.lines[-30:])
    url = done.stdout.strip()
    found = re.fullmatch(re.escape(server.url) + r"/#/run/(\d+)", url)
    assert found, done.stdout
    job = server.http.get(f"/api/jobs/{found.group(1)}").json()
    assert job["status"] == "succeeded" and job["owner"] == "alice" and job["summary"]["steps"] == 3
    assert "100%" in done.stderr  # the progress bar reached the end
    assert f"job {job['id']} succeeded: 3 steps" in done.stderr


def test_status_table_and_one_job_with_env_settings(server, spec_file, spec, prunelab):
    submitted = prunelab(
        "submit",
        str(spec_file(dict(spec, name="listed"))),
        env=server.env(PRUNELAB_SERVER=server.url, PRUNELAB_TOKEN=server.token),
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().rsplit("/", 1)[1]

    table = prunelab("status", env=server.env(PRUNELAB_SERVER=server.url, PRUNELAB_TOKEN=server.viewer_token))
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["ID", "STATUS", "PROGRESS"]
    row = next(r.split() for r in rows if r.split()[0] == job_id)
    assert row[1] in ("queued", "running", "succeeded") and row[3] == "listed" and "alice" in row

    one = prunelab("status", job_id, "--server", server.url, "--token", server.token, env=server.env())
    assert one.returncode == 0, one.stderr
    details = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in one.stdout.splitlines())
    assert details["job"].startswith(f"{job_id}  listed") and details["owner"] == "alice"
    assert details["url"] == f"{server.url}/#/run/{job_id}"
    assert details["run"] == "lenet300_100 on digits, block / iterative"


def test_wait_exits_non_zero_when_the_job_is_cancelled(server, spec_file, slow_spec, waiting_submit):
    waiting = waiting_submit(spec_file(slow_spec), "--interval", "0.3")
    url = waiting.stdout.readline().strip()
    job_id = url.rsplit("/", 1)[1]
    assert server.http.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    _, stderr = waiting.communicate(timeout=120)
    assert waiting.returncode == 1
    assert stderr.strip().splitlines()[-1].startswith(f"error: job {job_id} cancelled")


def test_ctrl_c_stops_waiting_but_not_the_job(server, spec_file, slow_spec, waiting_submit):
    waiting = waiting_submit(spec_file(dict(slow_spec, name="left-alone")))
    job_id = waiting.stdout.readline().strip().rsplit("/", 1)[1]
    time.sleep(1.5)  # inside the waiting loop
    waiting.send_signal(signal.SIGINT)
    _, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 130, stderr
    assert f"the job goes on (`prunelab status {job_id}`)" in stderr
    assert server.http.get(f"/api/jobs/{job_id}").json()["status"] in ("queued", "running")
    assert server.http.post(f"/api/jobs/{job_id}/cancel").status_code == 200


def test_errors_are_one_clear_line(server, spec_file, spec, tmp_path, free_port):
    before = job_count(server)

    def error_of(*args: str) -> str:  # in-process (a subprocess each costs seconds on a busy machine)
        from typer.testing import CliRunner

        from cli.main import app

        result = CliRunner(env={k: None for k in os.environ if k.startswith("PRUNELAB_")}).invoke(app, list(args))
        assert result.exit_code == 2 and result.stdout == "", (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0]

    bad = spec_file(dict(spec, method={"kind": "block", "block_size": 0}), "bad.yaml")
    line = error_of("submit", str(bad), "--server", server.url, "--token", server.token)
    assert line.startswith(f"error: {bad}: method.block_size: ") and "1 to 4096" in line
    line = error_of("submit", str(spec_file(dict(spec, model="alexnet"), "model.yaml")), "--server", server.url)
    assert "model: " in line and "lenet300_100" in line  # names the allowed values
    line = error_of("submit", str(tmp_path / "missing.yaml"), "--server", server.url)
    assert "cannot read" in line

    line = error_of("submit", str(spec_file(spec)), "--server", server.url)
    assert line.startswith("error: HTTP 401 Unauthorized: ") and "PRUNELAB_TOKEN" in line
    line = error_of("submit", str(spec_file(spec)), "--server", server.url, "--token", "pl_revoked-or-made-up")
    assert line == (
        "error: HTTP 401 Unauthorized: invalid or revoked API token "
        "(give --token or set PRUNELAB_TOKEN; `prunelab user add` makes one)"
    )
    line = error_of("submit", str(spec_file(spec)), "--server", server.url, "--token", server.viewer_token)
    assert line.startswith("error: HTTP 403 Forbidden: ") and "viewer" in line
    line = error_of("status", "--status", "sleeping", "--server", server.url, "--token", server.token)
    assert line.startswith("error: HTTP 422 Unprocessable") and "query.status: " in line  # the API's 422 detail
    line = error_of("status", "999999", "--server", server.url, "--token", server.token)
    assert line == "error: HTTP 404 Not Found: job 999999 not found"
    line = error_of("status", "--server", f"http://127.0.0.1:{free_port()}")
    assert line.startswith("error: cannot reach http://127.0.0.1:")

    assert job_count(server) == before  # nothing was stored by any of these


def test_team_topology_postgres_redis_api_without_worker_and_a_separate_worker(
    postgres_url, redis_url, tmp_path, spec_file, spec, prunelab, prunelab_argv, prunelab_env, free_port, wait_healthy
):
    """What docker-compose.yml runs, without docker: `prunelab db upgrade`, `prunelab serve --no-worker` and
    `prunelab worker --queues cpu,default` as separate processes on Postgres + Redis, sharing ARTIFACT_DIR."""
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"pl_topo_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = prunelab_env(
        tmp_path / "home",
        PRUNELAB_AUTH="tokens",
        PRUNELAB_ARTIFACT_DIR=str(tmp_path / "artifacts"),
        PRUNELAB_DATABASE_URL=f"{postgres_url}?options=-csearch_path%3D{schema}",
        PRUNELAB_BROKER_URL=redis_url.rsplit("/", 1)[0] + "/14",
    )  # a Redis db of its own
    procs = []
    try:
        assert prunelab("db", "upgrade", env=env).returncode == 0
        token = prunelab("user", "add", "ops", "--admin", env=env).stdout.strip()
        for args in (
            ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
            ["worker", "--queues", "cpu,default"],
        ):
            procs.append(
                subprocess.Popen([*prunelab_argv, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        wait_healthy(url, procs[0], lambda: "the API did not start", timeout_s=60)
        done = prunelab(
            "submit",
            str(spec_file(spec)),
            "--server",
            url,
            "--token",
            token,
            "--wait",
            env=prunelab_env(tmp_path / "client"),
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        job_id = done.stdout.strip().rsplit("/", 1)[1]
        auth = {"Authorization": f"Bearer {token}"}
        job = httpx.get(f"{url}/api/jobs/{job_id}", headers=auth).json()
        assert job["status"] == "succeeded" and job["owner"] == "ops"
        # The worker wrote the checkpoint; the API serves it from the shared artifact directory.
        checkpoint = httpx.get(f"{url}/api/jobs/{job_id}/checkpoint", headers=auth)
        assert checkpoint.status_code == 200 and len(checkpoint.content) > 1000
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_submit_of_a_sweep_queues_one_group_and_waits_for_each_job(server, spec_file, spec, prunelab):
    sweep = {**spec, "name": "sweep", "sweep": {"seed": [0, 1]}}
    done = prunelab(
        "submit", str(spec_file(sweep)), "--server", server.url, "--token", server.token, "--wait",
        "--interval", "0.5", env=server.env(), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + "".join(server.lines[-30:])
    lines = done.stdout.strip().splitlines()
    found = re.fullmatch(re.escape(server.url) + r"/#/compare\?group=(\d+)", lines[0])
    assert found and len(lines) == 3, done.stdout
    group = server.http.get(f"/api/groups/{found.group(1)}").json()
    assert group["name"] == "sweep" and group["counts"]["succeeded"] == 2
    assert lines[1].endswith("sweep [seed=0]") and lines[2].endswith("sweep [seed=1]")
