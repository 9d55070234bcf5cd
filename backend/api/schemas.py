"""Response models of every JSON endpoint (a Base / Public family per resource) and the error body.

The routes declare them with `response_model=` for the OpenAPI document and build their bodies with
`respond()`: validated against the model, written by orjson from the store's dicts, so the bytes are the
ones the frontend has always read and the hot lists skip a second encoding pass.
"""

from typing import Annotated, Any, Literal

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from backend.db import json_dumps
from backend.models import JOB_STATUSES

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"}, description="ISO 8601, UTC")]
Number = float | int  # what a JSON number in stored metrics may be


class _Open(BaseModel):
    """Documents the keys every client relies on; more keys may come (step metrics grow with the engine)."""

    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- errors


class ErrorItem(BaseModel):
    field: str | None = Field(
        description="dotted path of the field, e.g. schedule.rate (query.sort / path.job_id outside the body); "
        "null when the error concerns the whole request"
    )
    message: str
    allowed: str | None = Field(None, description="what the field allows, e.g. 0 < rate < 1")
    value: Any = Field(None, description="the offending value(s), e.g. the ids of missing jobs")


class ErrorBody(BaseModel):
    detail: str = Field(description="one-line summary, for display")
    errors: list[ErrorItem] = Field(description="one entry per problem (per field for 422)")


def error_responses(*codes: int, by_ref: bool = False) -> dict[int | str, dict[str, Any]]:
    """`responses=` for an endpoint: each error status it answers, with the ErrorBody model. `by_ref`: for
    routes whose success is not JSON (FastAPI would file a model under the route's media type), refer to the
    ErrorBody schema that the JSON routes publish."""
    described = {
        400: "Bad request",
        401: "No API token, or an invalid or revoked one (team servers, PRUNELAB_AUTH=tokens)",
        403: "The token's user may not do this (a viewer writing, or not the job's owner)",
        404: "Not found",
        409: "The job's state does not allow this",
        413: "Request body larger than PRUNELAB_MAX_REQUEST_BYTES",
        422: "Invalid input: one entry per field, naming the allowed values",
        429: "Too many failed authentications from this client (wait for Retry-After seconds), or too many "
        "queued or running jobs for this user (PRUNELAB_MAX_QUEUED_JOBS_PER_USER; with auth off "
        "PRUNELAB_MAX_QUEUED_JOBS_ANONYMOUS)",
        503: "The broker cannot be reached: nothing was queued",
    }
    if by_ref:
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        return {code: {"content": content, "description": described[code]} for code in sorted(codes)}
    return {code: {"model": ErrorBody, "description": described[code]} for code in sorted(codes)}


# Error statuses by kind of route (429: a client whose tokens failed too often waits).
READ_ERRORS = (401, 422, 429)
WRITE_ERRORS = (401, 403, 422, 429)

# ---------------------------------------------------------------- jobs


class JobSummary(BaseModel):
    steps: int = Field(description="steps stored so far")
    sparsity: float | None = Field(description="sparsity of the latest step")
    accuracy: float | None = Field(description="test accuracy of the latest step")
    best_accuracy: float | None
    baseline_accuracy: float | None
    speedup: float | None = Field(description="measured latency speedup of the latest step")


class JobBase(BaseModel):
    name: str
    model: str
    dataset: str
    method: str = Field(description="method kind: block, magnitude, channel, group_lasso")
    schedule: str = Field(description="schedule kind: oneshot, iterative")
    tags: list[str]
    notes: str = Field("", description="free text of the researcher (PATCH /api/jobs/{id})")


