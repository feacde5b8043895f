"""dispatch loop 1.0: an order's phase and wait reason; cancelled orders, assignments, notices

Revision ID: a1c0de11f00d
Revises: 9cebacae0366
Create Date: 2026-12-04 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1c0de11f00d"
down_revision: str | None = "9cebacae0366"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("received", "waiting", "assigned", "accepted", "escalated", "completed")
KINDS = ("assigned", "reminder", "timed_out", "escalated", "waiting")
OUTCOMES = ("offered", "accepted", "completed", "timed_out", "declined", "reassigned", "released")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.add_column(
        "dispatch_order",
        sa.Column("phase", sa.String(length=32), nullable=False, server_default="routing"),
    )
    op.add_column(
        "dispatch_order",
        sa.Column("wait_reason", sa.String(length=64), nullable=False, server_default=""),
    )
    op.add_column(
        "dispatch_order", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "dispatch_order",
        sa.Column("cancel_reason", sa.String(length=300), nullable=False, server_default=""),
    )
    # Orders from before: their phase as far as the status tells it.
    op.execute(
        "UPDATE dispatch_order SET phase = CASE status"
        " WHEN 'completed' THEN 'completed' WHEN 'accepted' THEN 'accepted'"
        " WHEN 'assigned' THEN 'offered' WHEN 'waiting' THEN 'waiting_for_shift'"
        " ELSE CASE WHEN assignee_id IS NULL THEN 'selecting' ELSE 'offered' END END"
    )
    op.drop_constraint("status_allowed", "dispatch_order", type_="check")
    op.create_check_constraint(
        "status_allowed", "dispatch_order", _in("status", (*STATUSES, "cancelled"))
    )
    op.drop_constraint("outcome_allowed", "assignment", type_="check")
    op.create_check_constraint(
        "outcome_allowed", "assignment", _in("outcome", (*OUTCOMES, "cancelled"))
    )
    op.drop_constraint("kind_allowed", "notification", type_="check")
    op.create_check_constraint("kind_allowed", "notification", _in("kind", (*KINDS, "cancelled")))


def downgrade() -> None:
    op.drop_constraint("kind_allowed", "notification", type_="check")
    op.create_check_constraint("kind_allowed", "notification", _in("kind", KINDS))
    op.drop_constraint("outcome_allowed", "assignment", type_="check")
    op.create_check_constraint("outcome_allowed", "assignment", _in("outcome", OUTCOMES))
    op.drop_constraint("status_allowed", "dispatch_order", type_="check")
    op.create_check_constraint("status_allowed", "dispatch_order", _in("status", STATUSES))
    for column in ("cancel_reason", "cancelled_at", "wait_reason", "phase"):
        op.drop_column("dispatch_order", column)
