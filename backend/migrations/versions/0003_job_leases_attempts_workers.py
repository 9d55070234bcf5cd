"""job leases (jobs.lease_owner, jobs.lease_expires_at), the lease history job_attempts, the workers registry

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


# Plain ALTER TABLE .. ADD / DROP COLUMN, never a batch copy of jobs (see 0002: with foreign keys on, dropping
# the old jobs table during a copy would cascade-delete every step and tag).
def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_owner", sa.String(200), nullable=True))
    op.add_column("jobs", sa.Column("lease_expires_at", TS, nullable=True))
    op.create_index("ix_jobs_lease_expires_at", "jobs", ["lease_expires_at"])
    op.create_table(
        "job_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("renewed_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.UniqueConstraint("job_id", "attempt", name="uq_job_attempts_job_attempt"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "workers",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("device", sa.String(50), nullable=True),
        sa.Column("gpu_name", sa.String(200), nullable=True),
        sa.Column("gpu_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("torch_version", sa.String(50), nullable=True),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_heartbeat", TS, nullable=False),
        sa.Column("current_job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("catalog", sa.JSON(), nullable=True),
        sa.Column("stopped_at", TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("job_attempts")
    op.drop_index("ix_jobs_lease_expires_at", table_name="jobs")
    op.drop_column("jobs", "lease_expires_at")
    op.drop_column("jobs", "lease_owner")
