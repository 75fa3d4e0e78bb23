"""Users and tokens; every event owned by its sender; the signature replay check in the database.

Events stored before owners existed belong to the built-in ``admin`` user (the
``--token-env`` token).  Dedup becomes per owner: UNIQUE (owner_id, request_id).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = (
    "request_id, event, session_id, trace_id, span_id, attempt, envelope, headers, received_at"
)


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("token_sha256", sa.String(64), unique=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("last_used_at", sa.String(32)),
        sa.Column("revoked_at", sa.String(32)),
    )
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    op.bulk_insert(users, [{"id": 1, "name": "admin", "admin": True, "created_at": now}])
    if op.get_bind().dialect.name == "postgresql":  # the explicit id 1 left the sequence behind
        op.execute("SELECT setval('users_id_seq', (SELECT MAX(id) FROM users))")

    op.create_table(
        "events_owned",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("event", sa.Text),
        sa.Column("session_id", sa.Text),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("span_id", sa.String(16)),
        sa.Column("attempt", sa.Integer),
        sa.Column("envelope", sa.Text),
        sa.Column("headers", sa.Text),
        sa.Column("received_at", sa.String(32)),
        sa.UniqueConstraint("owner_id", "request_id", name="events_owner_request_id"),
    )
    op.execute(
        f"INSERT INTO events_owned (id, owner_id, {_COLUMNS}) "  # noqa: S608 - fixed names
        f"SELECT id, 1, {_COLUMNS} FROM events ORDER BY id"
    )
    op.drop_table("events")
    op.rename_table("events_owned", "events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER SEQUENCE events_owned_id_seq RENAME TO events_id_seq")
        op.execute(
            "SELECT setval('events_id_seq', (SELECT COALESCE(MAX(id), 0) + 1 FROM events), false)"
        )
    op.create_index("events_event", "events", ["event"])
    op.create_index("events_session_id", "events", ["session_id"])

    with op.batch_alter_table("webhook_events") as batch:
        owner = sa.ForeignKey("users.id", name="webhook_events_owner_id_fkey")
        batch.add_column(sa.Column("owner_id", sa.Integer, owner))

    op.create_table(
        "signatures_seen",
        sa.Column("webhook_id", sa.String(200), primary_key=True),
        sa.Column("timestamp", sa.BigInteger, primary_key=True),
        sa.Column("signature_sha256", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index("signatures_seen_seen_at", "signatures_seen", ["seen_at"])


def downgrade() -> None:
    raise NotImplementedError("the store migrates forward only; restore a backup to go back")
