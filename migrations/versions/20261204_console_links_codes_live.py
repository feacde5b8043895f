"""console: used order links, sign-in codes, a staff member's pause reason, and a NOTIFY on
every change of an order row (the console's live pages listen for it in every API process)

Revision ID: c0a5e1e13d04
Revises: a1c0de11f00d
Create Date: 2026-12-04 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "c0a5e1e13d04"
down_revision: str | None = "a1c0de11f00d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A trigger, so no activity has to remember to announce a change: whatever writes the
# projection (record_transition, assign_order, routing) is heard by every listener.
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION console_order_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('o2o_order_changed', json_build_object(
        'order_id', NEW.id,
        'store_id', NEW.store_id,
        'status', NEW.status,
        'assignee_id', NEW.assignee_id,
        'previous_assignee_id', CASE WHEN TG_OP = 'UPDATE' THEN OLD.assignee_id END
    )::text);
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "console_link_use",
        sa.Column("token_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column(
            "used_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(["order_id"], ["dispatch_order.id"]),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("token_digest"),
    )
    op.create_index(
        op.f("ix_console_link_use_order_id"), "console_link_use", ["order_id"], unique=False
    )
    op.create_table(
        "console_sign_in_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("client_ip", sqlmodel.sql.sqltypes.AutoString(length=45), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sms_status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sms_provider_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("sms_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("phone", "client_ip", "created_at"):
        op.create_index(
            op.f(f"ix_console_sign_in_code_{column}"),
            "console_sign_in_code",
            [column],
            unique=False,
        )
    op.add_column(
        "staff",
        sa.Column(
            "pause_reason",
            sqlmodel.sql.sqltypes.AutoString(length=300),
            nullable=False,
            server_default="",
        ),
    )
    op.alter_column("staff", "pause_reason", server_default=None)
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER console_order_changed AFTER INSERT OR UPDATE ON dispatch_order "
        "FOR EACH ROW EXECUTE FUNCTION console_order_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS console_order_changed ON dispatch_order")
    op.execute("DROP FUNCTION IF EXISTS console_order_changed()")
    op.drop_column("staff", "pause_reason")
    for column in ("created_at", "client_ip", "phone"):
        op.drop_index(op.f(f"ix_console_sign_in_code_{column}"), table_name="console_sign_in_code")
    op.drop_table("console_sign_in_code")
    op.drop_index(op.f("ix_console_link_use_order_id"), table_name="console_link_use")
    op.drop_table("console_link_use")
