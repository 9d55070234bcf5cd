"""`prunelab serve` (API + one worker process it owns) and `prunelab worker`.

serve: migrate the database, start a Celery worker as a child process, run uvicorn in this process, and
on Ctrl-C / SIGTERM stop uvicorn, then the worker (warm shutdown: running jobs are released; then SIGKILL of
its whole process group if it lingers), so no worker is left behind. The worker runs in its own session,
so the terminal's Ctrl-C reaches only serve, which stops things in order.

Liveness is in the database (worker/lease.py): serve runs the reaper that re-queues jobs whose worker's
lease expired. The embedded broker (kombu's SQLAlchemy transport on a SQLite file) also keeps a killed
worker's taken message invisible for good, so serve empties its queues and re-enqueues every unfinished job
when it starts its worker; the task resumes a job after its last stored step, and skips a job another
worker still holds.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from datetime import timedelta

from core.queues import QUEUES, is_sqlalchemy_broker, parse_queues
from core.settings import Settings, get_settings

WORKER_STOP_GRACE_S = 15.0


# ---------------------------------------------------------------- worker


def default_worker_queues(settings: Settings) -> list[str]:
    """settings.worker_queues plus "default" (jobs with device auto go there)."""
    return parse_queues(settings.worker_queues + ",default", source="PRUNELAB_WORKER_QUEUES")


def run_worker(
    queues: str | None = None, concurrency: int | None = None, loglevel: str = "info", settings: Settings | None = None
) -> int:
    """Run a Celery worker in this process until it is stopped; returns its exit code.
    ValueError (one line, naming the option) for bad options or a database without the schema."""
    from backend.db import current_revision
    from worker import lease, tasks
    from worker.celery_app import worker_app

    settings = settings or get_settings()
    names = parse_queues(queues) if queues else default_worker_queues(settings)
    concurrency = concurrency or settings.worker_concurrency
    if concurrency < 1:
        raise ValueError("--concurrency: must be 1 or more")
    if current_revision(settings.database_url) is None:
        raise ValueError(
            f"PRUNELAB_DATABASE_URL: {_safe_url(settings.database_url)} has no PruneLab schema; "
            "run `prunelab db upgrade` first"
        )
    # One name for the main process and its pool processes: the workers table row and every lease it takes.
    name = f"prunelab-{os.getpid()}@{socket.gethostname()}"
    os.environ[lease.WORKER_NAME_ENV] = name
    tasks.WORKER_INFO = {"queues": names, "concurrency": concurrency}
    quiet = _level(loglevel) > logging.INFO
    if quiet:
        # Running as root (a container) is the norm for this worker, and nothing a user of serve can act on.
        from celery.exceptions import SecurityWarning

        warnings.filterwarnings("ignore", category=SecurityWarning)
    argv = [
        *(["--quiet"] if quiet else []),  # no banner
        "worker",
        "--queues",
        ",".join(names),
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
        "--hostname",
        name,
        # gossip, mingle and heartbeats need broadcast messages, which the SQLite broker lacks
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if not quiet:
        print(
            f"PruneLab worker {name}: queues {','.join(names)}, concurrency {concurrency}, "
            f"lease {settings.lease_s:g} s, "
            f"broker {_safe_url(settings.broker_url)}, database {_safe_url(settings.database_url)}",
            flush=True,
        )
    return worker_app(settings).start(argv) or 0


def _level(name: str) -> int:
    level = logging.getLevelName(str(name).upper())
    if not isinstance(level, int):
        raise ValueError(f"--loglevel: {name!r} is not a log level; allowed: debug, info, warning, error")
    return level


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        driver, _, rest = url.partition("+") if url.startswith(("sqla+", "sqlalchemy+")) else ("", "", url)
        shown = make_url(rest).render_as_string(hide_password=True)
        return f"{driver}+{shown}" if driver else shown
    except Exception:
        return url.split("@")[-1]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = dict(os.environ)
    env.update(
        PRUNELAB_HOME=str(settings.home),
        PRUNELAB_DATABASE_URL=settings.database_url,
        PRUNELAB_BROKER_URL=settings.broker_url,
        PRUNELAB_DATA_DIR=str(settings.data_dir),
        PRUNELAB_ARTIFACT_DIR=str(settings.artifact_dir),
        PRUNELAB_VISIBILITY_TIMEOUT_S=str(settings.visibility_timeout_s),
        PRUNELAB_LEASE_S=str(settings.lease_s),
    )
    return env


def worker_command(
    queues: list[str] | None = None, concurrency: int | None = None, loglevel: str = "info"
) -> list[str]:
    cmd = [
        sys.executable,
        "-c",
        "from cli.main import app; app(prog_name='prunelab')",
        "worker",
        "--loglevel",
        loglevel,
    ]
    if queues:
        cmd += ["--queues", ",".join(queues)]
    if concurrency:
        cmd += ["--concurrency", str(concurrency)]
    return cmd


def _load_prctl():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except Exception:  # not Linux
        return None


_prctl = _load_prctl()  # resolved here: the child between fork and exec should only call it


def _die_with_parent() -> None:
    # Linux: the worker gets SIGTERM if the thread that started it dies (serve killed with -9).
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_worker_process(
    settings: Settings,
    queues: list[str] | None = None,
    concurrency: int | None = None,
    loglevel: str = "info",
    env_extra: dict[str, str] | None = None,
    **popen_kwargs,
) -> subprocess.Popen:
    """A `prunelab worker` child in its own process group (so it can be stopped as a whole)."""
    env = {**settings_env(settings), **(env_extra or {})}
    return subprocess.Popen(
        worker_command(queues, concurrency, loglevel),
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
        **popen_kwargs,
    )


def stop_worker_process(proc: subprocess.Popen, grace_s: float = WORKER_STOP_GRACE_S) -> int:
    """Warm shutdown: each running job stops at its next check between batches and is released (queued
    again, resumed after its last stored step by the next worker); then SIGKILL the whole process group
    (pool children included) if it has not exited within grace_s. Returns the exit code."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # pool children that outlived the main process
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    return proc.returncode


