"""The daemon in-process: a fake clock, respx for the endpoint, a real spool in tmp_path.

Each test drives ``Daemon.step()`` / ``drain_due()`` by hand and moves the fake clock
instead of sleeping, then checks what is on disk (files per state, their state JSON),
what the endpoint saw (respx calls) and the log lines written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from hookclient.breaker import Breaker
from hookclient.clock import FakeClock, parse_iso, utc_iso
from hookclient.config import Config, load_config
from hookclient.envelope import StdinCapture, build
from hookclient.errors import LockHeld
from hookclient.spool import Record, Spool, State, new_state
from hookclient.spoolstate import Owner
from queued.daemon import Daemon
from tests.conftest import BIN, wait_for

URL = "http://127.0.0.1:8931/hooks"  # loopback: no plain-http warning in the logs
SCHEDULE = (60.0, 300.0, 900.0, 3600.0, 7200.0)


def envelope(
    clock: FakeClock, event: str = "Stop", n: int = 0, at: float | None = None
) -> dict[str, Any]:
    payload = json.dumps({"hook_event_name": event, "session_id": "s", "n": n}).encode()
    return build(
        StdinCapture(payload, len(payload), False, False),
        event_flag=None,
        redact_keys=(),
        limit=1 << 20,
        now=clock.at if at is None else at,
    )


class Harness:
    """A config, a spool and a log directory under tmp_path; daemons closed at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = FakeClock()
        self.spool_dir = root / "spool"
        self.log_dir = root / "logs"
        self.config_path = root / "hookclient.toml"
        self.spool = Spool(self.spool_dir)
        self.daemons: list[Daemon] = []

    # -- setup ---------------------------------------------------------------------

    def config(self, **queue: Any) -> Config:
        settings = {
            "dir": str(self.spool_dir),
            "jitter": 0.0,
            "breaker_failures": 1000,
            **queue,
        }
        lines = ["[endpoint]", f"url = {json.dumps(URL)}", "timeout = 5.0", "[queue]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
        lines += ["[logs]", f"dir = {json.dumps(str(self.log_dir))}"]
        self.config_path.write_text("\n".join(lines) + "\n")
        return load_config([self.config_path], environ={})

    def daemon(self, config: Config | None = None, **kwargs: Any) -> Daemon:
        kwargs.setdefault("watch", False)
        kwargs.setdefault("workers", 1)
        kwargs.setdefault("clock", self.clock)
        d = Daemon(config or self.config(), **kwargs)
        self.daemons.append(d)
        return d

    def start(self, config: Config | None = None, **kwargs: Any) -> Daemon:
        d = self.daemon(config, **kwargs)
        d.start()
        return d

    def close(self) -> None:
        for d in self.daemons:
            if d.lock is not None or d.pool is not None:
                d.close()

    def add(
        self,
        env: dict[str, Any] | None = None,
        *,
        due: float | None = None,
        where: State = State.PENDING,
        owner: Owner | None = None,
        **fields: Any,
    ) -> Record:
        env = env or envelope(self.clock)
        now = self.clock.at
        state = new_state(now, due=now if due is None else due, owner=owner)
        state.update(fields)  # type: ignore[typeddict-item]  # any field, as a file may hold
        return self.spool.add(env, state, where)

    # -- looking -------------------------------------------------------------------

    def names(self, state: State | str) -> list[str]:
        directory = self.spool_dir / State(state).value
        if not directory.exists():
            return []
        return sorted(p.name for p in directory.iterdir())

    def body(self, state: State | str, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.spool_dir / State(state).value / name).read_text())
        return data

    def only(self, state: State | str) -> dict[str, Any]:
        [name] = self.names(state)
        return self.body(state, name)

    def log(self, stream: str, msg: str | None = None) -> list[dict[str, Any]]:
        path = self.log_dir / f"{stream}.log"
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return [line for line in lines if msg is None or line["msg"] == msg]

    def due_in(self, body: dict[str, Any]) -> float:
        return parse_iso(body["state"]["nextAttemptAt"]) - self.clock.at


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def sent(route: respx.Route) -> list[httpx.Request]:
    return [call.request for call in route.calls]


def sent_ids(route: respx.Route) -> list[str]:
    return [json.loads(r.content)["requestId"] for r in sent(route)]


# -- delivered -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_removes_the_file_and_logs_delivered(
    h: Harness, router: respx.MockRouter, status: int
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(status))
    record = h.add()
    rid = record.request_id
    d = h.start()
    d.drain_due()

    assert h.names("pending") == h.names("processing") == h.names("failed") == []
    [request] = sent(route)
    assert json.loads(request.content) == record.envelope
    assert request.headers["Idempotency-Key"] == rid
    assert request.headers["X-Request-Id"] == rid
    assert request.headers["X-Hook-Attempt"] == "1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("hookclient/")
    version, trace, span, flags = request.headers["traceparent"].split("-")
    assert (version, trace, flags) == ("00", record.envelope["traceId"], "01")
    assert len(span) == 16 and span != "0" * 16
    assert "Authorization" not in request.headers

    [line] = h.log("success")
    assert line["msg"] == "delivered"
    assert line["requestId"] == rid
    assert line["traceId"] == record.envelope["traceId"]
    assert line["event"] == "Stop"
    assert line["status"] == status
    assert line["attempt"] == 1
    assert line["outcome"] == "delivered"
    assert line["component"] == "daemon"
    assert line["pid"] == os.getpid()
    assert isinstance(line["elapsedMs"], int | float)
    [attempt] = h.log("queue", "attempt")
    assert (attempt["requestId"], attempt["status"], attempt["spanId"]) == (rid, status, span)
    assert h.log("error") == []
    assert d.delivered == 1


# -- backoff -------------------------------------------------------------------------


