"""/api/jobs: submit, list, inspect, edit, cancel, retry, delete, steps, masks, exports, checkpoints.

Step `index` values (paths, `?step=`, `?after=`, bodies) are 0-based, as the engine numbers its steps; what is
meant for people is 1-based: the CSV `step` column and the download names of checkpoints."""

import csv
import io
import logging
import os
from pathlib import Path as FsPath
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import FileResponse, Response

from backend import store
from backend.api.catalogs import spec_problems
from backend.api.deps import (
    DB,
    ApiError,
    AppSettings,
    JobId,
    api_error,
    check_text,
    error_item,
    invalid,
    job_or_404,
    public_jobs,
)
from backend.api.schemas import (
    READ_ERRORS,
    WRITE_ERRORS,
    JobDeleted,
    JobDetail,
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
from core.spec import JobEdit, JobSpec, epoch_errors

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


def _job_response(session, settings, job, status_code: int = 200) -> Response:
    return respond(JobPublic, public_jobs(session, settings, [job])[0], status_code)


def _queue_limit(settings, owner_id: int | None) -> tuple[int, str]:
    if owner_id is None:
        return settings.max_queued_jobs_anonymous, "PRUNELAB_MAX_QUEUED_JOBS_ANONYMOUS"
    return settings.max_queued_jobs_per_user, "PRUNELAB_MAX_QUEUED_JOBS_PER_USER"


def _over_limit(user, owner_id: int | None, settings) -> ApiError:
    limit, setting = _queue_limit(settings, owner_id)
    who = f"user {user.name!r}" if user is not None and user.id == owner_id else "the job's owner"
    if owner_id is None:
        who = "this server (authentication is off)"
    return api_error(
        429,
        f"{who} already has {limit} queued or running jobs ({setting}); wait for some to finish",
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
    request: Request,
    session: DB,
    user: Writer,
    spec: Annotated[JobSpec, Body(examples=[SPEC_EXAMPLE])],
    source_job_id: int | None = Query(
        None, ge=1, le=2**31 - 1, description="the sensitivity job whose allocation this spec runs (a link back)"
    ),
) -> Response:
    settings = request.app.state.settings
    if source_job_id is not None and store.get_job(session, source_job_id) is None:
        raise invalid(("query", "source_job_id"), f"no job {source_job_id}", "the id of a stored job", source_job_id)
    too_long = epoch_errors(spec, settings.max_job_epochs)
    too_long += spec_problems(spec, store.online_worker_catalogs(session, settings.worker_online_s))
    if too_long:
        items = [error_item(e.message, e.field, e.allowed) for e in too_long]
        raise ApiError(422, "; ".join(str(e) for e in too_long), items)
    owner_id = user.id if user else None
    limit, _ = _queue_limit(settings, owner_id)
    # Counting and adding happen under the owner's lock, released by the commit: parallel submits cannot
    # overshoot the limit.
    job = store.create_job_within_limit(session, spec, owner_id, limit)
    if job is None:
        session.rollback()
        raise _over_limit(user, owner_id, settings)
    job.source_job_id = source_job_id
    session.commit()
    _enqueue(request, session, job.id, job.queue)
    session.refresh(job)
    return _job_response(session, settings, job, 201)


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
    group: int | None = Query(None, ge=1, le=2**31 - 1, description="only the jobs of this group (sweep)"),
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
    filters["group"] = group
    # The workers' version too: the expected start of queued jobs depends on the online workers.
    key = (tuple(filters.values()), sort, limit, offset, store.jobs_version(session), store.workers_version(session))
    body = request.app.state.list_cache.get(key)
    if body is None:
        try:
            jobs, total = store.list_jobs(session, **filters, sort=sort, limit=limit, offset=offset)
        except store.StoreError as err:
            raise invalid(("query", err.field), err.message) from None
        items = public_jobs(session, request.app.state.settings, jobs)
        content = {"items": items, "total": total, "limit": limit, "offset": offset}
        body = respond(JobList, content).body
        request.app.state.list_cache.put(key, body)
    return Response(body, media_type="application/json")


def _disk_bytes(path: FsPath) -> int | None:
    """Bytes of the regular files under a job's run directory; None when it has none."""
    if not path.is_dir():
        return None
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # removed meanwhile (a checkpoint the retention policy dropped)
                pass
    return total


@router.get("/{job_id}", response_model=JobDetail, responses=error_responses(*READ_ERRORS, 404), summary="One job")
def get_job(job_id: JobId, session: DB, user: Reader, settings: AppSettings) -> Response:
    job = job_or_404(session, job_id)
    content = public_jobs(session, settings, [job])[0]
    content["disk_bytes"] = _disk_bytes(store.job_artifact_dir(settings.artifact_dir, job.id))
    return respond(JobDetail, content)


@router.patch(
    "/{job_id}",
    response_model=JobPublic,
    responses=error_responses(*WRITE_ERRORS, 404),
    summary="Change a job's name, tags or notes (its owner or an admin); absent fields stay as they are",
)
def edit_job(job_id: JobId, session: DB, user: Writer, settings: AppSettings, edit: JobEdit) -> Response:
    job = job_or_404(session, job_id)
    check_can_modify(user, job)
    store.edit_job(session, job, name=edit.name, tags=edit.tags, notes=edit.notes)
    session.commit()
    session.refresh(job)
    return _job_response(session, settings, job)


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    responses=error_responses(*WRITE_ERRORS, 404, 409),
    summary="Cancel: queued jobs at once, running ones within seconds",
)
def cancel_job(job_id: JobId, session: DB, user: Writer, settings: AppSettings) -> Response:
    job = job_or_404(session, job_id)
    check_can_modify(user, job)
    try:
        store.request_cancel(session, job)
    except store.StoreError as err:
        raise api_error(409, err.message, value=job.status) from None
    session.commit()
    return _job_response(session, settings, job)