class WorkerSupervisor:
    """Keeps the serve's worker process running: restarts it if it dies on its own."""

    def __init__(self, settings: Settings, queues: list[str], loglevel: str = "warning"):
        self.settings = settings
        self.queues = queues
        self.loglevel = loglevel
        self.proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _spawn(self) -> None:
        self.proc = start_worker_process(self.settings, self.queues, loglevel=self.loglevel)
        print(f"PruneLab: worker started (pid {self.proc.pid}, queues {','.join(self.queues)})", flush=True)

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            with self._lock:
                if self._stopping.is_set() or self.proc is None or self.proc.poll() is None:
                    continue
                print(
                    f"PruneLab: the worker exited with code {self.proc.returncode}; starting a new one",
                    file=sys.stderr,
                    flush=True,
                )
                stop_worker_process(self.proc, grace_s=0)  # reap its process group
                if is_sqlalchemy_broker(self.settings.broker_url):
                    requeue_unfinished(self.settings)  # that broker lost the dead worker's task
                self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self.proc is not None:
                stop_worker_process(self.proc)


# ---------------------------------------------------------------- jobs


def requeue_unfinished(settings: Settings) -> int:
    """Embedded mode: empty the broker's queues and enqueue every queued or running job again, oldest
    first. The database is the truth; a running job resumes after its last stored step.

    Call it only while no worker consumes (before starting one): kombu's SQLAlchemy transport has no
    visibility timeout, so a message a killed worker had taken stays in the table, invisible, for good;
    the purge drops those. Purge, publish and the check that every job's message is visible in the
    broker file go through one connection, so a job is never left unqueued without an error."""
    from backend import store
    from backend.broker import get_app
    from backend.db import session_scope
    from core.queues import TASK_NAME, check_queue

    app = get_app(settings)
    with session_scope(settings.database_url) as session:
        jobs = store.active_job_queues(session)
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in QUEUES:
            channel.queue_declare(name, durable=True, auto_delete=False)
            channel.queue_purge(name)
        producer = app.amqp.Producer(channel)
        for job_id, queue in jobs:
            app.send_task(TASK_NAME, args=[int(job_id)], queue=check_queue(queue), producer=producer)
        for name in QUEUES:
            expected = sum(1 for _, queue in jobs if queue == name)
            waiting = channel.queue_declare(name, passive=True).message_count
            if waiting < expected:  # more is harmless: a stopping worker released a job meanwhile
                raise RuntimeError(
                    f"broker {_safe_url(settings.broker_url)}: queue {name!r} holds {waiting} "
                    f"message(s) after re-enqueueing {expected} unfinished job(s)"
                )
    return len(jobs)


