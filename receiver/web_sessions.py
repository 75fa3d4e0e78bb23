"""Dashboard sign-ins: a random cookie value per sign-in, kept only as its SHA-256 (like
tokens), with an expiry; a revoked user's sign-ins stop working with their token.  In the
database, not in a process, so every receiver process behind a load balancer knows them."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select

from receiver.schema import users, web_sessions
from receiver.store import User, token_digest, utc_now


def _at(seconds_from_now: float) -> str:
    when = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def open_session(engine: Engine, user_id: int, seconds: float) -> str:
    """A new sign-in for the user: the cookie value (shown to the browser only)."""
    cookie = secrets.token_urlsafe(32)
    now = utc_now()
    with engine.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
        conn.execute(
            web_sessions.insert().values(
                id_sha256=token_digest(cookie),
                user_id=user_id,
                created_at=now,
                expires_at=_at(seconds),
            )
        )
    return cookie


def user_of(engine: Engine, cookie: str) -> User | None:
    """The user signed in with this cookie, while it lasts and their token is live."""
    query = (
        select(users.c.id, users.c.name, users.c.admin)
        .join(web_sessions, web_sessions.c.user_id == users.c.id)
        .where(
            web_sessions.c.id_sha256 == token_digest(cookie),
            web_sessions.c.expires_at > utc_now(),
            users.c.revoked_at.is_(None),
        )
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else User(row.id, row.name, bool(row.admin))


def close_session(engine: Engine, cookie: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.id_sha256 == token_digest(cookie)))
