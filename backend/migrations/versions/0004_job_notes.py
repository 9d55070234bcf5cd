"""jobs.notes: the researcher's free text about a run (PATCH /api/jobs/{id})

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# A plain ADD / DROP COLUMN, never a batch copy of jobs (see 0002).
def upgrade() -> None:
    op.add_column("jobs", sa.Column("notes", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("jobs", "notes")
