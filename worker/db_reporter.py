"""The Reporter the Celery task gives the engine: it writes what the engine reports to the database.

Each step is committed alone, together with its layer masks and the job's summary columns, so a crash
loses at most the step in progress. Progress writes and cancel reads are throttled: the engine calls
them every batch, the database needs them a couple of times a second at most.
"""

from __future__ import annotations

import time

from backend import store
from backend.db import session_scope
from worker.engine.reporter import Cancelled

THROTTLE_S = 0.5


class DbReporter:
    def __init__(self, job_id: int, database_url: str | None = None, throttle_s: float = THROTTLE_S):
        self.job_id = job_id
        self.database_url = database_url
        self.throttle_s = throttle_s
        self._last_progress_write = float("-inf")
        self._last_cancel_read = float("-inf")
        self._cancelled = False

    def on_baseline(self, metrics: dict) -> None:
        with session_scope(self.database_url) as session:
            store.set_baseline(session, self.job_id, metrics)

    def on_step(self, step: dict) -> None:
        with session_scope(self.database_url) as session:
            if store.get_job(session, self.job_id) is None:
                raise Cancelled(f"job {self.job_id} was deleted")
            store.add_step(session, self.job_id, step)  # skips an index already stored (redelivery)

    def on_progress(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self._last_progress_write < self.throttle_s and fraction < 1.0:
            return
        self._last_progress_write = now
        with session_scope(self.database_url) as session:
            store.set_progress(session, self.job_id, fraction, message)

    def cancelled(self) -> bool:
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last_cancel_read >= self.throttle_s:
            self._last_cancel_read = now
            with session_scope(self.database_url) as session:
                self._cancelled = store.cancel_requested(session, self.job_id)
        return self._cancelled
