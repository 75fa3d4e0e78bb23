"""SQLite storage for the reference receiver: the events it applied and an audit of every request.

Why SQLite: the receiver is a demo, a test oracle and a starting point, so it must need no
server, survive a crash (WAL) and let a test open the same file and read what arrived.

Why dedup lives here: exactly-once effect is the receiver's half of the at-least-once
contract. ``INSERT ... ON CONFLICT(request_id) DO NOTHING`` decides "new or seen" inside
SQLite, atomically, in the same transaction as the audit row, so two concurrent deliveries
of one requestId can never both be applied, and the audit can never disagree with the
events table.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = ["Status", "Store", "utc_now"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    request_id TEXT UNIQUE NOT NULL,
    event TEXT,
    session_id TEXT,
    trace_id TEXT,
    span_id TEXT,
    attempt INTEGER,
    envelope TEXT,
    headers TEXT,
    received_at TEXT
);
CREATE INDEX IF NOT EXISTS events_event ON events (event);
CREATE INDEX IF NOT EXISTS events_session_id ON events (session_id);
CREATE TABLE IF NOT EXISTS webhook_events (
    id INTEGER PRIMARY KEY,
    request_id TEXT,
    event TEXT,
    session_id TEXT,
    status TEXT NOT NULL,
    http_status INTEGER,
    detail TEXT,
    received_at TEXT,
    processing_ms REAL
);
CREATE INDEX IF NOT EXISTS webhook_events_status ON webhook_events (status);
CREATE INDEX IF NOT EXISTS webhook_events_request_id ON webhook_events (request_id);
"""

_PERCENTILES = (50, 95, 99)


class Status(StrEnum):
    """Outcome of one request to ``POST /hooks``, as recorded in ``webhook_events``."""

    SUCCESS = "SUCCESS"
    DUPLICATE = "DUPLICATE"
    INVALID = "INVALID"
    UNAUTHORIZED = "UNAUTHORIZED"
    ERROR = "ERROR"


def utc_now() -> str:
    """The current time as RFC 3339 UTC with milliseconds and a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _text(value: str | None) -> str | None:
    """Make a string storable: JSON escapes can smuggle in lone surrogates SQLite rejects."""
    if value is None:
        return None
    return value.encode("utf-8", "replace").decode("utf-8")


def _nearest_rank(sorted_values: list[float], pct: int) -> float | None:
    """Nearest-rank percentile: the smallest value with at least pct% of values at or below."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _make_private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it, or narrow an existing one.

    It holds prompts, commands and tool output. SQLite creates the file with 0666 minus
    the umask (0644, usually), and gives the -wal and -shm files the database file's mode,
    so a private database file makes all three private. Existing -wal/-shm files (left by
    a crash) are narrowed too. Modes are only ever narrowed, never widened.
    """
    if str(path) == ":memory:":
        return
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        with suppress(FileNotFoundError, PermissionError):  # not ours to chmod: leave it
            mode = stat.S_IMODE(os.stat(name).st_mode)
            if mode & ~0o600:
                os.chmod(name, mode & 0o600)


class Store:
    """One SQLite connection shared by all requests, serialised by a lock.

    Every ``started`` argument is a ``time.perf_counter()`` reading taken when the request
    arrived; the audit row's ``processing_ms`` is measured up to its own insert, so it
    includes the store's work.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _make_private(self.path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Close the connection; safe to call more than once."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def accept(
        self,
        *,
        request_id: str,
        event: str,
        session_id: str | None,
        trace_id: str,
        span_id: str,
        attempt: int | None,
        envelope: str,
        headers: Mapping[str, str],
        started: float,
    ) -> bool:
        """Apply an envelope once: True if its requestId is new, False if already stored.

        ``envelope`` is the body text as received; ``headers`` should already be redacted.
        The audit row (SUCCESS or DUPLICATE, HTTP 200) is written in the same transaction.
        """
        received_at = utc_now()
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO events (request_id, event, session_id, trace_id, span_id,"
                " attempt, envelope, headers, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(request_id) DO NOTHING",
                (
                    request_id,
                    _text(event),
                    _text(session_id),
                    trace_id,
                    span_id,
                    attempt,
                    envelope,
                    json.dumps(dict(headers)),
                    received_at,
                ),
            )
            new = cursor.rowcount == 1
            status = Status.SUCCESS if new else Status.DUPLICATE
            self._insert_audit(
                conn, status, 200, request_id, event, session_id, None, received_at, started
            )
        return new

    def audit(
        self,
        status: Status,
        *,
        http_status: int,
        started: float,
        request_id: str | None = None,
        event: str | None = None,
        session_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record a request that was not applied (INVALID, UNAUTHORIZED, ERROR)."""
        with self._transaction() as conn:
            self._insert_audit(
                conn,
                Status(status),
                http_status,
                request_id,
                event,
                session_id,
                detail,
                utc_now(),
                started,
            )

    @staticmethod
    def _insert_audit(
        conn: sqlite3.Connection,
        status: Status,
        http_status: int,
        request_id: str | None,
        event: str | None,
        session_id: str | None,
        detail: str | None,
        received_at: str,
        started: float,
    ) -> None:
        conn.execute(
            "INSERT INTO webhook_events (request_id, event, session_id, status, http_status,"
            " detail, received_at, processing_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _text(request_id),
                _text(event),
                _text(session_id),
                status.value,
                http_status,
                _text(detail),
                received_at,
                _elapsed_ms(started),
            ),
        )

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def list_events(
        self,
        event: str | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Stored events, newest first, with ``envelope`` and ``headers`` parsed back."""
        where, params = _where(event=event, session_id=session_id, request_id=request_id)
        sql = f"SELECT * FROM events{where} ORDER BY id DESC LIMIT ?"  # noqa: S608 -- fixed columns
        result = []
        for row in self._query(sql, (*params, limit)):
            item = dict(row)
            item["envelope"] = json.loads(item["envelope"])
            item["headers"] = json.loads(item["headers"])
            result.append(item)
        return result

    def list_audit(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Audit rows, newest first."""
        where, params = _where(status=status)
        sql = f"SELECT * FROM webhook_events{where} ORDER BY id DESC LIMIT ?"  # noqa: S608 -- fixed columns
        return [dict(row) for row in self._query(sql, (*params, limit))]

    def stats(self) -> dict[str, Any]:
        """Counts by status (all five, zeros included), stored events, latency percentiles."""
        counts: dict[str, int] = {status.value: 0 for status in Status}
        for row in self._query("SELECT status, COUNT(*) FROM webhook_events GROUP BY status"):
            counts[row[0]] = row[1]
        total = self._query("SELECT COUNT(*) FROM events")[0][0]
        values = [
            row[0]
            for row in self._query(
                "SELECT processing_ms FROM webhook_events"
                " WHERE processing_ms IS NOT NULL ORDER BY processing_ms"
            )
        ]
        percentiles = {f"p{pct}": _nearest_rank(values, pct) for pct in _PERCENTILES}
        return {"counts": counts, "events": total, "processing_ms": percentiles}


def _where(**filters: str | None) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause over the given fixed column names, for the filters that are set."""
    used = {column: value for column, value in filters.items() if value is not None}
    if not used:
        return "", ()
    clause = " AND ".join(f"{column} = ?" for column in used)
    return f" WHERE {clause}", tuple(used.values())