def test_backoff_schedule_then_failed_after_max_retries(
    h: Harness, router: respx.MockRouter
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(503))
    record = h.add()
    rid, trace = record.request_id, record.envelope["traceId"]
    name = record.path.name
    d = h.start(h.config(max_retries=5, backoff=list(SCHEDULE)))
    start = h.clock.at

    d.drain_due()  # the first delivery: not a retry
    body = h.body("pending", name)
    assert body["state"]["attempts"] == 1
    assert body["state"]["retries"] == 0
    assert h.due_in(body) == 60.0
    assert body["state"]["lastError"] == {
        "kind": "http",
        "status": 503,
        "detail": "HTTP 503 Service Unavailable",
    }
    assert body["state"]["lastAttemptAt"] == utc_iso(start)
    assert "owner" not in body["state"]

    for retry, delay in enumerate(SCHEDULE, start=1):
        calls = len(route.calls)
        h.clock.advance(delay - 0.5)
        d.drain_due()
        assert len(route.calls) == calls, f"retry {retry} went out early"
        h.clock.advance(0.5)
        d.drain_due()
        assert len(route.calls) == calls + 1
        if retry < 5:
            body = h.body("pending", name)
            assert body["state"]["retries"] == retry
            assert body["state"]["attempts"] == retry + 1
            assert h.due_in(body) == SCHEDULE[retry]

    assert h.names("pending") == h.names("processing") == []
    assert h.names("failed") == [name]
    state = h.body("failed", name)["state"]
    assert state["retries"] == 5
    assert state["attempts"] == 6
    assert state["lastError"]["status"] == 503
    assert "owner" not in state
    history = state["history"]
    assert [e["attempt"] for e in history] == [1, 2, 3, 4, 5, 6]
    assert {e["by"] for e in history} == {"daemon"}
    assert {e["outcome"] for e in history} == {"retryable"}
    assert {e["status"] for e in history} == {503}
    expected_at, at = [start], start
    for delay in SCHEDULE:
        at += delay
        expected_at.append(at)
    assert [e["at"] for e in history] == [utc_iso(t) for t in expected_at]

    requests = sent(route)
    assert [r.headers["X-Hook-Attempt"] for r in requests] == ["1", "2", "3", "4", "5", "6"]
    parents = [r.headers["traceparent"].split("-") for r in requests]
    assert {p[1] for p in parents} == {trace}
    spans = [p[2] for p in parents]
    assert len(set(spans)) == 6
    assert spans == [e["spanId"] for e in history]
    assert {json.loads(r.content)["requestId"] for r in requests} == {rid}

    scheduled = h.log("queue", "retry scheduled")
    assert [line["retries"] for line in scheduled] == [0, 1, 2, 3, 4]
    assert {line["requestId"] for line in scheduled} == {rid}
    [exhausted] = h.log("error", "retries exhausted")
    assert exhausted["requestId"] == rid
    assert exhausted["retries"] == 5
    assert exhausted["status"] == 503
    assert exhausted["state"] == "failed"
    assert exhausted["file"] == name
    assert [line["attempt"] for line in h.log("queue", "attempt")] == [1, 2, 3, 4, 5, 6]


def test_jitter_keeps_delays_within_ten_percent(h: Harness, router: respx.MockRouter) -> None:
    router.post(URL).mock(return_value=httpx.Response(500))
    records = [h.add(envelope(h.clock, n=n)) for n in range(40)]
    d = h.start(h.config(jitter=0.1), workers=4)

    d.drain_due()
    first = [h.due_in(h.body("pending", r.path.name)) for r in records]
    assert all(54.0 <= x <= 66.0 for x in first), first
    assert len(set(first)) > 1  # jitter applied, not one fixed delay

    h.clock.advance(66.0)
    d.drain_due()
    second = [h.due_in(h.body("pending", r.path.name)) for r in records]
    assert all(270.0 <= x <= 330.0 for x in second), second
    assert len(set(second)) > 1
    for r in records:
        assert h.body("pending", r.path.name)["state"]["retries"] == 1


def test_direct_mode_leftover_counts_its_first_daemon_attempt_as_a_retry(
    h: Harness, router: respx.MockRouter
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(502))
    hook_try = {"attempt": 1, "by": "hook", "outcome": "retryable", "status": 503}
    record = h.add(
        attempts=1,
        retries=0,
        lastError={"kind": "http", "status": 503, "detail": "HTTP 503"},
        history=[hook_try],
    )
    d = h.start()
    d.drain_due()

    [request] = sent(route)
    assert request.headers["X-Hook-Attempt"] == "2"
    state = h.body("pending", record.path.name)["state"]
    assert state["retries"] == 1
    assert state["attempts"] == 2
    assert h.due_in({"state": state}) == 300.0  # backoff[1]: retry 2 comes next
    assert [e["attempt"] for e in state["history"]] == [1, 2]
    assert [e["by"] for e in state["history"]] == ["hook", "daemon"]
    assert state["lastError"]["status"] == 502


def test_direct_mode_leftover_with_one_retry_allowed_fails_after_it(
    h: Harness, router: respx.MockRouter
) -> None:
    router.post(URL).mock(return_value=httpx.Response(503))
    record = h.add(attempts=3, retries=0)
    d = h.start(h.config(max_retries=1))
    d.drain_due()
    assert h.names("failed") == [record.path.name]
    assert h.body("failed", record.path.name)["state"]["retries"] == 1


# -- Retry-After ---------------------------------------------------------------------


def http_date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, lambda now: "120", 120.0),
        (503, lambda now: "120", 120.0),
        (429, lambda now: "10", 60.0),  # shorter than the schedule: the schedule wins
        (429, lambda now: http_date(now + 500), 500.0),
        (503, lambda now: http_date(now - 100), 60.0),  # a date in the past
        (429, lambda now: "99999", 3600.0),  # capped at retry_after_cap
        (429, lambda now: http_date(now + 86400 * 30), 3600.0),
        (429, lambda now: "soon", 60.0),  # unreadable: ignored
    ],
)
def test_retry_after(
    h: Harness,
    router: respx.MockRouter,
    status: int,
    header: Callable[[float], str],
    expected: float,
) -> None:
    router.post(URL).mock(
        return_value=httpx.Response(status, headers={"Retry-After": header(h.clock.at)})
    )
    record = h.add()
    d = h.start(h.config(retry_after_cap=3600.0))
    d.drain_due()
    body = h.body("pending", record.path.name)
    assert h.due_in(body) == expected
    assert body["state"]["retries"] == 0
    [line] = h.log("queue", "retry scheduled")
    assert line["nextAttemptAt"] == utc_iso(h.clock.at + expected)
    # and the agenda holds it until then, not a moment before
    h.clock.advance(expected - 1)
    d.drain_due()
    assert h.names("pending") == [record.path.name]
    assert d.agenda.next_due() == h.clock.at + 1


