"""GET /api/events: server-sent events. The server polls the DB cheaply (~every 0.5 s: jobs changed since the
last poll, step rows newer than the last seen id) and sends `job` events (the Job JSON) and `step` events
({job_id, index}). Works the same whether the worker runs here or on another machine."""

import asyncio
import time
from datetime import timedelta

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from backend import store
from backend.api.deps import MAX_ID
from backend.auth import Reader
from backend.db import json_dumps
from backend.models import Job

router = APIRouter(prefix="/api", tags=["events"])
POLL_S = 0.5
HEARTBEAT_S = 15.0
# Rows written by another machine with a slightly late clock still get seen.
LOOKBACK = timedelta(seconds=2)


def _sse(event: str, data) -> str:
    return f"event: {event}\ndata: {json_dumps(data)}\n\n"


class _Poller:
    def __init__(self, sessions, job_id: int | None):
        self.sessions = sessions
        self.job_id = job_id
        self.watermark = None  # newest updated_at seen (as the DB returns it)
        self.sent: dict[int, object] = {}  # job id -> updated_at last sent
        self.last_step = 0

    def start(self) -> None:
        with self.sessions() as session:
            self.watermark = session.scalar(select(func.max(Job.updated_at)))
            self.last_step = store.last_step_id(session)

    def poll(self) -> list[str]:
        out = []
        with self.sessions() as session:
            since = self.watermark - LOOKBACK if self.watermark is not None else None
            q = select(Job).where(Job.deleted_at.is_(None))
            if since is not None:
                q = q.where(Job.updated_at > since)
            if self.job_id is not None:
                q = q.where(Job.id == self.job_id)
            for job in session.scalars(q.order_by(Job.updated_at)):
                if self.sent.get(job.id) != job.updated_at:
                    self.sent[job.id] = job.updated_at
                    out.append(_sse("job", store.job_to_dict(job)))
                if self.watermark is None or job.updated_at > self.watermark:
                    self.watermark = job.updated_at
            for row_id, job_id, index in store.new_steps(session, self.last_step, self.job_id):
                self.last_step = max(self.last_step, row_id)
                out.append(_sse("step", {"job_id": job_id, "index": index}))
        if len(self.sent) > 10_000:  # forget jobs that stopped changing long ago
            cutoff = self.watermark - LOOKBACK
            self.sent = {k: v for k, v in self.sent.items() if v > cutoff}
        return out


@router.get(
    "/events",
    summary="Server-sent events: `job` (Job JSON) and `step` ({job_id, index})",
    response_class=StreamingResponse,
)
async def events(
    request: Request,
    user: Reader,
    job_id: int | None = Query(None, ge=1, le=MAX_ID, description="only events of this job"),
    max_seconds: float | None = Query(None, gt=0, le=86400, description="end the stream after this long"),
) -> StreamingResponse:
    poller = _Poller(request.app.state.sessions, job_id)
    await run_in_threadpool(poller.start)

    async def stream():
        started = last_sent = time.monotonic()
        yield "retry: 2000\n\n"
        while True:
            if await request.is_disconnected():
                return
            chunks = await run_in_threadpool(poller.poll)
            now = time.monotonic()
            if chunks:
                yield "".join(chunks)
                last_sent = now
            elif now - last_sent > HEARTBEAT_S:
                yield ": keep-alive\n\n"
                last_sent = now
            if max_seconds is not None and now - started >= max_seconds:
                return
            await asyncio.sleep(POLL_S)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