def quick_presets() -> list[dict]:
    """The presets marked quick (LeNet-300-100 on digits): seconds each on a CPU (their labels say how long)."""
    from core.presets import PRESETS

    return [p for p in PRESETS if p.get("quick") and p["spec"]["dataset"] == "digits"]


def _stored_example(session, spec) -> tuple[int, str] | None:
    """(id, status) of a stored job with this spec (its name included), or None."""
    from backend import store

    data = spec.model_dump(mode="json")
    jobs, _ = store.list_jobs(session, q=spec.name, sort="id", limit=500)
    return next(((job.id, job.status) for job in jobs if job.name == spec.name and job.spec == data), None)


def queue_examples(settings: Settings) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    """Queue the quick presets not already stored (same name and spec, any status; a deleted one counts as
    not stored), so starting serve --example again adds no duplicates. Returns (queued: [(job id, preset
    name)], already stored: [(job id, preset name, status)]). The slower presets (VGG, ResNet-18) are left
    to the New run form, where they are one click away."""
    from backend import store
    from backend.broker import enqueue_job
    from backend.db import session_scope
    from core.spec import parse_spec

    queued, stored = [], []
    for preset in quick_presets():
        spec = parse_spec(preset["spec"])
        with session_scope(settings.database_url) as session:
            found = _stored_example(session, spec)
            if found is None:
                job = store.create_job(session, spec)
                job_id, queue = job.id, job.queue
        if found is not None:
            stored.append((found[0], preset["name"], found[1]))
            continue
        task_id = enqueue_job(job_id, queue, settings)
        with session_scope(settings.database_url) as session:
            store.set_task_id(session, job_id, task_id)
        queued.append((job_id, preset["name"]))
    return queued, stored


def examples_message(queued: list[tuple[int, str]], base_url: str, stored: list[tuple[int, str, str]] = ()) -> str:
    from core.presets import PRESETS

    quick = {p["name"] for p in quick_presets()}
    lines = []
    if queued or not stored:
        lines.append(f"PruneLab: queued {len(queued)} quick example job(s) (LeNet-300-100 on digits):")
        lines += [f"  #{job_id} {name}  {base_url}/#/run/{job_id}" for job_id, name in queued]
    if stored:
        lines.append(f"PruneLab: {len(stored)} example job(s) already stored, not queued again:")
        lines += [f"  #{job_id} {name} ({status})  {base_url}/#/run/{job_id}" for job_id, name, status in stored]
    others = [p["name"] for p in PRESETS if p["name"] not in quick]
    if others:
        lines.append(
            f"PruneLab: the {len(others)} slower presets (minutes each on a CPU) are one click away in the "
            f"New run form's preset menu, e.g. {base_url}/#/new?preset={others[0]}: {', '.join(others)}"
        )
    return "\n".join(lines)


class JobEvents:
    """One line per job event, read from the database every `interval_s` (so it shows the jobs of every
    worker, and jobs submitted over the API): queued, started, step k/N, succeeded, failed: error,
    cancelled. Jobs as they were when serve started are not announced; only what changes after."""

    def __init__(self, settings: Settings, interval_s: float = 1.0, write=None):
        self.settings = settings
        self.interval_s = interval_s
        self.write = write or (lambda line: print(line, flush=True))
        self._seen: dict[int, tuple[str, int, int]] = {}  # id -> (status, steps stored, attempt)
        self._since = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-events", daemon=True)

    def start(self) -> JobEvents:
        from backend import store
        from backend.db import session_scope

        with session_scope(self.settings.database_url) as session:
            self._since = store.newest_job_update(session)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception as exc:  # the database is briefly locked or away: try again next round
                logging.getLogger(__name__).debug("job events: %s", exc)

    def tick(self) -> None:
        from backend import store
        from backend.db import session_scope

        with session_scope(self.settings.database_url) as session:
            # A little overlap: rows written within the same instant as the last one seen are not missed
            # (what was already announced is recognised by its state).
            since = None if self._since is None else self._since - timedelta(milliseconds=5)
            for job in store.jobs_changed_since(session, since):
                self._since = job.updated_at if self._since is None else max(self._since, job.updated_at)
                for line in self._lines(session, job):
                    self.write(line)

    def _lines(self, session, job) -> list[str]:
        from backend import store

        state = (job.status, job.steps_done, job.attempts)
        before = self._seen.get(job.id)
        if before == state:
            return []
        self._seen[job.id] = state
        status, steps_before, attempt_before = before or (None, 0, 0)
        head = f"PruneLab: job #{job.id} {job.name}"
        lines = []
        if job.status == "queued" and (status != "queued" or attempt_before != job.attempts):
            lines.append(f"{head} queued" + (" again" if job.attempts else ""))
        if job.status in ("running", "succeeded", "failed", "cancelled") and job.attempts != attempt_before:
            if job.attempts:
                resume = f", from step {steps_before + 1}" if steps_before else ""
                lines.append(f"{head} started (attempt {job.attempts}{resume})")
        if job.steps_done > steps_before:
            total = _planned_steps(job.spec) or "?"
            for step in store.list_steps(session, job.id, after=steps_before - 1):
                m = step.metrics
                lines.append(
                    f"{head} step {step.index + 1}/{total}: sparsity {_num(m.get('sparsity'), 3)}, "
                    f"accuracy {_num(m.get('accuracy'), 4)}"
                )
        if job.status != status and job.status == "succeeded":
            best = f", best accuracy {_num(job.best_accuracy, 4)}" if job.best_accuracy is not None else ""
            lines.append(f"{head} succeeded ({job.steps_done} steps{best})")
        elif job.status != status and job.status == "failed":
            lines.append(f"{head} failed: {' '.join(str(job.error or 'no error text').split())}")
        elif job.status != status and job.status == "cancelled":
            lines.append(f"{head} cancelled")
        return lines


