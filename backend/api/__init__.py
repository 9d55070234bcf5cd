"""The FastAPI app. `create_app(settings)` builds it; `prunelab serve` runs it with uvicorn.
This package never imports torch: the API only needs the torch-free spec, catalog and mask codec."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

import frontend
from backend import broker
from backend.api import events, jobs, views, workers
from backend.api.cache import LIST_TTL_S, LRU
from backend.api.deps import install_error_handlers
from backend.api.limits import BodySizeLimit
from backend.db import get_sessionmaker
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None, enqueue: Callable[[int, str], Any] | None = None) -> FastAPI:
    """The API for `settings` (default: from the environment). `enqueue(job_id, queue)` hands a job to the
    workers; default backend.broker.enqueue_job."""
    settings = settings or get_settings()
    app = FastAPI(
        title="PruneLab",
        version=views._version(),
        description="Submit pruning experiments, follow them live, compare runs, download results.",
    )
    app.state.settings = settings
    app.state.sessions = get_sessionmaker(settings.database_url)
    app.state.sqlite = settings.database_url.startswith("sqlite")
    app.state.enqueue = enqueue or broker.enqueue_job
    app.state.list_cache = LRU(256, ttl_s=LIST_TTL_S)
    app.state.mask_cache = LRU(32)  # a 256 x 256 heatmap body is ~0.4 MB
    app.include_router(jobs.router)
    app.include_router(views.router)
    app.include_router(events.router)
    app.include_router(workers.router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    frontend.mount_frontend(app)
    return app
