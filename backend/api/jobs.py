"""/api/jobs: submit, list, inspect, cancel, retry, delete, steps, masks, exports, checkpoints."""

import csv
import io
import logging
from pathlib import Path as FsPath
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import FileResponse, Response

from backend import store
from backend.api.deps import DB, AppSettings, JobId, api_error, check_text, invalid, job_or_404
from backend.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    JobDeleted,
    JobExport,
    JobList,
    JobPublic,
    LayerMaskPublic,
    StepList,
    check,
    error_responses,
    respond,
)
from backend.auth import Reader, Writer, check_can_modify
from backend.db import json_dumps, orjson
from backend.models import JOB_STATUSES
from core.masks import MAX_CELLS, decode_density, decode_grid
from core.spec import JobSpec

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/jobs", tags=["jobs"])

SPEC_EXAMPLE = {
    "name": "lenet-block2",
    "model": "lenet300_100",
    "dataset": "digits",
    "method": {"kind": "block", "block_size": 2},
    "schedule": {"kind": "iterative", "rate": 0.2, "rounds": 5},
    "tags": ["demo"],
}


def _enqueue(request: Request, session, job_id: int, queue: str) -> None:
    """Hand the job to the queue; if that fails the job ends as failed with the reason."""
    try:
        task_id = request.app.state.enqueue(job_id, queue)
    except Exception as exc:  # broker down, misconfigured: the user sees why on the job
        log.exception("could not enqueue job %s", job_id)
        store.set_status(
            session,
            job_id,
            "failed",
            error=f"could not enqueue the job on queue {queue!r}: {exc}",
            message="could not enqueue",
        )
    else:
        task_id = getattr(task_id, "id", task_id)
        if isinstance(task_id, str):
            store.set_task_id(session, job_id, task_id)
    session.commit()


def _job_response(job, status_code: int = 200) -> Response:
    return respond(JobPublic, store.job_to_dict(job), status_code)


def _check_queue_limit(session, user, settings, hint: str = "") -> None:
    limit = settings.max_queued_jobs_per_user
    if user is not None and store.count_active_jobs(session, user.id) >= limit:
        raise api_error(
            429,
            f"user {user.name!r} already has {limit} queued or running jobs{hint}; wait for some to finish",
            allowed=f"at most {limit} queued or running jobs per user",
        )


@router.post(
    "",
    status_code=201,
    response_model=JobPublic,
    responses=error_responses(*WRITE_ERRORS, 413, 429),
    summary="Submit a job (the spec of `prunelab run`, as JSON)",
)
def submit_job(
    request: Request, session: DB, user: Writer, spec: Annotated[JobSpec, Body(examples=[SPEC_EXAMPLE])]
) -> Response:
    settings = request.app.state.settings
    _check_queue_limit(session, user, settings, " (PRUNELAB_MAX_QUEUED_JOBS_PER_USER)")
    job = store.create_job(session, spec, owner_id=user.id if user else None)
    session.commit()
    _enqueue(request, session, job.id, job.queue)
    session.refresh(job)
    return _job_response(job, 201)


@router.get(
    "",
    response_model=JobList,
    responses=error_responses(*READ_ERRORS),
    summary="List jobs (filters, sort, paging); never reads step history",
)
def list_jobs(
    request: Request,
    session: DB,
    user: Reader,
    status: str | None = Query(None, description=f"one or more of {', '.join(JOB_STATUSES)}, comma separated"),
    model: str | None = None,
    dataset: str | None = None,
    method: str | None = None,
    schedule: str | None = None,
    tag: str | None = None,
    owner: str | None = Query(None, description="user name"),
    q: str | None = Query(None, max_length=200, description="text the run name contains (any case)"),
    sort: str = Query(
        "-created_at", description="created_at, name, best_accuracy, last_sparsity, ...; prefix - for descending"
    ),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
) -> Response:
    filters = {
        "status": status,
        "model": model,
        "dataset": dataset,
        "method": method,
        "schedule": schedule,
        "tag": tag,
        "owner": owner,
        "q": q,
    }
    for name, value in filters.items():
        check_text("query", name, value)
    check_text("query", "sort", sort)
    key = (tuple(filters.values()), sort, limit, offset, store.jobs_version(session))
    body = request.app.state.list_cache.get(key)
    if body is None:
        try:
            jobs, total = store.list_jobs(session, **filters, sort=sort, limit=limit, offset=offset)
        except store.StoreError as err:
            raise invalid(("query", err.field), err.message) from None
        content = {"items": [store.job_to_dict(j) for j in jobs], "total": total, "limit": limit, "offset": offset}
        body = respond(JobList, content).body
        request.app.state.list_cache.put(key, body)
    return Response(body, media_type="application/json")


