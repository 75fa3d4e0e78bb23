"""Conversations in the database: transcript records kept as they came, and each session's
projection (:mod:`receiver.projection`) stored beside them, in the caller's transaction.

A ``Transcript`` envelope's records are inserted once per owner (``records``, keyed by
uuid, or by sessionId and a hash for records without one) and listed under the session
whose file they came from (``session_records``).  Then the session is projected anew
from all its records and hook events, and its ``sessions``, ``messages`` and
``tool_calls`` rows replaced: whatever the order things arrived in, the rows are the
same, and each thing is in them once.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.engine import Connection

from receiver.database import dialect_insert as _insert
from receiver.database import execute_many, insert_rows
from receiver.envelopes import TRANSCRIPT
from receiver.projection import Conversation, Hook, Line, Transcript, transcript, with_hooks
from receiver.schema import (
    events,
    messages,
    records,
    session_records,
    session_tool_calls,
    sessions,
    tool_calls,
)


class Projections:
    """The transcript part of recently projected sessions (:class:`Transcript`), so that a
    hook event does not re-read and re-order a long session's records: records only
    ever arrive, so (how many the session lists, the largest record id) says whether the
    kept part is still the session's.  Per store, bounded; a part computed inside a
    transaction is kept only once that transaction commits (:meth:`commit`)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._parts: OrderedDict[tuple[int, str], tuple[tuple[int, int], Transcript]] = (
            OrderedDict()
        )
        self._staged: dict[tuple[int, str], tuple[tuple[int, int], Transcript]] = {}

    def get(self, key: tuple[int, str], stamp: tuple[int, int]) -> Transcript | None:
        found = self._staged.get(key) or self._parts.get(key)
        if found is None or found[0] != stamp:
            return None
        return found[1]

    def stage(self, key: tuple[int, str], stamp: tuple[int, int], part: Transcript) -> None:
        self._staged[key] = (stamp, part)

    def commit(self) -> None:
        for key, entry in self._staged.items():
            self._parts[key] = entry
            self._parts.move_to_end(key)
        self._staged.clear()
        while len(self._parts) > self.size:
            self._parts.popitem(last=False)

    def discard(self) -> None:
        self._staged.clear()


def after_event(
    conn: Connection,
    owner_id: int,
    request_id: str,
    event: str,
    session_id: str | None,
    envelope: dict[str, Any],
    received_at: str,
    projections: Projections | None = None,
) -> None:
    """Bring the conversation up to date with an envelope just applied."""
    host = None
    if event == TRANSCRIPT:  # the schema has checked its source and payload
        session_id = _keep_records(conn, owner_id, request_id, envelope, received_at)
        host = envelope["source"]["host"]
    if session_id:
        rebuild(conn, owner_id, session_id, host, projections)


def _keep_records(
    conn: Connection, owner_id: int, request_id: str, envelope: dict[str, Any], received_at: str
) -> str:
    """Insert a Transcript envelope's records; the session they belong to.  The envelope
    passed the Transcript schema (transcript.json): its payload has the fields used here."""
    payload = envelope["payload"]
    session_id: str = payload["sessionId"]
    agent_id, offset = payload["agentId"], payload["offset"]
    kept: dict[str, dict[str, Any]] = {}  # record_key -> row, the first of repeats
    keys: list[str] = []
    for record in payload["records"]:
        row = _record_row(owner_id, session_id, record, request_id, received_at)
        keys.append(row["record_key"])
        kept.setdefault(row["record_key"], row)
    if not kept:
        return session_id
    # two statements for the whole envelope, not two per record; a third for the records
    # stored before (a resend, a fork's copy), whose ids the insert does not return
    ids = _inserted_ids(conn, list(kept.values()))
    if len(ids) < len(kept):
        before = [key for key in kept if key not in ids]
        ids.update(
            conn.execute(
                select(records.c.record_key, records.c.id).where(
                    records.c.owner_id == owner_id, records.c.record_key.in_(before)
                )
            ).all()
        )
    places: dict[int, int] = {}  # record id -> its first index in this envelope
    for index, key in enumerate(keys):
        places.setdefault(ids[key], index)
    execute_many(
        conn,
        _insert(conn, session_records).on_conflict_do_nothing(),
        [
            {
                "owner_id": owner_id,
                "session_id": session_id,
                "record_id": record_id,
                "agent_id": agent_id,
                "file_offset": offset,
                "file_index": index,
            }
            for record_id, index in places.items()
        ],
    )
    return session_id


