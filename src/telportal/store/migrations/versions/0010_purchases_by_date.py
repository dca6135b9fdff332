"""a tenant's interactions by kind and date: purchases leaving the yearly spend window

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 04:50:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_customer_interactions_tenant_id_kind_at",
        "customer_interactions",
        ["tenant_id", "kind", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_customer_interactions_tenant_id_kind_at", table_name="customer_interactions")
