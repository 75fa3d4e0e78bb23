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
    text,
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
    Index("events_request_id", "request_id"),
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
    # the dashboard's overview: the last day's requests by minute, event and status read
    # off the first, the processing-time percentiles off the second (receiver/overview.py);
    # owner_id last, so that one user's overview reads them alone too
    Index("webhook_events_window", "received_at", "event", "status", "processing_ms", "owner_id"),
    Index("webhook_events_ms", "processing_ms", "received_at", "owner_id"),
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

# -- conversations (migration 0003) ---------------------------------------------------------

#: Transcript records as they came, once per owner: keyed by ``uuid``, or, for a record
#: without one, by ``<sessionId>:<SHA-256 of its canonical JSON>``.  ``request_id`` is
#: the envelope that first brought it.
records = Table(
    "records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("record_key", String(300), nullable=False),
    Column("type", Text),
    Column("uuid", String(64)),
    Column("parent_uuid", String(64)),
    Column("session_id", Text),
    Column("timestamp", String(40)),
    Column("body", Text, nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("received_at", String(32), nullable=False),
    UniqueConstraint("owner_id", "record_key", name="records_owner_key"),
    Index("records_request_id", "request_id"),
)

#: Which sessions a record belongs to, and where it stood in each session's file: a
#: ``--fork-session`` copy repeats its parent's records, stored once, listed under both.
session_records = Table(
    "session_records",
    metadata,
    Column("owner_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("session_id", String(200), primary_key=True),
    Column("record_id", Integer, ForeignKey("records.id"), primary_key=True),
    Column("agent_id", String(200)),
    Column("file_offset", BigInteger, nullable=False),
    Column("file_index", Integer, nullable=False),
)

#: One row per (owner, sessionId): the projection's summary of the session.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("session_id", String(200), nullable=False),
    Column("project", Text),
    Column("git_branch", Text),
    Column("model", Text),
    Column("version", Text),
    Column("hosts", Text),
    Column("first_activity", String(40)),
    Column("last_activity", String(40)),
    Column("start_source", Text),
    Column("end_reason", Text),
    Column("title", Text),
    Column("prompts", Integer, nullable=False, default=0),
    Column("messages", Integer, nullable=False, default=0),
    Column("tool_calls", Integer, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
    Column("input_tokens", BigInteger, nullable=False, default=0),
    Column("output_tokens", BigInteger, nullable=False, default=0),
    Column("cache_creation_tokens", BigInteger, nullable=False, default=0),
    Column("cache_read_tokens", BigInteger, nullable=False, default=0),
    Column("forked_from", String(200)),
    Column("gaps", Text),
    Column("complete", Boolean, nullable=False, default=True),
    UniqueConstraint("owner_id", "session_id", name="sessions_owner_session"),
    Index("sessions_owner_last_activity", "owner_id", "last_activity"),
)

#: A session's messages in conversation order (``position`` 0, 1, ...).
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("session_id", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("role", String(32)),
    Column("uuid", String(64)),
    Column("message_id", String(200)),
    Column("prompt_id", String(64)),
    Column("agent_id", String(200)),
    Column("parent_tool_use_id", String(200)),
    Column("timestamp", String(40)),
    Column("model", Text),
    Column("text", Text),
    Column("content", Text),
    Column("usage", Text),
    Column("origin", String(16), nullable=False),
    Column("request_id", String(36)),
    #: SHA-1 of the row's other columns: a re-projection rewrites only the rows that changed
    Column("digest", String(40)),
    UniqueConstraint("owner_id", "session_id", "position", name="messages_owner_session_position"),
    Index("messages_request_id", "request_id"),
)

#: One row per (owner, tool_use_id), whichever paths told of it.
tool_calls = Table(
    "tool_calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("tool_use_id", String(200), nullable=False),
    Column("session_id", String(200), nullable=False),
    Column("agent_id", String(200)),
    Column("name", Text),
    Column("input", Text),
    Column("output", Text),
    Column("error", Text),
    Column("status", String(16), nullable=False),
    Column("started_at", String(40)),
    Column("ended_at", String(40)),
    Column("duration_ms", Float),
    UniqueConstraint("owner_id", "tool_use_id", name="tool_calls_owner_tool_use_id"),
    Index("tool_calls_owner_session", "owner_id", "session_id"),
)

#: Which sessions show a tool call: a ``--fork-session`` copy repeats its parent's calls
#: (one row in tool_calls, kept under the session that told of it first), listed under both.
session_tool_calls = Table(
    "session_tool_calls",
    metadata,
    Column("owner_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("session_id", String(200), primary_key=True),
    Column("tool_use_id", String(200), primary_key=True),
)

# -- the dashboard (migration 0006) ---------------------------------------------------------

#: Signed-in dashboard sessions: the SHA-256 of the cookie, never the cookie; and that of
#: the token signed in with, so a sign-in ends when its token is revoked or replaced.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("token_sha256", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
)

#: Each client host an owner's events came from: its last event, and the last heartbeat
#: of its daemon (``[queue] heartbeat``) with the backlog it reported.
hosts = Table(
    "hosts",
    metadata,
    Column("owner_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("host", String(200), primary_key=True),
    Column("last_event", Text),
    Column("last_event_at", String(32)),
    Column("last_request_id", String(36)),
    Column("heartbeat_at", String(32)),
    Column("heartbeat_request_id", String(36)),
    Column("pending", Integer),
    Column("processing", Integer),
    Column("failed", Integer),
    Column("oldest_pending_age", Float),
    Column("version", String(64)),
)

#: Alerts (``--alerts FILE``): one row each time a rule starts to hold for a subject (""
#: for the store, ``<owner id>:<host>`` for a host), resolved when it stops.  At most one
#: open per (rule, subject), by the partial unique index: the database, not a process,
#: decides which receiver opens it.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule", String(200), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id")),
    Column("text", Text),
    Column("opened_at", String(32), nullable=False),
    Column("resolved_at", String(32)),
)
Index(
    "alerts_open",
    alerts.c.rule,
    alerts.c.subject,
    unique=True,
    sqlite_where=text("resolved_at IS NULL"),
    postgresql_where=text("resolved_at IS NULL"),
)