def _inserted_ids(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert the records not stored yet; the ids of those inserted, by record key."""
    insert = (
        _insert(conn, records)
        .on_conflict_do_nothing(index_elements=["owner_id", "record_key"])
        .returning(records.c.record_key, records.c.id)
    )
    return {key: id_ for key, id_ in execute_many(conn, insert, rows, returning=True)}


def record_key(session_id: str, record: dict[str, Any]) -> str:
    """A record's identity: its uuid, else its session and the SHA-256 of its canonical JSON
    (metadata records repeat, and a repeat is the same record)."""
    uuid = record.get("uuid")
    if isinstance(uuid, str) and uuid:
        return uuid[:300]
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{session_id[:200]}:{hashlib.sha256(canonical.encode()).hexdigest()}"


def _record_row(
    owner_id: int, session_id: str, record: dict[str, Any], request_id: str, received_at: str
) -> dict[str, Any]:
    return {
        "owner_id": owner_id,
        "record_key": record_key(session_id, record),
        "type": _short(record.get("type")),
        "uuid": _short(record.get("uuid"), 64),
        "parent_uuid": _short(record.get("parentUuid"), 64),
        "session_id": _short(record.get("sessionId")),
        "timestamp": _short(record.get("timestamp"), 40),
        "body": json.dumps(record),
        "request_id": request_id,
        "received_at": received_at,
    }


def rebuild(
    conn: Connection,
    owner_id: int,
    session_id: str,
    host: str | None = None,
    projections: Projections | None = None,
) -> Conversation:
    """Project one session from its records and hook events and store the result.

    ``host``: the machine a Transcript envelope came from.  Hosts are a union over
    everything that ever arrived, so the ones hooks did not name are kept from before
    (re-reading every Transcript envelope for its host would cost more than the rest)."""
    part, fresh = _transcript(conn, owner_id, session_id, projections)
    conversation = with_hooks(part, _hooks(conn, owner_id, session_id))
    known = conn.execute(
        select(sessions.c.hosts).where(
            sessions.c.owner_id == owner_id, sessions.c.session_id == session_id
        )
    ).scalar()
    hosts = set(conversation.session["hosts"]) | set(json.loads(known or "[]"))
    conversation.session["hosts"] = sorted(hosts | ({host} if host else set()))
    _store(conn, owner_id, session_id, conversation, part)
    if fresh:  # forks are a matter of records: only new records can change them
        _link_forks(conn, owner_id, session_id)
    return conversation


def _transcript(
    conn: Connection, owner_id: int, session_id: str, projections: Projections | None
) -> tuple[Transcript, bool]:
    """The session's transcript part, kept from before when its records are the same;
    and whether it was computed anew."""
    count, largest = conn.execute(
        select(func.count(), func.coalesce(func.max(session_records.c.record_id), 0)).where(
            session_records.c.owner_id == owner_id, session_records.c.session_id == session_id
        )
    ).one()
    stamp = (int(count), int(largest))
    part = projections.get((owner_id, session_id), stamp) if projections else None
    if part is not None:
        return part, False
    part = transcript(_lines(conn, owner_id, session_id))
    part.encoded.update((id(m["content"]), json.dumps(m["content"])) for m in part.messages)
    if projections is not None:
        projections.stage((owner_id, session_id), stamp, part)
    return part, True


def _lines(conn: Connection, owner_id: int, session_id: str) -> list[Line]:
    query = (
        select(
            records.c.body,
            records.c.request_id,
            session_records.c.file_offset,
            session_records.c.file_index,
            session_records.c.agent_id,
        )
        .join(records, records.c.id == session_records.c.record_id)
        .where(session_records.c.owner_id == owner_id, session_records.c.session_id == session_id)
    )
    return [
        Line(json.loads(row.body), (row.file_offset, row.file_index), row.request_id, row.agent_id)
        for row in conn.execute(query)
    ]


def _hooks(conn: Connection, owner_id: int, session_id: str) -> list[Hook]:
    query = select(events.c.envelope).where(
        events.c.owner_id == owner_id,
        events.c.session_id == session_id,
        events.c.event != TRANSCRIPT,
    )
    hooks = []
    for (text,) in conn.execute(query):
        doc = json.loads(text)
        payload = doc.get("payload") if isinstance(doc.get("payload"), dict) else {}
        source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
        host = source.get("host") if isinstance(source.get("host"), str) else None
        hooks.append(
            Hook(str(doc.get("event")), payload, str(doc.get("timestamp")), doc["requestId"], host)
        )
    return hooks


def _store(
    conn: Connection,
    owner_id: int,
    session_id: str,
    conversation: Conversation,
    part: Transcript,
) -> None:
    _store_messages(conn, owner_id, session_id, conversation.messages, part)
    _store_tool_calls(conn, owner_id, session_id, conversation.tool_calls)
    summary = {**conversation.session, "owner_id": owner_id, "session_id": session_id}
    summary["hosts"] = json.dumps(summary["hosts"])
    summary["gaps"] = json.dumps(summary["gaps"])
    changes = {k: v for k, v in summary.items() if k not in ("owner_id", "session_id")}
    conn.execute(
        _insert(conn, sessions)
        .values(summary)
        .on_conflict_do_update(index_elements=["owner_id", "session_id"], set_=changes)
    )


_CALL_FIELDS = (
    "name", "input", "output", "error", "status", "started_at", "ended_at", "duration_ms",
    "agent_id",
)  # fmt: skip


def _store_tool_calls(
    conn: Connection, owner_id: int, session_id: str, projected: dict[str, dict[str, Any]]
) -> None:
    """Upsert the session's tool calls, only those whose row changed.  A tool call keeps
    the session it was first seen in; a fork, which repeats its parent's calls, lists
    them under itself as well."""
    if not projected:
        return
    columns = [tool_calls.c[name] for name in _CALL_FIELDS]
    stored = {
        row.tool_use_id: tuple(row[1:])
        for row in conn.execute(
            select(tool_calls.c.tool_use_id, *columns).where(
                tool_calls.c.owner_id == owner_id, tool_calls.c.tool_use_id.in_(list(projected))
            )
        )
    }
    _list_tool_calls(conn, owner_id, session_id, list(projected))
    for call in projected.values():
        row = {**call, "owner_id": owner_id, "session_id": session_id}
        row["input"] = None if call["input"] is None else json.dumps(call["input"])
        if stored.get(call["tool_use_id"]) == tuple(row[name] for name in _CALL_FIELDS):
            continue
        changes = {name: row[name] for name in _CALL_FIELDS}
        conn.execute(
            _insert(conn, tool_calls)
            .values(row)
            .on_conflict_do_update(index_elements=["owner_id", "tool_use_id"], set_=changes)
        )


def _list_tool_calls(conn: Connection, owner_id: int, session_id: str, ids: list[str]) -> None:
    """List the session's tool calls under it, those not listed yet."""
    listed = set(
        conn.execute(
            select(session_tool_calls.c.tool_use_id).where(
                session_tool_calls.c.owner_id == owner_id,
                session_tool_calls.c.session_id == session_id,
            )
        ).scalars()
    )
    missing = [
        {"owner_id": owner_id, "session_id": session_id, "tool_use_id": tool_use_id}
        for tool_use_id in ids
        if tool_use_id not in listed
    ]
    if missing:  # another receiver process may list the same call at the same instant
        conn.execute(_insert(conn, session_tool_calls).on_conflict_do_nothing(), missing)


def _store_messages(
    conn: Connection,
    owner_id: int,
    session_id: str,
    projected: list[dict[str, Any]],
    part: Transcript,
) -> None:
    """Make the session's stored messages the projected ones, writing only the positions
    whose row changed (a hook event on a synced session usually changes none)."""
    mine = and_(messages.c.owner_id == owner_id, messages.c.session_id == session_id)
    stored = dict(conn.execute(select(messages.c.position, messages.c.digest).where(mine)).all())
    fresh: list[dict[str, Any]] = []
    for message in projected:
        # a transcript message at the position it had last time: same row, same digest
        known = (id(message["content"]), message["position"])
        mine_too = message["origin"] == "transcript"  # its content list is the part's
        digest = part.digests.get(known) if mine_too else None
        if digest is not None and stored.get(message["position"]) == digest:
            continue
        row = _message_row(owner_id, session_id, message, part.encoded)
        if mine_too:
            part.digests[known] = row["digest"]
        have = stored.get(row["position"])
        if have == row["digest"]:
            continue
        if have is None and row["position"] not in stored:
            fresh.append(row)
            continue
        conn.execute(
            messages.update().where(mine, messages.c.position == row["position"]).values(row)
        )
    insert_rows(conn, messages, fresh)
    if len(stored) > len(projected):
        conn.execute(delete(messages).where(mine, messages.c.position >= len(projected)))


def _message_row(
    owner_id: int, session_id: str, message: dict[str, Any], encoded: dict[int, str]
) -> dict[str, Any]:
    content = encoded.get(id(message["content"])) or json.dumps(message["content"])
    row = {
        **message,
        "owner_id": owner_id,
        "session_id": session_id,
        "content": content,
        "usage": None if message["usage"] is None else json.dumps(message["usage"]),
        "parent_tool_use_id": message.get("parent_tool_use_id"),
    }
    canonical = "\x1f".join(f"{name}={row[name]!r}" for name in sorted(row))
    row["digest"] = hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()
    return row


def _link_forks(conn: Connection, owner_id: int, session_id: str) -> None:
    """``forked_from`` for every session whose history starts with the same record as this
    one's: each was forked from the one that started before it (its file's first line is
    earlier), so the links come out the same whichever session arrived first."""
    first = _first_conversation_record(conn, owner_id, session_id)
    if first is None:
        return
    sharing = (
        conn.execute(
            select(session_records.c.session_id).where(
                session_records.c.owner_id == owner_id, session_records.c.record_id == first
            )
        )
        .scalars()
        .all()
    )
    family = [s for s in sharing if _first_conversation_record(conn, owner_id, s) == first]
    started = sorted((_file_started(conn, owner_id, s), s) for s in family)
    for (_, parent), (_, child) in pairwise(started):
        conn.execute(
            sessions.update()
            .where(sessions.c.owner_id == owner_id, sessions.c.session_id == child)
            .values(forked_from=parent)
        )


def _first_conversation_record(conn: Connection, owner_id: int, session_id: str) -> int | None:
    found = conn.execute(
        _in_file_order(owner_id, session_id, records.c.id).where(records.c.uuid.is_not(None))
    ).scalar()
    return None if found is None else int(found)


def _file_started(conn: Connection, owner_id: int, session_id: str) -> str:
    found = conn.execute(
        _in_file_order(owner_id, session_id, records.c.timestamp).where(
            records.c.timestamp.is_not(None)
        )
    ).scalar()
    return str(found or "")


def _in_file_order(owner_id: int, session_id: str, column: Any) -> Any:
    return (
        select(column)
        .select_from(session_records)
        .join(records, records.c.id == session_records.c.record_id)
        .where(
            session_records.c.owner_id == owner_id,
            session_records.c.session_id == session_id,
            session_records.c.agent_id.is_(None),
        )
        .order_by(session_records.c.file_offset, session_records.c.file_index)
        .limit(1)
    )


def _short(value: Any, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) else None


__all__: Sequence[str] = ["TRANSCRIPT", "Projections", "after_event", "rebuild", "record_key"]
