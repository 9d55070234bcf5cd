"""Liveness in the database: the lease a worker holds on its job, the worker's heartbeat, the reaper.

A worker claims a job (backend.store.claim_job) and gets an attempt number and a lease of
PRUNELAB_LEASE_S seconds; JobLease renews it every lease_s / 3 from a thread. Every write of the job is
fenced by the attempt, so a worker that lost its lease (it was cut off, or presumed dead and its job
handed to another) can no longer write anything, and stops at its next check. Every worker's main process
and `prunelab serve` run a LeaseKeeper: it re-queues jobs whose lease expired (and enqueues them again), so
a killed worker's job resumes within lease_s + lease_s / 3, whatever the broker's visibility timeout. A
worker's LeaseKeeper also keeps its row in the workers table (heartbeat, device) and publishes the worker's
catalog there (the models and datasets it can run), which the API checks submitted specs against, and
publishes it again when the data directory changes (a dataset or an image folder added).

Nothing here imports torch: `serve` runs the reaper without the engine (the device probe runs torch in a
subprocess, so the worker's main process never initialises CUDA before it forks its pool).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

from sqlalchemy.orm import sessionmaker

from backend import store
from backend.db import make_engine, session_scope
from core.settings import Settings

log = logging.getLogger(__name__)

WORKER_NAME_ENV = "PRUNELAB_WORKER_NAME"
# Rows of workers not heard from for this long are removed by the reaper (every worker start adds one).
FORGET_WORKERS_S = 7 * 24 * 3600

# Set by the worker's main process when a warm shutdown begins (SIGTERM: `serve` stopping it, or serve
# killed and PR_SET_PDEATHSIG firing). Shared memory made before the pool forks, so the pool processes
# that run the jobs see it; written from a signal handler, hence a raw byte and no lock.
_shutting_down = multiprocessing.RawValue("b", 0)


def begin_shutdown() -> None:
    _shutting_down.value = 1


def shutting_down() -> bool:
    return bool(_shutting_down.value)


def worker_name() -> str:
    """This worker's name, "prunelab-PID@host" (the PID of its main process), shared by its pool processes."""
    return os.environ.get(WORKER_NAME_ENV) or f"prunelab-{os.getpid()}@{socket.gethostname()}"


class JobLease:
    """`with JobLease(job_id, attempt, settings) as lease:` renews the lease every lease_s / 3 in a daemon
    thread. `lease.lost` is set when a renewal finds another attempt holding the job (or the job not
    running), or when the database has been unreachable for a whole lease period."""

    def __init__(self, job_id: int, attempt: int, settings: Settings):
        self.job_id = job_id
        self.attempt = attempt
        self.settings = settings
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-job-{job_id}", daemon=True)

    def __enter__(self) -> JobLease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        lease_s = self.settings.lease_s
        last_ok = time.monotonic()
        while not self._stop.wait(self.settings.heartbeat_s):
            try:
                with session_scope(self.settings.database_url) as session:
                    held = store.renew_lease(session, self.job_id, self.attempt, lease_s)
            except Exception:
                log.warning("job %s: could not renew the lease", self.job_id, exc_info=True)
                held = time.monotonic() - last_ok < lease_s
            else:
                last_ok = time.monotonic()
            if not held:
                log.warning("job %s: attempt %d lost its lease; abandoning the job", self.job_id, self.attempt)
                self.lost.set()
                return


def reap(settings: Settings, enqueue: Callable[[int, str], object] | None = None, sessions=None) -> list[int]:
    """Re-queue every running job whose lease expired, each in its own transaction, and enqueue it again
    inside that transaction: a job is queued in the database only if its message was sent (an enqueue that
    fails rolls the re-queue back, and the next round tries again). A worker that takes the message before
    the commit waits for it on the job's row. Returns the ids re-queued or cancelled by this call."""
    if enqueue is None:
        from backend.broker import enqueue_job

        def enqueue(job_id: int, queue: str) -> object:
            return enqueue_job(job_id, queue, settings)

    with session_scope(settings.database_url, sessions) as session:
        expired = store.expired_leases(session)
    reaped = []
    for job_id, attempt, queue in expired:
        try:
            with session_scope(settings.database_url, sessions) as session:
                status = store.requeue_expired(session, job_id, attempt)
                if status == "queued":
                    enqueue(job_id, queue)
        except Exception:
            log.warning("job %s: could not re-queue it after its lease expired", job_id, exc_info=True)
            continue
        if status is not None:
            log.info("job %s: lease of attempt %d expired; %s", job_id, attempt, status)
            reaped.append(job_id)
    return reaped


