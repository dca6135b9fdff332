"""ACD queue settings and skills; call records with queue, agent, legs and recording

Existing rows get the defaults the models give new ones (server defaults here, so
PostgreSQL can add NOT NULL columns to filled tables).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 21:25:12.979381
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_skills",
        sa.Column("queue_id", sa.String(length=36), nullable=False),
        sa.Column("skill_id", sa.String(length=36), nullable=False),
        sa.Column("min_level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_skills_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["skill_id"],
            ["skills.id"],
            name=op.f("fk_queue_skills_skill_id_skills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("queue_id", "skill_id", name=op.f("pk_queue_skills")),
    )
    with op.batch_alter_table("queue_skills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_skills_skill_id"), ["skill_id"], unique=False)

    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("wait_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("agent_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("agent_extension", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("talk_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("hangup_by", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("recording", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("legs", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("transfers", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("routing", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_call_records_agent_id"), ["agent_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_call_records_agent_id_users"),
            "users",
            ["agent_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ring_timeout_seconds", sa.Integer(), nullable=False, server_default="20")
        )
        batch_op.add_column(
            sa.Column("service_level_seconds", sa.Integer(), nullable=False, server_default="20")
        )
        batch_op.add_column(sa.Column("overflow_action", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("overflow_target", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("offer_callback", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("announce_position", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(sa.Column("music", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.drop_column("music")
        batch_op.drop_column("announce_position")
        batch_op.drop_column("offer_callback")
        batch_op.drop_column("overflow_target")
        batch_op.drop_column("overflow_action")
        batch_op.drop_column("service_level_seconds")
        batch_op.drop_column("ring_timeout_seconds")

    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_call_records_agent_id_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_call_records_agent_id"))
        batch_op.drop_column("routing")
        batch_op.drop_column("transfers")
        batch_op.drop_column("legs")
        batch_op.drop_column("recording")
        batch_op.drop_column("hangup_by")
        batch_op.drop_column("talk_seconds")
        batch_op.drop_column("connected_at")
        batch_op.drop_column("agent_extension")
        batch_op.drop_column("agent_id")
        batch_op.drop_column("wait_seconds")
        batch_op.drop_column("queued_at")
        batch_op.drop_column("queue")

    with op.batch_alter_table("queue_skills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queue_skills_skill_id"))

    op.drop_table("queue_skills")
