"""The dashboard: server-rendered pages (Jinja2) over the store, for people.

Sign-in takes a token once (``POST /login``) and answers with a session cookie
(HttpOnly, SameSite=Strict; only the cookie's SHA-256 is stored), so the token is never in
a URL, a page or the browser's storage.  Pages show the caller's own data, an admin's
everyone's.  Live parts of a page re-fetch themselves when ``/api/stream`` (which takes
the same cookie) says something arrived; see ``static/dashboard.js``.  Every asset comes
from this package: the dashboard works with no internet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from receiver import charts, web_sessions
from receiver.conversation_view import thread
from receiver.overview import overview
from receiver.queries import BadCursor, Reader
from receiver.store import ADMIN_ID, Store, User, token_digest

COOKIE = "hookclient_session"
#: The largest sign-in form read (bytes): a token and where to go next.
FORM_LIMIT = 8192
#: How long a sign-in lasts (seconds).
SESSION_SECONDS = 12 * 3600
#: What a page may load: only this store (the charts are inline SVG, the script a file).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Handler = Callable[[Request], Awaitable[Response]]


def _asset_version() -> str:
    """A digest of the static files, so a new release's assets are fetched anew."""
    digest = hashlib.sha256()
    for item in sorted(files("receiver").joinpath("static").iterdir(), key=lambda p: p.name):
        digest.update(item.read_bytes())
    return digest.hexdigest()[:12]


