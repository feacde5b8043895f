"""subsite_rule: a sub-site's own allocation rule per order type, set by its admin

Revision ID: 9cebacae0366
Revises: 8e3f1b6c2d47
Create Date: 2026-12-03 09:48:41.165721
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "9cebacae0366"
down_revision: str | None = "8e3f1b6c2d47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subsite_rule",
        sa.Column("selection_method", sa.String(length=32), nullable=False),
        sa.Column("accept_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("process_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("reassign_period_seconds", sa.Integer(), nullable=False),
        sa.Column("reminder_before_seconds", sa.Integer(), nullable=False),
        sa.Column("max_rounds", sa.Integer(), nullable=False),
        sa.Column("skip_previous_assignees", sa.Boolean(), nullable=False),
        sa.Column("capacity_per_staff", sa.Integer(), nullable=True),
        sa.Column("after_escalation", sa.String(length=32), nullable=False),
        sa.Column("wish_fallback", sa.String(length=32), nullable=False),
        sa.Column("wish_wait_seconds", sa.Integer(), nullable=False),
        sa.Column("points_processed_in_time", sa.Integer(), nullable=False),
        sa.Column("points_timed_out", sa.Integer(), nullable=False),
        sa.Column("weight_cap", sa.Integer(), nullable=True),
        sa.Column("subsite_id", sa.Integer(), nullable=False),
        sa.Column("order_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column(
            "channels", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "after_escalation IN ('keep_reassigning', 'wait_for_manager')",
            name="after_escalation_allowed",
        ),
        sa.CheckConstraint(
            "order_type IN ('new', 'unassigned', 'assigned_unprocessed')", name="order_type_allowed"
        ),
        sa.CheckConstraint(
            "selection_method IN ('weighted_random')", name="selection_method_allowed"
        ),
        sa.CheckConstraint(
            "wish_fallback IN ('wait_for_shift', 'store')", name="wish_fallback_allowed"
        ),
        sa.ForeignKeyConstraint(
            ["subsite_id"],
            ["subsite.id"],
        ),
        sa.PrimaryKeyConstraint("subsite_id", "order_type"),
    )


def downgrade() -> None:
    op.drop_table("subsite_rule")
