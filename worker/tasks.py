"""The one Celery task: run job N through the engine, writing everything to the database.

The engine (and torch) is imported inside the task, so importing this module stays light.
"""

from __future__ import annotations

import logging
import shutil
import traceback

from celery import shared_task
from celery.signals import worker_process_init

from backend import store
from backend.db import dispose_engines, session_scope
from core.queues import TASK_NAME
from core.settings import get_settings

log = logging.getLogger(__name__)

# A job whose worker died this many times in a row (out of memory, killed) fails instead of looping.
MAX_CRASH_REDELIVERIES = 5
ERROR_TAIL_LINES = 15


@worker_process_init.connect
def _fresh_connections(**_kwargs) -> None:
    # A forked pool process must not share pooled connections with its parent.
    dispose_engines()


def error_text(exc: BaseException) -> str:
    """The error line first, then the tail of the traceback (where it went wrong)."""
    lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    head = f"{type(exc).__name__}: {exc}"
    return head + "\n\n" + "\n".join(lines[-ERROR_TAIL_LINES:])


def _claim(job_id: int) -> tuple[dict, int] | None:
    """Mark the job running (store.start_job counts the attempt) and return (spec, steps already stored);
    None to skip."""
    with session_scope() as session:
        job = store.get_job(session, job_id)
        if job is None:
            return None
        redelivered = job.status == "running"  # the worker that had it died
        job = store.start_job(session, job_id)
        if job is None:
            return None
        attempts = job.attempts
        if redelivered and attempts > MAX_CRASH_REDELIVERIES:
            store.set_status(
                session,
                job_id,
                "failed",
                message="failed",
                error=f"the worker died {attempts - 1} times while running this job "
                "(out of memory or killed?); giving up",
            )
            return None
        return job.spec, store.completed_steps(session, job_id)


def _finish(job_id: int, status: str, error: str | None = None, message: str | None = None) -> None:
    with session_scope() as session:
        if store.get_job(session, job_id) is not None:
            store.set_status(session, job_id, status, error=error, message=message)


# Acknowledged late, rejected on worker loss, no result: set once for every task in backend.broker.make_celery.
@shared_task(name=TASK_NAME)
def run_job(job_id: int) -> str:
    """Run job `job_id`; returns its final status (or "skipped" when there was nothing to do)."""
    claimed = _claim(job_id)
    if claimed is None:
        log.info("job %s: not queued or running any more, skipped", job_id)
        return "skipped"
    spec_data, completed = claimed
    settings = get_settings()
    out_dir = store.job_artifact_dir(settings.artifact_dir, job_id)
    log.info("job %s: running from step %d", job_id, completed)
    try:
        from core.spec import parse_spec
        from worker.db_reporter import DbReporter
        from worker.engine.reporter import Cancelled
        from worker.engine.runner import run_job as run_engine

        spec = parse_spec(spec_data)
        reporter = DbReporter(job_id)
        try:
            run_engine(
                spec,
                out_dir,
                reporter,
                data_dir=settings.data_dir,
                cache_dir=settings.cache_dir,
                completed_steps=completed,
            )
        except Cancelled:
            with session_scope() as session:
                gone = store.get_job(session, job_id) is None
            if gone:  # deleted while running: remove what it wrote after the API cleaned up
                shutil.rmtree(out_dir, ignore_errors=True)
                return "deleted"
            _finish(job_id, "cancelled", message="cancelled")
            return "cancelled"
    except Exception as exc:  # any failure ends this job only; the worker goes on with the next
        log.exception("job %s failed", job_id)
        _finish(job_id, "failed", error=error_text(exc), message="failed")
        return "failed"
    _finish(job_id, "succeeded", message="done")
    return "succeeded"
