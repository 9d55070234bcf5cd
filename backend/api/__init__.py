"""The FastAPI app. `create_app(settings)` builds it; `prunelab serve` runs it with uvicorn.
This package never imports torch: the API only needs the torch-free spec, catalog and mask codec."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

import frontend
from backend import broker
from backend.api import events, exports, groups, jobs, sensitivity, views, workers
from backend.api.cache import LIST_TTL_S, LRU
from backend.api.deps import install_error_handlers
from backend.api.limits import BodySizeLimit
from backend.api.security import FailedAuthLimiter, SecurityMiddleware, default_allowed_hosts, install_log_redaction
from backend.db import get_sessionmaker
from core.settings import Settings, get_settings


def allowed_hosts(settings: Settings) -> list[str]:
    """PRUNELAB_ALLOWED_HOSTS (comma separated), else the bound host and, for a loopback bind, the other
    loopback names; any host for a wildcard bind."""
    given = [h.strip() for h in settings.allowed_hosts.split(",") if h.strip()]
    return given or default_allowed_hosts(settings.host)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    install_log_redaction()  # again: the server may have set up its log handlers after create_app
    yield


def create_app(settings: Settings | None = None, enqueue: Callable[[int, str], Any] | None = None) -> FastAPI:
    """The API for `settings` (default: from the environment). `enqueue(job_id, queue)` hands a job to the
    workers; default backend.broker.enqueue_job."""
    settings = settings or get_settings()
    app = FastAPI(
        title="PruneLab",
        version=views._version(),
        description=(
            "Submit pruning experiments, follow them live, compare runs, download results. Step `index` values "
            "of the API (paths, `?step=`, `?after=`, JSON bodies) are 0-based: the first pruning step has "
            "index 0. What is meant for people is 1-based: the CSV export's `step` column and the download "
            "names of checkpoints (index 15 downloads as `...-step-16.pt`). A request whose Host is not one "
            "of PRUNELAB_ALLOWED_HOSTS answers 400; with authentication off, a write sent by a page of "
            "another origin answers 403."
        ),
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.sessions = get_sessionmaker(settings.database_url)
    app.state.sqlite = settings.database_url.startswith("sqlite")
    app.state.enqueue = enqueue or broker.enqueue_job
    app.state.enqueue_export = exports.enqueue_export
    app.state.list_cache = LRU(256, ttl_s=LIST_TTL_S)
    app.state.mask_cache = LRU(32)  # a 256 x 256 heatmap body is ~0.4 MB
    app.state.auth_failures = FailedAuthLimiter()
    app.include_router(jobs.router)
    app.include_router(groups.router)
    app.include_router(views.router)
    app.include_router(events.router)
    app.include_router(workers.router)
    app.include_router(sensitivity.router)
    app.include_router(exports.router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    # Added last, so outermost: its headers are on every response, the 413 above included.
    app.add_middleware(
        SecurityMiddleware, allowed_hosts=allowed_hosts(settings), same_origin_writes=settings.auth == "off"
    )
    install_log_redaction()
    frontend.mount_frontend(app)
    return app
