"""trunks: port may be empty, for a carrier located by DNS (RFC 3263 SRV records)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 10:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trunks", schema=None) as batch_op:
        batch_op.alter_column("port", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE trunks SET port = 5060 WHERE port IS NULL")
    with op.batch_alter_table("trunks", schema=None) as batch_op:
        batch_op.alter_column("port", existing_type=sa.Integer(), nullable=False)
