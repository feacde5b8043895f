"""notices: a `delivering` status for the hand-over in doubt, and a count of recoveries

Revision ID: 8e3f1b6c2d47
Revises: 5d1c7a4e9b20
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8e3f1b6c2d47"
down_revision: str | None = "5d1c7a4e9b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "status IN ('pending', 'sending', 'sent', 'failed', 'skipped')"
NEW = "status IN ('pending', 'sending', 'delivering', 'sent', 'failed', 'skipped')"


def upgrade() -> None:
    op.drop_constraint("status_allowed", "notification", type_="check")
    op.create_check_constraint("status_allowed", "notification", NEW)
    # Before this revision `sending` also covered the hand-over itself: a row left there may
    # have gone out, so the next attempt must recover it rather than send blind.
    op.execute("UPDATE notification SET status = 'delivering' WHERE status = 'sending'")
    op.add_column(
        "notification",
        sa.Column("in_doubt_recoveries", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("notification", "in_doubt_recoveries")
    op.execute("UPDATE notification SET status = 'sending' WHERE status = 'delivering'")
    op.drop_constraint("status_allowed", "notification", type_="check")
    op.create_check_constraint("status_allowed", "notification", OLD)
