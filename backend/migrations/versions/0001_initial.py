"""initial schema: users, api_tokens, jobs, job_tags, steps, layer_masks

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
NO_ID_REUSE = {"sqlite_autoincrement": True}  # ids never reused after a delete (see backend/models.py)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("name", name="uq_users_name"),
        **NO_ID_REUSE,
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        **NO_ID_REUSE,
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(50), nullable=False),
        sa.Column("dataset", sa.String(50), nullable=False),
        sa.Column("method", sa.String(50), nullable=False),
        sa.Column("schedule", sa.String(50), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("queue", sa.String(50), nullable=False),
        sa.Column("task_id", sa.String(100), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("baseline", sa.JSON(), nullable=True),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("last_sparsity", sa.Float(), nullable=True),
        sa.Column("last_accuracy", sa.Float(), nullable=True),
        sa.Column("best_accuracy", sa.Float(), nullable=True),
        sa.Column("baseline_accuracy", sa.Float(), nullable=True),
        sa.Column("last_speedup", sa.Float(), nullable=True),
        sa.Column("deleted_at", TS, nullable=True),
        **NO_ID_REUSE,
    )
    for column in (
        "model",
        "dataset",
        "method",
        "schedule",
        "status",
        "owner_id",
        "created_at",
        "updated_at",
        "last_sparsity",
        "best_accuracy",
        "deleted_at",
    ):
        op.create_index(f"ix_jobs_{column}", "jobs", [column])

    op.create_table(
        "job_tags",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(50), primary_key=True),
    )
    op.create_index("ix_job_tags_tag", "job_tags", ["tag"])

    op.create_table(
        "steps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("job_id", "index", name="uq_steps_job_index"),
        **NO_ID_REUSE,
    )

    op.create_table(
        "layer_masks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("step_id", sa.Integer(), sa.ForeignKey("steps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("layer", sa.String(200), nullable=False),
        sa.Column("grid", sa.JSON(), nullable=True),
        sa.Column("grid_shape", sa.JSON(), nullable=True),
        sa.Column("density", sa.JSON(), nullable=True),
        sa.Column("block_shape", sa.JSON(), nullable=True),
        sa.Column("weight_shape", sa.JSON(), nullable=True),
        sa.Column("sparsity", sa.Float(), nullable=True),
        **NO_ID_REUSE,
    )
    op.create_index("ix_layer_masks_step_layer", "layer_masks", ["step_id", "layer"])


def downgrade() -> None:
    op.drop_table("layer_masks")
    op.drop_table("steps")
    op.drop_table("job_tags")
    op.drop_table("jobs")
    op.drop_table("api_tokens")
    op.drop_table("users")
