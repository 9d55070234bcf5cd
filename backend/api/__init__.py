"""The FastAPI app. `create_app(settings)` builds it; `prunelab serve` runs it with uvicorn.
This package never imports torch: the API only needs the torch-free spec, catalog and mask codec."""

import importlib.util
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from backend import broker
from backend.api import events, jobs, views
from backend.api.cache import LIST_TTL_S, LRU
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
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    _publish_spec_schema(app)
    if importlib.util.find_spec("frontend") is not None:
        import frontend

        if hasattr(frontend, "mount_frontend"):
            frontend.mount_frontend(app)
    return app


def _publish_spec_schema(app: FastAPI) -> None:
    """POST /api/jobs reads a plain JSON object (so errors come from parse_spec, naming the field and the
    allowed values); the OpenAPI document still describes it with JobSpec's JSON schema."""
    from core.spec import JobSpec

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        spec_schema = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(spec_schema.pop("$defs", {}))
        components["JobSpec"] = spec_schema
        body = schema["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]
        body["schema"] = {"$ref": "#/components/schemas/JobSpec"}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