@router.get("/{job_id}", response_model=JobPublic, responses=error_responses(*READ_ERRORS, 404), summary="One job")
def get_job(job_id: JobId, session: DB, user: Reader) -> Response:
    return _job_response(job_or_404(session, job_id))


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    responses=error_responses(*WRITE_ERRORS, 404, 409),
    summary="Cancel: queued jobs at once, running ones within seconds",
)
def cancel_job(job_id: JobId, session: DB, user: Writer) -> Response:
    job = job_or_404(session, job_id)
    check_can_modify(user, job)
    try:
        store.request_cancel(session, job)
    except store.StoreError as err:
        raise api_error(409, err.message, value=job.status) from None
    session.commit()
    return _job_response(job)


@router.post(
    "/{job_id}/retry",
    response_model=JobPublic,
    responses=error_responses(*WRITE_ERRORS, 404, 409, 429),
    summary="Queue a failed or cancelled job again; it resumes after its last step",
)
def retry_job(job_id: JobId, request: Request, session: DB, user: Writer) -> Response:
    job = job_or_404(session, job_id)
    check_can_modify(user, job)
    _check_queue_limit(session, user, request.app.state.settings)
    try:
        store.retry_job(session, job)
    except store.StoreError as err:
        raise api_error(409, err.message, value=job.status) from None
    session.commit()
    _enqueue(request, session, job.id, job.queue)
    session.refresh(job)
    return _job_response(job)


@router.delete(
    "/{job_id}",
    response_model=JobDeleted,
    responses=error_responses(*WRITE_ERRORS, 404),
    summary="Delete a job, its steps, masks and artifacts (a running job is cancelled first)",
)
def delete_job(job_id: JobId, session: DB, user: Writer, settings: AppSettings) -> Response:
    job = job_or_404(session, job_id)
    check_can_modify(user, job)
    if job.status in ("queued", "running"):
        try:  # the worker sees the job gone (or cancelled) at its next check and stops
            store.request_cancel(session, job)
        except store.StoreError:
            pass  # it finished meanwhile
    store.delete_job(session, job, settings.artifact_dir)
    session.commit()
    return respond(JobDeleted, {"deleted": job_id})


@router.get(
    "/{job_id}/steps",
    response_model=StepList,
    responses=error_responses(*READ_ERRORS, 404),
    summary="Steps of a job (only those with index > after)",
)
def list_steps(
    job_id: JobId,
    session: DB,
    user: Reader,
    after: int | None = Query(None, ge=-1, le=10**9, description="only steps with a larger index"),
) -> Response:
    job_or_404(session, job_id)
    return respond(StepList, {"items": [store.step_to_dict(s) for s in store.list_steps(session, job_id, after)]})


def _cells_2d(weight_shape: list[int] | None, fallback: tuple[int, int]) -> tuple[int, int]:
    if not weight_shape:
        return fallback
    rows = int(weight_shape[0])
    cols = int(np.prod(weight_shape[1:])) if len(weight_shape) > 1 else 1
    return rows, cols


def _per_cell(total: int, cells: int) -> float | int:
    share = total / cells
    return int(share) if share == int(share) else round(share, 3)


@router.get(
    "/{job_id}/layers/{layer}/mask",
    response_model=LayerMaskPublic,
    responses=error_responses(*READ_ERRORS, 404),
    summary="Heatmap of a layer's mask (at most 256 x 256 cells)",
)
def layer_mask(
    job_id: JobId,
    layer: str,
    request: Request,
    session: DB,
    user: Reader,
    step: int | None = Query(None, ge=0, le=10**9, description="step index; default the latest"),
) -> Response:
    check_text("path", "layer", layer)
    job_or_404(session, job_id)
    found = store.get_layer_mask(session, job_id, layer, step)
    if found is None:
        latest = store.get_step(session, job_id, step)
        if latest is None:
            if step is not None:
                raise api_error(404, f"job {job_id} has no step {step}", "step", value=step)
            raise api_error(404, f"job {job_id} has no steps yet", "step")
        names = ", ".join(str(entry.get("name")) for entry in latest.metrics.get("layers", []))
        raise api_error(
            404,
            f"no mask for layer {layer!r} at step {latest.index}; layers: {names}",
            "layer",
            allowed=names,
            value=layer,
        )
    index, mask = found
    cached = request.app.state.mask_cache.get(mask.id)
    if cached is not None:
        return Response(cached, media_type="application/json")
    grid_shape = mask.grid_shape
    if grid_shape and len(grid_shape) == 2 and max(grid_shape) <= MAX_CELLS:
        blob = store.mask_grid(session, mask.id)
        values, kind = decode_grid(blob).astype(np.uint8), "blocks"
        shape = list(grid_shape)
        rows, cols = _cells_2d(mask.weight_shape, (shape[0], shape[1]))
        cell = list(mask.block_shape) if mask.block_shape else [_per_cell(rows, shape[0]), _per_cell(cols, shape[1])]
    elif mask.density is not None:
        values, kind = np.round(decode_density(mask.density), 3), "density"
        shape = list(values.shape)
        rows, cols = _cells_2d(mask.weight_shape, (shape[0], shape[1]))
        cell = [_per_cell(rows, shape[0]), _per_cell(cols, shape[1])]
    else:
        raise api_error(
            404, f"layer {layer!r} of job {job_id} has no stored mask at step {index}", "layer", value=layer
        )
    content = {
        "layer": layer,
        "step": index,
        "kind": kind,
        "shape": shape,
        "cell": cell,
        "weight_shape": mask.weight_shape,
        "sparsity": mask.sparsity,
        "values": [],
    }
    # values, a 2-D numpy array built just above, is left out of the check (65536 cells as Python lists cost
    # ~20 ms) and stays an array: orjson writes it in ~1 ms.
    check(LayerMaskPublic, content)
    content["values"] = values if orjson is not None else values.tolist()
    body = json_dumps(content).encode()
    request.app.state.mask_cache.put(mask.id, body)  # a stored mask never changes
    return Response(body, media_type="application/json")


