"""The store API under ``/api``: sessions, messages, tool calls, export, search, trace and a
live stream, as a FastAPI app mounted on the receiver's Starlette app.

Why FastAPI here and not for ``POST /hooks``: the API's request and response models
below are the source of its OpenAPI document (``/api/openapi.json``); ``POST /hooks``
keeps its own strict checks and statuses (:mod:`receiver.app`).

Every answer is the caller's own data (an admin's: everyone's, or one user's with
``?owner=NAME``).  Errors are ``{"error": {"code", "message"}}``: 401 no or unknown
token, 403 a session that exists but is another user's, 404 no such session, 422 a bad
parameter.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver.conversation_view import HEADINGS
from receiver.queries import BadCursor, Reader
from receiver.store import Store, User, stamp

#: How often the stream looks for newly applied events (seconds).
STREAM_POLL = 0.25
#: How often a stream asks again whether its caller may still read (seconds).
STREAM_RECHECK = 5.0
MAX_LIMIT = 1000


class ApiError(HTTPException):
    """An answer other than 200, in the API's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class SessionOut(BaseModel):
    session_id: str
    project: str | None
    git_branch: str | None
    model: str | None
    version: str | None
    hosts: list[str]
    first_activity: str | None
    last_activity: str | None
    start_source: str | None
    end_reason: str | None
    title: str | None
    prompts: int
    messages: int
    tool_calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    forked_from: str | None = Field(serialization_alias="forkedFrom")
    gaps: list[str]
    complete: bool


class SessionDetail(SessionOut):
    owner: str | None


class SessionPage(BaseModel):
    sessions: list[SessionOut]
    next_cursor: str | None = Field(serialization_alias="nextCursor")


class MessageOut(BaseModel):
    position: int
    kind: str = Field(
        description="prompt, assistant, tool_result, summary, compact_boundary, system or raw"
    )
    role: str | None
    uuid: str | None
    message_id: str | None
    prompt_id: str | None
    agent_id: str | None
    parent_tool_use_id: str | None
    timestamp: str | None
    model: str | None
    content: list[dict[str, Any]]
    usage: dict[str, int] | None
    origin: str = Field(description="transcript or hook")
    request_id: str | None = Field(description="the envelope that brought it")


class MessagePage(BaseModel):
    messages: list[MessageOut]
    next_cursor: str | None = Field(serialization_alias="nextCursor")


class ToolCallOut(BaseModel):
    tool_use_id: str
    name: str | None
    input: Any
    output: str | None
    error: str | None
    status: Literal["running", "ok", "error", "denied"]
    started_at: str | None
    ended_at: str | None
    duration_ms: float | None
    agent_id: str | None


class ToolCalls(BaseModel):
    tool_calls: list[ToolCallOut]


class SearchHit(BaseModel):
    session_id: str
    position: int
    kind: str
    timestamp: str | None
    snippet: str


class SearchResult(BaseModel):
    results: list[SearchHit]


class TraceOut(BaseModel):
    requestId: str
    event: str | None
    sessionId: str | None
    receivedAt: str | None
    envelope: dict[str, Any]
    audit: list[dict[str, Any]]
    records: list[dict[str, Any]]
    messages: list[dict[str, Any]]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no token, or one the store does not know"},
    403: {"model": ErrorOut, "description": "another user's session"},
    404: {"model": ErrorOut, "description": "no such session or event"},
    422: {"model": ErrorOut, "description": "a bad parameter"},
}
#: The export answers text, but its errors are the API's JSON, said so explicitly: with a
#: text response class FastAPI would document them as text/plain
EXPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": answer["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
    for status, answer in ERRORS.items()
}
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
SessionId = Annotated[
    str,
    Path(description="a Claude Code session id", examples=["2a2ecfaf-ba89-45e3-9d0f-0760b71e296a"]),
]
RequestId = Annotated[
    str,
    Path(description="an envelope's requestId", examples=["019ad6a1-6c1e-7c3a-9a52-3f0d2b8e4c11"]),
]


def _caller(request: Request) -> User:
    """The request's user, by the receiver's own rule (``app.state.who``); 401 otherwise."""
    from receiver.app import Problem

    try:
        user: User = request.app.state.who(request)
    except Problem as problem:
        raise ApiError(401, "unauthorized", problem.message) from None
    return user


Caller = Annotated[User, Depends(_caller)]