def _planned_steps(spec: dict) -> int | None:
    from core.spec import parse_spec

    try:
        return parse_spec(spec).planned_steps() or None
    except Exception:  # a spec stored by an older version
        return None


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# ---------------------------------------------------------------- serve


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve(
    host: str | None = None,
    port: int | None = None,
    with_worker: bool = True,
    example: bool = False,
    settings: Settings | None = None,
    access_log: bool = False,
    worker_log: str = "warning",
) -> int:
    import uvicorn

    from backend.db import upgrade
    from worker.lease import LeaseKeeper

    settings = settings or get_settings()
    host = host or settings.host
    port = port if port is not None else settings.port
    if not _port_free(host, port):
        print(f"PruneLab: port {port} on {host} is in use; choose another with --port", file=sys.stderr)
        return 1
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)

    # Ctrl-C / SIGTERM become KeyboardInterrupt everywhere in serve, so the worker is always stopped.
    # (uvicorn installs its own handlers while it runs, then restores these and calls them.)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    supervisor = None
    keeper = None
    events = None
    base_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    try:
        if with_worker:
            if is_sqlalchemy_broker(settings.broker_url):
                resumed = requeue_unfinished(settings)
                if resumed:
                    print(f"PruneLab: {resumed} unfinished job(s) queued again", flush=True)
            # The one worker of an embedded server takes every queue: a job never waits for a worker
            # that does not exist (a cuda job on a machine without CUDA fails with a clear error).
            supervisor = WorkerSupervisor(settings, list(QUEUES), loglevel=worker_log)
            supervisor.start()
        keeper = LeaseKeeper(settings).start()  # re-queues jobs whose worker's lease expired
        events = JobEvents(settings).start()
        if example:
            queued, stored = queue_examples(settings)
            print(examples_message(queued, base_url, stored), flush=True)
        if settings.auth == "off" and host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"PruneLab: warning: listening on {host} with PRUNELAB_AUTH=off: anyone who can reach this "
                "port can submit and delete jobs",
                file=sys.stderr,
                flush=True,
            )
        print(
            f"PruneLab: open {base_url}/ in your browser (Ctrl-C stops the server"
            f"{' and its worker' if supervisor else ''})",
            flush=True,
        )
        # The app (built by the factory from the environment) allows the Host names of this bind address.
        os.environ["PRUNELAB_HOST"] = host
        get_settings.cache_clear()
        # Quiet by default: the job lines above and errors; --access-log adds uvicorn's start lines and
        # one line per request.
        config = uvicorn.Config(
            "backend.api:create_app",
            factory=True,
            host=host,
            port=port,
            log_level="info" if access_log else "warning",
            access_log=access_log,
        )
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        pass
    finally:
        if supervisor is not None:
            print("PruneLab: stopping the worker (running jobs are released at their next check)", flush=True)
            supervisor.stop()
        if keeper is not None:
            keeper.stop()
        if events is not None:
            events.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("PruneLab: stopped", flush=True)
    return 0
