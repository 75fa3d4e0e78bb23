"""The store's writes and reads over SQLAlchemy Core: the same queries on SQLite and PostgreSQL.

Why dedup lives in the database: exactly-once effect is the receiver's half of the
at-least-once contract.  ``INSERT ... ON CONFLICT (owner_id, request_id) DO NOTHING``
decides "new or seen" inside the database, atomically, in the same transaction as the
audit row, so two concurrent deliveries of one requestId (two threads, or two receiver
processes on one PostgreSQL database) can never both be applied, and the audit can
never disagree with the events table.  The signature replay check is the same kind of
insert (:meth:`Store.signature_seen`).

Users and tokens: a token is stored only as its SHA-256; :meth:`Store.authenticate`
looks the digest up, so no token is ever compared or kept in the clear.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from receiver.conversations import Projections, after_event
from receiver.database import connect, migrate
from receiver.database import dialect_insert as _insert
from receiver.hosts import Throttle, host_of, saw_event
from receiver.queries import PERCENTILES, percentiles
from receiver.schema import events, signatures_seen, users, webhook_events

__all__ = [
    "ADMIN_ID",
    "Arrival",
    "Rejected",
    "Status",
    "Store",
    "User",
    "UserError",
    "utc_now",
]

#: The built-in admin: the ``--token-env`` token, and every request under ``--no-auth``
#: (created by the migration that introduced owners).
ADMIN_ID = 1
#: last_used_at is written at most this often per user (seconds): not on every request.
LAST_USED_EVERY = 60.0

logger = logging.getLogger("receiver")


class Status(StrEnum):
    """Outcome of one request to ``POST /hooks``, as recorded in ``webhook_events``."""

    SUCCESS = "SUCCESS"
    DUPLICATE = "DUPLICATE"
    INVALID = "INVALID"
    UNAUTHORIZED = "UNAUTHORIZED"
    ERROR = "ERROR"


def stamp(when: datetime) -> str:
    """A time as the store writes them: RFC 3339 UTC with milliseconds and a ``Z``."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    """The current time, as :func:`stamp` writes it."""
    return stamp(datetime.now(UTC))


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _text(value: str | None) -> str | None:
    """Make a string storable on both databases: JSON escapes can smuggle in lone
    surrogates (SQLite and PostgreSQL reject them) and NUL (PostgreSQL text cannot hold
    it); each becomes U+FFFD or "?", as UTF-8 encoding with "replace" gives."""
    if value is None:
        return None
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


@dataclass(frozen=True)
class User:
    """Who a request came from: a token's user, or the built-in admin."""

    id: int
    name: str
    admin: bool


@dataclass(frozen=True)
class Arrival:
    """A valid envelope to apply: the fields the store indexes, and its JSON text."""

    request_id: str
    event: str
    session_id: str | None
    trace_id: str
    span_id: str
    envelope: str


@dataclass(frozen=True)
class Rejected:
    """An invalid item of a batch: what it claimed to be, and why it was refused."""

    request_id: str | None
    event: str | None
    session_id: str | None
    detail: str


class UserError(ValueError):
    """A token command that cannot be done: the name is taken, or no such user."""