@router.post(
    "/{job_id}/retry",
    response_model=JobPublic,
    responses=error_responses(*WRITE_ERRORS, 404, 409, 429),
    summary="Queue a failed or cancelled job again; it resumes after its last step",
)
def retry_job(job_id: JobId, request: Request, session: DB, user: Writer) -> Response:
    settings = request.app.state.settings
    job = job_or_404(session, job_id)
    check_can_modify(user, job)
    # The job becomes active for its owner: their limit, counted under their lock (as a submit).
    store.lock_owner_queue(session, job.owner_id)
    if job.status not in ("queued", "running"):
        limit, _ = _queue_limit(settings, job.owner_id)
        if store.count_active_jobs_of(session, job.owner_id) >= limit:
            session.rollback()
            raise _over_limit(user, job.owner_id, settings)
    try:
        store.retry_job(session, job)
    except store.StoreError as err:
        raise api_error(409, err.message, value=job.status) from None
    session.commit()
    _enqueue(request, session, job.id, job.queue)
    session.refresh(job)
    return _job_response(session, settings, job)


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
    after: int | None = Query(
        None, ge=-1, le=10**9, description="only steps with a larger (0-based) index; -1: all of them"
    ),
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
    step: int | None = Query(None, ge=0, le=10**9, description="0-based step index; default the latest"),
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


RUN_COLUMNS = ["run_id", "run_name", "model", "dataset", "method", "step"]
CSV_COLUMNS = [
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


def _csv_value(value: Any) -> Any:
    return json_dumps(value) if isinstance(value, (dict, list)) else value


def _flat_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """One step as CSV cells: latency figures as latency_*, each layer's sparsity as sparsity_<layer>, other
    nested values as JSON text."""
    row = {k: _csv_value(v) for k, v in metrics.items() if k not in ("layers", "latency", "index", "created_at")}
    for k, v in (metrics.get("latency") or {}).items():
        row[f"latency_{k}"] = _csv_value(v)
    for layer in metrics.get("layers") or []:
        if isinstance(layer, dict) and "name" in layer:
            row[f"sparsity_{layer['name']}"] = layer.get("sparsity")
    return row


@router.get(
    "/{job_id}/export.csv",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "one row per step: run_id, run_name, model, dataset, method, step (1-based: the "
            "step of index 0 is step 1), the step's figures, sparsity_<layer> per pruned layer; nested values "
            "as JSON",
        },
        **error_responses(*READ_ERRORS, 404),
    },
    summary="Steps as CSV, one row per step",
)
def export_csv(job_id: JobId, session: DB, user: Reader) -> Response:
    job = job_or_404(session, job_id)
    run = {"run_id": job.id, "run_name": job.name, "model": job.model, "dataset": job.dataset, "method": job.method}
    rows = [run | {"step": s.index + 1} | _flat_row(s.metrics) for s in store.list_steps(session, job_id)]
    layers = list(dict.fromkeys(k for r in rows for k in r if k.startswith("sparsity_")))
    known = set(RUN_COLUMNS) | set(CSV_COLUMNS) | set(layers)
    columns = RUN_COLUMNS + CSV_COLUMNS + layers + sorted({k for r in rows for k in r} - known)
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
def export_json(job_id: JobId, session: DB, user: Reader, settings: AppSettings) -> Response:
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
    body = {"job": public_jobs(session, settings, [job])[0], "baseline": job.baseline, "steps": out_steps}
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
    summary="Download a step's checkpoint (default: the latest step); index 15 downloads as ...-step-16.pt",
)
def checkpoint(
    job_id: JobId,
    session: DB,
    user: Reader,
    settings: AppSettings,
    step: int | None = Query(None, ge=0, le=10**9, description="0-based step index; default the latest"),
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
        path, media_type="application/octet-stream", filename=f"prunelab-job-{job_id}-step-{row.index + 1}.pt"
    )
