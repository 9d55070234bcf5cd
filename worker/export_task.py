"""The export task: the model of one step of a job as ONNX, TorchScript or a state_dict file, written by a
worker (the API never imports torch) into the job's artifact directory as exports/step-K.onnx (.torchscript.pt,
.state_dict.pt; a masked model also gets FILE.safetensors beside it when safetensors is installed). The API
serves the file once it is there (GET /api/jobs/{id}/steps/{k}/export). A failed export leaves
exports/step-K.<ext>.error with its one line instead, which the API reports until the next POST.

Files appear whole: written in a temporary folder beside them, then renamed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from celery import shared_task

from backend import store
from backend.db import session_scope
from core.queues import EXPORT_FORMATS, EXPORT_TASK_NAME, export_file_name
from core.settings import get_settings

log = logging.getLogger(__name__)
ERROR_SUFFIX = ".error"


def export_paths(artifact_dir: Path, job_id: int, step: int, fmt: str) -> tuple[Path, Path]:
    """(the export file, its error file) of 1-based step `step` of job `job_id`."""
    out = store.job_artifact_dir(artifact_dir, job_id) / "exports" / export_file_name(step, fmt)
    return out, out.with_name(out.name + ERROR_SUFFIX)


@shared_task(name=EXPORT_TASK_NAME)
def export_step(job_id: int, step: int, fmt: str) -> str:
    """Export 1-based step `step` of job `job_id` as `fmt`; returns "exported", "exists", "failed" or "skipped"."""
    from worker.engine.export import ExportError, export_checkpoint
    from worker.tasks import error_text

    settings = get_settings()
    if fmt not in EXPORT_FORMATS:
        log.warning("export of job %s: unknown format %r, skipped", job_id, fmt)
        return "skipped"
    run_dir = store.job_artifact_dir(settings.artifact_dir, job_id)
    out, failed = export_paths(settings.artifact_dir, job_id, step, fmt)
    if out.is_file():
        return "exists"
    with session_scope() as session:
        if store.get_job(session, job_id) is None:
            return "skipped"  # deleted meanwhile
        row = store.get_step(session, job_id, step - 1)
        relative = (row.metrics or {}).get("checkpoint") if row is not None else None
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if relative is None:
            raise ExportError(f"step: step {step} of job {job_id} has no checkpoint")
        checkpoint = run_dir / relative
        if not checkpoint.is_file():
            raise ExportError(
                f"step: the checkpoint of step {step} is no longer kept (PRUNELAB_KEEP_CHECKPOINTS="
                f"{settings.keep_checkpoints}; 'all' keeps every step's)"
            )
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
            report = export_checkpoint(checkpoint, run_dir, fmt, Path(tmp) / out.name)
            # beside the file: the masked weights (safetensors), an ONNX model's weights above 2 GiB (.data)
            for extra in Path(tmp).iterdir():
                if extra.name != out.name:
                    os.replace(extra, out.parent / extra.name)
            os.replace(Path(tmp) / out.name, out)
    except Exception as exc:  # the reason goes to the API through the error file; the worker goes on
        log.exception("export of step %s of job %s as %s failed", step, job_id, fmt)
        failed.write_text(error_text(exc))
        return "failed"
    failed.unlink(missing_ok=True)
    log.info("job %s: step %s exported as %s (%s parameters)", job_id, step, fmt, report["params"])
    return "exported"
