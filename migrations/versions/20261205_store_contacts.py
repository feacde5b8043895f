"""console part 2 (stores): a store's own phone and e-mail

Revision ID: 5c0a7e11c0de
Revises: ad31a0d17e01
Create Date: 2026-12-05 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c0a7e11c0de"
down_revision: str | None = "ad31a0d17e01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("store", sa.Column("phone", sa.String(length=32), nullable=True))
    op.add_column("store", sa.Column("email", sa.String(length=254), nullable=True))


def downgrade() -> None:
    op.drop_column("store", "email")
    op.drop_column("store", "phone")
