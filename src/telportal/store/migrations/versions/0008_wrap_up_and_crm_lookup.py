"""agents' wrap-up on call records; the tenant's customer-system lookup; case attachments

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("wrap_up_code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("wrap_up_notes", sa.Text(), nullable=True))
        batch.add_column(sa.Column("wrap_up_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "crm_settings",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("lookup_url", sa.String(length=1000), nullable=True),
        sa.Column("lookup_timeout_ms", sa.Integer(), nullable=False),
        sa.Column("lookup_headers", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "case_attachments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_as", sa.String(length=500), nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_case_attachments_tenant_id", "case_attachments", ["tenant_id"], unique=False
    )
    op.create_index(
        "ix_case_attachments_tenant_id_case_id",
        "case_attachments",
        ["tenant_id", "case_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_case_attachments_tenant_id_case_id", table_name="case_attachments")
    op.drop_index("ix_case_attachments_tenant_id", table_name="case_attachments")
    op.drop_table("case_attachments")
    op.drop_table("crm_settings")
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("wrap_up_at")
        batch.drop_column("wrap_up_notes")
        batch.drop_column("wrap_up_code")