CSV_COLUMNS = [
    "index",
    "target_sparsity",
    "sparsity",
    "accuracy",
    "accuracy_before_finetune",
    "accuracy_drop",
    "val_accuracy",
    "loss",
    "params_total",
    "params_nonzero",
    "size_dense_bytes",
    "size_sparse_bytes",
    "size_compact_bytes",
    "flops_dense",
    "flops_effective",
    "latency_device",
    "latency_batch_size",
    "latency_dense_ms",
    "latency_realised_ms",
    "latency_speedup",
    "latency_form",
    "seconds",
    "checkpoint",
]


def _flat_row(metrics: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    for k, v in (metrics.get("latency") or {}).items():
        row[f"latency_{k}"] = v
    return row


@router.get(
    "/{job_id}/export.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "one row per step"},
        **error_responses(*READ_ERRORS, 404),
    },
    summary="Steps as CSV, one row per step",
)
def export_csv(job_id: JobId, session: DB, user: Reader) -> Response:
    job_or_404(session, job_id)
    rows = [_flat_row(s.metrics) | {"index": s.index} for s in store.list_steps(session, job_id)]
    columns = CSV_COLUMNS + sorted({k for r in rows for k in r} - set(CSV_COLUMNS) - {"created_at"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="prunelab-job-{job_id}.csv"'},
    )


@router.get(
    "/{job_id}/export.json",
    response_model=JobExport,
    responses=error_responses(*READ_ERRORS, 404),
    summary="The job, its baseline and every step with layer masks (like result.json)",
)
def export_json(job_id: JobId, session: DB, user: Reader) -> Response:
    job = job_or_404(session, job_id)
    steps = store.list_steps(session, job_id)
    masks = store.job_masks(session, job_id) if steps else {}
    out_steps = []
    for s in steps:
        layers = []
        for entry in s.metrics.get("layers", []):
            m = masks.get((s.id, entry.get("name")))
            if m is not None:
                entry = {**entry, "mask": {"block_shape": m.block_shape, "grid": m.grid}, "density": m.density}
            layers.append(entry)
        out_steps.append({**s.metrics, "index": s.index, "layers": layers})
    body = {"job": store.job_to_dict(job), "baseline": job.baseline, "steps": out_steps}
    return respond(
        JobExport, body, headers={"Content-Disposition": f'attachment; filename="prunelab-job-{job_id}.json"'}
    )


@router.get(
    "/{job_id}/checkpoint",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        **error_responses(*READ_ERRORS, 403, 404),
    },
    summary="Download a step's checkpoint (default: the latest step)",
)
def checkpoint(
    job_id: JobId, session: DB, user: Reader, settings: AppSettings, step: int | None = Query(None, ge=0, le=10**9)
) -> FileResponse:
    job_or_404(session, job_id)
    row = store.get_step(session, job_id, step)
    if row is None:
        if step is not None:
            raise api_error(404, f"job {job_id} has no step {step}", "step", value=step)
        raise api_error(404, f"job {job_id} has no steps", "step")
    relative = row.metrics.get("checkpoint")
    if not relative or not isinstance(relative, str) or "\x00" in relative:
        raise api_error(404, f"step {row.index} of job {job_id} has no checkpoint", "step", value=row.index)
    root = FsPath(settings.artifact_dir).resolve()
    path = (store.job_artifact_dir(root, job_id) / relative).resolve()
    if not path.is_relative_to(root):
        raise api_error(403, "checkpoint path points outside the artifact directory; refused", "step", value=row.index)
    if not path.is_file():
        raise api_error(404, f"checkpoint file of step {row.index} is missing", "step", value=row.index)
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"prunelab-job-{job_id}-step-{row.index}.pt"
    )
