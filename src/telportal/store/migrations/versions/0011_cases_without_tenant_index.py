"""cases: drop the index on tenant_id alone; the tenant's other case indexes start with it

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 10:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_cases_tenant_id", table_name="cases")


def downgrade() -> None:
    op.create_index("ix_cases_tenant_id", "cases", ["tenant_id"], unique=False)
