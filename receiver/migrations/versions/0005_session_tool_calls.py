"""Which sessions show a tool call, so a fork lists the calls it repeats from its parent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_tool_calls",
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("session_id", sa.String(200), primary_key=True),
        sa.Column("tool_use_id", sa.String(200), primary_key=True),
    )
    op.execute(
        "INSERT INTO session_tool_calls (owner_id, session_id, tool_use_id)"
        " SELECT owner_id, session_id, tool_use_id FROM tool_calls"
    )


def downgrade() -> None:
    raise NotImplementedError("the store migrates forward only; restore a backup to go back")
