"""weight cap on allocation rules; swapped duty slots remember whose pattern they replace

Revision ID: 5d1c7a4e9b20
Revises: bb909d9839a2
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d1c7a4e9b20"
down_revision: str | None = "bb909d9839a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("allocation_rule", sa.Column("weight_cap", sa.Integer(), nullable=True))
    op.add_column("duty_slot", sa.Column("replaces_staff_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        "duty_slot_replaces_staff_id_fkey", "duty_slot", "staff", ["replaces_staff_id"], ["id"]
    )
    op.create_index("ix_api_token_staff_id", "api_token", ["staff_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_token_staff_id", table_name="api_token")
    op.drop_constraint("duty_slot_replaces_staff_id_fkey", "duty_slot", type_="foreignkey")
    op.drop_column("duty_slot", "replaces_staff_id")
    op.drop_column("allocation_rule", "weight_cap")