class JobPublic(JobBase):
    id: int
    status: Literal[JOB_STATUSES]  # type: ignore[valid-type]
    progress: float
    message: str | None
    spec: dict[str, Any] = Field(description="the job spec as submitted and validated (see JobSpec)")
    owner: str | None
    error: str | None
    queue: str
    attempts: int
    cancel_requested: bool
    created_at: Timestamp | None
    updated_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    baseline: dict[str, Any] | None = Field(
        description="metrics of the trained baseline; `history`: its training curve, one "
        "{epoch, loss, val_accuracy} per epoch (null when it came from an older cache entry)"
    )
    group_id: int | None = Field(None, description="the group (sweep) the job was submitted in")
    source_job_id: int | None = Field(
        None, description="the sensitivity job whose per-layer allocation this job runs (POST ?source_job_id=)"
    )
    summary: JobSummary
    queue_position: int | None = Field(
        None, description="queued jobs: place among the queued jobs of its queue, 1 = next; else null"
    )
    expected_start_s: float | None = Field(
        None,
        description="queued jobs: estimated seconds until it starts, from the measured durations of finished "
        "jobs of the same model and dataset and the online workers of its queue; null when there is no such "
        "measurement (or no worker)",
    )


class JobDetail(JobPublic):
    disk_bytes: int | None = Field(
        None,
        description="bytes on the server's disk of the job's run directory (step checkpoints, its spec); "
        "null when it has none",
    )


class JobList(BaseModel):
    items: list[JobPublic]
    total: int = Field(description="jobs matching the filters, in all")
    limit: int
    offset: int


class JobDeleted(BaseModel):
    deleted: int


# ---------------------------------------------------------------- groups (sweeps)


class GroupCounts(BaseModel):
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class GroupPublic(BaseModel):
    id: int
    name: str
    sweep: dict[str, list[Any]] | None = Field(description='the sweep it expanded: {"dotted.path": [values]}')
    owner: str | None
    created_at: Timestamp | None
    jobs: int = Field(description="jobs in the group")
    counts: GroupCounts = Field(description="its jobs by status")


class GroupList(BaseModel):
    items: list[GroupPublic]
    total: int
    limit: int
    offset: int


class GroupSubmitted(BaseModel):
    group: GroupPublic
    jobs: list[JobPublic] = Field(description="one per combination of the sweep, in the order of the expansion")


# ---------------------------------------------------------------- steps and masks


class Latency(_Open):
    device: str | None = None
    batch_size: int | None = None
    dense_ms: Number | None = None
    realised_ms: Number | None = None
    speedup: Number | None = None
    form: str | None = None


class StepLayer(_Open):
    name: str
    shape: list[int] | None = None
    sparsity: Number | None = None


class EpochPoint(_Open):
    epoch: int
    loss: Number | None = None
    val_accuracy: Number | None = None


class StepPublic(_Open):
    """One pruning step's measurements (the engine's step dict, masks left out)."""

    index: int = Field(
        description="0-based step index (the first step is 0; the CSV export and download names count from 1)"
    )
    history: list[EpochPoint] | None = Field(
        None, description="the step's fine-tuning curve, one entry per epoch (null when none ran)"
    )
    created_at: Timestamp | None = None
    target_sparsity: Number | None = None
    sparsity: Number | None = None
    accuracy: Number | None = None
    accuracy_before_finetune: Number | None = None
    params_total: int | None = None
    params_nonzero: int | None = None
    flops_dense: Number | None = None
    flops_effective: Number | None = None
    latency: Latency | None = None
    layers: list[StepLayer] = []


class StepList(BaseModel):
    items: list[StepPublic]


class LayerMaskPublic(BaseModel):
    layer: str
    step: int = Field(description="0-based index of the step the mask is from")
    kind: Literal["blocks", "density"] = Field(
        description="blocks: 1 = block kept; density: share of weights kept in each cell"
    )
    shape: list[int] = Field(description="rows, cols of `values` (at most 256 x 256)")
    cell: list[Number] = Field(description="weights per cell: rows, cols")
    weight_shape: list[int] | None
    sparsity: float | None
    values: list[list[Number]]


class ExportLayer(_Open):
    name: str
    mask: dict[str, Any] | None = Field(None, description="block_shape and the encoded keep grid")
    density: dict[str, Any] | None = Field(None, description="the encoded density grid")


class ExportStep(_Open):
    index: int = Field(
        description="0-based step index (the first step is 0; the CSV export and download names count from 1)"
    )
    layers: list[ExportLayer] = []


class JobExport(BaseModel):
    job: JobPublic
    baseline: dict[str, Any] | None
    steps: list[ExportStep]


# ---------------------------------------------------------------- views


