"""Shared request plumbing: a DB session per request, settings, and errors in FastAPI's 422 shape."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from backend import store
from backend.db import json_dumps
from backend.models import Job
from core.settings import Settings

MAX_ID = 2**31 - 1  # ids are 32-bit integers on Postgres
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="job id")]


async def get_session(request: Request) -> AsyncIterator[Session]:
    # async so FastAPI runs it on the event loop instead of a threadpool hop: making a session does no I/O;
    # the queries run in the (sync) endpoints, in the threadpool.
    session = request.app.state.sessions()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(session.rollback)
        raise
    finally:
        if request.app.state.sqlite:
            session.close()  # returning a SQLite connection to the pool is a no-op rollback
        else:
            await run_in_threadpool(session.close)  # Postgres: the pool's rollback is a round trip


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


DB = Annotated[Session, Depends(get_session)]
AppSettings = Annotated[Settings, Depends(get_settings)]


class FastJSONResponse(Response):
    """JSONResponse through backend.db.json_dumps (orjson when installed: the run list and step lists are
    the hot paths)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_dumps(content).encode()


def invalid(loc: tuple[Any, ...], msg: str, type_: str = "value_error") -> RequestValidationError:
    """A 422 in FastAPI's shape: {"detail": [{"loc": [...], "msg": ..., "type": ...}]}."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": type_}])


def check_text(where: str, name: str, value: str | None) -> str | None:
    # Postgres refuses NUL in text; answer 422 instead of letting the driver fail.
    if value is not None and "\x00" in value:
        raise invalid((where, name), "must not contain NUL characters")
    return value


def job_or_404(session: Session, job_id: int) -> Job:
    job = store.get_job(session, job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id} not found")
    return job
