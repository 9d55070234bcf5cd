"""/api/compare, /api/catalog, /api/me, /api/health."""

import functools
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from backend import store
from backend.api.catalogs import catalog_response
from backend.api.deps import DB, MAX_ID, AppSettings, api_error, invalid, public_jobs
from backend.api.schemas import READ_ERRORS, Catalog, CompareResponse, Health, Me, error_responses, respond
from backend.auth import Reader

router = APIRouter(prefix="/api", tags=["views"])
MAX_COMPARE = 200


@functools.lru_cache(maxsize=1)
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prunelab")
    except PackageNotFoundError:
        return "0+unknown"


def _point(m: dict[str, Any]) -> dict[str, Any]:
    latency = m.get("latency") or {}
    return {
        "index": m.get("index"),
        "target_sparsity": m.get("target_sparsity"),
        "sparsity": m.get("sparsity"),
        "accuracy": m.get("accuracy"),
        "accuracy_before_finetune": m.get("accuracy_before_finetune"),
        "flops_effective": m.get("flops_effective"),
        "flops_dense": m.get("flops_dense"),
        "latency_ms": latency.get("realised_ms"),
        "dense_latency_ms": latency.get("dense_ms"),
        "speedup": latency.get("speedup"),
        "size_sparse_bytes": m.get("size_sparse_bytes"),
        "size_dense_bytes": m.get("size_dense_bytes"),
    }


def downsample(items: list, points: int) -> list:
    """At most `points` items, evenly spread, first and last kept."""
    if len(items) <= points:
        return items
    picks = np.unique(np.linspace(0, len(items) - 1, points).round().astype(int))
    return [items[i] for i in picks]


@router.get(
    "/compare",
    response_model=CompareResponse,
    responses=error_responses(*READ_ERRORS, 404),
    summary="Curves of several runs in one response, downsampled to `points` per run",
)
def compare(
    session: DB,
    user: Reader,
    settings: AppSettings,
    ids: str = Query(..., description="job ids, comma separated (at most 200)"),
    points: int = Query(200, ge=2, le=2000),
) -> Response:
    try:
        job_ids = list(dict.fromkeys(int(p) for p in ids.split(",") if p.strip()))
    except ValueError:
        raise invalid(("query", "ids"), "must be job ids separated by commas, e.g. 1,2,3") from None
    if not job_ids:
        raise invalid(("query", "ids"), "give at least one job id")
    if len(job_ids) > MAX_COMPARE:
        raise invalid(("query", "ids"), f"at most {MAX_COMPARE} jobs can be compared at once")
    if any(j < 1 or j > MAX_ID for j in job_ids):
        raise invalid(("query", "ids"), f"job ids are integers from 1 to {MAX_ID}")
    jobs = store.jobs_by_id(session, job_ids)
    missing = [j for j in job_ids if j not in jobs]
    if missing:
        detail = f"jobs not found: {', '.join(map(str, missing))}"
        raise api_error(404, "jobs not found", "ids", value=missing, detail=detail)
    curves = store.step_curves(session, job_ids)
    public = dict(zip(job_ids, public_jobs(session, settings, [jobs[j] for j in job_ids])))
    runs = [
        {
            "job": public[j],
            "points": [_point(m) for m in downsample(curves[j], points)],
            "total_points": len(curves[j]),
        }
        for j in job_ids
    ]
    return respond(CompareResponse, {"runs": runs})


@router.get(
    "/catalog",
    response_model=Catalog,
    responses=error_responses(*READ_ERRORS),
    summary="Models (built-in, torchvision, plugins), datasets, methods, schedules, and the online workers "
    "offering each model and dataset",
)
def catalog(session: DB, user: Reader, settings: AppSettings) -> Response:
    online = store.online_worker_catalogs(session, settings.worker_online_s)
    return respond(Catalog, catalog_response(online))


@router.get(
    "/me",
    response_model=Me,
    responses=error_responses(*READ_ERRORS),
    summary="Who this request is: name, role, and the server's auth mode",
)
def me(request: Request, user: Reader) -> Response:
    if request.app.state.settings.auth == "off":
        return respond(Me, {"name": None, "role": "admin", "auth": "off"})  # one local user may do anything
    if user is None:  # public reading without a token
        return respond(Me, {"name": None, "role": "anonymous", "auth": "tokens"})
    return respond(Me, {"name": user.name, "role": user.role, "auth": "tokens"})


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the database cannot be reached"}},
    summary="Database reachable, version",
)
def health(request: Request) -> Response:
    settings = request.app.state.settings
    body = {
        "status": "ok",
        "db": "ok",
        "version": _version(),
        "auth": settings.auth,
        "public_read": settings.public_read,
    }
    try:
        with request.app.state.sessions() as session:
            store.ping(session)
    except Exception as exc:
        body.update(status="error", db=f"error: {exc.__class__.__name__}")
        return respond(Health, body, status_code=503)
    return respond(Health, body)
