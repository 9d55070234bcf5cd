"""/api/jobs/{id}/steps/{k}/export: one step's model as ONNX, TorchScript or a state_dict file.

The API never imports torch, so a worker exports: POST enqueues the export task (core.queues.EXPORT_TASK_NAME)
on the job's queue and answers 202; the worker writes exports/step-K.<ext> into the job's artifact directory;
GET serves it once it is there. `k` is 1-based, as people read steps (step index 0 is step 1)."""

from pathlib import Path as FsPath

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response

from backend import broker, store
from backend.api.deps import DB, MAX_ID, AppSettings, JobId, api_error, invalid, job_or_404
from backend.api.schemas import READ_ERRORS, WRITE_ERRORS, ExportQueued, error_responses, respond
from backend.auth import Reader, Writer, check_can_modify
from core.queues import EXPORT_FORMATS, EXPORT_SUFFIXES, EXPORT_TASK_NAME, check_queue, export_file_name
from core.settings import Settings

router = APIRouter(prefix="/api/jobs", tags=["exports"])
ERROR_SUFFIX = ".error"  # what worker/export_task.py writes beside the file when an export fails
NOT_YET = "not exported yet; POST to export"
StepNumber = Path(ge=1, le=MAX_ID, description="1-based step number (step index 0 is step 1)")
FormatQuery = Query(description=f"one of {', '.join(EXPORT_FORMATS)}")


def enqueue_export(job_id: int, step: int, fmt: str, queue: str, settings: Settings) -> str:
    """Ask a worker listening on `queue` to export step `step` of job `job_id`; returns the Celery task id."""
    args = [int(job_id), int(step), fmt]
    return broker.get_app(settings).send_task(EXPORT_TASK_NAME, args=args, queue=check_queue(queue)).id


def _check(session, job_id: int, step: int, fmt: str):
    if fmt not in EXPORT_FORMATS:
        allowed = ", ".join(EXPORT_FORMATS)
        raise invalid(("query", "format"), f"unknown format {fmt!r}; allowed: {allowed}", allowed, fmt)
    job = job_or_404(session, job_id)
    if store.get_step(session, job_id, step - 1) is None:
        done = store.completed_steps(session, job_id)
        allowed = f"1 to {done}" if done else "none yet"
        raise api_error(404, f"job {job_id} has no step {step} (steps: {allowed})", "step", allowed, step)
    return job


def _paths(settings: Settings, job_id: int, step: int, fmt: str) -> tuple[FsPath, FsPath]:
    out = store.job_artifact_dir(settings.artifact_dir, job_id) / "exports" / export_file_name(step, fmt)
    return out, out.with_name(out.name + ERROR_SUFFIX)


@router.post(
    "/{job_id}/steps/{step}/export",
    status_code=202,
    response_model=ExportQueued,
    responses={
        200: {"model": ExportQueued, "description": "exported already"},
        **error_responses(*WRITE_ERRORS, 404, 503),
    },
    summary="Export step k (1-based) as onnx, torchscript or state_dict: a worker writes the file, GET downloads it",
)
def post_export(
    request: Request,
    job_id: JobId,
    session: DB,
    user: Writer,
    settings: AppSettings,
    step: int = StepNumber,
    format: str = FormatQuery,
) -> Response:
    job = _check(session, job_id, step, format)
    check_can_modify(user, job)
    out, failed = _paths(settings, job_id, step, format)
    body = {
        "job_id": job_id,
        "step": step,
        "format": format,
        "url": f"/api/jobs/{job_id}/steps/{step}/export?format={format}",
    }
    if out.is_file():
        return respond(ExportQueued, {**body, "status": "ready"}, 200)
    failed.unlink(missing_ok=True)  # a new try
    try:
        request.app.state.enqueue_export(job_id, step, format, job.queue, settings)
    except Exception as exc:  # broker down, misconfigured
        raise api_error(503, f"could not enqueue the export on queue {job.queue!r}: {exc}") from None
    return respond(ExportQueued, {**body, "status": "queued"}, 202)


@router.get(
    "/{job_id}/steps/{step}/export",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        **error_responses(*READ_ERRORS, 404, by_ref=True),
    },
    summary="Download step k (1-based) exported as onnx, torchscript or state_dict (404 until a worker wrote it)",
)
def get_export(
    job_id: JobId,
    session: DB,
    user: Reader,
    settings: AppSettings,
    step: int = StepNumber,
    format: str = FormatQuery,
) -> FileResponse:
    _check(session, job_id, step, format)
    out, failed = _paths(settings, job_id, step, format)
    if out.is_file():
        name = f"prunelab-job-{job_id}-step-{step}{EXPORT_SUFFIXES[format]}"
        return FileResponse(out, media_type="application/octet-stream", filename=name)
    if failed.is_file():
        reason = failed.read_text(errors="replace").strip()
        raise api_error(404, f"the export failed: {reason}; POST to try again", "format", ", ".join(EXPORT_FORMATS))
    raise api_error(404, NOT_YET, "format", ", ".join(EXPORT_FORMATS), format)
