"""The dashboard over HTTP, on SQLite and PostgreSQL: signing in and out (the cookie's
flags, what is stored of it), whose data each page shows, the pages' content, heartbeats.
What a browser makes of the pages is tests/test_browser.py."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from receiver.app import create_app
from receiver.dashboard import COOKIE
from receiver.store import Store
from tests.conftest import TestClient
from tests.test_api import send as post
from tests.test_conversations import (  # TOKEN: what post() (test_api.send) signs with
    AGENT,
    RICH,
    SUBAGENT,
    TOKEN,
    rich_hooks,
    rows,
    transcript,
    wrap,
)


@contextmanager
def dashboard(db: str) -> Iterator[TestClient]:
    with TestClient(create_app(db, TOKEN), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, token: str = TOKEN, next_: str = "/") -> Any:
    return client.post("/login", data={"token": token, "next": next_})


def subagent_docs() -> list[dict[str, Any]]:
    agent = transcript(AGENT, agent_id="aa7a471765535adfa")
    for doc in agent:
        doc["sessionId"] = doc["payload"]["sessionId"] = SUBAGENT.stem
    return transcript(SUBAGENT) + agent


def test_a_page_asks_for_sign_in_and_the_cookie_is_httponly_strict_and_not_the_token(
    db: str,
) -> None:
    with dashboard(db) as client:
        first = client.get("/sessions?q=x")
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=%2Fsessions%3Fq%3Dx"
        page = client.get(first.headers["location"])
        assert page.status_code == 200
        assert '<label for="token">Token</label>' in page.text
        assert 'id="token" name="token" type="password"' in page.text

        answer = sign_in(client, next_="/sessions?q=x")
        assert answer.status_code == 303 and answer.headers["location"] == "/sessions?q=x"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        value = client.cookies[COOKIE]
        assert TOKEN not in cookie and TOKEN not in answer.headers["location"]
        [stored] = rows(db, "SELECT id_sha256, user_id FROM web_sessions")
        assert stored == {"id_sha256": hashlib.sha256(value.encode()).hexdigest(), "user_id": 1}
        assert client.get("/sessions?q=x").status_code == 200


def test_a_wrong_token_is_refused_with_the_way_to_a_right_one(db: str) -> None:
    with dashboard(db) as client:
        answer = sign_in(client, "not-a-token")
        assert answer.status_code == 401
        assert "That token is not one this store knows" in answer.text
        assert "hookclient-receiver token list" in answer.text
        assert "set-cookie" not in answer.headers
        assert rows(db, "SELECT * FROM web_sessions") == []


def test_sign_in_goes_nowhere_but_this_store_and_refuses_another_sites_form(db: str) -> None:
    with dashboard(db) as client:
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            assert sign_in(client, next_=target).headers["location"] == "/"
        cross = client.post(
            "/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 403 and "set-cookie" not in cross.headers


def test_sign_out_ends_the_session_for_good(db: str) -> None:
    with dashboard(db) as client:
        sign_in(client)
        value = client.cookies[COOKIE]
        out = client.post("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert f'{COOKIE}=""' in out.headers["set-cookie"]
        assert rows(db, "SELECT * FROM web_sessions") == []
        client.cookies.set(COOKIE, value)  # the old cookie, kept by someone
        assert client.get("/").status_code == 303


def test_a_revoked_users_sign_in_stops_working(db: str) -> None:
    with Store(db) as store:
        alice = store.add_user("alice")
    with dashboard(db) as client:
        sign_in(client, alice)
        assert client.get("/").status_code == 200
        with Store(db) as store:
            store.revoke("alice")
        assert client.get("/").status_code == 303


def test_each_user_sees_only_their_sessions_and_an_admin_everyones(db: str) -> None:
    with Store(db) as store:
        alice, bob = store.add_user("alice"), store.add_user("bob")
    with dashboard(db) as client:
        post(client, transcript(RICH), token=alice)
        sign_in(client, bob)
        assert RICH.stem not in client.get("/sessions").text
        other = client.get(f"/sessions/{RICH.stem}")
        assert other.status_code == 403
        assert f"Session {RICH.stem} belongs to another user." in other.text
        assert client.get(f"/sessions/{RICH.stem}/body").status_code == 403
        assert client.get("/sessions/no-such-session").status_code == 404
        hidden = client.get(f"/trace/{transcript(RICH)[0]['requestId']}")
        assert hidden.status_code == 404  # another's event is not even named
        client.post("/logout")

        sign_in(client, alice)
        assert RICH.stem in client.get("/sessions").text
        assert client.get(f"/sessions/{RICH.stem}").status_code == 200
        client.post("/logout")

        sign_in(client)  # the admin
        listed = client.get("/sessions").text
        assert f"/sessions/{RICH.stem}?owner=alice" in listed
        assert "<td>alice</td>" in listed  # the admin's list says whose each session is
        assert "owner</dt><dd>alice" in client.get(f"/sessions/{RICH.stem}?owner=alice").text


def test_the_conversation_shows_prompts_replies_folded_thinking_and_tool_calls(db: str) -> None:
    with dashboard(db) as client:
        post(client, transcript(RICH) + rich_hooks())
        sign_in(client)
        page = client.get(f"/sessions/{RICH.stem}").text
    assert "MULTI please FAKEPROMPT" in page
    assert "FINAL-AFTER-TOOLS" in page
    assert re.search(r'<details class="thinking" id="th-\d+-\d+"><summary>Thinking</summary>', page)
    calls = re.findall(r'<details class="tool (\w+)" id="t-(toolu_\w+)"', page)
    assert calls == [("ok", "toolu_a00000253669077"), ("ok", "toolu_b00000353669077")]
    assert "<h4>Input</h4>" in page and "<h4>Output</h4>" in page
    assert re.search(r"\d+ ms</span>", page)  # the call's duration, from its hooks
    assert "200 in · 40 out · 100 cache read · 10 cache write" in page
    assert ">complete<" in page
    assert page.count("Tool result") == 0  # results are shown with their call


def test_a_subagents_work_is_nested_under_its_task_call(db: str) -> None:
    with dashboard(db) as client:
        post(client, subagent_docs())
        sign_in(client)
        page = client.get(f"/sessions/{SUBAGENT.stem}").text
    task = page.index('id="t-toolu_agent00000853762728"')
    nested = page.index('<div class="subagent" aria-label="Subagent work">', task)
    closing = page.index("</details>", nested)
    assert task < nested < closing
    assert page[nested:closing].count('<article class="msg') >= 2


def test_the_overview_counts_requests_and_shows_failures_hosts_and_heartbeats(db: str) -> None:
    with dashboard(db) as client:
        post(client, transcript(RICH) + rich_hooks())
        client.post("/hooks", content="{bad", headers={"Authorization": f"Bearer {TOKEN}"})
        heartbeat = wrap("Heartbeat", None, {"pending": 7, "processing": 1, "failed": 2,  # type: ignore[arg-type]
                                             "oldestPendingAge": 125.0, "version": "0.1.0"},
                         "2026-12-02T10:00:00.000Z")  # fmt: skip
        answer = client.post(
            "/hooks", content=json.dumps(heartbeat), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert answer.json() == {"status": "accepted", "requestId": heartbeat["requestId"]}
        sign_in(client)
        page = client.get("/").text
        panels = client.get("/overview/panels").text
    sent = len(transcript(RICH) + rich_hooks()) + 1
    assert f'<span class="figure" id="fig-requests">{sent}</span>' in page
    assert f"{100 * (sent - 1) / sent:.1f}%" in page
    assert "body is not JSON" in page  # the failure, listed
    assert '<th scope="row">laptop-1</th>' in page
    assert "7 pending, oldest 125 s" in page
    assert "<!doctype html>" not in panels and 'id="fig-requests"' in panels
    # a heartbeat is kept on its host, not stored as an event nor audited
    [host] = rows(db, "SELECT * FROM hosts")
    assert host["pending"] == 7 and host["failed"] == 2 and host["version"] == "0.1.0"
    assert host["heartbeat_request_id"] == heartbeat["requestId"]
    assert rows(db, "SELECT * FROM events WHERE event = 'Heartbeat'") == []
    assert rows(db, "SELECT * FROM webhook_events WHERE event = 'Heartbeat'") == []


BACKLOG = {"pending": 1, "processing": 0, "failed": 0, "oldestPendingAge": 2.5, "version": "0.1.0"}


def test_a_heartbeat_without_a_host_is_422_naming_the_field(db: str) -> None:
    heartbeat = wrap("Heartbeat", None, BACKLOG, "2026-12-02T10:00:00.000Z")  # type: ignore[arg-type]
    del heartbeat["source"]["host"]
    with dashboard(db) as client:
        answer = client.post(
            "/hooks", content=json.dumps(heartbeat), headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert answer.status_code == 422
    assert answer.json() == {"error": "/source/host is missing", "field": "/source/host"}


def test_trace_shows_the_envelope_its_audit_and_what_it_brought(db: str) -> None:
    docs = transcript(RICH)
    with dashboard(db) as client:
        post(client, docs)
        sign_in(client)
        assert client.get(f"/trace?requestId={docs[0]['requestId']}").headers["location"] == (
            f"/trace/{docs[0]['requestId']}"
        )
        page = client.get(f"/trace/{docs[0]['requestId']}").text
        missing = client.get(f"/trace/{uuid.uuid4()}")
    assert "<td>SUCCESS</td><td>200</td>" in page
    assert f"&#34;requestId&#34;: &#34;{docs[0]['requestId']}&#34;" in page
    assert "Messages it brought" in page and "Records it brought" in page
    assert missing.status_code == 404 and "No event" in missing.text


def test_the_session_cookie_reads_the_api_but_never_writes(db: str) -> None:
    with dashboard(db) as client:
        post(client, transcript(RICH))
        sign_in(client)
        assert client.get("/api/sessions").json()["sessions"][0]["session_id"] == RICH.stem
        refused = client.post("/hooks", content=json.dumps(transcript(RICH)[0]))
        assert refused.status_code == 401  # a POST needs the bearer token


def test_pages_load_only_from_the_store_itself(db: str) -> None:
    with dashboard(db) as client:
        post(client, transcript(RICH))
        assert "default-src 'self'" in client.get("/login").headers["content-security-policy"]
        sign_in(client)
        for path in ("/", "/sessions", f"/sessions/{RICH.stem}", "/trace"):
            answer = client.get(path)
            assert answer.headers["content-security-policy"].startswith("default-src 'self'")
            links = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
            local = [x for x in links if x.startswith(("/", "#")) and not x.startswith("//")]
            assert links and local == links, links
        css = client.get("/static/dashboard.css")
        js = client.get("/static/dashboard.js")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert js.status_code == 200 and "EventSource" in js.text
    assert "http://" not in js.text and "https://" not in js.text


def test_without_authentication_nobody_signs_in(tmp_path: Any) -> None:
    with TestClient(create_app(tmp_path / "s.db", None), follow_redirects=False) as client:
        assert client.get("/").status_code == 200
        assert client.get("/login").headers["location"] == "/"
        assert "Sign out" not in client.get("/").text


@pytest.mark.parametrize("q", ["FAKEPROMPT", "FINAL-AFTER-TOOLS"])
def test_the_session_list_searches_titles_and_message_text(db: str, q: str) -> None:
    with dashboard(db) as client:
        post(client, transcript(RICH))
        sign_in(client)
        page = client.get(f"/sessions?q={q}").text
        project = client.get("/sessions?project=nowhere").text
    assert f"/sessions/{RICH.stem}#m" in page  # a message hit, linked to its place
    assert "No sessions match." in project


def test_a_refused_requests_trace_shows_its_audit_rows(db: str) -> None:
    doc = transcript(RICH)[0]
    with dashboard(db) as client:
        wrong = {"Authorization": "Bearer wrong", "X-Request-Id": doc["requestId"]}
        client.post("/hooks", content=json.dumps(doc), headers=wrong)  # as queued sends it
        sign_in(client)
        page = client.get(f"/trace/{doc['requestId']}")
    assert page.status_code == 200
    assert "every request that named it was refused" in page.text
    assert "<td>UNAUTHORIZED</td><td>401</td>" in page.text


def test_a_hook_only_sessions_tool_calls_show_in_its_conversation(db: str) -> None:
    with dashboard(db) as client:
        post(client, rich_hooks())  # no transcript: no message carries a tool_use block
        sign_in(client)
        page = client.get(f"/sessions/{RICH.stem}").text
    calls = re.findall(r'<details class="tool (\w+)" id="t-(toolu_\w+)"', page)
    assert calls == [("ok", "toolu_a00000253669077")]
    # after the prompt, before the reply: where its start time puts it
    call = page.index('id="t-toolu_a00000253669077"')
    assert page.index("MULTI please FAKEPROMPT") < call < page.index("FAKE-DONE")


def test_a_busy_hosts_row_is_written_at_most_once_a_second() -> None:
    from receiver.hosts import Throttle

    now = [100.0]
    throttle = Throttle(every=1.0, clock=lambda: now[0])
    assert (
        throttle.due(1, "laptop-1") and throttle.due(1, "laptop-2") and throttle.due(2, "laptop-1")
    )
    now[0] += 0.9
    assert not throttle.due(1, "laptop-1")
    now[0] += 0.2
    assert throttle.due(1, "laptop-1")


def test_a_sign_in_ends_when_the_store_gets_another_admin_token(db: str) -> None:
    with dashboard(db) as client:
        sign_in(client)
        cookie = client.cookies[COOKIE]
        assert client.get("/").status_code == 200
    with TestClient(create_app(db, "the-new-admin-token"), follow_redirects=False) as client:
        client.cookies.set(COOKIE, cookie)
        assert client.get("/").status_code == 303
        assert client.get("/api/sessions").status_code == 401


def test_a_pages_parts_answer_401_not_the_login_page_once_signed_out(db: str) -> None:
    with dashboard(db) as client:
        assert client.get("/signed-in").status_code == 401
        for part in ("/overview/panels", f"/sessions/{RICH.stem}/body"):
            answer = client.get(part)
            assert answer.status_code == 401 and "<form" not in answer.text
        sign_in(client)
        assert client.get("/signed-in").status_code == 204
        assert client.get("/overview/panels").status_code == 200


def test_a_user_sees_only_their_own_figures_hosts_failures_and_alerts(
    db: str, tmp_path: Any
) -> None:
    from receiver.alerts import check, load

    with Store(db) as store:
        alice, bob = store.add_user("alice"), store.add_user("bob")
    with dashboard(db) as client:
        post(client, transcript(RICH), token=alice)  # from laptop-1
        refused = {"Authorization": f"Bearer {alice}"}
        client.post("/hooks", content="{alice-broke-this", headers=refused)
        rules = tmp_path / "alerts.toml"
        rules.write_text(
            '[[rule]]\nname = "slow"\nkind = "p95_ms"\nabove = 0\nmin_requests = 1\n'
            '[[rule]]\nname = "silent"\nkind = "host_silent"\nafter = 0\n'
        )
        with Store(db) as store:
            from datetime import UTC, datetime, timedelta

            check(store.engine, load(rules), datetime.now(UTC) + timedelta(seconds=5))
        sign_in(client, bob)
        page = client.get("/").text
        assert '<span class="figure" id="fig-requests">0</span>' in page
        assert "laptop-1" not in page and "alice-broke-this" not in page
        assert "body is not JSON" not in page and "Open alerts" not in page
        client.post("/logout")
        sign_in(client, alice)
        page = client.get("/").text
        assert "laptop-1" in page and "body is not JSON" in page
        assert "silent" in page and "slow" not in page  # a store-wide alert: admins only
        client.post("/logout")
        sign_in(client)
        assert "slow" in client.get("/").text


def test_what_clients_send_is_shown_as_text_never_run(db: str) -> None:
    evil = "<script>alert(1)</script>"
    hostile = wrap("UserPromptSubmit", evil, {"hook_event_name": "UserPromptSubmit",
                   "prompt": evil, "prompt_id": "p"}, "2026-12-02T10:00:00.000Z")  # fmt: skip
    hostile["source"]["host"] = '<img src=x onerror="alert(2)">\nforged'
    with dashboard(db) as client:
        post(client, [hostile])
        sign_in(client)
        pages = [client.get(p).text for p in ("/", "/sessions", "/sessions/" + evil)]
        pages.append(client.get(f"/trace/{hostile['requestId']}").text)
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;?forged" in pages[0]  # no newline


def test_sign_out_from_another_site_is_refused_and_a_proxy_is_allowed(db: str) -> None:
    with dashboard(db) as client:
        sign_in(client)
        cross = client.post("/logout", headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403 and client.get("/").status_code == 200
        behind = client.post(
            "/login",
            data={"token": TOKEN},
            headers={"Origin": "https://store.example", "X-Forwarded-Host": "store.example"},
        )
        assert behind.status_code == 303
        many = "&".join(f"f{n}=x" for n in range(20))
        stuffed = client.post(
            "/login", content=many, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert stuffed.status_code == 401


def test_odd_blocks_show_raw_and_never_break_the_page(db: str) -> None:
    odd = [
        {"type": "tool_result", "tool_use_id": {"a": 1}, "content": "x"},
        {"type": "tool_use", "id": ["not", "a", "string"], "name": "Bash", "input": {}},
        "just a string",
        {"type": "text", "text": "x" * 50},
    ]
    doc = transcript(RICH)[0]
    record = next(r for r in doc["payload"]["records"] if r.get("type") == "assistant")
    record["message"]["content"] = odd
    with dashboard(db) as client:
        post(client, [doc])
        sign_in(client)
        page = client.get(f"/sessions/{RICH.stem}")
    assert page.status_code == 200
    assert '<pre class="raw">' in page.text and "&#34;a&#34;: 1" in page.text


def test_a_heartbeat_in_a_batch_is_refused_and_stored_nowhere(db: str) -> None:
    beat = wrap("Heartbeat", None, BACKLOG, "2026-12-02T10:00:00.000Z")  # type: ignore[arg-type]
    with dashboard(db) as client:
        answer = client.post(
            "/hooks", content=json.dumps([beat]), headers={"Authorization": f"Bearer {TOKEN}"}
        )
    [result] = answer.json()["results"]
    assert result["status"] == "invalid" and "POSTed alone" in result["error"]
    assert rows(db, "SELECT * FROM events") == [] and rows(db, "SELECT * FROM hosts") == []


def test_an_admin_opens_their_own_session_before_another_users_of_the_same_id(db: str) -> None:
    with Store(db) as store:
        alice = store.add_user("alice")
    mine = transcript(RICH)
    theirs = transcript(RICH)
    theirs[0]["payload"]["records"] = theirs[0]["payload"]["records"][:1]  # a shorter copy
    with dashboard(db) as client:
        post(client, theirs, token=alice)
        post(client, mine)
        sign_in(client)
        own = client.get(f"/sessions/{RICH.stem}").text
        other = client.get(f"/sessions/{RICH.stem}?owner=alice").text
        nobody = client.get(f"/sessions/{RICH.stem}?owner=nobody")
    assert "owner</dt><dd>admin" in own and "FINAL-AFTER-TOOLS" in own
    assert "owner</dt><dd>alice" in other
    assert nobody.status_code == 404 and "No user nobody." in nobody.text


def test_reads_never_hold_the_write_lock_on_sqlite(tmp_path: Any) -> None:
    from sqlalchemy import text

    with Store(tmp_path / "s.db") as store, store.reads.begin() as reading:
        reading.execute(text("SELECT count(*) FROM webhook_events")).scalar()  # a page's query
        doc = wrap("Stop", "s", {"hook_event_name": "Stop"}, "2026-12-02T10:00:00.000Z")
        assert store.accept(
            request_id=doc["requestId"], event="Stop", session_id="s",
            trace_id=doc["traceId"], span_id=doc["spanId"], attempt=1,
            envelope=json.dumps(doc), headers={}, started=0.0,
        )  # fmt: skip
