"""The one Celery task: run job N through the engine, writing everything to the database.

The task claims the job (a lease in the database, worker/lease.py) and runs it while the lease holds;
every write is fenced by its attempt. It ends the attempt one of four ways: a final status (succeeded,
failed, cancelled), "released" when this worker is shutting down (the job is queued again at once and
another worker resumes it after its last stored step), or silently when the lease was lost (the job
belongs to another attempt now, or was deleted).

The engine (and torch) is imported inside the task, so importing this module stays light.
"""

from __future__ import annotations

import logging
import re
import shutil

from celery import shared_task
from celery.signals import worker_process_init, worker_ready, worker_shutdown, worker_shutting_down

from backend import store
from backend.broker import enqueue_job, forget_apps
from backend.db import dispose_engines, session_scope
from core.queues import TASK_NAME
from core.settings import get_settings
from worker import lease

log = logging.getLogger(__name__)

# A job whose worker died this many times in a row (out of memory, killed) fails instead of looping.
MAX_CRASH_REDELIVERIES = 5
ERROR_MAX_CHARS = 500
# An absolute path of two parts or more (not inside a word, so "2/4" stays): shown by its last part only.
_PATH = re.compile(r"(?<![\w.~-])/(?:[^\s'\"/:,()\[\]]+/)+([^\s'\"/:,()\[\]]*)")

# What `prunelab worker` registers (worker/lease.py LeaseKeeper): set by cli.serve.run_worker in the main
# process before Celery starts. None for a Celery worker started some other way: it runs jobs and reaps,
# but is not listed in the workers table.
WORKER_INFO: dict | None = None
_keeper: lease.LeaseKeeper | None = None


@worker_process_init.connect
def _fresh_connections(**_kwargs) -> None:
    # A forked pool process must not use (nor close) pooled connections of its parent.
    dispose_engines(close=False)
    forget_apps()


@worker_ready.connect
def _start_keeper(**_kwargs) -> None:
    global _keeper
    info = WORKER_INFO and {"name": lease.worker_name(), **WORKER_INFO}
    _keeper = lease.LeaseKeeper(get_settings(), info).start()


@worker_shutting_down.connect
def _stop_jobs(**_kwargs) -> None:
    # In a signal handler of the main process: only flip the shared flag the running jobs read.
    lease.begin_shutdown()


@worker_shutdown.connect
def _stop_keeper(**_kwargs) -> None:
    if _keeper is not None:
        _keeper.stop()


def error_text(exc: BaseException) -> str:
    """The one line a failed job keeps for its page and the API: an error of the engine's own that names
    the field or the missing data (SpecError, DatasetMissing, ...) as it is; anything else as
    "Type: first line of its message", with the server's paths cut down to their last part. The
    traceback goes to the worker's log, not here."""
    from core.spec import SpecError
    from worker.engine.data import DatasetMissing
    from worker.engine.export import ExportError
    from worker.engine.models import ModelUnavailable

    message = " ".join(str(exc).split()) if str(exc).strip() else ""
    if isinstance(exc, SpecError | DatasetMissing | ModelUnavailable | ExportError):
        text = message or type(exc).__name__
    else:
        first = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else ""
        first = _PATH.sub(r"\1", first)
        text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "\u2026"


def _claim(job_id: int, worker: str, lease_s: float) -> tuple[int, dict, int] | None:
    """Claim the job: (attempt, spec, steps already stored), or None to skip the task."""
    with session_scope() as session:
        attempt = store.claim_job(session, job_id, worker, lease_s, max_lost=MAX_CRASH_REDELIVERIES)
        if attempt is None:
            return None
        store.set_worker_job(session, worker, job_id)
        return attempt, store.get_job(session, job_id).spec, store.completed_steps(session, job_id)


