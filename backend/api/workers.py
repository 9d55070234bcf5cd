"""/api/workers: the workers registry (each worker registers itself and beats a heartbeat every lease_s / 3)."""

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from backend import store
from backend.api.deps import DB, AppSettings
from backend.api.schemas import READ_ERRORS, Timestamp, error_responses, respond
from backend.auth import Reader

router = APIRouter(prefix="/api", tags=["workers"])


class WorkerPublic(BaseModel):
    name: str = Field(description="prunelab-PID@host")
    host: str
    pid: int
    queues: list[str]
    device: str | None = Field(description="cpu or cuda; null until the worker has looked")
    gpu_name: str | None
    gpu_memory_bytes: int | None
    torch_version: str | None
    concurrency: int = Field(description="jobs it runs at once")
    started_at: Timestamp | None
    last_heartbeat: Timestamp | None
    seconds_since_heartbeat: float
    stopped_at: Timestamp | None = Field(description="when it shut down cleanly; null while it runs or if it died")
    online: bool = Field(description="not stopped, and its last heartbeat is younger than PRUNELAB_LEASE_S")
    current_job_id: int | None
    catalog: dict[str, Any] | None = Field(description="the models and datasets it can run (null until published)")


class WorkerList(BaseModel):
    items: list[WorkerPublic]
    online: int = Field(description="how many of them are online")


@router.get(
    "/workers",
    response_model=WorkerList,
    responses=error_responses(*READ_ERRORS),
    summary="Registered workers: host, queues, device, heartbeat, online or offline, current job",
)
def list_workers(session: DB, user: Reader, settings: AppSettings) -> Response:
    items = [store.worker_to_dict(w, settings.worker_online_s) for w in store.list_workers(session)]
    return respond(WorkerList, {"items": items, "online": sum(w["online"] for w in items)})
