"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real
store process.  Sign in, the overview, an event arriving live, a conversation with its
thinking unfolded, a trace, sign out; another user kept out; the stream coming back by
itself after the store restarts; the session list by keyboard.  Every test also checks
that no request left the store and the console stayed free of errors.

Chromium is Debian's (``apt-get install -y chromium``; .ci/run installs it), never a
browser Playwright downloads.  Without it these tests skip with one line, except under CI,
where a missing browser is a failure."""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect  # selectors, not script: the pages' CSP forbids eval

from receiver.store import Store
from tests.conftest import TOKEN, Receiver, start_receiver
from tests.test_conversations import RICH, transcript

CHROMIUM = Path("/usr/bin/chromium")
#: This machine's network is closed: Chromium's own background connections are refused.
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
#: How long a page may take to show what it should (generous: a loaded 2-core machine).
DEADLINE_MS = 15_000

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = "Chromium is not installed: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watched:
    """A page, and what it asked for and said on its console."""

    page: Any
    base: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def check_clean(self) -> None:
        assert [url for url in self.requests if not url.startswith(self.base)] == []
        assert self.errors == []


def open_page(browser: Any, rx: Receiver) -> Watched:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(DEADLINE_MS)
    watched = Watched(page, f"http://127.0.0.1:{rx.port}")
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on("console", lambda m: watched.errors.append(_said(m)) if m.type == "error" else None)
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    return watched


def _said(message: Any) -> str:
    """A console error and the URL it is about (the resource, for a failed load)."""
    where = message.location.get("url", "") if isinstance(message.location, dict) else ""
    return f"{message.text} ({where})"


def sign_in(w: Watched, token: str = TOKEN) -> None:
    w.page.goto(w.base + "/")
    assert w.page.url == w.base + "/login?next=%2F"
    w.page.get_by_label("Token").fill(token)
    w.page.get_by_role("button", name="Sign in").click()
    w.page.wait_for_url(w.base + "/")


def post(rx: Receiver, doc: dict[str, Any], token: str = TOKEN) -> None:
    answer = httpx.post(
        rx.url, content=json.dumps(doc), headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text


def hook_event(session_id: str = "live-session") -> dict[str, Any]:
    return {
        "schemaVersion": 1, "requestId": str(uuid.uuid4()), "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16], "event": "UserPromptSubmit", "sessionId": session_id,
        "timestamp": "2026-12-02T10:00:00.000Z",
        "source": {"host": "laptop-1", "user": "u", "cwd": "/p", "pid": 1, "client": "test"},
        "payload": {"hook_event_name": "UserPromptSubmit", "prompt": "hello", "prompt_id": "p1"},
    }  # fmt: skip


def arrived(w: Watched, request_id: str) -> None:
    w.page.wait_for_selector(f'#live-events li[data-request-id="{request_id}"]')


@pytest.fixture
def rx(receiver: Receiver) -> Receiver:
    """The store under test: conftest's receiver process (SQLite, the test token)."""
    return receiver


def test_sign_in_see_live_events_open_a_conversation_unfold_thinking_trace_sign_out(
    browser: Any, rx: Receiver
) -> None:
    w = open_page(browser, rx)
    page = w.page
    sign_in(w)
    assert page.get_by_role("heading", name="Overview").is_visible()
    page.wait_for_selector("#live-state.on")

    latencies = []
    for _ in range(20):  # a live event on screen, from just before its POST
        doc = hook_event()
        start = time.perf_counter()
        post(rx, doc)
        arrived(w, doc["requestId"])
        latencies.append((time.perf_counter() - start) * 1000)
    median = statistics.median(latencies)
    print(f"\nDASHBOARD live event on screen after its POST: median {median:.0f} ms of 20")
    assert page.locator("#live-events li").count() == 20  # each once, without a reload
    expect(page.locator("#fig-requests")).to_have_text("20", timeout=DEADLINE_MS)

    docs = transcript(RICH)
    for doc in docs:
        post(rx, doc)
    arrived(w, docs[-1]["requestId"])
    page.locator(f'#live-events a[href="/sessions/{RICH.stem}"]').first.click()
    page.wait_for_url(f"{w.base}/sessions/{RICH.stem}")
    assert page.get_by_role("heading", name="MULTI please FAKEPROMPT").is_visible()
    thinking = page.locator("details.thinking").first
    assert thinking.get_attribute("open") is None
    assert not thinking.locator(".text").is_visible()
    thinking.locator("summary").click()
    assert thinking.get_attribute("open") == ""
    assert thinking.locator(".text").is_visible()
    tool = page.locator("details.tool").first
    tool.locator("summary").click()
    assert tool.get_by_role("heading", name="Input").is_visible()
    later = hook_event(RICH.stem)  # the session goes on: the page grows by itself
    later["payload"]["prompt"] = "LATER-PROMPT"
    post(rx, later)
    expect(page.locator("#conversation")).to_contain_text("LATER-PROMPT", timeout=DEADLINE_MS)
    assert page.locator("details.thinking").first.get_attribute("open") == ""  # still unfolded

    page.locator("article.msg a", has_text="trace").first.click()
    page.wait_for_url(f"{w.base}/trace/**")
    assert page.get_by_role("heading", name="Audit").is_visible()
    assert page.locator("td", has_text="SUCCESS").first.is_visible()
    assert '"requestId"' in page.locator("pre.envelope").inner_text()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(w.base + "/login")
    page.goto(w.base + "/")
    assert page.url.startswith(w.base + "/login")
    w.check_clean()


