"""The reference receiver's schema before versioning: events and the webhook_events audit.

A database the receiver created before migrations existed already has these tables and
no version: this step then creates nothing, and the database is carried forward from here.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "events" not in existing:
        op.create_table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("request_id", sa.Text, nullable=False, unique=True),
            sa.Column("event", sa.Text),
            sa.Column("session_id", sa.Text),
            sa.Column("trace_id", sa.Text),
            sa.Column("span_id", sa.Text),
            sa.Column("attempt", sa.Integer),
            sa.Column("envelope", sa.Text),
            sa.Column("headers", sa.Text),
            sa.Column("received_at", sa.Text),
        )
        op.create_index("events_event", "events", ["event"])
        op.create_index("events_session_id", "events", ["session_id"])
    if "webhook_events" not in existing:
        op.create_table(
            "webhook_events",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("request_id", sa.Text),
            sa.Column("event", sa.Text),
            sa.Column("session_id", sa.Text),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("http_status", sa.Integer),
            sa.Column("detail", sa.Text),
            sa.Column("received_at", sa.Text),
            sa.Column("processing_ms", sa.Float),
        )
        op.create_index("webhook_events_status", "webhook_events", ["status"])
        op.create_index("webhook_events_request_id", "webhook_events", ["request_id"])


def downgrade() -> None:
    raise NotImplementedError("the store migrates forward only; restore a backup to go back")