# -- permanent -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422, 501, 301, 302, 308])
def test_permanent_status_goes_straight_to_failed(
    h: Harness, router: respx.MockRouter, status: int
) -> None:
    headers = {"Location": "http://elsewhere.test/hooks"} if 300 <= status < 400 else {}
    route = router.post(URL).mock(return_value=httpx.Response(status, headers=headers))
    other = router.route(host="elsewhere.test").mock(return_value=httpx.Response(200))
    record = h.add()
    rid = record.request_id
    d = h.start()
    d.drain_due()
    h.clock.advance(100_000)
    d.drain_due()

    assert len(route.calls) == 1
    assert not other.called  # redirects are never followed
    assert h.names("pending") == h.names("processing") == []
    assert h.names("failed") == [record.path.name]
    state = h.only("failed")["state"]
    assert state["attempts"] == 1
    assert state["retries"] == 0
    assert state["lastError"]["kind"] == "http"
    assert state["lastError"]["status"] == status
    assert state["lastError"]["detail"].startswith(f"HTTP {status}")
    if 300 <= status < 400:
        assert "redirects are not followed" in state["lastError"]["detail"]
    assert [e["outcome"] for e in state["history"]] == ["permanent"]
    [line] = h.log("error", "failed permanently")
    assert (line["requestId"], line["status"], line["state"]) == (rid, status, "failed")
    assert line["outcome"] == "permanent"
    assert h.log("queue", "retry scheduled") == []
    assert h.log("success") == []


def test_a_permanent_answer_breaks_the_run_of_retryable_outcomes(
    h: Harness, router: respx.MockRouter
) -> None:
    """The breaker opens after N *consecutive* retryable outcomes; a 4xx is an answer."""
    statuses = iter([503, 503, 400, 503, 503, 200])
    route = router.post(URL).mock(side_effect=lambda request: httpx.Response(next(statuses)))
    for n in range(6):
        h.add(envelope(h.clock, n=n))
    d = h.start(h.config(breaker_failures=3))
    d.drain_due()
    assert len(route.calls) == 6
    assert json.loads((h.spool_dir / "breaker.json").read_text())["state"] == "closed"


# -- circuit breaker -------------------------------------------------------------------


def test_breaker_stops_attempts_then_one_probe_then_drains(
    h: Harness, router: respx.MockRouter
) -> None:
    up = threading.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if up.is_set() else 503)

    route = router.post(URL).mock(side_effect=answer)
    a, b, c, e = (h.add(envelope(h.clock, n=n)) for n in range(4))
    d = h.start(h.config(breaker_failures=2, breaker_cooldown=30.0))
    t0 = h.clock.at
    breaker_file = h.spool_dir / "breaker.json"
    untouched = {r.path.name: h.body("pending", r.path.name) for r in (c, e)}

    d.drain_due()
    assert sent_ids(route) == [a.request_id, b.request_id]
    saved = json.loads(breaker_file.read_text())
    assert saved["state"] == "open"
    assert saved["failures"] == 2
    assert saved["openUntil"] == t0 + 30.0
    # another process (a hook) reading breaker.json sees it open too
    assert Breaker(breaker_file, failures=2, cooldown=30.0, now=h.clock.now).is_open()
    for r in (c, e):  # never attempted: nothing spent
        assert h.body("pending", r.path.name) == untouched[r.path.name]
    assert d.step() == 0

    h.clock.advance(29.9)
    d.drain_due()
    assert len(route.calls) == 2

    h.clock.advance(0.1)  # cooldown over: exactly one probe
    d.drain_due()
    assert sent_ids(route) == [a.request_id, b.request_id, c.request_id]
    probe = h.log("queue", "attempt")[-1]
    assert probe["requestId"] == c.request_id
    assert probe["probe"] is True
    state = h.body("pending", c.path.name)["state"]
    assert (state["attempts"], state["retries"]) == (1, 0)  # a first delivery is no retry
    assert h.body("pending", e.path.name) == untouched[e.path.name]
    saved = json.loads(breaker_file.read_text())
    assert saved["state"] == "open"
    assert saved["openUntil"] == t0 + 60.0
    for r in (a, b):
        assert h.body("pending", r.path.name)["state"]["retries"] == 0

    up.set()  # the endpoint recovers
    h.clock.advance(30.0)  # t0 + 60: probe again; a and b are due too
    d.drain_due()
    ids = sent_ids(route)
    assert ids[3] == e.request_id  # the probe: the oldest due event
    assert sorted(ids[4:]) == sorted([a.request_id, b.request_id])
    assert h.names("pending") == [c.path.name]  # due at t0 + 90
    assert json.loads(breaker_file.read_text())["state"] == "closed"

    h.clock.advance(30.0)
    d.drain_due()
    assert sent_ids(route)[-1] == c.request_id
    assert h.names("pending") == h.names("processing") == h.names("failed") == []
    assert len(h.log("success", "delivered")) == 4
    assert len(route.calls) == 7


def test_with_several_workers_half_open_sends_one_probe_and_then_everything_due(
    h: Harness, router: respx.MockRouter
) -> None:
    up = threading.Event()
    route = router.post(URL).mock(
        side_effect=lambda request: httpx.Response(200 if up.is_set() else 503)
    )
    records = [h.add(envelope(h.clock, n=n)) for n in range(8)]
    d = h.daemon(h.config(breaker_failures=1, breaker_cooldown=30.0), workers=4)
    # a hook saw the outage first: the shared breaker is open until t0 + 30
    Breaker(h.spool_dir / "breaker.json", failures=1, cooldown=30.0, now=h.clock.now).failure()
    d.start()
    d.drain_due()
    assert not route.called

    h.clock.advance(30.0)
    d.drain_due()  # still down: one probe, however many workers are free
    [first] = sent_ids(route)
    [probe] = h.log("queue", "attempt")
    assert probe["probe"] is True
    assert probe["requestId"] == first == records[0].request_id

    up.set()
    h.clock.advance(30.0)  # t0 + 60: the second probe succeeds; all that is due goes at once
    d.drain_due()
    probes = [line for line in h.log("queue", "attempt") if line.get("probe")]
    assert [line["requestId"] for line in probes] == [first, records[1].request_id]
    assert len(route.calls) == 1 + 7
    # nothing due waits a cooldown after the breaker closed; only the first probe's
    # event is left, due at t0 + 90 (its own backoff)
    assert h.names("pending") == [records[0].path.name]
    assert len(h.log("success", "delivered")) == 7
    h.clock.advance(30.0)
    d.drain_due()
    assert h.names("pending") == h.names("processing") == h.names("failed") == []
    assert len(h.log("success", "delivered")) == 8


