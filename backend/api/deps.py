"""Shared request plumbing: a DB session per request, settings, and the body of every error status:
{"detail": "<one line>", "errors": [{"field", "message", "allowed", "value"}]}."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend import store
from backend.db import json_dumps
from backend.models import Job
from core.settings import Settings
from core.spec import SpecError, spec_errors

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


class ApiError(HTTPException):
    """An HTTP error with structured entries: answered as {"detail": detail, "errors": errors}."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(status_code, detail, headers=headers)
        self.errors = errors


def error_item(message: str, field: str | None = None, allowed: str | None = None, value: Any = None) -> dict:
    return {"field": field, "message": message, "allowed": allowed, "value": value}


def api_error(
    status_code: int,
    message: str,
    field: str | None = None,
    allowed: str | None = None,
    value: Any = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
) -> ApiError:
    """An error with one entry; `detail` (default: the message) is the one-line summary."""
    return ApiError(status_code, detail or message, [error_item(message, field, allowed, value)], headers)


def invalid(loc: tuple[Any, ...], msg: str, allowed: str | None = None, value: Any = None) -> ApiError:
    """A 422 naming one field, e.g. invalid(("query", "ids"), "must be job ids separated by commas")."""
    field = _dotted(loc)
    return api_error(422, msg, field, allowed, value, detail=f"{field}: {msg}")


def _dotted(loc: tuple) -> str | None:
    # Body fields are named as in the spec (schedule.rate); query and path ones keep their place (query.sort).
    parts = loc[1:] if loc[:1] == ("body",) else loc
    return ".".join(map(str, parts)) or None


def _validation_items(errors: list[dict[str, Any]], body: str = "a job spec") -> list[dict[str, Any]]:
    """FastAPI's validation errors as one entry per field; the body (`body` says what it must be) is a JobSpec
    or a JobEdit, described by core.spec."""
    items, spec_part = [], []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        ctx = e.get("ctx") or {}
        if loc[:1] != ("body",):
            items.append(error_item(str(e.get("msg", "")).removeprefix("Value error, "), _dotted(loc)))
        elif e.get("type") == "json_invalid":
            items.append(error_item(f"the request body is not valid JSON: {ctx.get('error', e.get('msg'))}"))
        elif e.get("type") == "missing" and len(loc) == 1:
            items.append(error_item(f"the request body must be {body} (a JSON object)"))
        elif len(loc) == 1 and not isinstance(ctx.get("error"), SpecError):
            items.append(error_item(f"the request body must be {body} (a JSON object): {e.get('msg')}"))
        else:
            spec_part.append({**e, "loc": loc[1:]})
    items += [error_item(p.message, p.field, p.allowed) for p in spec_errors(spec_part)]
    seen, out = set(), []
    for item in items:
        if item["field"] not in seen or item["field"] is None:
            seen.add(item["field"])
            out.append(item)
    return out


def _error_response(status_code: int, detail: str, errors: list[dict], headers=None) -> Response:
    body = json_dumps({"detail": detail, "errors": errors})
    return Response(body, status_code, headers=headers, media_type="application/json")


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else json_dumps(exc.detail)
    errors = getattr(exc, "errors", None) or [error_item(detail)]
    return _error_response(exc.status_code, detail, errors, getattr(exc, "headers", None))


async def validation_error_handler(request: Request, exc: RequestValidationError) -> Response:
    edit = request.method == "PATCH"
    items = _validation_items(list(exc.errors()), "the fields to change (name, tags, notes)" if edit else "a job spec")
    detail = "; ".join(f"{i['field']}: {i['message']}" if i["field"] else i["message"] for i in items)
    return _error_response(422, detail or "invalid request", items)


def install_error_handlers(app: FastAPI) -> None:
    """Every error status answers ErrorBody (backend.api.schemas)."""
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)


def check_text(where: str, name: str, value: str | None) -> str | None:
    # Postgres refuses NUL in text; answer 422 instead of letting the driver fail.
    if value is not None and "\x00" in value:
        raise invalid((where, name), "must not contain NUL characters")
    return value


def public_jobs(session: Session, settings: Settings, jobs: list[Job]) -> list[dict[str, Any]]:
    """The Job JSON of each job, queued ones with their place in the queue and expected start."""
    estimates = store.queue_estimates(session, jobs, settings.worker_online_s)
    return [store.job_to_public(job, estimates) for job in jobs]


def job_or_404(session: Session, job_id: int) -> Job:
    job = store.get_job(session, job_id)
    if job is None:
        raise api_error(404, f"job {job_id} not found", "path.job_id", value=job_id)
    return job
