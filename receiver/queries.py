"""What the store API reads: sessions, their messages and tool calls, search, one event's
trace.  Every read is scoped to an owner (None: an admin reading everyone's).

Pages use keyset cursors, never offsets: a cursor names the last row of the page, and the
next page starts strictly after it.  A session cursor is its (last activity, id): rows that
arrive meanwhile never make a page repeat or skip one, and a session that gets new
activity while a client pages moves to the front, where the next first page shows it.  A
message cursor is its position and what identifies it wherever it moves (see
:func:`_anchor`), since a record landing earlier in a conversation moves every later
message down.  A cursor is opaque to clients (URL-safe base64 of JSON); a malformed one is
a :class:`BadCursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, text
from sqlalchemy.engine import Connection

from receiver.schema import (
    events,
    messages,
    records,
    session_tool_calls,
    sessions,
    tool_calls,
    users,
    webhook_events,
)

_SESSION_COLUMNS = (
    "session_id", "project", "git_branch", "model", "version", "hosts", "first_activity",
    "last_activity", "start_source", "end_reason", "title", "prompts", "messages",
    "tool_calls", "errors", "input_tokens", "output_tokens", "cache_creation_tokens",
    "cache_read_tokens", "forked_from", "gaps", "complete",
)  # fmt: skip
_JSON_COLUMNS = frozenset({"hosts", "gaps", "content", "usage", "input"})


class BadCursor(ValueError):
    """A cursor this store did not hand out."""


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> list[Any]:
    """The sort key a cursor names, each part of the type given (``bool`` is no ``int``)."""
    try:
        padded = (cursor + "=" * (-len(cursor) % 4)).encode("ascii")
        key = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("cursor is not one this store handed out") from None
    if not isinstance(key, list) or len(key) != len(types):
        raise BadCursor("cursor is not one this store handed out")
    if not all(type(part) is kind for part, kind in zip(key, types, strict=True)):
        raise BadCursor("cursor is not one this store handed out")
    return key


def _out(row: Any, columns: tuple[str, ...] | None = None) -> dict[str, Any]:
    item = dict(row._mapping)
    for name in list(item):
        if name in _JSON_COLUMNS and isinstance(item[name], str):
            item[name] = json.loads(item[name])
        if name == "complete":
            item[name] = bool(item[name])
    return {k: item[k] for k in columns} if columns else item


def _owned(column: Any, owner_id: int | None) -> Any:
    return column == owner_id if owner_id is not None else column.is_not(None)


_ANCHORS = ("message_id", "uuid", "prompt_id", "request_id")
PERCENTILES = (50, 95, 99)


def _anchor(row: Any) -> tuple[int, str, str, str]:
    """A message cursor: the message's position and what identifies it whatever its
    position (an assistant reply's message.id, a record's uuid, a hook prompt's prompt_id,
    else the event that made it), so a record landing earlier in the conversation, which
    moves every later message down, neither repeats nor skips one."""
    for field in _ANCHORS:
        value = getattr(row, field)
        if value:
            return row.position, row.kind, field, value
    return row.position, row.kind, "request_id", ""


def _where_now(
    conn: Connection, query: Any, position: int, kind: str, field: str, value: str
) -> int:
    """Where the cursor's message is now: at its old position (the usual case, one index
    lookup), else wherever the same message moved to, else (it is gone: a hook's prompt
    replaced by its transcript record) its old position."""
    same = and_(messages.c.kind == kind, messages.c[field] == value)
    if conn.execute(query.where(messages.c.position == position, same)).first():
        return position
    moved = conn.execute(
        query.with_only_columns(messages.c.position).where(same)
        .order_by(messages.c.position).limit(1)
    ).scalar()  # fmt: skip
    return position if moved is None else int(moved)


class Reader:
    """The API's queries over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def sessions(
        self,
        owner_id: int | None,
        *,
        limit: int,
        cursor: str | None = None,
        project: str | None = None,
        since: str | None = None,
        q: str | None = None,
    ) -> Page:
        """Sessions, last activity first (then id), filtered; ``q`` matches title or project."""
        s = sessions.c
        query = select(s.id, s.owner_id, *[s[c] for c in _SESSION_COLUMNS]).where(
            _owned(s.owner_id, owner_id)
        )
        if project is not None:
            query = query.where(s.project == project)
        if since is not None:
            query = query.where(s.last_activity >= since)
        if q:  # the words as they are: % and _ match themselves
            words = q.lower()
            query = query.where(
                or_(
                    func.lower(s.title).contains(words, autoescape=True),
                    func.lower(s.project).contains(words, autoescape=True),
                )
            )
        if cursor:  # "?cursor=" is the first page
            last, last_id = decode_cursor(cursor, str, int)
            activity = func.coalesce(s.last_activity, "")
            query = query.where(or_(activity < last, and_(activity == last, s.id < last_id)))
        query = query.order_by(func.coalesce(s.last_activity, "").desc(), s.id.desc())
        with self.engine.connect() as conn:
            found = list(conn.execute(query.limit(limit + 1)))
        page = found[:limit]
        after = None
        if len(found) > limit:
            tail = page[-1]
            after = encode_cursor(tail.last_activity or "", tail.id)
        return Page(
            [{**_out(row, _SESSION_COLUMNS), "owner_id": row.owner_id} for row in page], after
        )

    def projects(self, owner_id: int | None, limit: int = 500) -> list[str]:
        """The projects the owner's sessions ran in, by name."""
        s = sessions.c
        query = (
            select(s.project)
            .where(_owned(s.owner_id, owner_id), s.project.is_not(None))
            .group_by(s.project)
            .order_by(s.project)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [str(p) for p in conn.execute(query).scalars()]

    def session(self, session_id: str, owner_id: int | None) -> dict[str, Any] | None:
        """The session, or None when the owner has none by that id."""
        s = sessions.c
        query = select(s.owner_id, *[s[c] for c in _SESSION_COLUMNS]).where(
            s.session_id == session_id, _owned(s.owner_id, owner_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(s.id).limit(1)).first()
            if row is None:
                return None
            item = _out(row, _SESSION_COLUMNS)
            item["owner"] = conn.execute(
                select(users.c.name).where(users.c.id == row.owner_id)
            ).scalar()
        return item

    def owner_of(self, session_id: str, owner_id: int | None) -> int | None:
        """Whose session this is, for the caller: the caller's own, else anyone's (to tell
        403 from 404), else None."""
        with self.engine.connect() as conn:
            if owner_id is not None:
                mine = conn.execute(
                    select(sessions.c.owner_id).where(
                        sessions.c.session_id == session_id, sessions.c.owner_id == owner_id
                    )
                ).scalar()
                if mine is not None:
                    return int(mine)
            other = conn.execute(
                select(sessions.c.owner_id).where(sessions.c.session_id == session_id).limit(1)
            ).scalar()
        return None if other is None else int(other)

    def messages(self, session_id: str, owner_id: int, *, limit: int, cursor: str | None) -> Page:
        """A session's messages in conversation order, from after ``cursor``."""
        m = messages.c
        query = select(
            m.position, m.kind, m.role, m.uuid, m.message_id, m.prompt_id, m.agent_id,
            m.parent_tool_use_id, m.timestamp, m.model, m.content, m.usage, m.origin,
            m.request_id,
        ).where(m.owner_id == owner_id, m.session_id == session_id)  # fmt: skip
        with self.engine.connect() as conn:
            if cursor:
                position, kind, field, value = decode_cursor(cursor, int, str, str, str)
                if field not in _ANCHORS:
                    raise BadCursor("cursor is not one this store handed out")
                after = _where_now(conn, query, position, kind, field, value)
                query = query.where(m.position > after)
            found = list(conn.execute(query.order_by(m.position).limit(limit + 1)))
        page = found[:limit]
        after_cursor = encode_cursor(*_anchor(page[-1])) if len(found) > limit else None
        return Page([_out(row) for row in page], after_cursor)

    def tools(self, session_id: str, owner_id: int) -> list[dict[str, Any]]:
        """The tool calls the session shows (a fork's include its parent's), in start order."""
        t, listed = tool_calls.c, session_tool_calls
        query = (
            select(
                t.tool_use_id,
                t.name,
                t.input,
                t.output,
                t.error,
                t.status,
                t.started_at,
                t.ended_at,
                t.duration_ms,
                t.agent_id,
            )
            .select_from(listed)
            .join(
                tool_calls,
                and_(t.owner_id == listed.c.owner_id, t.tool_use_id == listed.c.tool_use_id),
            )
            .where(listed.c.owner_id == owner_id, listed.c.session_id == session_id)
            .order_by(func.coalesce(t.started_at, ""), t.id)
        )
        with self.engine.connect() as conn:
            return [_out(row) for row in conn.execute(query)]

    def raw_records(self, session_id: str, owner_id: int) -> list[str]:
        """The session's records as they came (JSON text), in file order."""
        from receiver.schema import session_records as sr

        query = (
            select(records.c.body)
            .select_from(sr)
            .join(records, records.c.id == sr.c.record_id)
            .where(sr.c.owner_id == owner_id, sr.c.session_id == session_id)
            .order_by(func.coalesce(sr.c.agent_id, ""), sr.c.file_offset, sr.c.file_index)
        )
        with self.engine.connect() as conn:
            return [row.body for row in conn.execute(query)]

    def search(self, q: str, owner_id: int | None, *, limit: int) -> list[dict[str, Any]]:
        """Messages whose text matches ``q`` (every word), best first, with a snippet."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                return _search_postgresql(conn, q, owner_id, limit)
            return _search_sqlite(conn, q, owner_id, limit)

    def trace(self, request_id: str, owner_id: int | None) -> dict[str, Any] | None:
        """One envelope, its audit rows, and the rows it produced."""
        e = events.c
        with self.engine.connect() as conn:
            event = conn.execute(
                select(e.id, e.owner_id, e.request_id, e.event, e.session_id, e.envelope,
                       e.received_at)
                .where(e.request_id == request_id, _owned(e.owner_id, owner_id))
                .order_by(e.id).limit(1)
            ).first()  # fmt: skip
            if event is None:
                return None
            audit = conn.execute(
                select(webhook_events)
                .where(webhook_events.c.request_id == request_id,
                       _owned(webhook_events.c.owner_id, event.owner_id))
                .order_by(webhook_events.c.id)
            ).all()  # fmt: skip
            produced = conn.execute(
                select(records.c.record_key, records.c.type, records.c.session_id).where(
                    records.c.request_id == request_id, records.c.owner_id == event.owner_id
                )
            ).all()
            shown = conn.execute(
                select(messages.c.session_id, messages.c.position, messages.c.kind).where(
                    messages.c.request_id == request_id, messages.c.owner_id == event.owner_id
                )
            ).all()
        return {
            "requestId": request_id,
            "event": event.event,
            "sessionId": event.session_id,
            "receivedAt": event.received_at,
            "envelope": json.loads(event.envelope),
            "audit": [dict(row._mapping) for row in audit],
            "records": [dict(row._mapping) for row in produced],
            "messages": [dict(row._mapping) for row in shown],
        }

    def refused(self, request_id: str, owner_id: int | None) -> list[dict[str, Any]]:
        """The audit rows of a requestId that no envelope was stored for (each request
        refused); an admin sees those whose token was unknown too."""
        w = webhook_events.c
        query = select(webhook_events).where(w.request_id == request_id)
        if owner_id is not None:
            query = query.where(w.owner_id == owner_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.order_by(w.id).limit(100))]

    def produced_by(self, request_id: str, owner_id: int | None) -> list[dict[str, Any]]:
        """The messages an envelope brought (the stream sends them after the event)."""
        m = messages.c
        query = (
            select(m.session_id, m.position, m.kind, m.role, m.timestamp, m.text, m.origin)
            .where(m.request_id == request_id, _owned(m.owner_id, owner_id))
            .order_by(m.session_id, m.position)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def events_after(self, last_id: int, owner_id: int | None, limit: int = 100) -> list[Any]:
        """Events applied after ``last_id`` (the stream's source), oldest first."""
        e = events.c
        query = (
            select(e.id, e.request_id, e.event, e.session_id, e.received_at)
            .where(e.id > last_id, _owned(e.owner_id, owner_id))
            .order_by(e.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def last_event_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())


def percentiles(
    conn: Connection, where: list[Any], wanted: tuple[int, ...] = PERCENTILES
) -> dict[int, float]:
    """p50, p95 and p99 of processing_ms by nearest rank: a count, then the k-th value of
    each read off the ``(processing_ms, received_at)`` index (``LIMIT 1 OFFSET k - 1``).
    With 100,000 rows in the window that took 25 ms on SQLite, where one sort of them all
    (a window function) took 90-180 ms and fetching them to sort here about as long."""
    audit = webhook_events.c
    timed = [*where, audit.processing_ms.is_not(None)]
    n = conn.execute(select(func.count()).where(*timed)).scalar_one()
    found: dict[int, float] = {}
    for pct in wanted if n else ():
        rank = -(-pct * n // 100)  # ceil(pct/100 * n), 1-based
        value = conn.execute(
            select(audit.processing_ms)
            .where(*timed)
            .order_by(audit.processing_ms)
            .limit(1)
            .offset(rank - 1)
        ).scalar_one()
        found[pct] = float(value)
    return found


def _fts_query(q: str) -> str:
    """The words of ``q`` as FTS5 string literals: no operator in them means anything."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in q.split())


def _search_sqlite(
    conn: Connection, q: str, owner_id: int | None, limit: int
) -> list[dict[str, Any]]:
    if not q.split():
        return []
    sql = text(
        "SELECT m.session_id, m.position, m.kind, m.timestamp,"
        " snippet(messages_fts, 0, '[', ']', '...', 16) AS snippet"
        " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
        " WHERE messages_fts MATCH :q AND (:owner IS NULL OR m.owner_id = :owner)"
        " ORDER BY rank LIMIT :limit"
    )
    params = {"q": _fts_query(q), "owner": owner_id, "limit": limit}
    return [dict(row._mapping) for row in conn.execute(sql, params)]


def _search_postgresql(
    conn: Connection, q: str, owner_id: int | None, limit: int
) -> list[dict[str, Any]]:
    sql = text(
        "SELECT session_id, position, kind, timestamp,"
        " ts_headline('simple', coalesce(text, ''), plainto_tsquery('simple', :q),"
        " 'StartSel=[, StopSel=], MaxWords=24, MinWords=8') AS snippet"
        " FROM messages"
        " WHERE text_search @@ plainto_tsquery('simple', :q)"
        " AND (CAST(:owner AS INTEGER) IS NULL OR owner_id = :owner)"
        " ORDER BY ts_rank(text_search, plainto_tsquery('simple', :q)) DESC, id LIMIT :limit"
    )
    return [
        dict(row._mapping) for row in conn.execute(sql, {"q": q, "owner": owner_id, "limit": limit})
    ]
