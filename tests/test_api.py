"""The store API (/api) over real conversations, on SQLite and PostgreSQL: what each
endpoint answers, whose data it shows, its pages, its errors, and the live stream."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from receiver.app import create_app
from receiver.store import Store
from tests.conftest import TestClient, start_receiver
from tests.test_conversations import (
    COMPACTED,
    FORK,
    PARENT,
    RICH,
    TOKEN,
    rich_hooks,
    transcript,
    wrap,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextmanager
def api(db: str) -> Iterator[TestClient]:
    with TestClient(create_app(db, TOKEN)) as client:
        yield client


def send(client: TestClient, docs: list[dict[str, Any]], token: str = TOKEN) -> None:
    for doc in docs:
        answer = client.post(
            "/hooks", content=json.dumps(doc), headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text


def get(client: TestClient, path: str, token: str = TOKEN) -> Any:
    answer = client.get(f"/api{path}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def error(client: TestClient, path: str, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    answer = client.get(f"/api{path}", headers=headers)
    return answer.status_code, answer.json()


@pytest.fixture
def loaded(db: str) -> Iterator[TestClient]:
    """The rich-turn session (transcript and hooks) and a fork family, as the admin."""
    with api(db) as client:
        send(client, transcript(RICH) + rich_hooks() + transcript(PARENT) + transcript(FORK))
        yield client


def test_sessions_come_last_activity_first_in_pages_that_never_repeat(loaded: TestClient) -> None:
    whole = get(loaded, "/sessions?limit=50")
    assert whole["nextCursor"] is None
    ids = [s["session_id"] for s in whole["sessions"]]
    assert sorted(ids) == sorted([RICH.stem, PARENT.stem, FORK.stem])
    activity = [s["last_activity"] for s in whole["sessions"]]
    assert activity == sorted(activity, reverse=True)
    paged: list[str] = []
    cursor = ""
    while True:
        page = get(loaded, f"/sessions?limit=1{cursor}")
        paged += [s["session_id"] for s in page["sessions"]]
        if page["nextCursor"] is None:
            break
        cursor = f"&cursor={page['nextCursor']}"
    assert paged == ids
    found = get(loaded, "/sessions?q=multi")["sessions"]
    assert [s["session_id"] for s in found] == [RICH.stem]


def test_a_session_shows_its_fields_and_a_fork_its_parent(loaded: TestClient) -> None:
    rich = get(loaded, f"/sessions/{RICH.stem}")
    assert rich["title"] == "MULTI please FAKEPROMPT" and rich["complete"] is True
    assert (rich["prompts"], rich["tool_calls"], rich["output_tokens"]) == (1, 2, 40)
    assert rich["hosts"] == ["laptop-1"] and rich["owner"] == "admin"
    assert get(loaded, f"/sessions/{FORK.stem}")["forkedFrom"] == PARENT.stem


def test_messages_page_through_the_conversation_in_order(loaded: TestClient) -> None:
    seen: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = get(loaded, f"/sessions/{RICH.stem}/messages?limit=2{cursor}")
        assert len(page["messages"]) <= 2
        seen += page["messages"]
        if page["nextCursor"] is None:
            break
        cursor = f"&cursor={page['nextCursor']}"
    assert [m["position"] for m in seen] == [0, 1, 2, 3, 4]
    assert [m["kind"] for m in seen] == [
        "prompt",
        "assistant",
        "tool_result",
        "tool_result",
        "assistant",
    ]
    assert [b["type"] for b in seen[1]["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    tools = get(loaded, f"/sessions/{RICH.stem}/tools")["tool_calls"]
    assert [(t["tool_use_id"], t["status"]) for t in tools] == [
        ("toolu_a00000253669077", "ok"),
        ("toolu_b00000353669077", "ok"),
    ]


def test_export_as_markdown_and_as_the_raw_records(loaded: TestClient) -> None:
    answer = loaded.get(f"/api/sessions/{RICH.stem}/export?format=markdown", headers=AUTH)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/markdown")
    doc = answer.text
    assert doc.startswith("# MULTI please FAKEPROMPT\n")
    assert "## User\n\nMULTI please FAKEPROMPT" in doc and "**Tool call** `Bash`" in doc
    raw = loaded.get(f"/api/sessions/{RICH.stem}/export?format=jsonl", headers=AUTH)
    lines = [json.loads(line) for line in raw.text.splitlines()]
    assert lines == [json.loads(line) for line in RICH.read_text().splitlines()]


def test_search_finds_message_text_with_a_snippet(loaded: TestClient) -> None:
    hits = get(loaded, "/search?q=FAKEPROMPT&limit=50")["results"]
    assert {h["session_id"] for h in hits} == {RICH.stem}
    assert hits[0]["kind"] == "prompt" and "[FAKEPROMPT]" in hits[0]["snippet"]
    again = get(loaded, "/search?q=again")["results"]  # the fork repeats its parent's prompt
    assert {(h["session_id"], h["kind"]) for h in again} == {
        (PARENT.stem, "prompt"),
        (FORK.stem, "prompt"),
    }
    assert get(loaded, "/search?q=nowhere-to-be-found")["results"] == []
    assert get(loaded, '/search?q="unbalanced')["results"] == []  # no query syntax leaks through


def test_trace_shows_an_envelope_its_audit_and_what_it_produced(db: str) -> None:
    chunk = transcript(RICH)[0]
    with api(db) as client:
        send(client, [chunk])
        found = get(client, f"/trace/{chunk['requestId']}")
        assert error(client, "/trace/0193a5f0-0000-7000-8000-00000000dead")[0] == 404
    assert found["event"] == "Transcript" and found["envelope"] == chunk
    assert [a["status"] for a in found["audit"]] == ["SUCCESS"]
    assert len(found["records"]) == len(chunk["payload"]["records"])
    assert {m["kind"] for m in found["messages"]} >= {"prompt", "assistant"}


def test_each_user_sees_their_own_sessions_403_for_anothers_404_for_none(db: str) -> None:
    with Store(db) as store:
        alice, bob = store.add_user("alice"), store.add_user("bob")
    with api(db) as client:
        send(client, transcript(RICH), token=alice)
        assert [s["session_id"] for s in get(client, "/sessions", alice)["sessions"]] == [RICH.stem]
        assert get(client, "/sessions", bob)["sessions"] == []
        assert get(client, "/search?q=FAKEPROMPT", bob)["results"] == []
        status, body = error(client, f"/sessions/{RICH.stem}", bob)
        assert status == 403 and body["error"]["code"] == "forbidden"
        status, body = error(client, "/sessions/no-such-session", bob)
        assert status == 404 and body == {
            "error": {"code": "not_found", "message": "no session no-such-session"}
        }
        assert get(client, "/sessions?owner=alice")["sessions"][0]["session_id"] == RICH.stem
        assert error(client, "/sessions?owner=alice", bob)[0] == 403


@pytest.mark.parametrize(
    "path",
    [
        "/sessions?limit=0",
        "/sessions?limit=1001",
        "/sessions?cursor=not-a-cursor",
        "/sessions?since=garbage",
        "/sessions/x/messages?cursor=WzFd!",
        "/sessions?cursor=W3t9LCAieCJd",  # well-formed, but [{}, "x"]: not a session key
        "/sessions/x/messages?cursor=WyIxIl0",  # ["1"]: a position is a number
        "/search",
        "/sessions/x/export?format=pdf",
    ],
)
def test_a_bad_parameter_is_422_in_the_error_shape(db: str, path: str) -> None:
    with api(db) as client:
        send(client, rich_hooks())
        if "/sessions/x/" in path:
            path = path.replace("/x/", f"/{RICH.stem}/")
        status, body = error(client, path)
    assert status == 422, body
    assert body["error"]["code"] == "invalid" and body["error"]["message"]


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_no_token_or_an_unknown_one_is_401(db: str, token: str | None) -> None:
    with api(db) as client:
        status, body = error(client, "/sessions", token)
    assert status == 401 and body["error"]["code"] == "unauthorized"


def test_the_openapi_document_describes_every_endpoint(db: str) -> None:
    with api(db) as client:
        doc = client.get("/api/openapi.json").json()
    validate(doc)  # a valid OpenAPI 3.1 document (openapi-spec-validator)
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/sessions",
        "/sessions/{session_id}",
        "/sessions/{session_id}/messages",
        "/sessions/{session_id}/tools",
        "/sessions/{session_id}/export",
        "/search",
        "/trace/{request_id}",
        "/stream",
    }
    schemas = doc["components"]["schemas"]
    assert {"SessionOut", "MessagePage", "ToolCallOut", "SearchResult", "ErrorOut"} <= set(schemas)
    assert "nextCursor" in schemas["SessionPage"]["properties"]


def test_the_stream_sends_each_applied_event_as_it_arrives(tmp_path: Path) -> None:
    """An event posted while the stream is open arrives on it; one from before it opened
    arrives only for a client that resumes with Last-Event-ID."""
    rx = start_receiver(tmp_path)
    base = f"http://127.0.0.1:{rx.port}"
    headers = {"Authorization": f"Bearer {rx.token}"}
    earlier = wrap(
        "Stop", "stream-session", {"last_assistant_message": "before"}, "2026-12-02T09:59:00.000Z"
    )
    doc = wrap(
        "UserPromptSubmit",
        "stream-session",
        {"prompt": "hello stream", "prompt_id": "p1"},
        "2026-12-02T10:00:00.000Z",
    )
    lines: list[str] = []
    try:
        httpx.post(rx.url, content=json.dumps(earlier), headers=headers, timeout=10)
        resume = {**headers, "Last-Event-ID": "1"}  # it saw the first event: resume after it
        with httpx.stream("GET", f"{base}/api/stream", headers=resume, timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            posted = threading.Thread(
                target=httpx.post,
                args=(rx.url,),
                kwargs={"content": json.dumps(doc), "headers": headers, "timeout": 10},
            )
            posted.start()
            deadline = time.monotonic() + 20
            for line in response.iter_lines():
                lines.append(line)
                if line.startswith("data:") and '"title": "hello stream"' in line:
                    break
                assert time.monotonic() < deadline, lines
        posted.join()
    finally:
        rx.stop()
    kinds = [line[7:] for line in lines if line.startswith("event: ")]
    events = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    assert "id: 2" in lines  # the store's event id, for Last-Event-ID
    assert kinds == ["event", "message", "session"]
    assert events[0]["requestId"] == doc["requestId"] and events[0]["event"] == "UserPromptSubmit"
    assert (events[1]["kind"], events[1]["text"], events[1]["origin"]) == (
        "prompt",
        "hello stream",
        "hook",
    )
    assert events[2]["session_id"] == "stream-session" and events[2]["prompts"] == 1


def _identity(message: dict[str, Any]) -> tuple[Any, ...]:
    return (message["kind"], message["uuid"], message["message_id"])


@pytest.mark.parametrize("late", [8, 10])
def test_a_record_landing_earlier_while_paging_makes_no_page_repeat_or_skip(
    db: str, late: int
) -> None:
    chunks = transcript(COMPACTED, batch=1)
    with api(db) as client:
        send(client, chunks[:late] + chunks[late + 1 :])
        before = get(client, f"/sessions/{COMPACTED.stem}/messages?limit=1000")["messages"]
        page = get(client, f"/sessions/{COMPACTED.stem}/messages?limit=6")
        seen = page["messages"]
        send(client, [chunks[late]])  # lands before the cursor: every later message moves
        after = get(client, f"/sessions/{COMPACTED.stem}/messages?limit=1000")["messages"]
        assert len(after) > len(before)
        cursor = page["nextCursor"]
        while cursor is not None:
            page = get(client, f"/sessions/{COMPACTED.stem}/messages?limit=6&cursor={cursor}")
            seen += page["messages"]
            cursor = page["nextCursor"]
    identities = [_identity(m) for m in seen]
    assert len(identities) == len(set(identities))  # nothing repeated
    assert {_identity(m) for m in before} <= set(identities)  # nothing skipped
