"""The dashboard's tables: sign-in sessions, client hosts (last event, daemon heartbeat)
and alerts; and the indexes the overview's last-day figures are read from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_sha256", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "hosts",
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("host", sa.String(200), primary_key=True),
        sa.Column("last_event", sa.Text),
        sa.Column("last_event_at", sa.String(32)),
        sa.Column("last_request_id", sa.String(36)),
        sa.Column("heartbeat_at", sa.String(32)),
        sa.Column("heartbeat_request_id", sa.String(36)),
        sa.Column("pending", sa.Integer),
        sa.Column("processing", sa.Integer),
        sa.Column("failed", sa.Integer),
        sa.Column("oldest_pending_age", sa.Float),
        sa.Column("version", sa.String(64)),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("text", sa.Text),
        sa.Column("opened_at", sa.String(32), nullable=False),
        sa.Column("resolved_at", sa.String(32)),
    )
    op.create_index(
        "alerts_open",
        "alerts",
        ["rule", "subject"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_index(
        "webhook_events_window",
        "webhook_events",
        ["received_at", "event", "status", "processing_ms", "owner_id"],
    )
    op.create_index(
        "webhook_events_ms", "webhook_events", ["processing_ms", "received_at", "owner_id"]
    )


def downgrade() -> None:
    raise NotImplementedError("the store migrates forward only; restore a backup to go back")
