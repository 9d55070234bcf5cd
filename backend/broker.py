"""The Celery client side: the broker only carries "run job N"; the database holds everything else.

The API enqueues through this module without importing the worker; the worker builds its own app from
`make_celery` with its task module included (worker/celery_app.py).

Liveness is not the broker's business: a worker holds its job through a lease in the database, and a
reaper in every worker and in `serve` re-queues (and enqueues again) a job whose lease expired
(worker/lease.py). Messages are still acknowledged only after the task returns (acks_late) and put back
when a pool process dies (reject_on_worker_lost); a copy that arrives late (Redis redelivers an
unacknowledged message after visibility_timeout) finds the job leased or finished and is skipped. A
resumed job continues after its last stored step.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from celery import Celery
from kombu import Queue
from sqlalchemy.engine import make_url

from core.queues import QUEUES, TASK_NAME, check_queue, is_sqlalchemy_broker
from core.settings import Settings, get_settings

_apps: dict[tuple, Celery] = {}
_lock = threading.Lock()


def _transport_options(settings: Settings) -> dict:
    if is_sqlalchemy_broker(settings.broker_url):
        # kombu hands these options straight to sqlalchemy.create_engine, so no visibility_timeout here
        # (that transport has none: `prunelab serve` re-enqueues unfinished jobs from the database instead).
        # A generous SQLite busy timeout: the API's enqueue and the worker's polling share the file.
        return {"connect_args": {"timeout": 30}}
    return {"visibility_timeout": settings.visibility_timeout_s}


def _ensure_sqlite_dir(broker_url: str) -> None:
    if not is_sqlalchemy_broker(broker_url):
        return
    url = make_url(broker_url.split("+", 1)[1])
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def make_celery(settings: Settings | None = None, include: Sequence[str] = ()) -> Celery:
    """A Celery app for the configured broker; `include` names task modules (the worker passes its own)."""
    settings = settings or get_settings()
    _ensure_sqlite_dir(settings.broker_url)
    app = Celery("prunelab", broker=settings.broker_url, include=list(include), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="default",
        task_ignore_result=True,  # no result backend: the database is the truth
        task_serializer="json",
        accept_content=["json"],
        worker_send_task_events=False,
        worker_enable_remote_control=False,  # the SQLAlchemy transport has no fanout for it
    )
    return app


def get_app(settings: Settings | None = None) -> Celery:
    """One sending app per broker configuration in this process."""
    settings = settings or get_settings()
    key = (settings.broker_url, settings.visibility_timeout_s)
    with _lock:
        if key not in _apps:
            _apps[key] = make_celery(settings)
        return _apps[key]


def forget_apps() -> None:
    """In a child process right after fork: drop the parent's apps (and their broker connections) unclosed;
    the child makes its own on first use."""
    with _lock:
        _apps.clear()


def enqueue_job(job_id: int, queue: str, settings: Settings | None = None) -> str:
    """Ask a worker listening on `queue` to run job `job_id`; returns the Celery task id."""
    result = get_app(settings).send_task(TASK_NAME, args=[int(job_id)], queue=check_queue(queue))
    return result.id