class Dashboard:
    """The pages; ``admin_token`` is the ``--token-env`` token (None: no authentication,
    everyone is the admin and nobody signs in)."""

    def __init__(self, store: Store, admin_token: str | None) -> None:
        self.store = store
        self.reader = Reader(store.reads)
        self.admin_token = admin_token
        self.admin_digest = None if admin_token is None else token_digest(admin_token)
        self.admin = store.user(ADMIN_ID)
        version = _asset_version()
        self.env = Environment(
            loader=PackageLoader("receiver", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.env.globals["static"] = lambda name: f"/static/{name}?v={version}"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self._signed(self.overview_page), methods=["GET"]),
            Route("/overview/panels", self._signed(self.overview_panels, part=True)),
            Route("/signed-in", self.signed_in, methods=["GET"]),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/sessions", self._signed(self.sessions_page), methods=["GET"]),
            Route("/sessions/{session_id:path}/body", self._signed(self.body, part=True)),
            Route("/sessions/{session_id:path}", self._signed(self.conversation), methods=["GET"]),
            Route("/trace", self._signed(self.trace_page), methods=["GET"]),
            Route("/trace/{request_id}", self._signed(self.trace_page), methods=["GET"]),
            Mount("/static", StaticFiles(packages=[("receiver", "static")]), name="static"),
        ]

    # -- who is asking ----------------------------------------------------------------

    def web_user(self, request: Request) -> User | None:
        """The signed-in user of a request (by its cookie), or None."""
        if self.admin_token is None:
            return self.admin
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        return web_sessions.user_of(self.store.reads, cookie, self.admin_digest)

    def _signed(
        self, handler: Callable[[Request, User], Awaitable[Response]], *, part: bool = False
    ) -> Handler:
        """The handler, for a signed-in user; otherwise the way to sign in (a page) or a
        401 (``part``: a piece a page fetches, which must not become the login form)."""

        async def page(request: Request) -> Response:
            user = await run_in_threadpool(self.web_user, request)
            if user is None and part:
                return Response("sign in again", 401, headers=SECURITY_HEADERS)
            if user is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            return await handler(request, user)

        return page

    async def signed_in(self, request: Request) -> Response:
        """204 while the request's sign-in lasts, 401 after: how a page whose stream
        broke tells "the store is down" from "sign in again"."""
        user = await run_in_threadpool(self.web_user, request)
        return Response(status_code=204 if user else 401, headers=SECURITY_HEADERS)

    def _scope(self, user: User) -> int | None:
        return None if user.admin else user.id

    # -- rendering --------------------------------------------------------------------

    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("title", "hookclient store")
        context.setdefault("page", name.removesuffix(".html"))
        context.setdefault("signed_in", self.admin_token is not None)
        context.setdefault("session_id", None)
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status, headers=SECURITY_HEADERS)

    def problem(self, request: Request, user: User | None, status: int, message: str) -> Response:
        titles = {403: "Not yours", 404: "Not found"}
        return self.render(
            request, "error.html", status, user=user, title=titles.get(status, "Error"),
            message=message, page="error",
        )  # fmt: skip

    # -- signing in and out -----------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if await run_in_threadpool(self.web_user, request) is not None:
            return RedirectResponse(_next(request.query_params.get("next")), 303)
        return self.render(
            request, "login.html", user=None, title="Sign in", page="login",
            next=_next(request.query_params.get("next")), error=None,
        )  # fmt: skip

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        token = form.get("token", "").strip()
        target = _next(form.get("next", ""))
        if not _same_origin(request):
            return self.problem(request, None, 403, "Sign-in must come from this store's own page.")
        user = await run_in_threadpool(self._by_token, token)
        if user is None:
            return self.render(
                request, "login.html", 401, user=None, title="Sign in", page="login",
                next=target,
                error="That token is not one this store knows. List tokens with "
                "'hookclient-receiver token list', or use the store's admin token.",
            )  # fmt: skip
        cookie = await run_in_threadpool(
            web_sessions.open_session, self.store.engine, user.id, token, SESSION_SECONDS
        )
        response = RedirectResponse(target, 303)
        response.set_cookie(
            COOKIE, cookie, max_age=SESSION_SECONDS, path="/", httponly=True,
            samesite="strict", secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    def _by_token(self, token: str) -> User | None:
        if not token:
            return None
        if self.admin_token is not None and hmac.compare_digest(
            token.encode(), self.admin_token.encode()
        ):
            return self.admin
        return self.store.authenticate(token)

    async def logout(self, request: Request) -> Response:
        if not _same_origin(request):
            return self.problem(request, None, 403, "Sign-out must come from this store's pages.")
        cookie = request.cookies.get(COOKIE)
        if cookie:
            await run_in_threadpool(web_sessions.close_session, self.store.engine, cookie)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # -- pages ------------------------------------------------------------------------

    def _overview(self, user: User) -> dict[str, Any]:
        o = overview(self.store.reads, self._scope(user), datetime.now(UTC))
        hour = charts.bars(o.hour, label="events per minute, last hour", unit="in a minute",
                           first=o.hour_span[0], last=o.hour_span[1])  # fmt: skip
        day = charts.bars(o.day, label="events per minute, last day",
                          unit="a minute over 10 minutes",
                          first=o.day_span[0], last=o.day_span[1])  # fmt: skip
        if user.admin:  # whose each host is: two users' laptops may share a name
            names = self.store.user_names()
            for host in o.hosts:
                host["owner"] = names.get(host["owner_id"])
        view = {**o.__dict__, "hour_chart": hour, "day_chart": day}
        return {"o": view}

    async def overview_page(self, request: Request, user: User) -> Response:
        context = await run_in_threadpool(self._overview, user)
        return self.render(request, "overview.html", user=user, title="Overview", **context)

    async def overview_panels(self, request: Request, user: User) -> Response:
        context = await run_in_threadpool(self._overview, user)
        return self.render(request, "overview_panels.html", user=user, **context)

    async def sessions_page(self, request: Request, user: User) -> Response:
        q = request.query_params.get("q") or None
        project = request.query_params.get("project") or None
        cursor = request.query_params.get("cursor") or None
        scope = self._scope(user)

        def load() -> dict[str, Any]:
            try:
                page = self.reader.sessions(scope, limit=50, cursor=cursor, project=project, q=q)
            except BadCursor:
                page = self.reader.sessions(scope, limit=50, project=project, q=q)
            hits = self.reader.search(q, scope, limit=20) if q else []
            if user.admin:  # another's session opens with ?owner=NAME: ids may repeat
                names = self.store.user_names()
                for item in page.items:
                    item["owner_name"] = names.get(item["owner_id"])
                    if item["owner_id"] != user.id:
                        item["owner_q"] = item["owner_name"]
            return {
                "sessions": page.items, "next_cursor": page.next_cursor, "hits": hits,
                "projects": self.reader.projects(scope),
            }  # fmt: skip

        context = await run_in_threadpool(load)
        return self.render(
            request, "sessions.html", user=user, title="Sessions", q=q, project=project,
            **context,
        )  # fmt: skip

    def _conversation(
        self, user: User, session_id: str, owner: str | None
    ) -> tuple[int, str] | dict[str, Any]:
        """The conversation's view, or (status, message) when the caller may not see it."""
        wanted = self._scope(user)
        if owner is not None and user.admin:
            wanted = self.store.owner_id(owner)
            if wanted is None:
                return 404, f"No user {owner}."
        # an admin without ?owner= sees their own session by that id first, else anyone's
        found = self.reader.owner_of(
            session_id, user.id if user.admin and owner is None else wanted
        )
        if found is None:
            return 404, f"No session {session_id}."
        if wanted is not None and found != wanted:
            return 403, f"Session {session_id} belongs to another user."
        session = self.reader.session(session_id, found)
        assert session is not None
        page = self.reader.messages(session_id, found, limit=10**9, cursor=None)
        calls = self.reader.tools(session_id, found)
        owner_q = session.get("owner") if user.admin and found != user.id else None
        return {"s": session, "thread": thread(page.items, calls), "owner_q": owner_q}

    async def conversation(self, request: Request, user: User) -> Response:
        return await self._session_view(request, user, "conversation.html")

    async def body(self, request: Request, user: User) -> Response:
        return await self._session_view(request, user, "conversation_body.html")

    async def _session_view(self, request: Request, user: User, template: str) -> Response:
        session_id = request.path_params["session_id"]
        owner = request.query_params.get("owner")
        view = await run_in_threadpool(self._conversation, user, session_id, owner)
        if isinstance(view, tuple):
            return self.problem(request, user, *view)
        title = view["s"].get("title") or session_id
        return self.render(
            request, template, user=user, title=title, page="conversation",
            session_id=session_id, **view,
        )  # fmt: skip

    async def trace_page(self, request: Request, user: User) -> Response:
        request_id = request.path_params.get("request_id")
        if request_id is None and request.query_params.get("requestId"):
            wanted = request.query_params["requestId"].strip()
            return RedirectResponse(f"/trace/{quote(wanted, safe='')}", 303)
        found, refused = None, []
        if request_id:
            found = await run_in_threadpool(self.reader.trace, request_id, self._scope(user))
            if found is None:
                refused = await run_in_threadpool(
                    self.reader.refused, request_id, self._scope(user)
                )
        envelope = json.dumps(found["envelope"], indent=2) if found else ""
        status = 404 if request_id and not (found or refused) else 200
        return self.render(
            request, "trace.html", status, user=user, title="Trace", request_id=request_id,
            t=found, refused=refused, envelope_text=envelope,
        )  # fmt: skip


async def _form(request: Request) -> dict[str, str]:
    """The sign-in form's fields (urlencoded, as a browser posts a form without files),
    read with the stdlib's parser: Starlette's own needs python-multipart for this."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:  # more fields than a sign-in form has
        return {}
    return {name: values[0] for name, values in fields.items()}


def _next(target: str | None) -> str:
    """Where to go after signing in: a path on this store, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _same_origin(request: Request) -> bool:
    """A form POST from this store's own page (the Origin header, where the browser sends
    one, names this host): the SameSite cookie's second line of defence."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    named = origin.split("://", 1)[-1]
    # behind a reverse proxy the Host header is the store's own address; the proxy
    # passes the one the browser used (a form on another site cannot set this header)
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    return named in hosts - {""}