def token_digest(token: str) -> str:
    """What is stored of a token: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Store:
    """The store's database, migrated to this version on open; thread-safe (a pool).

    Every ``started`` argument is a ``time.perf_counter()`` reading taken when the request
    arrived; the audit row's ``processing_ms`` is measured up to its own insert, so it
    includes the store's work.
    """

    def __init__(self, database: str | os.PathLike[str] | Engine) -> None:
        self.engine = database if isinstance(database, Engine) else connect(database)
        try:
            migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        #: for what writes nothing (the API, the dashboard): on a SQLite file, an engine
        #: whose transactions never take the write lock; elsewhere the same engine
        self.reads = self.engine
        memory = self.engine.url.database in (None, "", ":memory:")
        if self.engine.dialect.name == "sqlite" and not memory and not isinstance(database, Engine):
            self.reads = connect(database, reads=True)
        #: a user's last_used_at is written at most every LAST_USED_EVERY seconds
        self._last_used = Throttle(LAST_USED_EVERY)
        self.projections = Projections()
        #: which client hosts' rows (last event) to write with this event
        self.hosts = Throttle()

    @property
    def path(self) -> Path | None:
        """The SQLite file, if the store is one."""
        name = self.engine.url.database
        return Path(name) if self.engine.dialect.name == "sqlite" and name else None

    def close(self) -> None:
        """Close every pooled connection; safe to call more than once."""
        self.engine.dispose()
        self.reads.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- applying and auditing ------------------------------------------------------------

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
        owner_id: int = ADMIN_ID,
    ) -> bool:
        """Apply an envelope once per owner: True if its requestId is new, False if stored.

        ``envelope`` is the body text as received; ``headers`` should already be redacted.
        The audit row (SUCCESS or DUPLICATE, HTTP 200) is written in the same transaction.
        """
        arrival = Arrival(request_id, event, session_id, trace_id, span_id, envelope)
        [status] = self.apply(
            [arrival], attempt=attempt, headers=headers, started=started, owner_id=owner_id
        )
        return status is Status.SUCCESS

    def apply(
        self,
        items: Sequence[Arrival | Rejected],
        *,
        attempt: int | None,
        headers: Mapping[str, str],
        started: float,
        owner_id: int = ADMIN_ID,
    ) -> list[Status]:
        """Apply a request's envelopes (one, or a batch's) in one transaction, each once per
        owner, with an audit row each: SUCCESS, DUPLICATE, or INVALID for a rejected item.
        The statuses come back in the items' order."""
        received_at = utc_now()
        recorded = json.dumps(dict(headers))
        statuses: list[Status] = []
        try:
            with self.engine.begin() as conn:
                for item in items:
                    statuses.append(
                        self._apply_one(
                            conn, item, attempt, recorded, received_at, started, owner_id
                        )
                    )
        except BaseException:
            self.projections.discard()  # what it projected was rolled back with it
            raise
        self.projections.commit()
        return statuses

    def _apply_one(
        self,
        conn: Connection,
        item: Arrival | Rejected,
        attempt: int | None,
        headers: str,
        received_at: str,
        started: float,
        owner_id: int,
    ) -> Status:
        if isinstance(item, Rejected):
            status, detail, http_status = Status.INVALID, item.detail, 422
        else:
            new = _insert_event(conn, item, owner_id, attempt, headers, received_at)
            if new:
                doc = json.loads(item.envelope)
                self._project(conn, item, doc, received_at, owner_id)
                host = host_of(doc)
                if host is not None and self.hosts.due(owner_id, host):
                    saw_event(conn, owner_id, host, doc, received_at)
            status = Status.SUCCESS if new else Status.DUPLICATE
            detail, http_status = None, 200
        _insert_audit(
            conn, status, http_status, item.request_id, item.event, item.session_id, detail,
            received_at, started, owner_id,
        )  # fmt: skip
        return status

    def _project(
        self, conn: Connection, item: Arrival, doc: dict[str, Any], received_at: str, owner_id: int
    ) -> None:
        """Bring the event's conversation up to date, in a savepoint.  The schemas check
        the envelope, not a hook payload's or a record's fields: one the projection cannot
        take (a list where a string goes, an id too long for its column) leaves the event
        stored and unprojected, with one error line naming its requestId.  Raising instead
        would roll back the whole batch and send every event in it to the client's retries."""
        try:
            with conn.begin_nested():
                after_event(
                    conn, owner_id, item.request_id, item.event, item.session_id,
                    doc, received_at, self.projections,
                )  # fmt: skip
        except Exception:  # the event is kept whatever its payload holds
            self.projections.discard()  # the staged parts may hold the rolled-back one
            logger.exception(
                "projection failed (requestId %s, event %s): the event is stored, its "
                "session is not updated", item.request_id, _text(item.event),
            )  # fmt: skip

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
        owner_id: int | None = None,
    ) -> None:
        """Record a request that was not applied (INVALID, UNAUTHORIZED, ERROR)."""
        with self.engine.begin() as conn:
            _insert_audit(
                conn,
                Status(status),
                http_status,
                request_id,
                event,
                session_id,
                detail,
                utc_now(),
                started,
                owner_id,
            )

    def signature_seen(
        self, webhook_id: str, timestamp: int, signature: str, now: float, window: float
    ) -> bool:
        """Record a signed request; True if the same one was recorded before (a replay).

        Rows older than ``2 * window`` are purged as new ones arrive: a request that old is
        refused by its timestamp before it gets here.
        """
        key = {
            "webhook_id": webhook_id[:200],
            "timestamp": timestamp,
            "signature_sha256": hashlib.sha256(signature.encode("utf-8")).hexdigest(),
            "seen_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(
                signatures_seen.delete().where(signatures_seen.c.seen_at < now - 2 * window)
            )
            insert = _insert(conn, signatures_seen).values(key).on_conflict_do_nothing()
            return conn.execute(insert.returning(signatures_seen.c.seen_at)).first() is None

    # -- users and tokens ---------------------------------------------------------------

    def add_user(self, name: str, *, admin: bool = False) -> str:
        """Create user ``name`` and return its new token (shown once; only its digest is kept)."""
        token = secrets.token_urlsafe(32)
        row = {
            "name": name,
            "admin": admin,
            "token_sha256": token_digest(token),
            "created_at": utc_now(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(users.insert().values(row))
        except IntegrityError:
            raise UserError(
                f"a user named {name!r} exists already "
                f"(token revoke {name}, or choose another name)"
            ) from None
        return token

    def list_users(self) -> list[dict[str, Any]]:
        """Every user: name, admin, created, last used, revoked; never a token or digest."""
        columns = (
            users.c.name,
            users.c.admin,
            users.c.created_at,
            users.c.last_used_at,
            users.c.revoked_at,
        )
        with self.reads.connect() as conn:
            rows = conn.execute(select(*columns).order_by(users.c.id)).mappings()
            return [dict(row) for row in rows]

    def revoke(self, name: str) -> None:
        """Refuse ``name``'s token from now on (its rows stay, still owned by it)."""
        if name == "admin":
            raise UserError(
                "the built-in admin has no stored token: change or unset --token-env instead"
            )
        with self.engine.begin() as conn:
            done = conn.execute(
                update(users)
                .where(users.c.name == name, users.c.revoked_at.is_(None))
                .values(revoked_at=utc_now(), token_sha256=None)
            )
        if done.rowcount == 0:
            raise UserError(
                f"no user {name!r} with a live token (see: hookclient-receiver token list)"
            )

    def user(self, user_id: int) -> User:
        with self.reads.connect() as conn:
            row = conn.execute(
                select(users.c.id, users.c.name, users.c.admin).where(users.c.id == user_id)
            ).one()
        return User(row.id, row.name, bool(row.admin))

    def authenticate(self, token: str) -> User | None:
        """The user whose live token this is, or None."""
        digest = token_digest(token)
        with self.reads.connect() as conn:
            row = conn.execute(
                select(users.c.id, users.c.name, users.c.admin).where(
                    users.c.token_sha256 == digest, users.c.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            return None
        self._touch(row.id)
        return User(row.id, row.name, bool(row.admin))

    def _touch(self, user_id: int) -> None:
        if not self._last_used.due(user_id):
            return
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(last_used_at=utc_now()))

    def user_names(self) -> dict[int, str]:
        """Every user's name by id."""
        with self.reads.connect() as conn:
            return {int(i): str(n) for i, n in conn.execute(select(users.c.id, users.c.name))}

    def owner_id(self, name: str) -> int | None:
        with self.reads.connect() as conn:
            return conn.execute(select(users.c.id).where(users.c.name == name)).scalar()

    # -- reading ------------------------------------------------------------------------

    def list_events(
        self,
        event: str | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        limit: int = 100,
        owner_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Stored events, newest first, with ``envelope`` and ``headers`` parsed back;
        ``owner_id`` None means everyone's."""
        query = select(events).order_by(events.c.id.desc()).limit(limit)
        for column, value in (
            ("event", event),
            ("session_id", session_id),
            ("request_id", request_id),
            ("owner_id", owner_id),
        ):
            if value is not None:
                query = query.where(events.c[column] == value)
        with self.reads.connect() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        for item in rows:
            item["envelope"] = json.loads(item["envelope"])
            item["headers"] = json.loads(item["headers"])
        return rows

    def list_audit(
        self, status: str | None = None, limit: int = 100, owner_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Audit rows, newest first; ``owner_id`` None means everyone's."""
        query = select(webhook_events).order_by(webhook_events.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(webhook_events.c.status == status)
        if owner_id is not None:
            query = query.where(webhook_events.c.owner_id == owner_id)
        with self.reads.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def stats(self, owner_id: int | None = None) -> dict[str, Any]:
        """Counts by status (all five, zeros included), stored events, latency percentiles."""
        audit, stored = webhook_events, events
        mine_a = [] if owner_id is None else [audit.c.owner_id == owner_id]
        mine_e = [] if owner_id is None else [stored.c.owner_id == owner_id]
        counts: dict[str, int] = {status.value: 0 for status in Status}
        with self.reads.connect() as conn:
            by_status = select(audit.c.status, func.count()).where(*mine_a).group_by(audit.c.status)
            for status, count in conn.execute(by_status):
                counts[status] = count
            total = conn.execute(select(func.count()).select_from(stored).where(*mine_e)).scalar()
            ranked = percentiles(conn, mine_a)
        by_name = {f"p{pct}": ranked.get(pct) for pct in PERCENTILES}
        return {"counts": counts, "events": total or 0, "processing_ms": by_name}


def _insert_event(
    conn: Connection,
    item: Arrival,
    owner_id: int,
    attempt: int | None,
    headers: str,
    received_at: str,
) -> bool:
    """Insert one envelope unless its owner sent that requestId before: True if it went in.

    RETURNING says whether a row went in, on both databases (rowcount does not: psycopg
    reports none for an INSERT ... ON CONFLICT DO NOTHING that returns nothing)."""
    row = {
        "owner_id": owner_id,
        "request_id": item.request_id,
        "event": _text(item.event),
        "session_id": _text(item.session_id),
        "trace_id": item.trace_id,
        "span_id": item.span_id,
        "attempt": attempt,
        "envelope": _text(item.envelope),
        "headers": headers,
        "received_at": received_at,
    }
    insert = _insert(conn, events).values(row)
    insert = insert.on_conflict_do_nothing(index_elements=["owner_id", "request_id"])
    return conn.execute(insert.returning(events.c.id)).first() is not None


def _insert_audit(
    conn: Connection,
    status: Status,
    http_status: int,
    request_id: str | None,
    event: str | None,
    session_id: str | None,
    detail: str | None,
    received_at: str,
    started: float,
    owner_id: int | None,
) -> None:
    conn.execute(
        webhook_events.insert().values(
            owner_id=owner_id,
            request_id=_text(request_id),
            event=_text(event),
            session_id=_text(session_id),
            status=status.value,
            http_status=http_status,
            detail=_text(detail),
            received_at=received_at,
            processing_ms=_elapsed_ms(started),
        )
    )
