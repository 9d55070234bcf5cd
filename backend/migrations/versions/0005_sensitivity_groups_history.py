"""Exploration: sensitivity grids, job groups (sweeps), the allocation a run came from, training curves

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


# Plain ADD / DROP COLUMN on jobs and steps, never a batch copy (see 0002). SQLite cannot add a foreign key
# to an existing table, so jobs.group_id and jobs.source_job_id are plain integers there; the store clears them.
def upgrade() -> None:
    op.create_table(
        "job_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sweep", sa.JSON(), nullable=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.add_column("jobs", sa.Column("group_id", sa.Integer(), nullable=True))
    op.create_index("ix_jobs_group_id", "jobs", ["group_id"])
    op.add_column("jobs", sa.Column("source_job_id", sa.Integer(), nullable=True))
    op.add_column("steps", sa.Column("history", sa.JSON(), nullable=True))
    op.create_table(
        "sensitivity_points",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("layer", sa.String(200), nullable=False),
        sa.Column("sparsity", sa.Float(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.UniqueConstraint("job_id", "layer", "sparsity", name="uq_sensitivity_points_job_layer_sparsity"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("sensitivity_points")
    op.drop_column("steps", "history")
    op.drop_column("jobs", "source_job_id")
    op.drop_index("ix_jobs_group_id", "jobs")
    op.drop_column("jobs", "group_id")
    op.drop_table("job_groups")
