"""API latency benchmark: 1000 stored jobs (with steps and masks), uvicorn on loopback, 50 concurrent clients.

    .venv/bin/python bench/bench_api.py [--seconds 30] [--clients 50] [--think-ms 100] [--database-url URL]

Phases (each `--seconds` long, 50 clients): list (GET /api/jobs, 50 per page, random filters/sort), detail
(GET /api/jobs/{id}), the mask of a 4096 x 4096 fine-grained layer (density grid, <= 256 x 256 cells),
then that mask for a single client (10 s): one user opening a heatmap.
Each client waits --think-ms between its requests (a dashboard user, not a flood); --think-ms 0 gives a
closed loop that measures throughput. Prints p50/p95/p99 per endpoint and the targets, and the server
process's CPU time per request (user + system, from /proc): unlike throughput it barely moves when other
programs share the cores, so it is the number to compare two versions by on a busy machine.
"""

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from fake_steps import make_step  # noqa: E402

from backend import store  # noqa: E402
from backend.db import dispose_engines, session_scope, upgrade  # noqa: E402
from core.spec import parse_spec  # noqa: E402

LENET = {"fc1": (300, 64), "fc2": (100, 300), "fc3": (10, 100)}
TARGETS = {"list": 50.0, "detail": 50.0, "mask 4096x4096": 100.0, "mask, 1 client": 100.0}


