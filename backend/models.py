"""The SQL schema (SQLAlchemy 2 ORM). Alembic migrations in backend/migrations/ create exactly this.

Jobs carry their latest summary figures so the run list never reads step history. A step stores the
engine's step dict without the per-layer mask/density blobs; those live in layer_masks, one row per layer,
so the heatmap endpoint reads one small row and step lists stay light.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
# How an attempt (one claim of a job by a worker) ended: its final status, "lost" (its lease expired: the
# worker died or could not reach the database) or "released" (the worker stopped and gave the job back).
ATTEMPT_OUTCOMES = ("succeeded", "failed", "cancelled", "lost", "released")
ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
ROLES = ("admin", "user", "viewer")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    # Deterministic names, so migrations can refer to indexes and constraints on SQLite and Postgres alike.
    metadata = MetaData(naming_convention={"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s"})
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


# sqlite_autoincrement: ids are never reused after a delete (a deleted job's leftover queue message or
# cached heatmap must not hit a new job that got the same id). Postgres sequences never reuse anyway.
NO_ID_REUSE = {"sqlite_autoincrement": True}


class User(Base):
    __tablename__ = "users"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(10), default="user")  # admin | user | viewer
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list["ApiToken"]] = relationship(back_populates="user", cascade="all, delete-orphan")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the token
    # The first characters: not secret, they name the token in `token list` and find its row when it is
    # presented (the hash is then compared in constant time).
    prefix: Mapped[str] = mapped_column(String(16), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(back_populates="tokens")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    model: Mapped[str] = mapped_column(String(50), index=True)
    dataset: Mapped[str] = mapped_column(String(50), index=True)
    method: Mapped[str] = mapped_column(String(50), index=True)  # method kind
    schedule: Mapped[str] = mapped_column(String(50), index=True)  # schedule kind
    tags: Mapped[list[Any]] = mapped_column(default=list)  # for display; filtering uses job_tags
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")  # the researcher's free text
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None)
    queue: Mapped[str] = mapped_column(String(50), default="default")
    task_id: Mapped[str | None] = mapped_column(String(100), default=None)  # Celery task id of the last enqueue
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Bumped on every change; the event stream polls for rows newer than what it has sent.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # The lease: the attempt that holds the job (attempts), by which worker, until when. Every write of a
    # running job is fenced by its attempt; a reaper re-queues a running job whose lease expired.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    baseline: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # Latest summary figures, updated with each stored step.
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    last_sparsity: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    last_accuracy: Mapped[float | None] = mapped_column(Float, default=None)
    best_accuracy: Mapped[float | None] = mapped_column(Float, default=None, index=True)
    baseline_accuracy: Mapped[float | None] = mapped_column(Float, default=None)
    last_speedup: Mapped[float | None] = mapped_column(Float, default=None)
    # The group a sweep submitted this job in, and the sensitivity job whose allocation it runs (no foreign
    # keys: SQLite cannot add them to an existing table; the store clears them when the target is deleted).
    group_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    source_job_id: Mapped[int | None] = mapped_column(Integer, default=None)

    owner: Mapped[User | None] = relationship(lazy="joined")
    tag_rows: Mapped[list["JobTag"]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class JobTag(Base):
    """One row per (job, tag): filtering by tag is a plain indexed equality on SQLite and Postgres."""

    __tablename__ = "job_tags"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)


class Step(Base):
    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("job_id", "index", name="uq_steps_job_index"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    # The engine's step dict; its "layers" entries keep their stats but not "mask"/"density".
    metrics: Mapped[dict[str, Any]]
    # The fine-tuning curve of this step: [{"epoch", "loss", "val_accuracy"}, ...] (null when none ran).
    history: Mapped[list[Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LayerMask(Base):
    __tablename__ = "layer_masks"
    __table_args__ = (Index("ix_layer_masks_step_layer", "step_id", "layer"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"))
    layer: Mapped[str] = mapped_column(String(200))
    grid: Mapped[dict[str, Any] | None] = mapped_column(default=None)  # core.masks.encode_grid output
    grid_shape: Mapped[list[Any] | None] = mapped_column(default=None)  # the grid's shape, read without the blob
    density: Mapped[dict[str, Any] | None] = mapped_column(default=None)  # core.masks.encode_density output
    block_shape: Mapped[list[Any] | None] = mapped_column(default=None)  # [rows, cols] of one block
    weight_shape: Mapped[list[Any] | None] = mapped_column(default=None)  # as in the step's layer "shape"
    sparsity: Mapped[float | None] = mapped_column(Float, default=None)


class JobAttempt(Base):
    """One row per claim of a job: which worker ran attempt N, from when, its last lease renewal, how it ended."""

    __tablename__ = "job_attempts"
    __table_args__ = (UniqueConstraint("job_id", "attempt", name="uq_job_attempts_job_attempt"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    renewed_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)  # one of ATTEMPT_OUTCOMES


class Worker(Base):
    """A worker process that registered itself; online while its heartbeat is recent."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # prunelab-PID@host
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[Any]] = mapped_column(default=list)
    device: Mapped[str | None] = mapped_column(String(50), default=None)  # cpu | cuda
    gpu_name: Mapped[str | None] = mapped_column(String(200), default=None)
    gpu_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    torch_version: Mapped[str | None] = mapped_column(String(50), default=None)
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat: Mapped[datetime] = mapped_column(default=utcnow)
    current_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    # The models and datasets this worker can run (published by the worker; null until it does).
    catalog: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)


class JobGroup(Base):
    """Jobs submitted together, e.g. the expansion of a sweep; jobs.group_id points here."""

    __tablename__ = "job_groups"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sweep: Mapped[dict[str, Any] | None] = mapped_column(default=None)  # {"dotted.path": [values, ...]}
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SensitivityPoint(Base):
    """One (layer, sparsity) of a sensitivity scan: that layer alone pruned to that sparsity, no fine-tuning.
    metrics: accuracy, val_accuracy, loss, params_removed, flops_removed, latency (and what else the scan
    records); position orders the layers as they come in the network."""

    __tablename__ = "sensitivity_points"
    __table_args__ = (
        UniqueConstraint("job_id", "layer", "sparsity", name="uq_sensitivity_points_job_layer_sparsity"),
        NO_ID_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    layer: Mapped[str] = mapped_column(String(200))
    sparsity: Mapped[float] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]]