def test_an_open_breaker_written_by_a_hook_holds_the_daemon_back(
    h: Harness, router: respx.MockRouter
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    h.add()
    d = h.daemon(h.config(breaker_failures=1, breaker_cooldown=30.0))
    # a hook's failure opened the shared breaker just before the daemon started
    Breaker(h.spool_dir / "breaker.json", failures=1, cooldown=30.0, now=h.clock.now).failure()
    d.start()
    d.drain_due()
    assert not route.called
    h.clock.advance(30.0)
    d.drain_due()
    assert len(route.calls) == 1
    assert h.names("pending") == []
    assert json.loads((h.spool_dir / "breaker.json").read_text())["state"] == "closed"


# -- saying why: error.log during an outage --------------------------------------------


@pytest.mark.parametrize("answer", ["503", "refused"])
def test_each_retryable_failure_says_why_in_error_log(
    h: Harness, router: respx.MockRouter, answer: str
) -> None:
    """One error.log line per retryable failure, with when it is tried again; the last
    one is the "retries exhausted" line.  queue.log keeps its lines as they were."""
    if answer == "503":
        router.post(URL).mock(return_value=httpx.Response(503))
        status, error = 503, "HTTP 503 Service Unavailable"
    else:
        router.post(URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
        status, error = None, "ConnectError: [Errno 111] Connection refused"
    record = h.add()
    rid = record.request_id
    d = h.start(h.config(max_retries=2, backoff=[60.0, 300.0]))
    start = h.clock.at
    for wait in (0.0, 60.0, 300.0):
        h.clock.advance(wait)
        d.drain_due()

    attempts = h.log("queue", "attempt")
    lines = h.log("error")
    assert [line["msg"] for line in lines] == [
        "delivery failed, will retry",
        "delivery failed, will retry",
        "retries exhausted",
    ]
    for line, attempt, retries, due in ((lines[0], 1, 0, 60.0), (lines[1], 2, 1, 360.0)):
        assert line["level"] == "warning" and line["component"] == "daemon"
        assert (line["requestId"], line["traceId"]) == (rid, record.envelope["traceId"])
        assert (line["event"], line["attempt"], line["retries"]) == ("Stop", attempt, retries)
        assert (line.get("status"), line["error"], line["outcome"]) == (status, error, "retryable")
        assert line["nextAttemptAt"] == utc_iso(start + due)
        assert line["spanId"] == attempts[attempt - 1]["spanId"]
        assert (line["state"], line["file"]) == ("pending", record.path.name)
        assert line["spool"] == str(h.spool_dir)
    assert lines[2]["attempt"] == 3 and lines[2].get("status") == status
    mine = [line["msg"] for line in h.log("queue") if line.get("requestId") == rid]
    assert mine == ["attempt", "retry scheduled"] * 2 + ["attempt"]


def test_breaker_opening_and_closing_are_one_error_log_line_each(
    h: Harness, router: respx.MockRouter
) -> None:
    """Opened by the failure that reached breaker_failures (not again by later ones,
    nor by each failed probe); closed by the delivery that ended the outage."""
    up = threading.Event()
    router.post(URL).mock(side_effect=lambda request: httpx.Response(200 if up.is_set() else 503))
    records = [h.add(envelope(h.clock, n=n)) for n in range(3)]
    d = h.start(h.config(breaker_failures=2, breaker_cooldown=30.0))
    t0 = h.clock.at
    d.drain_due()  # two failures open it; the third event waits for the probe
    h.clock.advance(30.0)
    d.drain_due()  # the probe fails: open again, no second "opened" line
    up.set()
    h.clock.advance(60.0)
    d.drain_due()  # the next probe is delivered and closes it; the rest follow

    lines = h.log("error")
    assert [line["msg"] for line in lines] == [
        "delivery failed, will retry",
        "delivery failed, will retry",
        "circuit breaker opened",
        "delivery failed, will retry",
        "circuit breaker closed",
    ]
    opened, closed = lines[2], lines[4]
    assert opened["requestId"] == records[1].request_id == lines[1]["requestId"]
    assert (opened["failures"], opened["cooldown"]) == (2, 30.0)
    assert opened["openUntil"] == utc_iso(t0 + 30.0)
    assert opened["traceId"] == records[1].envelope["traceId"]
    assert opened["level"] == closed["level"] == "warning"
    assert lines[3]["probe"] is True and lines[3]["requestId"] == records[2].request_id
    first_delivered = h.log("success", "delivered")[0]
    [probe] = [
        a for a in h.log("queue", "attempt") if a["outcome"] == "delivered" and a.get("probe")
    ]
    assert closed["requestId"] == first_delivered["requestId"] == probe["requestId"]
    assert closed["spanId"] == probe["spanId"]
    assert (closed["failures"], closed["status"]) == (3, 200)
    assert closed["openedAt"] == utc_iso(t0)
    assert {line["spool"] for line in lines} == {str(h.spool_dir)}
    assert len(h.log("success", "delivered")) == 3


# -- recovery at start ----------------------------------------------------------------


@pytest.fixture
def live_pid() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process
    return proc.pid


def test_recovery_of_abandoned_claims_at_start(
    h: Harness, router: respx.MockRouter, live_pid: int, dead_pid: int
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    now = h.clock.at
    stale = utc_iso(now - (5.0 + 5.0 + 30.0) - 1)  # inline_budget + timeout + 30 s, passed
    fresh = utc_iso(now - 2)
    cases = {
        "daemon-dead": {"pid": dead_pid, "by": "daemon", "claimedAt": fresh},
        "daemon-live": {"pid": live_pid, "by": "daemon", "claimedAt": fresh},
        "hook-dead": {"pid": dead_pid, "by": "hook", "claimedAt": fresh},
        "hook-live-fresh": {"pid": live_pid, "by": "hook", "claimedAt": fresh},
        "hook-live-stale": {"pid": live_pid, "by": "hook", "claimedAt": stale},
        "hook-live-no-time": {"pid": live_pid, "by": "hook"},
        "ours": {"pid": os.getpid(), "by": "daemon", "claimedAt": fresh},
        "no-owner": None,
        "not-an-owner": "somebody",
        "pid-not-a-number": {"pid": "123", "by": "hook", "claimedAt": fresh},
    }
    records: dict[str, Any] = {}
    for label, owner in cases.items():
        env = envelope(h.clock, n=len(records))
        state_owner = owner if isinstance(owner, dict) else None
        rec = h.add(env, where=State.PROCESSING, owner=state_owner, due=now - 500)  # type: ignore[arg-type]  # malformed on purpose
        if owner is not None and not isinstance(owner, dict):
            rec.state["owner"] = owner  # type: ignore[typeddict-item]  # a hand-edited file
            h.spool.update(rec)
        records[label] = rec

    d = h.start()
    kept = records["hook-live-fresh"]
    assert h.names("processing") == [kept.path.name]
    assert h.body("processing", kept.path.name)["state"]["owner"]["pid"] == live_pid
    recovered = {label: r for label, r in records.items() if label != "hook-live-fresh"}
    assert sorted(h.names("pending")) == sorted(r.path.name for r in recovered.values())
    for r in recovered.values():
        state = h.body("pending", r.path.name)["state"]
        assert "owner" not in state
        assert state["nextAttemptAt"] == utc_iso(now)  # due now, not its old due time
        assert state["attempts"] == 0 and state["retries"] == 0
    lines = h.log("queue", "recovered abandoned claim")
    assert sorted(line["requestId"] for line in lines) == sorted(
        r.request_id for r in recovered.values()
    )
    for line in lines:
        assert line["state"] == "pending"
        assert line["level"] == "warning"
    by_id = {line["requestId"]: line for line in lines}
    assert by_id[records["hook-dead"].request_id]["owner"]["pid"] == dead_pid
    assert "owner" not in by_id[records["no-owner"].request_id]

    d.drain_due()  # recovered events are delivered; the live hook's is left alone
    assert sorted(sent_ids(route)) == sorted(r.request_id for r in recovered.values())
    assert h.names("processing") == [kept.path.name]

    # once that claim outlives inline_budget + timeout + 30 s, a rescan takes it back
    h.clock.advance(40.0)
    d.next_rescan = 0.0
    d.drain_due()
    assert h.names("processing") == []
    assert sent_ids(route)[-1] == kept.request_id
    assert h.names("pending") == []


def test_tmp_files_older_than_an_hour_or_of_a_dead_writer_are_swept_at_start(
    h: Harness, dead_pid: int
) -> None:
    tmp = h.spool_dir / "tmp"
    h.spool.ensure()
    live = os.getppid()  # a writer still running: its file may be mid-write
    old = tmp / f"20260101T000000000000Z-old.json.{live}.tmp"
    almost = tmp / f"20260101T000000000000Z-almost.json.{live}.tmp"
    fresh = tmp / f"20260101T000000000000Z-fresh.json.{live}.tmp"
    orphan = tmp / f"20260101T000000000000Z-orphan.json.{dead_pid}.tmp"
    for path, age in ((old, 3601.0), (almost, 3599.0), (fresh, 5.0), (orphan, 5.0)):
        path.write_bytes(b'{"partial":')
        os.utime(path, (h.clock.at - age, h.clock.at - age))
    h.start()
    assert sorted(p.name for p in tmp.iterdir()) == sorted([almost.name, fresh.name])
    swept = h.log("queue", "swept stale tmp file")
    assert sorted(line["file"] for line in swept) == sorted([old.name, orphan.name])


def test_corrupt_pending_files_are_quarantined_and_good_ones_delivered(
    h: Harness, router: respx.MockRouter
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    good = [h.add(envelope(h.clock, n=n)) for n in range(2)]
    pending = h.spool_dir / "pending"
    bad = {
        "20260101T000000000001Z-truncated.json": b'{"envelope": {"requestId": "x"',
        "20260101T000000000002Z-empty.json": b"",
        "20260101T000000000003Z-binary.json": bytes(range(256)),
        "20260101T000000000004Z-schema.json": json.dumps({"hello": "world"}).encode(),
        "20260101T000000000005Z-noid.json": json.dumps({"envelope": {}, "state": {}}).encode(),
        "20260101T000000000006Z-array.json": b"[1, 2, 3]",
    }
    for name, data in bad.items():
        (pending / name).write_bytes(data)
    target = h.root / "elsewhere.json"
    target.write_text(json.dumps(good[0].body()))
    link = "20260101T000000000007Z-symlink.json"
    os.symlink(target, pending / link)

    d = h.start()
    d.drain_due()

    assert sorted(h.names("corrupt")) == sorted([*bad, link])
    assert os.path.islink(h.spool_dir / "corrupt" / link)
    assert target.exists()  # the link was moved, not followed
    for name, data in bad.items():
        assert (h.spool_dir / "corrupt" / name).read_bytes() == data  # as it was
    lines = h.log("error", "corrupt file quarantined")
    assert sorted(line["file"] for line in lines) == sorted([*bad, link])
    for line in lines:
        assert line["state"] == "corrupt"
        assert line["file"] in line["error"]
    assert sorted(sent_ids(route)) == sorted(r.request_id for r in good)
    assert h.names("pending") == h.names("processing") == []


def test_a_request_id_that_is_not_a_uuid_is_quarantined_not_sent(
    h: Harness, router: respx.MockRouter
) -> None:
    """Whole, parseable records whose envelope requestId the hook could not have
    written: a path, none, a number, an uppercase UUID, or another event's id than
    the file's name says.  Each goes to corrupt/ as it was, with a line naming it."""
    route = router.post(URL).mock(return_value=httpx.Response(200))
    good = h.add()
    template = good.body()
    ids: dict[str, Any] = {
        "traversal": "../../x",
        "uppercase": "0191AAAA-0003-7000-8000-000000000003",
        "number": 7,
        "mismatch": "0191aaaa-0009-7000-8000-000000000009",
    }
    bad = {}
    for n, (kind, request_id) in enumerate(ids.items()):
        body = json.loads(json.dumps(template))
        body["envelope"]["requestId"] = request_id
        bad[f"20260101T00000000000{n}Z-0191aaaa-000{n}-7000-8000-00000000000{n}.json"] = kind
        (h.spool_dir / "pending" / next(reversed(bad))).write_text(json.dumps(body))
    missing = json.loads(json.dumps(template))
    del missing["envelope"]["requestId"]
    bad["20260101T000000000005Z-0191aaaa-0005-7000-8000-000000000005.json"] = "missing"
    (h.spool_dir / "pending" / next(reversed(bad))).write_text(json.dumps(missing))
    before = {name: (h.spool_dir / "pending" / name).read_bytes() for name in bad}

    d = h.start()
    d.drain_due()

    assert sent_ids(route) == [good.request_id]  # only the good one went out
    assert sorted(h.names("corrupt")) == sorted(bad)
    for name, data in before.items():
        assert (h.spool_dir / "corrupt" / name).read_bytes() == data
    lines = h.log("error", "corrupt file quarantined")
    assert sorted(line["file"] for line in lines) == sorted(bad)
    for line in lines:
        assert line["file"] in line["error"] and line["state"] == "corrupt"
    assert h.names("pending") == h.names("processing") == h.names("failed") == []


def test_a_corrupt_file_in_processing_is_quarantined_at_start(h: Harness) -> None:
    h.spool.ensure()
    name = "20260101T000000000000Z-broken.json"
    (h.spool_dir / "processing" / name).write_bytes(b"{not json")
    h.start()
    assert h.names("corrupt") == [name]
    assert h.names("processing") == []
    [line] = h.log("error", "corrupt file quarantined")
    assert line["file"] == name


# -- lock --------------------------------------------------------------------------------


def test_a_second_daemon_on_the_same_spool_is_refused(h: Harness) -> None:
    h.start()
    second = h.daemon()
    with pytest.raises(LockHeld) as info:
        second.acquire()
    message = str(info.value)
    assert f"another queued (pid {os.getpid()}) holds {h.spool_dir}" in message
    assert second.lock is None


def test_queued_run_exits_1_while_another_daemon_holds_the_lock(h: Harness) -> None:
    h.start()
    proc = subprocess.run(
        [str(BIN / "queued"), "run", "--config", str(h.config_path)],
        env=dict(os.environ),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == b""
    [line] = proc.stderr.decode().splitlines()
    assert line.startswith("queued: ")
    assert f"another queued (pid {os.getpid()}) holds {h.spool_dir}" in line


@pytest.mark.parametrize("problem", ["group-writable", "world-writable", "other owner"])
def test_the_daemon_refuses_a_spool_others_can_write_or_own(
    h: Harness, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    """Anyone who can write the spool can make the daemon POST what they like with the
    user's token: the daemon refuses to run there, and says how to fix it."""
    from hookclient.errors import SpoolError

    h.spool.ensure()
    if problem == "group-writable":
        h.spool_dir.chmod(0o770)
    elif problem == "world-writable":
        h.spool_dir.chmod(0o707)
    else:
        real = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    d = h.daemon()
    with pytest.raises(SpoolError) as refused:
        d.start()
    message = str(refused.value)
    assert str(h.spool_dir) in message and "\n" not in message
    if problem == "other owner":
        assert f"owned by uid {real}" in message and "chown" in message
    else:
        assert "writable by" in message and f"chmod 700 {h.spool_dir}" in message
    assert d.lock is None and not (h.spool_dir / "daemon.pid").exists()


def test_the_lock_is_released_at_close(h: Harness) -> None:
    first = h.start()
    assert json.loads((h.spool_dir / "daemon.pid").read_text())["pid"] == os.getpid()
    first.close()
    assert not (h.spool_dir / "daemon.pid").exists()
    second = h.start()
    assert second.lock is not None


# -- order, --once, idle -------------------------------------------------------------------


def test_one_worker_delivers_in_creation_order(h: Harness, router: respx.MockRouter) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    # request ids sort the opposite way of creation: only the file names give the order
    records = [h.add(envelope(h.clock, n=n, at=h.clock.at - n)) for n in range(8)]
    assert sorted(r.request_id for r in records) == [r.request_id for r in reversed(records)]
    names = [r.path.name for r in records]
    assert names == sorted(names)
    d = h.start()
    d.drain_due()
    assert sent_ids(route) == [r.request_id for r in records]


def test_drain_due_delivers_what_is_due_and_leaves_the_rest(
    h: Harness, router: respx.MockRouter
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    now = h.clock.at
    due = [h.add(envelope(h.clock, n=n), due=now - n) for n in range(3)]
    later = [h.add(envelope(h.clock, n=10 + n), due=now + 100 + n) for n in range(2)]
    d = h.start()
    d.drain_due()
    assert sorted(sent_ids(route)) == sorted(r.request_id for r in due)
    assert h.names("pending") == sorted(r.path.name for r in later)
    for r in later:
        state = h.body("pending", r.path.name)["state"]
        assert state["attempts"] == 0
        assert state["nextAttemptAt"] == r.state["nextAttemptAt"]
    assert d.agenda.next_due() == now + 100
    assert not d.inflight


def test_idle_exit_with_an_empty_agenda(h: Harness) -> None:
    d = h.start(idle_exit=5)
    assert not d._idle_expired()
    h.clock.advance(4.9)
    assert not d._idle_expired()
    h.clock.advance(0.1)
    assert d._idle_expired()


def test_idle_exit_zero_never_expires(h: Harness) -> None:
    d = h.start(idle_exit=0)
    h.clock.advance(10**6)
    assert not d._idle_expired()


def test_an_event_in_flight_or_in_backoff_keeps_the_daemon_alive(
    h: Harness, router: respx.MockRouter
) -> None:
    release = threading.Event()
    entered = threading.Event()
    answers = iter([503, 200])

    def slow(request: httpx.Request) -> httpx.Response:
        entered.set()
        assert release.wait(30)
        return httpx.Response(next(answers))

    router.post(URL).mock(side_effect=slow)
    record = h.add()
    d = h.start(idle_exit=5)
    assert d.step() == 1
    assert entered.wait(30)
    h.clock.advance(100)
    assert d.inflight
    assert not d._idle_expired()  # in flight
    release.set()
    d._wait_inflight()

    assert h.body("pending", record.path.name)["state"]["retries"] == 0
    h.clock.advance(30)
    assert not d._idle_expired()  # waiting on backoff (due in 30 s more)
    h.clock.advance(30)
    d.drain_due()
    assert h.names("pending") == []
    assert not d._idle_expired()  # the delivery itself was activity
    h.clock.advance(5)
    assert d._idle_expired()


def test_loop_exits_when_idle(h: Harness) -> None:
    d = h.start(idle_exit=5)
    h.clock.advance(5)
    d.loop()  # returns at once: nothing pending, nothing in flight, idle for 5 s
    [line] = h.log("queue", "idle exit")
    assert line["idleExit"] == 5


def test_loop_returns_when_stopping(h: Harness, router: respx.MockRouter) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    h.add()
    d = h.start()
    d.stopping = True  # what SIGTERM does
    d.loop()
    assert not route.called  # nothing new is claimed once stopping
    assert len(h.names("pending")) == 1


def test_a_first_signal_only_asks_the_loop_to_stop(h: Harness) -> None:
    d = h.start()
    d._on_signal(signal.SIGTERM, None)  # (a second one would os._exit at once)
    assert d.stopping
    assert d.wake.is_set()
    assert d.step() == 0


def test_wait_time_sleeps_until_the_next_due_time(h: Harness, router: respx.MockRouter) -> None:
    router.post(URL).mock(return_value=httpx.Response(503))
    h.add()
    d = h.start(h.config(rescan_interval=3600.0))
    assert d._wait_time() == 0.01  # due now (floored: never a busy loop at 0)
    d.drain_due()
    assert d._wait_time() == 60.0  # its retry
    h.clock.advance(50)
    assert d._wait_time() == 10.0


def test_wait_time_while_the_breaker_is_open_is_the_cooldown_not_a_busy_loop(
    h: Harness,
) -> None:
    h.add()
    d = h.daemon(h.config(rescan_interval=3600.0, breaker_failures=1, breaker_cooldown=30.0))
    Breaker(h.spool_dir / "breaker.json", failures=1, cooldown=30.0, now=h.clock.now).failure()
    d.start()
    assert d.agenda.next_due() == h.clock.at  # due now, but nobody may send it
    assert d._wait_time() == 30.0
    h.clock.advance(29)
    assert d._wait_time() == 1.0
    h.clock.advance(1)
    assert d._wait_time() == 0.01  # half-open: time for the probe


def test_wait_time_while_every_worker_is_busy_waits_for_one_to_finish(
    h: Harness, router: respx.MockRouter
) -> None:
    release = threading.Event()
    router.post(URL).mock(
        side_effect=lambda request: httpx.Response(200 if release.wait(30) else 500)
    )
    for n in range(3):
        h.add(envelope(h.clock, n=n))
    d = h.start(h.config(rescan_interval=3600.0))
    assert d.step() == 1
    assert d.inflight
    assert d.agenda.next_due() == h.clock.at  # two more are due
    assert d._wait_time() == 3600.0  # not 0: the delivery's end wakes the loop
    release.set()
    d.drain_due()
    assert h.names("pending") == []


def test_a_file_the_observer_missed_is_found_by_the_rescan(
    h: Harness, router: respx.MockRouter
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    d = h.start(h.config(rescan_interval=30.0))
    record = h.add()  # no observer (watch=False): nobody tells the daemon
    assert d.step() == 0
    d.drain_due()
    assert len(d.agenda) == 0  # not known before the rescan
    assert not route.called
    h.clock.advance(29.0)
    d.drain_due()
    assert not route.called
    h.clock.advance(1.0)  # the rescan is due
    d.drain_due()
    assert sent_ids(route) == [record.request_id]
    assert h.names("pending") == []


def test_the_observer_notices_a_new_file_without_a_rescan(
    h: Harness, router: respx.MockRouter
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    d = h.start(h.config(rescan_interval=3600.0), watch=True, clock=None)
    rescan_at = d.next_rescan
    assert d.observer is not None
    record = h.spool.add(envelope(h.clock), new_state(time.time(), due=time.time()), State.PENDING)

    def delivered() -> bool:
        d.step()
        d.wake.wait(0.02)
        d.wake.clear()
        return route.called and not d.inflight

    wait_for(delivered, timeout=20)
    assert sent_ids(route) == [record.request_id]
    assert d.next_rescan == rescan_at  # no rescan happened
    assert h.names("pending") == []


def test_a_file_spooled_just_after_the_first_scan_is_still_noticed(
    h: Harness, router: respx.MockRouter
) -> None:
    """The observer must already watch when the start-up scan lists pending/."""
    route = router.post(URL).mock(return_value=httpx.Response(200))
    d = h.daemon(h.config(rescan_interval=3600.0), watch=True, clock=None)
    first_scan = d.rescan
    late: list[Record] = []

    def scan_then_a_hook_spools() -> None:
        first_scan()
        if not late:  # a hook writes its event right after the listing
            now = time.time()
            late.append(h.spool.add(envelope(h.clock), new_state(now, due=now), State.PENDING))

    d.rescan = scan_then_a_hook_spools  # type: ignore[method-assign]
    d.start()
    [record] = late

    def delivered() -> bool:
        d.step()
        d.wake.wait(0.02)
        d.wake.clear()
        return route.called and not d.inflight

    wait_for(delivered, timeout=20)
    assert sent_ids(route) == [record.request_id]


# -- `queued run --once` in-process -----------------------------------------------------


@pytest.fixture
def keep_signals() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_queued_run_once_delivers_what_is_due_and_exits_0(
    h: Harness, router: respx.MockRouter, keep_signals: None
) -> None:
    from queued.cli import main

    route = router.post(URL).mock(return_value=httpx.Response(200))
    h.config()
    now = time.time()
    due = [
        h.spool.add(envelope(h.clock, n=n), new_state(now, due=now), State.PENDING)
        for n in range(3)
    ]
    later = h.spool.add(envelope(h.clock, n=9), new_state(now, due=now + 3600), State.PENDING)
    assert main(["run", "--once", "--config", str(h.config_path)]) == 0
    assert sorted(sent_ids(route)) == sorted(r.request_id for r in due)
    assert h.names("pending") == [later.path.name]
    assert not (h.spool_dir / "daemon.pid").exists()  # the lock was given back
    assert [line["msg"] for line in h.log("queue")][-1] == "daemon stopped"


# -- records that parse but cannot be sent -------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [{"drop": "traceId"}, {"state": {"attempts": "three"}}],
    ids=["no-traceId", "attempts-not-a-number"],
)
def test_a_record_that_cannot_be_sent_is_quarantined_not_retried_forever(
    h: Harness, router: respx.MockRouter, damage: dict[str, Any]
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    env = envelope(h.clock)
    if "drop" in damage:
        del env[damage["drop"]]
    bad = h.add(env, **damage.get("state", {}))
    good = h.add(envelope(h.clock, n=1))

    d = h.start()
    d.drain_due()
    h.clock.advance(3600)
    d.next_rescan = 0.0
    d.drain_due()  # a rescan does not bring it back

    assert h.names("corrupt") == [bad.path.name]
    assert h.names("pending") == h.names("processing") == []
    assert sent_ids(route) == [good.request_id]
    [line] = h.log("error", "corrupt file quarantined")
    assert line["requestId"] == bad.request_id and "cannot be sent" in line["error"]


def test_a_rescan_that_fails_is_logged_and_the_daemon_goes_on(
    h: Harness, router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    router.post(URL).mock(return_value=httpx.Response(200))
    d = h.start()

    def broken() -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(d, "rescan", broken)
    d.next_rescan = 0.0
    d.step()  # must not raise
    [line] = h.log("error", "rescan failed")
    assert "Permission denied" in line["error"]


def test_retention_removes_old_failed_and_corrupt_files_and_logs_each(h: Harness) -> None:
    old_failed = h.add(envelope(h.clock, n=1), where=State.FAILED)
    new_failed = h.add(envelope(h.clock, n=2), where=State.FAILED)
    corrupt = h.spool_dir / "corrupt" / "20260101T000000000000Z-gone.json"
    corrupt.write_bytes(b"{")
    month_ago = h.clock.at - 31 * 86400
    for path in (old_failed.path, corrupt):
        os.utime(path, (month_ago, month_ago))
    os.utime(new_failed.path, (h.clock.at, h.clock.at))

    h.start(h.config(retention=30 * 86400))

    assert h.names("failed") == [new_failed.path.name]
    assert h.names("corrupt") == []
    lines = h.log("queue", "removed by retention")
    assert sorted((x["state"], x["file"]) for x in lines) == sorted(
        [("failed", old_failed.path.name), ("corrupt", corrupt.name)]
    )
    assert old_failed.request_id in {x.get("requestId") for x in lines}


def test_retention_zero_keeps_everything(h: Harness) -> None:
    record = h.add(envelope(h.clock), where=State.FAILED)
    os.utime(record.path, (0, 0))
    h.start(h.config(retention=0))
    assert h.names("failed") == [record.path.name]


# -- the wall clock stepped by a day ----------------------------------------------------
# NTP, a user, or a laptop's clock catching up after suspend can move wall time by hours.
# Spool files keep wall times (people read them); the agenda runs on the monotonic clock.
# After a jump nothing may wait longer than the longest backoff step, nothing go twice.

DAY = 86_400.0
LONGEST = max(SCHEDULE)


def settle(harness: Harness, d: object, seconds: float, step: float = 10.0) -> None:
    """Let ``seconds`` of (fake) time pass in steps, draining at each."""
    waited = 0.0
    while waited < seconds:
        harness.clock.advance(step)
        waited += step
        d.drain_due()  # type: ignore[attr-defined]


@pytest.mark.parametrize("jump", [-DAY, DAY], ids=["back-a-day", "forward-a-day"])
def test_events_in_backoff_go_out_within_their_delay_after_a_jump(
    h: Harness, router: respx.MockRouter, jump: float
) -> None:
    up = {"ok": False}
    route = router.post(URL).mock(side_effect=lambda r: httpx.Response(200 if up["ok"] else 503))
    records = [h.add(envelope(h.clock, n=n)) for n in range(5)]
    d = h.start(h.config(backoff=list(SCHEDULE), max_retries=10))
    d.drain_due()  # five first attempts, all 503: each due again in 60 s
    assert len(route.calls) == 5

    h.clock.jump(jump)
    up["ok"] = True
    late = h.add(envelope(h.clock, n=99))  # spooled after the jump: due now
    d.rescan()
    d.drain_due()
    assert sent_ids(route)[-1] == late.request_id

    settle(h, d, SCHEDULE[0])  # the delay they were given, not a day more
    assert h.names("pending") == h.names("processing") == h.names("failed") == []
    counts = Counter(sent_ids(route))
    assert {r.request_id: counts[r.request_id] for r in records} == dict.fromkeys(
        (r.request_id for r in records), 2
    )  # one 503, one 200: none twice after delivery
    assert counts[late.request_id] == 1


def test_a_daemon_started_after_the_clock_went_back_keeps_the_delay_in_the_file(
    h: Harness, router: respx.MockRouter
) -> None:
    """The file says due at T+300, set at T; the clock now reads T - 1 day."""
    route = router.post(URL).mock(return_value=httpx.Response(200))
    at = h.clock.now()
    record = h.add(due=at + 300.0, lastAttemptAt="")
    body = h.body("pending", record.path.name)
    body["state"]["lastAttemptAt"] = body["state"]["createdAt"]
    (h.spool_dir / "pending" / record.path.name).write_text(json.dumps(body))
    h.clock.jump(-DAY)
    d = h.start(h.config(backoff=list(SCHEDULE)))
    d.drain_due()
    assert len(route.calls) == 0  # not due yet: it was given 300 s
    settle(h, d, 300.0)
    assert sent_ids(route) == [record.request_id]


def test_the_breaker_does_not_stay_open_for_a_day_after_the_clock_went_back(
    h: Harness, router: respx.MockRouter
) -> None:
    up = {"ok": False}
    route = router.post(URL).mock(side_effect=lambda r: httpx.Response(200 if up["ok"] else 503))
    for n in range(3):
        h.add(envelope(h.clock, n=n))
    d = h.start(h.config(backoff=[1.0], breaker_failures=2, breaker_cooldown=30.0))
    d.drain_due()
    breaker = Breaker(h.spool_dir / "breaker.json", failures=2, cooldown=30.0, now=h.clock.now)
    assert breaker.is_open()

    h.clock.jump(-DAY)  # openUntil is now a day and 30 s away on the wall clock
    up["ok"] = True
    settle(h, d, 30.0, step=1.0)
    assert not breaker.is_open()
    assert h.names("pending") == []
    assert len(set(sent_ids(route))) == 3
    assert breaker.check() == "closed"


def test_a_forward_jump_does_not_fire_the_whole_backlog_twice(
    h: Harness, router: respx.MockRouter
) -> None:
    route = router.post(URL).mock(return_value=httpx.Response(200))
    records = [h.add(envelope(h.clock, n=n)) for n in range(20)]
    d = h.start(h.config(backoff=list(SCHEDULE)))
    h.clock.jump(DAY)
    d.drain_due()
    d.rescan()
    settle(h, d, LONGEST, step=600.0)
    assert sorted(sent_ids(route)) == sorted(r.request_id for r in records)
