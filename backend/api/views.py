"""/api/compare, /api/catalog, /api/me, /api/health."""

import functools
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import select, text

from backend import store
from backend.api.deps import DB, MAX_ID, FastJSONResponse, invalid
from backend.auth import Reader
from backend.models import Job

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


@router.get("/compare", summary="Curves of several runs in one response, downsampled to `points` per run")
def compare(
    session: DB,
    user: Reader,
    ids: str = Query(..., description="job ids, comma separated (at most 200)"),
    points: int = Query(200, ge=2, le=2000),
) -> FastJSONResponse:
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
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids), Job.deleted_at.is_(None)))}
    missing = [j for j in job_ids if j not in jobs]
    if missing:
        raise HTTPException(404, f"jobs not found: {', '.join(map(str, missing))}")
    curves = store.step_curves(session, job_ids)
    runs = [
        {
            "job": store.job_to_dict(jobs[j]),
            "points": [_point(m) for m in downsample(curves[j], points)],
            "total_points": len(curves[j]),
        }
        for j in job_ids
    ]
    return FastJSONResponse({"runs": runs})


@router.get("/catalog", summary="Models, datasets, methods, schedules: parameters, types, ranges, defaults")
def catalog(user: Reader) -> FastJSONResponse:
    from core.spec import catalog as build_catalog

    return FastJSONResponse(build_catalog())


@router.get("/me", summary="Who this request is: name, role, and the server's auth mode")
def me(request: Request, user: Reader) -> FastJSONResponse:
    if request.app.state.settings.auth == "off":
        return FastJSONResponse({"name": None, "role": "admin", "auth": "off"})  # one local user may do anything
    if user is None:  # public reading without a token
        return FastJSONResponse({"name": None, "role": "anonymous", "auth": "tokens"})
    return FastJSONResponse({"name": user.name, "role": user.role, "auth": "tokens"})


@router.get("/health", summary="Database reachable, version")
def health(request: Request) -> FastJSONResponse:
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
            session.execute(text("SELECT 1"))
    except Exception as exc:
        body.update(status="error", db=f"error: {exc.__class__.__name__}")
        return FastJSONResponse(body, status_code=503)
    return FastJSONResponse(body)
