"""trunks and tenant SIP domains

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:54:48.922799
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trunks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("inbound_addresses", sa.JSON(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=True),
        sa.Column("auth_realm", sa.String(length=255), nullable=True),
        sa.Column("auth_ha1_md5", sa.String(length=32), nullable=True),
        sa.Column("auth_ha1_sha256", sa.String(length=64), nullable=True),
        sa.Column("max_channels", sa.Integer(), nullable=True),
        sa.Column("keepalive", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_trunks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trunks")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_trunks_tenant_id_name")),
    )
    with op.batch_alter_table("trunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trunks_tenant_id"), ["tenant_id"], unique=False)

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sip_domain", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_tenants_sip_domain"), ["sip_domain"])


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_tenants_sip_domain"), type_="unique")
        batch_op.drop_column("sip_domain")

    with op.batch_alter_table("trunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trunks_tenant_id"))

    op.drop_table("trunks")
