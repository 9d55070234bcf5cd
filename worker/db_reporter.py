"""The Reporter the Celery task gives the engine: it writes what the engine reports to the database.

Each step is committed alone, together with its layer masks and the job's summary columns, so a crash
loses at most the step in progress; a sensitivity scan commits each layer's rows alone the same way.
Every write is fenced by the attempt that holds the job: when another attempt took it over (this worker's
lease expired), the write is refused and the engine is stopped (Cancelled) with `stop_reason` "lost". The
engine calls cancelled() every batch; the cancel flag is read from the database a couple of times a second
at most, the lease and shutdown flags every time.

Checkpoints are fenced too: the engine hands each step checkpoint's rename to commit_file, which renames
inside a transaction that first renews this attempt's lease. That UPDATE is conditional on the attempt
holding the job and locks the job's row until the commit, so no other attempt can claim the job between
the check and the rename: an orphaned worker (its lease expired, the job resumed elsewhere) cannot
overwrite checkpoints/step_k.pt of the attempt that took over.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from backend import store
from backend.db import session_scope
from worker.engine.reporter import Cancelled

THROTTLE_S = 0.5


class DbReporter:
    """Writes for attempt `attempt` of job `job_id`. `lease`: a worker.lease.JobLease (its `lost` event);
    `shutting_down`: a callable, True once the worker is stopping (the job is then released)."""

    def __init__(
        self,
        job_id: int,
        attempt: int,
        database_url: str | None = None,
        throttle_s: float = THROTTLE_S,
        lease=None,
        shutting_down=lambda: False,
        lease_s: float | None = None,
    ):
        self.job_id = job_id
        self.attempt = attempt
        self.database_url = database_url
        self.throttle_s = throttle_s
        self.lease = lease
        self.shutting_down = shutting_down
        # The lease a fenced rename renews (commit_file): the worker's lease period.
        self.lease_s = lease_s if lease_s is not None else lease.settings.lease_s if lease is not None else 60.0
        self._last_progress_write = float("-inf")
        self._last_state_read = float("-inf")
        # Why the engine was stopped: "cancel", "deleted", "lost" or "shutdown"; None while it may run.
        self.stop_reason: str | None = None

    def _write(self, write, *args) -> None:
        try:
            with session_scope(self.database_url) as session:
                write(session, self.job_id, *args, attempt=self.attempt)
        except store.LeaseLost:
            self._stop(self._gone_or_lost())
            raise Cancelled(f"job {self.job_id}: attempt {self.attempt} lost the job") from None

    def _gone_or_lost(self) -> str:
        with session_scope(self.database_url) as session:
            return "deleted" if store.get_job(session, self.job_id) is None else "lost"

    def _stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def on_baseline(self, metrics: dict) -> None:
        self._write(store.set_baseline, metrics)

    def on_step(self, step: dict) -> None:
        if self.lease is not None and self.lease.lost.is_set():  # checked right before; add_step is fenced too
            self._stop("lost")
            raise Cancelled(f"job {self.job_id}: attempt {self.attempt} lost its lease")
        self._write(store.add_step, step)  # skips an index already stored (redelivery)

    def commit_file(self, tmp: Path, path: Path) -> None:
        """Rename the engine's temporary file `tmp` to `path` while this attempt holds the job (see the module
        docstring); Cancelled (stop_reason "lost" or "deleted"), nothing renamed, otherwise."""
        if self.lease is not None and self.lease.lost.is_set():
            held = False
        else:
            with session_scope(self.database_url) as session:
                held = store.renew_lease(session, self.job_id, self.attempt, self.lease_s)
                if held:
                    os.replace(tmp, path)
        if not held:
            self._stop(self._gone_or_lost())
            raise Cancelled(f"job {self.job_id}: attempt {self.attempt} lost the job; {Path(path).name} not written")

    def on_sensitivity(self, rows: list[dict]) -> None:
        self._write(store.add_sensitivity, rows)  # one layer's rows, one transaction; kept on redelivery

    def on_progress(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self._last_progress_write < self.throttle_s and fraction < 1.0:
            return
        self._last_progress_write = now
        self._write(store.set_progress, fraction, message)

    def cancelled(self) -> bool:
        if self.stop_reason is not None:
            return True
        if self.lease is not None and self.lease.lost.is_set():
            self._stop("lost")
        elif self.shutting_down():
            self._stop("shutdown")
        else:
            now = time.monotonic()
            if now - self._last_state_read >= self.throttle_s:
                self._last_state_read = now
                with session_scope(self.database_url) as session:
                    state = store.attempt_state(session, self.job_id, self.attempt)
                if state != "run":
                    self._stop(state)
        return self.stop_reason is not None