def _end(job_id: int, attempt: int, how: str, error: str | None = None, message: str | None = None) -> str:
    """End the attempt: a final status, or "released" (queued again, and enqueued inside the same
    transaction so the job is never left queued without a message). Returns what happened; "lost" when the
    attempt no longer held the job (nothing written)."""
    settings = get_settings()
    try:
        with session_scope() as session:
            if how == "released":
                status = store.release_job(session, job_id, attempt)
                if status == "queued":
                    enqueue_job(job_id, store.get_job(session, job_id).queue, settings)
                    return "released"
                return status
            store.finish_job(session, job_id, attempt, how, error=error, message=message)
            return how
    except store.LeaseLost:
        log.warning("job %s: attempt %d no longer holds the job; its %s was not stored", job_id, attempt, how)
        return "lost"


def _hand_back(job_id: int, settings) -> str:
    with session_scope() as session:
        job = store.get_job(session, job_id)
        queue = job.queue if job is not None and job.status in ("queued", "running") else None
    if queue is not None:
        enqueue_job(job_id, queue, settings)
    log.info("job %s: this worker is stopping; %s", job_id, "handed back" if queue else "skipped")
    return "handed back" if queue else "skipped"


# Acknowledged late, rejected on worker loss, no result: set once for every task in backend.broker.make_celery.
@shared_task(name=TASK_NAME)
def run_job(job_id: int) -> str:
    """Run job `job_id`; returns how its attempt ended, or "skipped" when there was nothing to do."""
    settings = get_settings()
    if lease.shutting_down():  # a stopping worker starts nothing: the message goes back for another worker
        return _hand_back(job_id, settings)
    worker = lease.worker_name()
    claimed = _claim(job_id, worker, settings.lease_s)
    if claimed is None:
        log.info("job %s: not claimable (finished, cancelled, or held by a live lease), skipped", job_id)
        return "skipped"
    attempt, spec_data, completed = claimed
    out_dir = store.job_artifact_dir(settings.artifact_dir, job_id)
    log.info("job %s: attempt %d running from step %d", job_id, attempt, completed)
    try:
        with lease.JobLease(job_id, attempt, settings) as job_lease:
            return _run(job_id, attempt, spec_data, completed, out_dir, settings, job_lease)
    finally:
        with session_scope() as session:
            store.set_worker_job(session, worker, None, was=job_id)


def _run(job_id, attempt, spec_data, completed, out_dir, settings, job_lease) -> str:
    from core.spec import parse_spec
    from worker.db_reporter import DbReporter
    from worker.engine.reporter import Cancelled
    from worker.engine.runner import run_job as run_engine

    reporter = DbReporter(job_id, attempt, lease=job_lease, shutting_down=lease.shutting_down)
    try:
        run_engine(
            parse_spec(spec_data),
            out_dir,
            reporter,
            data_dir=settings.data_dir,
            cache_dir=settings.cache_dir,
            completed_steps=completed,
            keep_checkpoints=settings.keep_checkpoints,
            baseline_cache_gb=settings.baseline_cache_gb,
        )
    except Cancelled:
        reason = reporter.stop_reason or "cancel"
        if reason == "deleted":  # deleted while running: remove what it wrote after the API cleaned up
            shutil.rmtree(out_dir, ignore_errors=True)
            return "deleted"
        if reason == "lost":
            log.warning("job %s: attempt %d lost its lease; stopped without writing", job_id, attempt)
            return "lost"
        if reason == "shutdown":
            ended = _end(job_id, attempt, "released")
            log.info("job %s: worker stopping, attempt %d %s", job_id, attempt, ended)
            return ended
        return _end(job_id, attempt, "cancelled", message="cancelled")
    except Exception as exc:  # any failure ends this job only; the worker goes on with the next
        if job_lease.lost.is_set():
            return "lost"
        log.exception("job %s: attempt %d failed", job_id, attempt)  # the traceback, for whoever runs the worker
        return _end(job_id, attempt, "failed", error=error_text(exc), message="failed")
    return _end(job_id, attempt, "succeeded", message="done")
