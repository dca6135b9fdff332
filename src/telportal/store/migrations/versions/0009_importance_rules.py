"""customers' importance set by rules: the tenant's importance rules; the hand-set level
and the rule that gave the level on customers, and indexes to walk and merge them

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "importance_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("min_yearly_spend", sa.String(length=40), nullable=True),
        sa.Column("any_tags", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_importance_rules_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_importance_rules")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_importance_rules_tenant_id_name")),
    )
    op.create_index(
        "ix_importance_rules_tenant_id", "importance_rules", ["tenant_id"], unique=False
    )
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("importance_manual", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("importance_rule", sa.String(length=36), nullable=False, server_default="")
        )
        batch.create_index("ix_customers_tenant_id_id", ["tenant_id", "id"], unique=False)
        batch.create_index("ix_customers_merged_into", ["merged_into"], unique=False)
    # Until now every level was set by hand (API, push, lookup): keep each as the floor,
    # so no customer's level moves until the tenant writes rules.
    customers = sa.table(
        "customers",
        sa.column("importance", sa.Integer()),
        sa.column("importance_manual", sa.Integer()),
        sa.column("importance_rule", sa.String()),
    )
    op.execute(
        customers.update()
        .where(customers.c.importance > 0)
        .values(importance_manual=customers.c.importance, importance_rule="manual")
    )


def downgrade() -> None:
    # `importance` keeps the effective level: what rules gave stays, now as if by hand.
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_merged_into")
        batch.drop_index("ix_customers_tenant_id_id")
        batch.drop_column("importance_rule")
        batch.drop_column("importance_manual")
    op.drop_index("ix_importance_rules_tenant_id", table_name="importance_rules")
    op.drop_table("importance_rules")
