"""Conversations: transcript records kept as they came, and the projection derived from them
(sessions, messages in conversation order, tool calls).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("record_key", sa.String(300), nullable=False),
        sa.Column("type", sa.Text),
        sa.Column("uuid", sa.String(64)),
        sa.Column("parent_uuid", sa.String(64)),
        sa.Column("session_id", sa.Text),
        sa.Column("timestamp", sa.String(40)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("received_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("owner_id", "record_key", name="records_owner_key"),
    )
    op.create_table(
        "session_records",
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("session_id", sa.String(200), primary_key=True),
        sa.Column("record_id", sa.Integer, sa.ForeignKey("records.id"), primary_key=True),
        sa.Column("agent_id", sa.String(200)),
        sa.Column("file_offset", sa.BigInteger, nullable=False),
        sa.Column("file_index", sa.Integer, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("session_id", sa.String(200), nullable=False),
        sa.Column("project", sa.Text),
        sa.Column("git_branch", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("version", sa.Text),
        sa.Column("hosts", sa.Text),
        sa.Column("first_activity", sa.String(40)),
        sa.Column("last_activity", sa.String(40)),
        sa.Column("start_source", sa.Text),
        sa.Column("end_reason", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("prompts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("messages", sa.Integer, nullable=False, server_default="0"),
        sa.Column("tool_calls", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
        sa.Column("input_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cache_creation_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cache_read_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("forked_from", sa.String(200)),
        sa.Column("gaps", sa.Text),
        sa.Column("complete", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.UniqueConstraint("owner_id", "session_id", name="sessions_owner_session"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("session_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32)),
        sa.Column("uuid", sa.String(64)),
        sa.Column("message_id", sa.String(200)),
        sa.Column("prompt_id", sa.String(64)),
        sa.Column("agent_id", sa.String(200)),
        sa.Column("parent_tool_use_id", sa.String(200)),
        sa.Column("timestamp", sa.String(40)),
        sa.Column("model", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("content", sa.Text),
        sa.Column("usage", sa.Text),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(36)),
        sa.Column("digest", sa.String(40)),
        sa.UniqueConstraint(
            "owner_id", "session_id", "position", name="messages_owner_session_position"
        ),
    )
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("tool_use_id", sa.String(200), nullable=False),
        sa.Column("session_id", sa.String(200), nullable=False),
        sa.Column("agent_id", sa.String(200)),
        sa.Column("name", sa.Text),
        sa.Column("input", sa.Text),
        sa.Column("output", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(40)),
        sa.Column("ended_at", sa.String(40)),
        sa.Column("duration_ms", sa.Float),
        sa.UniqueConstraint("owner_id", "tool_use_id", name="tool_calls_owner_tool_use_id"),
    )
    op.create_index("sessions_owner_last_activity", "sessions", ["owner_id", "last_activity"])
    op.create_index("tool_calls_owner_session", "tool_calls", ["owner_id", "session_id"])


def downgrade() -> None:
    raise NotImplementedError("the store migrates forward only; restore a backup to go back")
