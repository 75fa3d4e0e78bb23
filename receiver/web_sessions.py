"""Dashboard sign-ins: a random cookie value per sign-in, kept only as its SHA-256 (like
tokens), with an expiry and the SHA-256 of the token signed in with.  A sign-in lasts
while that token is still its user's: revoking a user's token, or starting the store with
another admin token, ends the sign-ins made with the old one.  In the database, not in a
process, so every receiver process behind a load balancer knows them."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, delete, or_, select

from receiver.schema import users, web_sessions
from receiver.store import ADMIN_ID, User, stamp, token_digest, utc_now


def open_session(engine: Engine, user_id: int, token: str, seconds: float) -> str:
    """A new sign-in for the user, made with ``token``: the cookie value (shown to the
    browser only)."""
    cookie = secrets.token_urlsafe(32)
    now = utc_now()
    with engine.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
        conn.execute(
            web_sessions.insert().values(
                id_sha256=token_digest(cookie),
                user_id=user_id,
                token_sha256=token_digest(token),
                created_at=now,
                expires_at=stamp(datetime.now(UTC) + timedelta(seconds=seconds)),
            )
        )
    return cookie


def user_of(engine: Engine, cookie: str, admin_token_sha256: str | None) -> User | None:
    """The user signed in with this cookie, while it lasts and its token is still theirs
    (the admin's: still the store's ``--token-env`` token, given as its SHA-256)."""
    ws = web_sessions.c
    current = or_(
        ws.token_sha256 == users.c.token_sha256,
        and_(users.c.id == ADMIN_ID, ws.token_sha256 == (admin_token_sha256 or "")),
    )
    query = (
        select(users.c.id, users.c.name, users.c.admin)
        .join(web_sessions, ws.user_id == users.c.id)
        .where(
            ws.id_sha256 == token_digest(cookie),
            ws.expires_at > utc_now(),
            users.c.revoked_at.is_(None),
            current,
        )
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else User(row.id, row.name, bool(row.admin))


def close_session(engine: Engine, cookie: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.id_sha256 == token_digest(cookie)))
