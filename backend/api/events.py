"""GET /api/events: server-sent events. The server polls the DB cheaply (~every 0.5 s: jobs changed since the
last poll, step rows newer than the last seen id) and sends `job` events (the Job JSON) and `step` events
({job_id, index}). Works the same whether the worker runs here or on another machine."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import APIRouter, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from backend import store
from backend.api.deps import MAX_ID
from backend.api.schemas import READ_ERRORS, error_responses
from backend.auth import Reader
from backend.db import json_dumps

router = APIRouter(prefix="/api", tags=["events"])
POLL_S = 0.5
RETRY_MS = 2000
# Rows written by another machine with a slightly late clock still get seen.
LOOKBACK = timedelta(seconds=2)


class _Poller:
    def __init__(self, sessions, job_id: int | None, online_within_s: float):
        self.sessions = sessions
        self.online_within_s = online_within_s
        self.job_id = job_id
        self.watermark = None  # newest updated_at seen (as the DB returns it)
        self.sent: dict[int, object] = {}  # job id -> updated_at last sent
        self.last_step = 0

    def start(self) -> None:
        with self.sessions() as session:
            self.watermark = store.newest_job_update(session)
            self.last_step = store.last_step_id(session)

    def poll(self) -> list[ServerSentEvent]:
        out = []
        with self.sessions() as session:
            since = self.watermark - LOOKBACK if self.watermark is not None else None
            changed = store.jobs_changed_since(session, since, self.job_id)
            fresh = [job for job in changed if self.sent.get(job.id) != job.updated_at]
            estimates = store.queue_estimates(session, fresh, self.online_within_s)
            for job in fresh:
                self.sent[job.id] = job.updated_at
                data = json_dumps(store.job_to_public(job, estimates))
                out.append(ServerSentEvent(event="job", raw_data=data))
            for job in changed:
                if self.watermark is None or job.updated_at > self.watermark:
                    self.watermark = job.updated_at
            for row_id, job_id, index in store.new_steps(session, self.last_step, self.job_id):
                self.last_step = max(self.last_step, row_id)
                out.append(ServerSentEvent(event="step", raw_data=json_dumps({"job_id": job_id, "index": index})))
        if len(self.sent) > 10_000:  # forget jobs that stopped changing long ago
            cutoff = self.watermark - LOOKBACK
            self.sent = {k: v for k, v in self.sent.items() if v > cutoff}
        return out


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses=error_responses(*READ_ERRORS, by_ref=True),
    summary="Server-sent events: `job` (Job JSON, as GET /api/jobs/{id}) and `step` ({job_id, index})",
)
async def events(
    request: Request,
    user: Reader,
    job_id: int | None = Query(None, ge=1, le=MAX_ID, description="only events of this job"),
    max_seconds: float | None = Query(None, gt=0, le=86400, description="end the stream after this long"),
) -> AsyncIterator[ServerSentEvent]:
    # FastAPI's EventSourceResponse writes the events and sends a keep-alive comment after 15 s of silence.
    poller = _Poller(request.app.state.sessions, job_id, request.app.state.settings.worker_online_s)
    await run_in_threadpool(poller.start)
    started = time.monotonic()
    yield ServerSentEvent(retry=RETRY_MS)
    while not await request.is_disconnected():
        for event in await run_in_threadpool(poller.poll):
            yield event
        if max_seconds is not None and time.monotonic() - started >= max_seconds:
            return
        await asyncio.sleep(POLL_S)
