"""console part 2 (admin): the audit of changes to setup data

Revision ID: ad31a0d17e01
Revises: c0a5e1e13d04
Create Date: 2026-12-04 23:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ad31a0d17e01"
down_revision: str | None = "c0a5e1e13d04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("old", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("new", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("subsite_id", sa.Integer(), nullable=True),
    )
    for column in ("at", "actor", "kind", "store_id", "subsite_id"):
        op.create_index(f"ix_audit_entry_{column}", "audit_entry", [column])


def downgrade() -> None:
    op.drop_table("audit_entry")