class NulAsStored:
    """ASGI middleware: a NUL in the path or query becomes U+FFFD, as the store keeps it
    (:func:`receiver.store._text`: PostgreSQL text cannot hold NUL).  A session id sent
    with one then finds the session stored from it, and neither database is handed a
    string it refuses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            scope["path"] = scope["path"].replace("\x00", "\ufffd")
            scope["raw_path"] = scope.get("raw_path", b"").replace(b"%00", b"%EF%BF%BD")
            scope["query_string"] = scope["query_string"].replace(b"%00", b"%EF%BF%BD")
        await self.app(scope, receive, send)


def create_api(store: Store, who: Callable[[Request], User]) -> FastAPI:
    """The API app; ``who`` resolves a request's user (or raises the receiver's 401)."""
    reader = Reader(store.reads)
    api = FastAPI(
        title="hookclient store",
        summary="Claude Code sessions: conversations, tool calls, search, trace, live stream.",
        version="1",
        openapi_url="/openapi.json",
        # FastAPI's /docs page loads Swagger UI from a CDN: nothing the store serves may
        # load from the internet, and the page would run with the dashboard's cookie
        docs_url=None,
        redoc_url=None,
        responses=ERRORS,
    )
    _errors(api)
    api.add_middleware(NulAsStored)
    api.state.who = who

    def scope(user: User, owner: str | None) -> int | None:
        """Whose rows: a user's own; an admin's choice (``owner``) or everyone's (None)."""
        if not user.admin:
            if owner is not None and owner != user.name:
                raise ApiError(403, "forbidden", "only an admin may read another user's data")
            return user.id
        if owner is None:
            return None
        found = store.owner_id(owner)
        if found is None:
            raise ApiError(404, "not_found", f"no user {owner!r}")
        return found

    def owned_session(session_id: str, user: User, owner: str | None) -> int:
        """The owner of a session the caller may read: 403 another's, 404 none."""
        wanted = scope(user, owner)
        found = reader.owner_of(session_id, wanted)
        if found is None:
            raise ApiError(404, "not_found", f"no session {session_id}")
        if wanted is not None and found != wanted:
            raise ApiError(403, "forbidden", f"session {session_id} belongs to another user")
        return found

    @api.get("/sessions", response_model=SessionPage, response_model_by_alias=True)
    def list_sessions(
        user: Caller,
        limit: Limit = 50,
        cursor: str | None = None,
        project: str | None = None,
        since: str | None = Query(
            None,
            description="RFC 3339: last activity at or after",
            json_schema_extra={"format": "date-time"},
        ),
        q: str | None = Query(None, description="words in the title or project"),
        owner: str | None = None,
    ) -> dict[str, Any]:
        """The caller's sessions, last activity first."""
        if since is not None:
            since = _instant(since)
        page = reader.sessions(
            scope(user, owner), limit=limit, cursor=cursor, project=project, since=since, q=q
        )
        return {"sessions": page.items, "next_cursor": page.next_cursor}

    @api.get("/sessions/{session_id}", response_model=SessionDetail, response_model_by_alias=True)
    def get_session(
        session_id: SessionId, user: Caller, owner: str | None = None
    ) -> dict[str, Any]:
        """One session: its fields, ``complete`` and the ``gaps`` it still has."""
        found = reader.session(session_id, owned_session(session_id, user, owner))
        assert found is not None
        return found

    @api.get(
        "/sessions/{session_id}/messages", response_model=MessagePage, response_model_by_alias=True
    )
    def get_messages(
        session_id: SessionId,
        user: Caller,
        limit: Limit = 50,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """The session's messages in conversation order."""
        page = reader.messages(
            session_id, owned_session(session_id, user, owner), limit=limit, cursor=cursor
        )
        return {"messages": page.items, "next_cursor": page.next_cursor}

    @api.get("/sessions/{session_id}/tools", response_model=ToolCalls)
    def get_tools(session_id: SessionId, user: Caller, owner: str | None = None) -> dict[str, Any]:
        """The session's tool calls, in start order."""
        return {"tool_calls": reader.tools(session_id, owned_session(session_id, user, owner))}

    @api.get(
        "/sessions/{session_id}/export",
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/markdown": {}, "application/x-ndjson": {}}},
            **EXPORT_ERRORS,
        },
    )
    def export(
        session_id: SessionId,
        user: Caller,
        format: Literal["markdown", "jsonl"] = "markdown",
        owner: str | None = None,
    ) -> Response:
        """The conversation as Markdown, or its raw records as JSONL in file order."""
        owner_id = owned_session(session_id, user, owner)
        # a header is latin-1: the file name keeps ASCII letters, digits, - and _ only
        name = "".join(
            c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in session_id
        )[:100]
        if format == "jsonl":
            lines = reader.raw_records(session_id, owner_id)
            return Response(
                "".join(f"{line}\n" for line in lines),
                media_type="application/x-ndjson",
                headers={"Content-Disposition": f'attachment; filename="{name}.jsonl"'},
            )
        session = reader.session(session_id, owner_id) or {}
        page = reader.messages(session_id, owner_id, limit=10**9, cursor=None)
        return Response(
            markdown(session, page.items),
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'inline; filename="{name}.md"'},
        )

    @api.get("/search", response_model=SearchResult)
    def search(
        user: Caller,
        q: str = Query(..., min_length=1, description="words the message text holds"),
        limit: Limit = 20,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Full-text search of message text: session, message position, snippet."""
        return {"results": reader.search(q, scope(user, owner), limit=limit)}

    @api.get("/trace/{request_id}", response_model=TraceOut)
    def trace(request_id: RequestId, user: Caller, owner: str | None = None) -> dict[str, Any]:
        """One envelope, its audit rows, and the records and messages it produced."""
        found = reader.trace(request_id, scope(user, owner))
        if found is None:
            raise ApiError(404, "not_found", f"no event {request_id}")
        return found

    @api.get("/stream", response_class=EventSourceResponse)
    async def stream(
        request: Request, user: Caller, owner: str | None = None
    ) -> EventSourceResponse:
        """Server-Sent Events: each envelope the caller's tokens send, as it is applied
        (``event``, with the event's store id as the SSE id), the messages it brought
        (``message``), then its session's summary (``session``).  ``Last-Event-ID``
        resumes after that id."""

        def still() -> bool:  # the caller's sign-in or token is still good
            try:
                _caller(request)
            except ApiError:
                return False
            return True

        return EventSourceResponse(_events(request, reader, scope(user, owner), still))

    return api


async def _events(
    request: Request, reader: Reader, owner_id: int | None, still: Callable[[], bool]
) -> AsyncIterator[dict[str, str]]:
    """From now on; or, for a client that reconnects with ``Last-Event-ID`` (the SSE way
    to resume), from just after the last event it saw.  Every ``STREAM_RECHECK`` seconds
    the caller is asked again (``still``): a stream ends when its sign-in ends, or its
    token is revoked, not when the browser tab is closed."""
    resume = request.headers.get("last-event-id", "")
    last = int(resume) if resume.isdigit() else await asyncio.to_thread(reader.last_event_id)
    checked = time.monotonic()
    while not await request.is_disconnected():
        if time.monotonic() - checked >= STREAM_RECHECK:
            if not await asyncio.to_thread(still):
                return
            checked = time.monotonic()
        for row in await asyncio.to_thread(reader.events_after, last, owner_id):
            last = row.id
            data = {
                "requestId": row.request_id,
                "event": row.event,
                "sessionId": row.session_id,
                "receivedAt": row.received_at,
            }
            yield {"event": "event", "id": str(row.id), "data": json.dumps(data)}
            for message in await asyncio.to_thread(reader.produced_by, row.request_id, owner_id):
                yield {"event": "message", "data": json.dumps(message)}
            if row.session_id:
                session = await asyncio.to_thread(reader.session, row.session_id, owner_id)
                if session is not None:
                    yield {"event": "session", "data": json.dumps(session)}
        await asyncio.sleep(STREAM_POLL)


def _instant(text: str) -> str:
    """``since`` as the store compares it (UTC, as the times it keeps), or 422."""
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "invalid", f"since {text!r} is not an RFC 3339 time") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return stamp(when)


def _errors(api: FastAPI) -> None:
    """Every error in the API's shape: {"error": {"code", "message"}}."""

    def body(status: int, code: str, message: str) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)

    @api.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return body(exc.status_code, exc.code, str(exc.detail))

    @api.exception_handler(BadCursor)
    async def bad_cursor(_request: Request, exc: BadCursor) -> JSONResponse:
        return body(422, "invalid", str(exc))

    @api.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "query")
        return body(422, "invalid", f"{where}: {first.get('msg', 'invalid')}")

    @api.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        answer = body(exc.status_code, code, str(exc.detail))
        answer.headers.update(exc.headers or {})  # a 405's Allow (RFC 9110)
        return answer


def markdown(session: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    """A conversation as Markdown: prompts, replies, tool calls and their results."""
    title = session.get("title") or session.get("session_id") or "session"
    out = [f"# {title}", ""]
    if session.get("project"):
        out += [f"Project: `{session['project']}`  ", f"Session: `{session.get('session_id')}`", ""]
    for message in messages:
        out.append(f"## {HEADINGS.get(message['kind'], message['kind'])}")
        out.append("")
        for block in message["content"]:
            out += _block_markdown(block)
    return "\n".join(out).rstrip() + "\n"


def _block_markdown(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "text":
        return [str(block.get("text", "")), ""]
    if kind == "thinking":
        return [f"> *thinking:* {block.get('thinking', '')}", ""]
    if kind == "tool_use":
        return [
            f"**Tool call** `{block.get('name')}` ({block.get('id')})",
            "",
            "```json",
            json.dumps(block.get("input"), indent=2),
            "```",
            "",
        ]
    if kind == "tool_result":
        content = block.get("content")
        text = content if isinstance(content, str) else json.dumps(content, indent=2)
        return [f"Result of {block.get('tool_use_id')}:", "", "```", text, "```", ""]
    return ["```json", json.dumps(block, indent=2), "```", ""]
