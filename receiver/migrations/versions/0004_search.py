"""Full-text search of message text (FTS5 on SQLite, kept in step by triggers; a GIN index
on a stored ``to_tsvector('simple', text)`` on PostgreSQL), and what /api/trace looks rows up by.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='id')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN"
    " INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE ON messages BEGIN"
    " INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
]
# A stored tsvector: a query the planner answers by scanning (a small table) reads it
# instead of parsing every message's text again.
_POSTGRESQL = [
    "ALTER TABLE messages ADD COLUMN text_search tsvector"
    " GENERATED ALWAYS AS (to_tsvector('simple', coalesce(text, ''))) STORED",
    "CREATE INDEX messages_text_search ON messages USING gin (text_search)",
]


def upgrade() -> None:
    statements = _POSTGRESQL if op.get_bind().dialect.name == "postgresql" else _SQLITE
    for statement in statements:
        op.execute(statement)
    op.create_index("records_request_id", "records", ["request_id"])
    op.create_index("messages_request_id", "messages", ["request_id"])
    op.create_index("events_request_id", "events", ["request_id"])


def downgrade() -> None:
    raise NotImplementedError("the store migrates forward only; restore a backup to go back")
