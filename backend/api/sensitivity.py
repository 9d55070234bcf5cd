"""/api/jobs/{id}/sensitivity and /api/jobs/{id}/allocation: the grid of a sensitivity job (each layer
pruned alone to each sparsity, no fine-tuning) and the per-layer sparsities chosen from it for one goal
(core.allocation's greedy by accuracy drop per weight or FLOP removed), with a ready spec that runs them."""

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from backend import store
from backend.api.deps import DB, JobId, api_error, job_or_404
from backend.api.schemas import READ_ERRORS, error_responses, respond
from backend.auth import Reader
from core.sensitivity import AllocationError, allocate_job, read_goal

router = APIRouter(prefix="/api/jobs", tags=["sensitivity"])


class SensitivityPointPublic(BaseModel):
    """One layer pruned alone to one sparsity (more keys may come: val_loss, layer_params, cached, ...)."""

    model_config = ConfigDict(extra="allow")
    layer: str
    position: int = Field(description="the layer's place in the network, from 0")
    sparsity: float
    accuracy: float = Field(description="test accuracy with only this layer pruned")
    val_accuracy: float = Field(description="validation accuracy with only this layer pruned")
    loss: float
    params_removed: int | float
    flops_removed: int | float = Field(description="FLOPs per sample removed")
    latency: dict[str, Any] | None = Field(None, description="dense vs realised latency (measure.latency)")


class SensitivityLayer(BaseModel):
    layer: str
    position: int
    params: int = Field(description="weights of the layer")
    flops: int = Field(description="FLOPs per sample of the layer")


class SensitivityGrid(BaseModel):
    job_id: int
    status: str
    baseline: dict[str, Any] | None = Field(description="the baseline's metrics (accuracy, val_accuracy, ...)")
    sparsities: list[float]
    layers: list[SensitivityLayer] = Field(description="scanned so far, in network order")
    points: list[SensitivityPointPublic] = Field(description="layers in network order, sparsities ascending")


class AllocationLayer(BaseModel):
    layer: str
    sparsity: float = Field(description="the allocated sparsity")
    params: int
    flops: int
    drop: float = Field(description="predicted drop of validation accuracy of this layer alone")
    max_sparsity: float = Field(description="the largest scanned sparsity (never exceeded)")


class AllocationPrediction(BaseModel):
    sparsity: float = Field(description="weights removed over the scanned layers / their weights")
    params_removed: float
    params_kept: float
    size_bytes: float = Field(description="fp32 bytes of the kept weights of the scanned layers")
    model_size_bytes: float | None = Field(description="fp32 bytes of the model's kept parameters")
    model_size_dense_bytes: float | None
    flops_removed: float
    model_flops: int | None
    flop_reduction: float | None = Field(description="model FLOPs / FLOPs after pruning")
    accuracy_drop: float = Field(description="sum of the per-layer drops (layers are measured alone)")
    val_accuracy: float = Field(description="baseline validation accuracy minus the predicted drop")


class Allocation(BaseModel):
    goal: str = Field(description="target_sparsity, flop_reduction or max_drop")
    value: float
    baseline_val_accuracy: float
    layers: list[AllocationLayer]
    layer_sparsity: dict[str, float]
    predicted: AllocationPrediction
    spec: dict[str, Any] = Field(description="a ready job spec: POST /api/jobs?source_job_id=... with it")
    source_job_id: int


def _sensitivity_job(session, job_id: int):
    job = job_or_404(session, job_id)
    if job.schedule != "sensitivity":
        raise api_error(
            409,
            f"job {job_id} is not a sensitivity job (its schedule is {job.schedule})",
            "path.job_id",
            "a job with schedule.kind: sensitivity",
            job_id,
        )
    return job


@router.get(
    "/{job_id}/sensitivity",
    response_model=SensitivityGrid,
    responses=error_responses(*READ_ERRORS, 404, 409),
    summary="The grid of a sensitivity job: each layer alone at each sparsity (grows while the job runs)",
)
def sensitivity_grid(job_id: JobId, session: DB, user: Reader) -> Response:
    job = _sensitivity_job(session, job_id)
    points = store.sensitivity_grid(session, job_id)
    layers: dict[str, dict[str, Any]] = {}
    for p in points:
        layers.setdefault(
            p["layer"],
            {
                "layer": p["layer"],
                "position": p["position"],
                "params": int(p.get("layer_params") or 0),
                "flops": int(p.get("layer_flops") or 0),
            },
        )
    body = {
        "job_id": job.id,
        "status": job.status,
        "baseline": job.baseline,
        "sparsities": list((job.spec.get("schedule") or {}).get("sparsities") or []),
        "layers": list(layers.values()),
        "points": points,
    }
    return respond(SensitivityGrid, body)


@router.get(
    "/{job_id}/allocation",
    response_model=Allocation,
    responses=error_responses(*READ_ERRORS, 404, 409),
    summary="Per-layer sparsities for one goal from a sensitivity grid, their predicted effect and a ready spec",
)
def allocation(
    job_id: JobId,
    session: DB,
    user: Reader,
    target_sparsity: float | None = Query(None, ge=0, lt=1, description="share of the scanned weights removed"),
    flop_reduction: str | None = Query(None, max_length=20, description="a factor such as 4 or 4x"),
    max_drop: float | None = Query(None, ge=0, le=1, description="largest predicted validation accuracy drop"),
    iterative: bool = Query(False, description="the ready spec: iterative (every layer toward its target)"),
) -> Response:
    job = _sensitivity_job(session, job_id)
    try:
        goal, value = read_goal(target_sparsity, flop_reduction, max_drop)
    except AllocationError as exc:
        raise api_error(422, exc.message, f"query.{exc.field}", exc.allowed, detail=str(exc)) from None
    points = store.sensitivity_grid(session, job_id)
    if not points or (job.baseline or {}).get("val_accuracy") is None:
        raise api_error(409, f"job {job_id} has no sensitivity grid yet (status {job.status})", "path.job_id")
    try:
        body = allocate_job(points, job.baseline, job.spec, goal, value, iterative=iterative, source_job_id=job.id)
    except AllocationError as exc:
        field = f"query.{exc.field}"
        raise api_error(422, exc.message, field, exc.allowed, value, detail=f"{field}: {exc.message}") from None
    return respond(Allocation, body)