def probe_device() -> dict:
    """device, gpu_name, gpu_memory_bytes, torch_version of this machine, from torch in a subprocess."""
    code = (
        "import json, torch\n"
        "info = {'device': 'cpu', 'gpu_name': None, 'gpu_memory_bytes': None, 'torch_version': torch.__version__}\n"
        "if torch.cuda.is_available():\n"
        "    p = torch.cuda.get_device_properties(0)\n"
        "    info.update(device='cuda', gpu_name=p.name, gpu_memory_bytes=int(p.total_memory))\n"
        "print(json.dumps(info))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "torch probe failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe_catalog(data_dir: str) -> dict:
    """worker.engine.catalog.worker_catalog(data_dir), layers included, from torch in a subprocess (about 5 s
    on a 2-core CPU: every torchvision model is built on the meta device to list its layers)."""
    code = (
        "import json, sys\n"
        "from worker.engine.catalog import worker_catalog\n"
        "print(json.dumps(worker_catalog(sys.argv[1], layers=True)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(data_dir)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "catalog probe failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def data_dir_signature(data_dir: str, depth: int = 3) -> tuple:
    """Names and modification times of the data directory's folders `depth` levels down (NAME/train/CLASS):
    it changes when a dataset or an image folder is added, removed or given new classes."""
    out = []

    def walk(path: str, level: int) -> None:
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    out.append((entry.path, entry.stat(follow_symlinks=False).st_mtime_ns))
                    if level < depth and entry.is_dir(follow_symlinks=False):
                        walk(entry.path, level + 1)
        except OSError:
            pass

    walk(str(data_dir), 1)
    return tuple(sorted(out))


class LeaseKeeper:
    """A daemon thread ticking every lease_s / 3: reaps expired leases and, for a worker (`worker` given:
    name, queues, concurrency), registers it, beats its heartbeat and fills in its device and its catalog
    (`catalog`: a function returning it; by default probe_catalog of the data directory). Its own unpooled
    engine: the worker's main process forks pool processes at any time, and must not hand them an open
    connection."""

    def __init__(
        self,
        settings: Settings,
        worker: dict | None = None,
        probe: Callable[[], dict] = probe_device,
        catalog: Callable[[], dict] | None = None,
    ):
        self.settings = settings
        self.worker = worker
        self.probe = probe
        self.catalog = catalog or (lambda: probe_catalog(str(settings.data_dir)))
        self._catalog: dict | None = None
        self._data_signature: tuple | None = None  # of the data directory when the catalog was last computed
        self._publishing = threading.Lock()
        self._engine = make_engine(settings.database_url, pooled=False)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._device: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> LeaseKeeper:
        if self.worker is not None:
            self._register()
            threading.Thread(target=self._fill_device, name="device-probe", daemon=True).start()
            threading.Thread(target=self._publish_catalog, name="catalog-probe", daemon=True).start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.worker is not None:
            try:
                with session_scope(sessions=self._sessions) as session:
                    store.mark_worker_stopped(session, self.worker["name"])
            except Exception:
                log.warning("could not mark worker %s stopped", self.worker["name"], exc_info=True)
        self._engine.dispose()

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _register(self) -> None:
        w = self.worker
        with session_scope(sessions=self._sessions) as session:
            store.register_worker(
                session,
                w["name"],
                host=socket.gethostname(),
                pid=os.getpid(),
                queues=w["queues"],
                concurrency=w["concurrency"],
                **self._device,
            )
            if self._catalog is not None:
                store.set_worker_catalog(session, w["name"], self._catalog)

    def _fill_device(self) -> None:
        try:
            self._device = self.probe()
            with session_scope(sessions=self._sessions) as session:
                store.update_worker(session, self.worker["name"], **self._device)
        except Exception:
            log.warning("could not find out this worker's device", exc_info=True)

    def _publish_catalog(self) -> None:
        if not self._publishing.acquire(blocking=False):
            return
        try:
            self._data_signature = data_dir_signature(self.settings.data_dir)
            catalog = self.catalog()
            with session_scope(sessions=self._sessions) as session:
                store.set_worker_catalog(session, self.worker["name"], catalog)
            self._catalog = catalog
        except Exception:
            log.warning("could not publish this worker's catalog", exc_info=True)
        finally:
            self._publishing.release()

    def _refresh_catalog(self) -> None:
        """Publish the catalog again (in the background) when the data directory changed since it was made."""
        if self._data_signature is None or self._publishing.locked():
            return
        if data_dir_signature(self.settings.data_dir) != self._data_signature:
            threading.Thread(target=self._publish_catalog, name="catalog-probe", daemon=True).start()

    def tick(self) -> None:
        """One round: heartbeat (registering again if the row went away), then reap."""
        if self.worker is not None:
            with session_scope(sessions=self._sessions) as session:
                alive = store.worker_heartbeat(session, self.worker["name"])
            if not alive:
                self._register()
            self._refresh_catalog()
        reap(self.settings, sessions=self._sessions)
        with session_scope(sessions=self._sessions) as session:
            store.forget_workers(session, FORGET_WORKERS_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.warning("lease keeper: database round failed", exc_info=True)
            self._stop.wait(self.settings.heartbeat_s)