class ComparePoint(BaseModel):
    index: int | None = Field(description="0-based step index")
    target_sparsity: Number | None
    sparsity: Number | None
    accuracy: Number | None
    accuracy_before_finetune: Number | None
    flops_effective: Number | None
    flops_dense: Number | None
    latency_ms: Number | None
    dense_latency_ms: Number | None
    speedup: Number | None
    size_sparse_bytes: Number | None
    size_dense_bytes: Number | None


class CompareRun(BaseModel):
    job: JobPublic
    points: list[ComparePoint]
    total_points: int = Field(description="steps stored, before downsampling")


class CompareResponse(BaseModel):
    runs: list[CompareRun]


class CatalogParam(_Open):
    name: str
    type: str = Field(description="int, float, bool, str, enum, list or map")
    default: Any = None
    help: str = ""


class CatalogModel(_Open):
    name: str
    label: str
    layers: list[str] | None = Field(description="prunable layers; null when the worker could not list them")
    default_layers: list[str] | None
    source: Literal["builtin", "torchvision", "plugin"] = Field(
        "builtin", description="built in, torchvision:NAME, or plugin:NAME (entry-point group prunelab.models)"
    )
    workers: list[str] = Field([], description="online workers that offer it (empty: no worker has published)")


class CatalogDataset(_Open):
    name: str
    label: str
    builtin: bool
    classes: int | None = None
    shape: list[int] | None = Field(None, description="channels, height, width")
    present: bool | None = Field(
        None, description="its files are in an online worker's data directory (null: no worker has published)"
    )
    train_images: int | None = None
    test_images: int | None = None
    workers: list[str] = Field([], description="online workers that have it")


class CatalogWorker(BaseModel):
    name: str
    queues: list[str]
    device: str | None
    published: bool = Field(description="whether it has published its catalog yet (a few seconds after start)")


class CatalogKind(_Open):
    kind: str
    label: str
    params: list[CatalogParam]


class CatalogSection(_Open):
    params: list[CatalogParam]


class CatalogPreset(_Open):
    name: str
    label: str
    spec: dict[str, Any]


class Catalog(BaseModel):
    models: list[CatalogModel]
    datasets: list[CatalogDataset]
    methods: list[CatalogKind]
    schedules: list[CatalogKind]
    train: CatalogSection
    measure: CatalogSection
    devices: list[str]
    presets: list[CatalogPreset]
    workers: list[CatalogWorker] = Field([], description="the online workers")


class ExportQueued(BaseModel):
    job_id: int
    step: int = Field(description="1-based step number")
    format: Literal["onnx", "torchscript", "state_dict"]
    status: Literal["queued", "ready"] = Field(description="ready: the file exists already (GET it)")
    url: str = Field(description="GET it to download the file once the worker has written it")


class Me(BaseModel):
    name: str | None
    role: Literal["admin", "user", "viewer", "anonymous"]
    auth: Literal["off", "tokens"]


class Health(BaseModel):
    status: Literal["ok", "error"]
    db: str = Field(description="ok, or error: <exception class>")
    version: str
    auth: Literal["off", "tokens"]
    public_read: bool


class JobEvent(JobPublic):
    """data of an `event: job` server-sent event."""


class StepEvent(BaseModel):
    """data of an `event: step` server-sent event."""

    job_id: int
    index: int = Field(description="0-based step index")


# ---------------------------------------------------------------- responses

_adapters: dict[type, TypeAdapter] = {}


def check(model: type[BaseModel], content: Any) -> None:
    """Validate `content` against `model`: a wrong shape is a 500 here, not a surprise in a client."""
    adapter = _adapters.get(model)
    if adapter is None:
        adapter = _adapters[model] = TypeAdapter(model)
    adapter.validate_python(content)


def respond(model: type[BaseModel], content: Any, status_code: int = 200, headers: dict | None = None) -> Response:
    """A JSON response of `content` checked against `model`, written by orjson from the dicts themselves (not
    re-encoded from the validated model): the bytes stay the ones clients have always read, and validating
    costs about as much as one orjson pass (a page of 50 jobs: ~0.14 ms, ~0.1 ms to write)."""
    check(model, content)
    return Response(json_dumps(content), status_code=status_code, media_type="application/json", headers=headers)
