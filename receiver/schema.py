"""The store's tables, as SQLAlchemy Core metadata: one description for SQLite and PostgreSQL.

The migrations in ``receiver/migrations`` create and change these tables; this module is
what the queries are written against.  Dedup, ownership and the signature replay check are
constraints here (UNIQUE keys the inserts conflict on), not Python checks, so several
receiver processes on one PostgreSQL database stay correct.

Times are RFC 3339 UTC strings with milliseconds (``2026-12-02T10:00:00.123Z``): they sort
as text, read the same on both databases, and are what the API returns.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: Who may send and read: one row per token name.  ``token_sha256`` is the SHA-256 (hex)
#: of the token, never the token; the built-in admin (the ``--token-env`` token, or every
#: request under ``--no-auth``) has none.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("admin", Boolean, nullable=False, default=False),
    Column("token_sha256", String(64), unique=True),
    Column("created_at", String(32), nullable=False),
    Column("last_used_at", String(32)),
    Column("revoked_at", String(32)),
)

#: Applied envelopes, each once per owner (the UNIQUE key is the dedup).
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("event", Text),
    Column("session_id", Text),
    Column("trace_id", String(32)),
    Column("span_id", String(16)),
    Column("attempt", Integer),
    Column("envelope", Text),
    Column("headers", Text),
    Column("received_at", String(32)),
    UniqueConstraint("owner_id", "request_id", name="events_owner_request_id"),
    Index("events_event", "event"),
    Index("events_session_id", "session_id"),
)

#: Every request to POST /hooks and what became of it; ``owner_id`` is NULL for one whose
#: token was missing or wrong.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", name="webhook_events_owner_id_fkey")),
    Column("request_id", Text),
    Column("event", Text),
    Column("session_id", Text),
    Column("status", String(16), nullable=False),
    Column("http_status", Integer),
    Column("detail", Text),
    Column("received_at", String(32)),
    Column("processing_ms", Float),
    Index("webhook_events_status", "status"),
    Index("webhook_events_request_id", "request_id"),
)

#: Signed requests seen, by (webhook-id, webhook-timestamp, signature digest): the same
#: key again is a captured request replayed.  Rows older than twice the signature
#: tolerance are purged; a request that old is refused by its timestamp anyway.
signatures_seen = Table(
    "signatures_seen",
    metadata,
    Column("webhook_id", String(200), primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Column("signature_sha256", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False),
    Index("signatures_seen_seen_at", "seen_at"),
)
