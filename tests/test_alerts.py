"""Alert rules (``--alerts FILE``): a bad file is one line naming what to fix; each rule
opens an alert once and resolves it once, even with two receiver processes checking;
each change is POSTed to ``notify_url`` as ``{"text": ...}``, here to a real local server."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from receiver.alerts import Change, Checker, Rules, RulesError, check, load
from receiver.schema import hosts, webhook_events
from receiver.store import Store, stamp
from tests.conftest import BIN

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("every = 30\n", "no rules: add at least one [[rule]] table"),
        ('[[rule]]\nname = "x"\nkind = "nope"\n', "rule 1 ('x'): kind must be one of error_rate"),
        ('[[rule]]\nkind = "p95_ms"\n', "rule 1: needs a name"),
        ('[[rule]]\nname = "x"\nkind = "p95_ms"\nabove = "fast"\n', "above must be a number"),
        ('[[rule]]\nname = "x"\nkind = "p95_ms"\nabove = 1\nwindoww = 3\n',
         "unknown key 'windoww'"),
        ('notify_url = "ftp://x"\n[[rule]]\nname = "x"\nkind = "host_failed"\n',
         "notify_url must be"),
        ('[[rule]]\nname = "x"\nkind = "host_failed"\n[[rule]]\nname = "x"\nkind = "host_failed"\n',
         "two rules are named 'x'"),
        ('[[rule]]\nname = "x"\nkind = "p95_ms"\n',
         "rule 1 ('x'): a p95_ms rule needs above = ..."),
        ('[[rule]]\nname = "x"\nkind = "error_rate"\nabove = 5\n',
         "above is a share of requests, 0 to 1 (0.05 is 5%)"),
        ('[[rule]]\nname = "x"\nkind = "p95_ms"\nabove = 1\nabov = 2\n',
         "rule 1 ('x'): unknown key 'abov'"),
        ("[[rule]\n", "not valid TOML"),
        ('colour = "red"\n', "unknown key 'colour'"),
    ],
)  # fmt: skip
def test_a_bad_rule_file_is_one_line_naming_the_fix(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(RulesError, match="^" + str(tmp_path / "alerts.toml")) as caught:
        load(write(tmp_path, text))
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_example_rule_file_in_config_loads() -> None:
    rules = load(Path(__file__).parent.parent / "config" / "alerts.toml")
    kinds = [rule.kind for rule in rules.rules]
    assert kinds == ["error_rate", "p95_ms", "host_failed", "host_silent"]
    assert rules.every == 30 and rules.notify_url is None


def test_the_receiver_refuses_to_start_on_a_bad_rule_file(tmp_path: Path) -> None:
    bad = write(tmp_path, '[[rule]]\nname = "x"\nkind = "nope"\n')
    run = subprocess.run(
        [str(BIN / "hookclient-receiver"), "--db", str(tmp_path / "s.db"), "--no-auth",
         "--alerts", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "hookclient-receiver: warning: --no-auth: anyone who can reach this port can post"
        " and read events",
        f"hookclient-receiver: {bad}: rule 1 ('x'): kind must be one of error_rate, p95_ms,"
        " host_failed, host_silent",
    ]


def audit(store: Store, at: datetime, statuses: list[str], ms: float = 1.0) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(webhook_events),
            [
                {"owner_id": 1, "status": s, "http_status": 200, "received_at": stamp(at),
                 "processing_ms": ms}
                for s in statuses
            ],
        )  # fmt: skip


def rules(tmp_path: Path, body: str) -> Rules:
    return load(write(tmp_path, body))


def test_an_error_rate_alert_opens_once_and_resolves_once(db: str, tmp_path: Path) -> None:
    found = rules(tmp_path, '[[rule]]\nname = "errors"\nkind = "error_rate"\nwindow = 300\n'
                            "above = 0.1\nmin_requests = 10\n")  # fmt: skip
    with Store(db) as store:
        audit(store, NOW - timedelta(seconds=60), ["SUCCESS"] * 8 + ["ERROR"] * 2)
        opened = check(store.engine, found, NOW)
        assert opened == [
            Change("errors", "", True,
                   "errors: 20.0% of 10 requests failed in the last 300 s (above 10.0%)")
        ]  # fmt: skip
        assert check(store.engine, found, NOW + timedelta(seconds=30)) == []  # still open: once
        later = NOW + timedelta(seconds=400)  # the failures left the window
        audit(store, later - timedelta(seconds=10), ["SUCCESS"] * 10)
        assert check(store.engine, found, later) == [
            Change("errors", "", False, "resolved: errors")
        ]
        assert check(store.engine, found, later) == []


def test_two_processes_checking_the_same_rules_open_and_resolve_each_alert_once(
    db: str, tmp_path: Path
) -> None:
    found = rules(tmp_path, '[[rule]]\nname = "slow"\nkind = "p95_ms"\nabove = 50\n')
    with Store(db) as one, Store(db) as two:
        audit(one, NOW - timedelta(seconds=5), ["SUCCESS"] * 20, ms=80.0)
        changes: list[Change] = []
        threads = [
            threading.Thread(target=lambda s=s: changes.extend(check(s.engine, found, NOW)))
            for s in (one, two)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [c.opened for c in changes] == [True]
        assert changes[0].text == "slow: p95 processing 80.0 ms over the last 300 s (above 50 ms)"
        later = NOW + timedelta(seconds=600)
        resolved = check(one.engine, found, later) + check(two.engine, found, later)
        assert resolved == [Change("slow", "", False, "resolved: slow")]


def test_host_rules_name_the_host_and_belong_to_its_owner(db: str, tmp_path: Path) -> None:
    found = rules(
        tmp_path,
        '[[rule]]\nname = "failing"\nkind = "host_failed"\nabove = 0\n'
        '[[rule]]\nname = "silent"\nkind = "host_silent"\nafter = 600\n',
    )
    with Store(db) as store:
        with store.engine.begin() as conn:
            conn.execute(
                insert(hosts),
                [
                    {"owner_id": 1, "host": "laptop-1", "failed": 3, "last_event_at": None,
                     "heartbeat_at": stamp(NOW - timedelta(seconds=30))},
                    {"owner_id": 1, "host": "laptop-2", "failed": 0, "heartbeat_at": None,
                     "last_event_at": stamp(NOW - timedelta(hours=2))},
                ],
            )  # fmt: skip
        texts = sorted(c.text for c in check(store.engine, found, NOW))
        assert texts == [
            "failing: host laptop-1 has 3 failed events (above 0)",
            "silent: host laptop-2 silent since 2026-12-02T08:00:00.000Z (more than 600 s)",
        ]
        with store.engine.connect() as conn:
            from receiver.schema import alerts

            owners = {row.subject: row.owner_id for row in conn.execute(alerts.select())}
        assert owners == {"1:laptop-1": 1, "1:laptop-2": 1}


class _Hook(BaseHTTPRequestHandler):
    bodies: list[Any] = []  # noqa: RUF012 - one server per test, reset by the fixture

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def chat() -> Iterator[tuple[str, list[Any]]]:
    _Hook.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/SECRET", _Hook.bodies
    finally:
        server.shutdown()
        server.server_close()


def test_each_change_is_posted_to_notify_url_as_text(
    tmp_path: Path, chat: tuple[str, list[Any]]
) -> None:
    url, bodies = chat
    found = rules(
        tmp_path,
        f'notify_url = "{url}"\n[[rule]]\nname = "slow"\nkind = "p95_ms"\nabove = 50\n'
        "min_requests = 1\n",
    )
    clock = [NOW]
    with Store(tmp_path / "s.db") as store:
        audit(store, NOW - timedelta(seconds=5), ["SUCCESS"] * 5, ms=90.0)
        checker = Checker(store.engine, found, clock=lambda: clock[0])
        checker.run_once()
        clock[0] = NOW + timedelta(hours=1)
        checker.run_once()
    assert bodies == [
        {"text": "slow: p95 processing 90.0 ms over the last 300 s (above 50 ms)"},
        {"text": "resolved: slow"},
    ]


def test_a_notify_url_that_fails_is_logged_without_its_secret_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    found = rules(
        tmp_path,
        'notify_url = "http://127.0.0.1:9/services/SECRET"\n'
        '[[rule]]\nname = "slow"\nkind = "p95_ms"\nabove = 50\nmin_requests = 1\n',
    )
    with Store(tmp_path / "s.db") as store:
        audit(store, NOW - timedelta(seconds=5), ["SUCCESS"] * 5, ms=90.0)
        changes = Checker(store.engine, found, clock=lambda: NOW).run_once()
    assert [c.opened for c in changes] == [True]  # opened all the same
    said = [r.getMessage() for r in caplog.records if r.name == "receiver.alerts"]
    assert said == [
        "alert opened: slow: p95 processing 90.0 ms over the last 300 s (above 50 ms)",
        "alert notification to 127.0.0.1 failed: ConnectError",
    ]
    assert not any("SECRET" in line for line in said)


def test_an_alert_another_process_just_opened_is_not_opened_again(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import receiver.alerts as module

    found = rules(tmp_path, '[[rule]]\nname = "slow"\nkind = "p95_ms"\nabove = 50\n')
    with Store(db) as store:
        audit(store, NOW - timedelta(seconds=5), ["SUCCESS"] * 20, ms=80.0)
        assert [c.opened for c in check(store.engine, found, NOW)] == [True]
        # the other process read "nothing open" just before this one's insert
        monkeypatch.setattr(module, "_open_subjects", lambda conn, rule: set())
        assert check(store.engine, found, NOW + timedelta(seconds=30)) == []
        with store.engine.connect() as conn:
            from receiver.schema import alerts

            assert len(conn.execute(alerts.select()).all()) == 1


def test_p95_is_the_nearest_rank_of_distinct_values(db: str, tmp_path: Path) -> None:
    found = rules(tmp_path, '[[rule]]\nname = "slow"\nkind = "p95_ms"\nabove = 94\n')
    with Store(db) as store:
        for ms in range(100, 0, -1):  # 100 .. 1 ms, in no order the index keeps
            audit(store, NOW - timedelta(seconds=5), ["SUCCESS"], ms=float(ms))
        [opened] = check(store.engine, found, NOW)
        from receiver.overview import overview

        figures = overview(store.engine, None, NOW)
    assert opened.text == "slow: p95 processing 95.0 ms over the last 300 s (above 94 ms)"
    assert (figures.p50, figures.p95, figures.p99) == ("50.0", "95.0", "99.0")


def test_a_rule_taken_out_of_the_file_resolves_its_open_alerts(db: str, tmp_path: Path) -> None:
    before = rules(
        tmp_path, '[[rule]]\nname = "slow"\nkind = "p95_ms"\nabove = 50\nmin_requests = 1\n'
    )
    after = rules(tmp_path, '[[rule]]\nname = "p95"\nkind = "p95_ms"\nabove = 500\n')
    with Store(db) as store:
        audit(store, NOW - timedelta(seconds=5), ["SUCCESS"] * 5, ms=90.0)
        check(store.engine, before, NOW)
        assert check(store.engine, after, NOW) == [
            Change("slow", "", False, "resolved: slow (no longer a rule)")
        ]


def test_what_a_client_named_its_host_cannot_ping_a_chat_channel(
    tmp_path: Path, chat: tuple[str, list[Any]]
) -> None:
    url, bodies = chat
    found = rules(
        tmp_path, f'notify_url = "{url}"\n[[rule]]\nname = "failing"\nkind = "host_failed"\n'
    )
    with Store(tmp_path / "s.db") as store:
        with store.engine.begin() as conn:
            conn.execute(
                insert(hosts).values(owner_id=1, host="<!channel> <https://evil|log in>",
                                     failed=2, heartbeat_at=stamp(NOW))
            )  # fmt: skip
        Checker(store.engine, found, clock=lambda: NOW).run_once()
    assert bodies == [
        {"text": "failing: host &lt;!channel&gt; &lt;https://evil|log in&gt; has 2 failed"
                 " events (above 0)"}
    ]  # fmt: skip
