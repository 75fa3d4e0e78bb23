"""Client hosts, as the store sees them: the last event each host's envelopes brought
(written with the event, in its transaction), and the last heartbeat of its daemon with the
backlog it reported (``Heartbeat`` envelopes, which are not stored as events)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from receiver.database import dialect_insert
from receiver.schema import hosts

_COUNTS = ("pending", "processing", "failed")


def host_of(envelope: dict[str, Any]) -> str | None:
    """The envelope's ``source.host``: printable characters only (it reaches pages, logs
    and chat notifications), at most 200."""
    source = envelope.get("source")
    host = source.get("host") if isinstance(source, dict) else None
    if not isinstance(host, str):
        return None
    return _clean(host, 200) or None


def _clean(text: Any, limit: int) -> str:
    """Text a client sent, as it may be shown and stored: printable characters only (no
    control characters, no lone surrogates, which neither database takes), at most
    ``limit`` of them."""
    return "".join(c if c.isprintable() else "?" for c in str(text)[:limit]).strip()


class Throttle:
    """Which rows to write now: each key at most once per ``every`` seconds per process.
    A busy host costs its events one upsert a second, not one each (its row lags its last
    event by at most that much); a token's ``last_used_at`` is written once a minute."""

    def __init__(self, every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._written: dict[Hashable, float] = {}

    def due(self, *key: Hashable) -> bool:
        now = self.clock()
        if now - self._written.get(key, -math.inf) < self.every:
            return False
        if len(self._written) >= 10_000:  # that many hosts or users: forget the oldest
            self._written.pop(next(iter(self._written)))
        self._written[key] = now
        return True


def saw_event(
    conn: Connection, owner_id: int, host: str, envelope: dict[str, Any], received_at: str
) -> None:
    """Note an applied event against the host it came from."""
    changes = {
        "last_event": _clean(envelope.get("event"), 200),
        "last_event_at": received_at,
        "last_request_id": _clean(envelope.get("requestId"), 36),
    }
    _upsert(conn, owner_id, host, changes)


def heartbeat(engine: Engine, owner_id: int, envelope: dict[str, Any], received_at: str) -> None:
    """Keep a daemon's heartbeat: a Heartbeat envelope the schema passed (heartbeat.json),
    so its payload holds the counts, the oldest pending age and the version."""
    payload = envelope["payload"]
    changes: dict[str, Any] = {
        "heartbeat_at": received_at,
        "heartbeat_request_id": envelope["requestId"],
        "oldest_pending_age": _number(payload["oldestPendingAge"]),
        "version": _clean(payload["version"], 64),
        **{name: payload[name] for name in _COUNTS},
    }
    with engine.begin() as conn:
        _upsert(conn, owner_id, host_of(envelope) or "?", changes)


def _number(value: float | None) -> float | None:
    """A JSON number as a column holds it: 1e999 parses as infinity, which no answer
    could carry back (JSON has none), so it is kept as unknown."""
    try:
        return value if value is None or math.isfinite(value) else None
    except OverflowError:  # an integer of hundreds of digits
        return None


def _upsert(conn: Connection, owner_id: int, host: str, changes: dict[str, Any]) -> None:
    conn.execute(
        dialect_insert(conn, hosts)
        .values(owner_id=owner_id, host=host, **changes)
        .on_conflict_do_update(index_elements=["owner_id", "host"], set_=changes)
    )
