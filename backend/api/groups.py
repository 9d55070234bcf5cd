"""/api/groups: sweeps submitted as one group of jobs, and the groups with their job counts by status."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response

from backend import store
from backend.api.catalogs import spec_problems
from backend.api.deps import DB, MAX_ID, ApiError, AppSettings, api_error, error_item, public_jobs
from backend.api.jobs import _enqueue, _over_limit, _queue_limit
from backend.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    GroupList,
    GroupPublic,
    GroupSubmitted,
    error_responses,
    respond,
)
from backend.auth import Reader, Writer
from core.spec import JobSpec, SpecError, SpecErrors
from core.sweep import expand

router = APIRouter(prefix="/api/groups", tags=["groups"])
GroupId = Annotated[int, Path(ge=1, le=MAX_ID, description="group id")]

SWEEP_EXAMPLE = {
    "name": "lenet-block-sweep",
    "model": "lenet300_100",
    "dataset": "digits",
    "method": {"kind": "block", "block_size": 2},
    "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 5},
    "sweep": {"method.block_size": [2, 3, 4, 5, 6], "seed": [0, 1]},
}


def _spec_error(err: SpecError) -> ApiError:
    errors = err.errors if isinstance(err, SpecErrors) else [err]
    items = [error_item(e.message, e.field, e.allowed) for e in errors]
    return ApiError(422, "; ".join(str(e) for e in errors), items)


def _group_or_404(session, group_id: int) -> dict[str, Any]:
    group = store.get_group(session, group_id)
    if group is None:
        raise api_error(404, f"group {group_id} not found", "group_id", value=group_id)
    return group


@router.post(
    "",
    status_code=201,
    response_model=GroupSubmitted,
    responses=error_responses(*WRITE_ERRORS, 413, 429),
    summary="Submit a sweep: a job spec with `sweep` (dotted spec paths to lists of values), one job per "
    "combination, as one group",
)
def submit_group(
    request: Request,
    session: DB,
    user: Writer,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[SWEEP_EXAMPLE],
            description="the spec of POST /api/jobs plus `sweep`; each job is named '<name> [path=value, ...]'; "
            "at most PRUNELAB_MAX_SWEEP_JOBS combinations",
        ),
    ],
) -> Response:
    settings = request.app.state.settings
    if "sweep" not in body:
        raise api_error(422, 'give the values to sweep, e.g. {"seed": [0, 1, 2]}', "sweep")
    try:
        expanded = expand(body, settings.max_sweep_jobs, settings.max_job_epochs)
    except SpecError as err:
        raise _spec_error(err) from None
    specs = [JobSpec.model_validate(s) for s in expanded]  # each parsed once already: no error here
    online = store.online_worker_catalogs(session, settings.worker_online_s)
    for spec in specs:  # what the online workers offer (models, datasets, layers)
        problems = spec_problems(spec, online)
        if problems:
            raise _spec_error(SpecErrors(problems)) from None
    owner_id = user.id if user else None
    limit, _ = _queue_limit(settings, owner_id)
    name = str(body.get("name") or JobSpec.model_fields["name"].default)[:200]
    created = store.create_group_within_limit(session, name, body["sweep"], specs, owner_id, limit)
    if created is None:
        session.rollback()
        err = _over_limit(user, owner_id, settings)
        err.detail = f"{err.detail} (this sweep adds {len(specs)} jobs)"
        raise err
    group, jobs = created
    session.commit()
    for job in jobs:
        _enqueue(request, session, job.id, job.queue)
    for job in jobs:
        session.refresh(job)
    content = {"group": store.get_group(session, group.id), "jobs": public_jobs(session, settings, jobs)}
    return respond(GroupSubmitted, content, 201)


@router.get(
    "",
    response_model=GroupList,
    responses=error_responses(*READ_ERRORS),
    summary="Groups (sweeps), newest first, with their job counts by status",
)
def list_groups(
    session: DB,
    user: Reader,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
) -> Response:
    items, total = store.list_groups(session, limit, offset)
    return respond(GroupList, {"items": items, "total": total, "limit": limit, "offset": offset})


@router.get(
    "/{group_id}",
    response_model=GroupPublic,
    responses=error_responses(*READ_ERRORS, 404),
    summary="One group with its job counts by status (its jobs: GET /api/jobs?group=ID)",
)
def get_group(group_id: GroupId, session: DB, user: Reader, settings: AppSettings) -> Response:
    return respond(GroupPublic, _group_or_404(session, group_id))