def populate(database_url: str, n_jobs: int, steps_per_job: int) -> tuple[list[int], int]:
    upgrade(database_url)
    rng = np.random.default_rng(0)
    methods = [{"kind": "block", "block_size": 2}, {"kind": "magnitude"}, {"kind": "block", "block_size": 4}]
    statuses = ["succeeded", "succeeded", "failed", "cancelled", "running", "queued"]
    ids = []
    step_cache: dict = {}  # the same few step dicts serve every job: storing, not encoding, is measured
    for i in range(n_jobs):
        spec = parse_spec(
            {
                "name": f"run-{i:04d}",
                "model": "lenet300_100",
                "dataset": "digits",
                "method": methods[i % 3],
                "schedule": {"kind": "iterative", "rate": 0.2, "rounds": steps_per_job},
                "tags": [f"group{i % 10}", "bench"],
            }
        )
        with session_scope(database_url) as s:
            job = store.create_job(s, spec)
            store.set_baseline(s, job.id, {"accuracy": 0.97})
            block = (1, 1) if methods[i % 3]["kind"] == "magnitude" else (methods[i % 3]["block_size"],) * 2
            for k in range(steps_per_job):
                key = (k, block, i % 7)
                if key not in step_cache:
                    sparsity = 1 - 0.8 ** (k + 1)
                    step_cache[key] = make_step(
                        k, LENET, sparsity, block, accuracy=0.97 - sparsity * 0.05 * rng.random(), rng=rng
                    )
                store.add_step(s, job.id, step_cache[key])
            store.set_status(s, job.id, statuses[i % len(statuses)])
            ids.append(job.id)
    with session_scope(database_url) as s:
        big = store.create_job(
            s,
            parse_spec(
                {
                    "name": "big-layer",
                    "model": "lenet300_100",
                    "dataset": "digits",
                    "method": {"kind": "magnitude"},
                    "schedule": {"kind": "oneshot"},
                }
            ),
        )
        store.add_step(s, big.id, make_step(0, {"big": (4096, 4096)}, 0.9, (1, 1), rng=rng))
        big_id = big.id
    dispose_engines()
    return ids, big_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive GET client on asyncio streams. The load generator shares the machine
    with the server, so it must cost far less per request than httpx does."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: application/json\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def run_phase(port: int, make_url, clients: int, seconds: float, think_s: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def one_client(seed: int):
        nonlocal errors
        rnd = random.Random(seed)
        conn = KeepAliveClient("127.0.0.1", port)
        await asyncio.sleep(rnd.random() * max(think_s, 0.01))  # spread the starts
        while time.perf_counter() < deadline:
            url = make_url(rnd)
            t0 = time.perf_counter()
            try:
                status, _ = await conn.get(url)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors += 1
                print(f"request failed: {url}: {exc!r}", file=sys.stderr)
                await conn.close()
                continue
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors += 1
            if think_s:
                await asyncio.sleep(think_s * (0.5 + rnd.random()))
        await conn.close()

    await asyncio.gather(*(one_client(i) for i in range(clients)))
    return latencies, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=5, help="steps per job")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--mask-seconds", type=float, default=None, help="default: --seconds")
    ap.add_argument("--think-ms", type=float, default=100, help="pause of each client between requests")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--database-url", default=None, help="default: a new SQLite file in a temp dir")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="prunelab-bench-") as tmp:
        database_url = args.database_url or f"sqlite:///{Path(tmp) / 'prunelab.sqlite'}"
        t0 = time.perf_counter()
        ids, big_id = populate(database_url, args.jobs, args.steps)
        print(f"stored {len(ids)} jobs x {args.steps} steps + one 4096x4096 layer in {time.perf_counter() - t0:.1f} s")

        port = free_port()
        env = {**os.environ, "PRUNELAB_HOME": tmp, "PRUNELAB_DATABASE_URL": database_url}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "backend.api:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--workers",
                str(args.workers),
                "--timeout-keep-alive",
                "60",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            else:
                raise SystemExit("server did not start")

            sorts = ["-created_at", "name", "-best_accuracy", "last_sparsity"]
            filters = [{}, {"status": "succeeded"}, {"method": "block"}, {"tag": "group3"}, {}]

            def list_url(r):
                params = {
                    "sort": r.choice(sorts),
                    "limit": 50,
                    "offset": r.choice([0, 0, 50, 400]),
                    **r.choice(filters),
                }
                return "/api/jobs?" + "&".join(f"{k}={v}" for k, v in params.items())

            mask_url = f"/api/jobs/{big_id}/layers/big/mask"
            phases = [
                ("list", list_url, args.seconds, args.clients),
                ("detail", lambda r: f"/api/jobs/{r.choice(ids)}", args.seconds, args.clients),
                ("mask 4096x4096", lambda r: mask_url, args.mask_seconds or args.seconds, args.clients),
                # one user opening heatmaps: the latency of a single request on an otherwise idle server
                ("mask, 1 client", lambda r: mask_url, min(10.0, args.mask_seconds or args.seconds), 1),
            ]
            cells = httpx.get(f"{base}/api/jobs/{big_id}/layers/big/mask").json()["shape"]
            rows = []
            for name, make_url, seconds, clients in phases:
                cpu0 = cpu_seconds(server.pid)
                lat, errors = asyncio.run(run_phase(port, make_url, clients, seconds, args.think_ms / 1000))
                cpu_ms = (cpu_seconds(server.pid) - cpu0) * 1000 / max(len(lat), 1)
                rows.append(
                    (name, len(lat), len(lat) / seconds, pct(lat, 50), pct(lat, 95), pct(lat, 99), max(lat), errors)
                    + (cpu_ms,)
                )
        finally:
            server.terminate()
            server.wait(timeout=10)

    print(
        f"\n{args.clients} clients, {args.think_ms:.0f} ms think time, {args.seconds:.0f} s per phase, "
        f"{args.workers} uvicorn worker(s), {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}, "
        f"database {database_url.split(':')[0]}, mask cells {cells[0]}x{cells[1]}"
    )
    print(
        f"{'endpoint':<16}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}{'cpu ms/req':>11}  target p99"
    )
    ok = True
    for name, n, rps, p50, p95, p99, mx, errors, cpu_ms in rows:
        target = TARGETS[name]
        met = p99 < target and errors == 0
        ok &= met
        print(
            f"{name:<16}{n:>9}{rps:>8.0f}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}{mx:>9.1f}{errors:>8}{cpu_ms:>11.2f}  "
            f"< {target:.0f} ms {'ok' if met else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