def test_another_user_cannot_open_the_first_users_conversation(browser: Any, rx: Receiver) -> None:
    with Store(f"sqlite:///{rx.db}") as store:
        alice, bob = store.add_user("alice"), store.add_user("bob")
    for doc in transcript(RICH):
        post(rx, doc, token=alice)
    w = open_page(browser, rx)
    sign_in(w, bob)
    w.page.goto(f"{w.base}/sessions")
    assert w.page.locator("a.session-link").count() == 0
    answer = w.page.goto(f"{w.base}/sessions/{RICH.stem}")
    assert answer is not None and answer.status == 403
    assert w.page.get_by_role("heading", name="Not yours").is_visible()
    assert "MULTI please FAKEPROMPT" not in w.page.content()
    w.errors = [e for e in w.errors if "403" not in e]  # the page's own status, logged
    w.check_clean()


def test_the_live_stream_comes_back_by_itself_after_the_store_restarts(
    browser: Any, rx: Receiver, tmp_path: Path
) -> None:
    w = open_page(browser, rx)
    sign_in(w)
    w.page.wait_for_selector("#live-state.on")
    assert rx.stop() == 0
    w.page.wait_for_selector("#live-state.off")
    again = start_receiver(tmp_path, port=rx.port)
    try:
        w.page.wait_for_selector("#live-state.on")
        doc = hook_event()
        post(again, doc)
        arrived(w, doc["requestId"])  # no reload: the same page, reconnected
    finally:
        again.stop()
    # while the store was down, the browser logged the stream's cut and failed reconnects
    w.errors = [e for e in w.errors if not e.endswith(("/api/stream)", "/signed-in)"))]
    w.check_clean()


def test_the_session_list_is_usable_by_keyboard(browser: Any, rx: Receiver) -> None:
    for n in range(3):
        post(rx, hook_event(f"keyboard-{n}"))
    w = open_page(browser, rx)
    sign_in(w)
    w.page.goto(f"{w.base}/sessions")
    links = w.page.locator("a.session-link")
    assert links.count() == 3
    w.page.get_by_label("Search").focus()
    w.page.keyboard.press("ArrowDown")  # from the search box into the list
    first = links.first.get_attribute("href")
    assert w.page.evaluate("document.activeElement.getAttribute('href')") == first
    w.page.keyboard.press("ArrowDown")
    second = links.nth(1).get_attribute("href")
    assert w.page.evaluate("document.activeElement.getAttribute('href')") == second
    w.page.keyboard.press("Enter")
    w.page.wait_for_url(w.base + str(second))
    w.check_clean()


def test_a_stream_ends_when_its_sign_in_does(rx: Receiver) -> None:
    """Signing out in one tab ends the live stream of the others (within the stream's
    recheck, 5 s), so a copied cookie stops showing events too."""
    base = f"http://127.0.0.1:{rx.port}"
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        assert client.post("/login", data={"token": TOKEN}).status_code == 303
        cookie = client.cookies["hookclient_session"]
        with httpx.Client(base_url=base, timeout=30) as tab:
            tab.cookies.set("hookclient_session", cookie)
            with tab.stream("GET", "/api/stream") as stream:
                assert stream.status_code == 200
                assert client.post("/logout").status_code == 303
                start = time.monotonic()
                for _ in stream.iter_bytes():  # pings, until the store ends it
                    assert time.monotonic() - start < 30
            assert tab.get("/api/stream").status_code == 401
