"""The reference receiver's HTTP surface: ``POST /hooks`` plus read-only views of what arrived.

Why it is strict: it is the oracle the end-to-end and chaos tests compare against, so it
must refuse exactly what the contract says is wrong (401, 400, 413, 415, 422), apply each
requestId once, and audit every request, refused ones included, with its latency.

Why it is small: it is also the starting point for users' own servers. Each check is one
function that either returns or raises :class:`Problem`; the endpoint reads top to bottom.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from receiver import envelopes, hosts, web_sessions
from receiver.api import create_api
from receiver.dashboard import COOKIE, Dashboard
from receiver.envelopes import HEARTBEAT, Envelope
from receiver.signatures import SIGNATURE_TOLERANCE_S as SIGNATURE_TOLERANCE_S
from receiver.signatures import SignatureError as SignatureError
from receiver.signatures import sign as sign
from receiver.signatures import signing_key as signing_key
from receiver.signatures import verify_signature as verify_signature
from receiver.store import (
    ADMIN_ID,
    Arrival,
    Rejected,
    Status,
    Store,
    User,
    token_digest,
    utc_now,
)

__all__ = [
    "MAX_BODY_BYTES",
    "SIGNATURE_TOLERANCE_S",
    "Envelope",
    "Problem",
    "SignatureError",
    "create_app",
    "sign",
    "signing_key",
    "validate_envelope",
    "verify_signature",
]

logger = logging.getLogger("receiver")

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_LIST_LIMIT = 1000
#: Envelopes one POST /hooks may carry as a JSON array.
MAX_BATCH = 1000
#: Deepest nesting of arrays and objects accepted in a body. Claude Code payloads nest a
#: few levels (tool_input); a hostile body nested thousands deep is refused, not parsed
#: into a structure every later reader would have to recurse through.
MAX_JSON_DEPTH = 64
REDACTED = "[REDACTED]"
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_AUDIT_TEXT_MAX = 200  # claimed ids from refused requests are untrusted: keep them short

_DIGITS = re.compile(r"[0-9]{1,12}")


class JSON(JSONResponse):
    """JSONResponse with non-ASCII escaped.

    A stored envelope may hold a lone surrogate (legal as a JSON escape), which Starlette's
    UTF-8 rendering would turn into a 500 on ``GET /events``.
    """

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


class Problem(Exception):
    """A request the receiver refuses: the HTTP answer and how the audit records it."""

    def __init__(
        self,
        http_status: int,
        message: str,
        *,
        status: Status = Status.INVALID,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.status = status
        self.field = field

    def response(self) -> JSON:
        body: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        headers = {"WWW-Authenticate": "Bearer"} if self.http_status == 401 else None
        return JSON(body, status_code=self.http_status, headers=headers)


# --- the envelope ---------------------------------------------------------------------


def validate_envelope(doc: Any) -> Envelope:
    """Check a parsed body against the published schemas (:mod:`receiver.envelopes`);
    raise a 422 :class:`Problem` naming the JSON pointer that failed."""
    try:
        return envelopes.validate_envelope(doc)
    except envelopes.Invalid as invalid:
        raise Problem(422, invalid.message, field=invalid.pointer) from None


# --- reading the request ---------------------------------------------------------------


@dataclass
class _Seen:
    """What is known about a request so far: the audit row records it whatever happens."""

    started: float
    request_id: str | None = None
    event: str | None = None
    session_id: str | None = None
    #: the sender, once the token is known good
    owner_id: int | None = None

    def note(self, doc: Any) -> None:
        """Take the identifying fields a body claims, even if it turns out invalid."""
        if not isinstance(doc, dict):
            return
        self.request_id = _short(doc.get("requestId")) or self.request_id
        self.event = _short(doc.get("event"))
        self.session_id = _short(doc.get("sessionId"))


def _short(value: Any) -> str | None:
    return value[:_AUDIT_TEXT_MAX] if isinstance(value, str) else None


def _bearer(request: Request) -> bytes:
    """The bearer token presented, as the bytes that were sent (401 when there is none)."""
    authorization = request.headers.get("authorization")
    if authorization is None:
        raise Problem(401, "missing Authorization: Bearer token", status=Status.UNAUTHORIZED)
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise Problem(401, "invalid bearer token", status=Status.UNAUTHORIZED)
    # Starlette decodes header bytes as latin-1, so this gives back the bytes that were sent.
    return presented.strip().encode("latin-1")


def _is_json_type(content_type: str) -> bool:
    """``application/json`` or a structured-syntax ``+json`` type, parameters ignored."""
    media = content_type.partition(";")[0].strip().lower()
    kind, slash, subtype = media.partition("/")
    return (
        bool(slash)
        and kind == "application"
        and (subtype == "json" or (subtype.endswith("+json") and len(subtype) > len("+json")))
    )


def _check_content_type(request: Request) -> None:
    """415 for a body declared as something other than JSON (text/plain, a form, ...).

    A request without Content-Type is read as JSON, as before: the body must still parse,
    and refusing it would break bare clients (httpx ``content=``, a raw socket) that send
    the right bytes. A type that says "not JSON" is taken at its word (``curl -d`` says
    application/x-www-form-urlencoded: add ``-H 'Content-Type: application/json'``).
    """
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json_type(content_type):
        shown = content_type[:_AUDIT_TEXT_MAX]
        raise Problem(415, f"Content-Type {shown!r} is not JSON: send application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit``."""
    too_big = Problem(413, f"body is larger than {limit} bytes")
    declared = request.headers.get("content-length", "")
    if _DIGITS.fullmatch(declared) and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:  # a missing or lying Content-Length cannot get past this
                raise too_big
            chunks.append(chunk)
    except ClientDisconnect:
        raise Problem(400, "client disconnected before the body was complete") from None
    return b"".join(chunks)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> tuple[str, Any]:
    """The body as text and as a JSON value; 400 if it is not UTF-8 JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "body is not UTF-8") from None
    try:
        return text, json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise Problem(400, f"body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise Problem(400, f"body is not JSON: {exc}") from None


def _check_depth(doc: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """400 if arrays and objects nest deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                raise Problem(400, f"body is nested deeper than {limit} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def _recorded_headers(request: Request) -> dict[str, str]:
    """Request headers by lowercase name, repeated ones joined, credentials redacted."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.headers.items():
        name = raw_name.lower()
        value = REDACTED if name in REDACTED_HEADERS else raw_value
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _attempt(request: Request) -> int | None:
    value = request.headers.get("x-hook-attempt", "")
    return int(value) if _DIGITS.fullmatch(value) else None


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "100")
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise Problem(400, f"limit must be an integer from 1 to {MAX_LIST_LIMIT}", field="limit")
    return int(raw)


# --- the application -------------------------------------------------------------------


class _Receiver:
    """The endpoints, sharing one store and the configured credentials."""

    def __init__(
        self, store: Store, token: str | None, max_body_bytes: int, key: bytes | None
    ) -> None:
        self.store = store
        self.token = None if token is None else token.encode("utf-8")
        #: what a dashboard sign-in made with the admin token holds of it
        self.digest = None if token is None else token_digest(token)
        self.max_body_bytes = max_body_bytes
        self.key = key
        self.admin = store.user(ADMIN_ID)

    def _who(self, request: Request) -> User:
        """The user a request comes from: the ``--token-env`` token (compared in constant
        time) is the built-in admin, any other live token its own user; 401 otherwise.
        Without authentication (``--no-auth``) everyone is the admin.  A GET without an
        Authorization header may come from a signed-in dashboard page instead: its
        session cookie (SameSite=Strict) names the user; nothing is ever written that way."""
        if self.token is None:
            return self.admin
        if request.method == "GET" and "authorization" not in request.headers:
            cookie = request.cookies.get(COOKIE)
            user = web_sessions.user_of(self.store.reads, cookie, self.digest) if cookie else None
            if user is not None:  # a dashboard page's reads (the live stream)
                return user
        presented = _bearer(request)
        if hmac.compare_digest(presented, self.token):
            return self.admin
        try:
            user = self.store.authenticate(presented.decode("utf-8"))
        except UnicodeDecodeError:
            user = None
        if user is None:
            raise Problem(401, "invalid bearer token", status=Status.UNAUTHORIZED)
        return user

    def _owner_filter(self, request: Request, user: User) -> int | None:
        """Whose rows a read shows: a user's own; an admin's choice (``?owner=NAME``) or all."""
        name = request.query_params.get("owner")
        if not user.admin:
            if name is not None and name != user.name:
                raise Problem(403, "only an admin may read another user's rows", field="owner")
            return user.id
        if name is None:
            return None
        owner = self.store.owner_id(name)
        if owner is None:
            raise Problem(404, f"no user {name!r}", field="owner")
        return owner

    def _replayed(self, headers: Mapping[str, str]) -> None:
        """A signed request seen before (same webhook-id, timestamp and signature) is a
        captured one replayed: 401.  A client's retry is signed anew with its own timestamp."""
        timestamp = headers.get("webhook-timestamp", "")
        if self.store.signature_seen(
            headers.get("webhook-id", ""),
            int(timestamp) if _DIGITS.fullmatch(timestamp) else 0,
            headers.get("webhook-signature", ""),
            time.time(),
            SIGNATURE_TOLERANCE_S,
        ):
            raise Problem(
                401,
                "replayed request: this webhook-id and timestamp were already received",
                status=Status.UNAUTHORIZED,
            )

    async def hooks(self, request: Request) -> Response:
        seen = _Seen(started=time.perf_counter())
        claimed = request.headers.get("x-request-id") or request.headers.get("idempotency-key")
        seen.request_id = _short(claimed)
        try:
            try:
                return await self._apply(request, seen)
            except Problem as problem:
                await self._audit(seen, problem.status, problem.http_status, problem.message)
                return problem.response()
        except Exception as exc:  # the one place that turns any bug into a 500
            logger.exception("POST /hooks failed (requestId %s)", seen.request_id)
            with suppress(Exception):
                await self._audit(seen, Status.ERROR, 500, f"{type(exc).__name__}: {exc}")
            return JSON({"error": "internal"}, status_code=500)

    async def _apply(self, request: Request, seen: _Seen) -> Response:
        owner = seen.owner_id = self._who(request).id
        _check_content_type(request)
        body = await _read_body(request, self.max_body_bytes)
        if self.key is not None:
            try:
                verify_signature(self.key, request.headers, body)
            except SignatureError as exc:
                raise Problem(401, str(exc), status=Status.UNAUTHORIZED) from None
            self._replayed(request.headers)
        text, doc = _parse_json(body)
        _check_depth(doc)
        if isinstance(doc, list):
            return self._apply_batch(request, seen, doc, owner)
        seen.note(doc)
        envelope = validate_envelope(doc)
        if envelope.event == HEARTBEAT:
            return await self._heartbeat(seen, doc, owner, envelope.request_id)
        # The insert runs on the event loop, not in a worker thread: one process writes
        # one transaction at a time either way (SQLite's write lock), and the hop to a
        # thread and back was most of processing_ms with 8 concurrent clients (p50 1.6 ms
        # -> 0.1 ms, p95 6.5 -> 2.9 ms; bench/receiver.py).
        new = self.store.accept(
            request_id=envelope.request_id,
            event=envelope.event,
            session_id=envelope.session_id,
            trace_id=envelope.trace_id,
            span_id=envelope.span_id,
            attempt=_attempt(request),
            envelope=text,
            headers=_recorded_headers(request),
            started=seen.started,
            owner_id=owner,
        )
        status = "accepted" if new else "duplicate"
        return JSON({"status": status, "requestId": envelope.request_id})

    async def _heartbeat(
        self, seen: _Seen, doc: dict[str, Any], owner: int, request_id: str
    ) -> Response:
        """A daemon's heartbeat: kept on its host's row, not stored as an event nor audited
        (one every few seconds from every host would drown both)."""
        hosts.heartbeat(self.store.engine, owner, doc, utc_now())
        return JSON({"status": "accepted", "requestId": request_id})

    def _apply_batch(self, request: Request, seen: _Seen, docs: list[Any], owner: int) -> Response:
        """A JSON array of envelopes: each item is applied (or refused) on its own, in one
        transaction, and answered in order; an invalid item does not refuse the others."""
        if not 1 <= len(docs) <= MAX_BATCH:
            raise Problem(422, f"a batch holds 1 to {MAX_BATCH} envelopes, not {len(docs)}")
        items: list[Arrival | Rejected] = []
        for doc in docs:
            try:
                envelope = validate_envelope(doc)
                if envelope.event == HEARTBEAT:
                    raise Problem(422, "a Heartbeat is POSTed alone, not in a batch")
            except Problem as problem:
                claimed = _Seen(started=seen.started)
                claimed.note(doc)
                items.append(
                    Rejected(claimed.request_id, claimed.event, claimed.session_id, problem.message)
                )
                continue
            text = json.dumps(doc)  # escapes kept: a lone surrogate stays storable
            items.append(
                Arrival(
                    envelope.request_id,
                    envelope.event,
                    envelope.session_id,
                    envelope.trace_id,
                    envelope.span_id,
                    text,
                )
            )
        statuses = self.store.apply(
            items,
            attempt=_attempt(request),
            headers=_recorded_headers(request),
            started=seen.started,
            owner_id=owner,
        )
        return JSON({"results": [_result(i, s) for i, s in zip(items, statuses, strict=True)]})

    async def _audit(self, seen: _Seen, status: Status, http_status: int, detail: str) -> None:
        self.store.audit(  # on the event loop, as accept() is: one short insert
            status,
            http_status=http_status,
            started=seen.started,
            request_id=seen.request_id,
            event=seen.event,
            session_id=seen.session_id,
            detail=detail,
            owner_id=seen.owner_id,
        )

    async def healthz(self, request: Request) -> Response:
        return JSON({"status": "ok"})

    async def events(self, request: Request) -> Response:
        try:
            owner = self._owner_filter(request, self._who(request))
            query = request.query_params
            limit = _limit(request)
        except Problem as problem:
            return problem.response()
        rows = await run_in_threadpool(
            lambda: self.store.list_events(
                event=query.get("event"),
                session_id=query.get("session_id"),
                request_id=query.get("request_id"),
                limit=limit,
                owner_id=owner,
            )
        )
        return JSON({"events": rows})

    async def audit(self, request: Request) -> Response:
        try:
            owner = self._owner_filter(request, self._who(request))
            limit = _limit(request)
            status = _status_filter(request.query_params.get("status"))
        except Problem as problem:
            return problem.response()
        rows = await run_in_threadpool(
            lambda: self.store.list_audit(status=status, limit=limit, owner_id=owner)
        )
        return JSON({"audit": rows})

    async def stats(self, request: Request) -> Response:
        try:
            owner = self._owner_filter(request, self._who(request))
        except Problem as problem:
            return problem.response()
        return JSON(await run_in_threadpool(lambda: self.store.stats(owner_id=owner)))


_ANSWERS = {Status.SUCCESS: "accepted", Status.DUPLICATE: "duplicate", Status.INVALID: "invalid"}


def _result(item: Arrival | Rejected, status: Status) -> dict[str, Any]:
    """One batch item's answer: accepted and duplicate are delivered, invalid is permanent."""
    error = item.detail if isinstance(item, Rejected) else None
    return {"requestId": item.request_id, "status": _ANSWERS[status], "error": error}


def _status_filter(raw: str | None) -> str | None:
    if raw is None:
        return None
    if raw.upper() not in Status.__members__:
        choices = ", ".join(Status.__members__)
        raise Problem(400, f"status must be one of {choices}", field="status")
    return raw.upper()


async def _not_found(request: Request, exc: Exception) -> Response:
    """A path no route matches.  Under /api, in the API's error shape: a session id with a
    newline in it is such a path (a mount's pattern stops at line ends)."""
    if request.url.path.startswith("/api/"):
        message = "no such path in the API (GET /api/openapi.json lists them)"
        return JSON({"error": {"code": "not_found", "message": message}}, status_code=404)
    return PlainTextResponse("Not Found", status_code=404)


def create_app(
    database: str | Path,
    token: str | None,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    signing_secret: str | None = None,
) -> Starlette:
    """The receiver as an ASGI app; its :class:`Store` is ``app.state.store``.

    ``token=None`` turns authentication off (a local experiment); an empty token is
    refused rather than silently meaning "anyone". The store is closed by the app's
    lifespan shutdown, or by the caller when the server runs with ``lifespan="off"``.
    """
    if token == "":
        raise ValueError("token is empty: pass None to run without authentication")
    if max_body_bytes < 1:
        raise ValueError("max_body_bytes must be at least 1")
    key = None if signing_secret is None else signing_key(signing_secret)
    envelopes.checker()  # the schemas compiled now, not on the first request
    store = Store(database)
    receiver = _Receiver(store, token, max_body_bytes, key)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    app = Starlette(
        routes=[
            Route("/hooks", receiver.hooks, methods=["POST"]),
            Route("/healthz", receiver.healthz, methods=["GET"]),
            Route("/events", receiver.events, methods=["GET"]),
            Route("/audit", receiver.audit, methods=["GET"]),
            Route("/stats", receiver.stats, methods=["GET"]),
            Mount("/api", app=create_api(store, receiver._who)),
            *Dashboard(store, token).routes(),
        ],
        lifespan=lifespan,
        exception_handlers={404: _not_found},
    )
    app.state.store = store
    return app
