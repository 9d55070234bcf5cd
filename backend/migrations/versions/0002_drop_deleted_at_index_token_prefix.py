"""jobs.deleted_at dropped (never written: a deleted job's rows are removed); api_tokens.prefix indexed
(a presented token is found by its prefix, then its hash compared in constant time)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


# Plain ALTER TABLE .. DROP COLUMN (SQLite 3.35+), not a batch copy of the table: with foreign keys on,
# dropping the old jobs table during a copy would cascade-delete every step and tag.
def upgrade() -> None:
    op.drop_index("ix_jobs_deleted_at", table_name="jobs")
    op.drop_column("jobs", "deleted_at")
    op.create_index("ix_api_tokens_prefix", "api_tokens", ["prefix"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_prefix", table_name="api_tokens")
    op.add_column("jobs", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_jobs_deleted_at", "jobs", ["deleted_at"])
