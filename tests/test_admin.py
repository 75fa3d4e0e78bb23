"""The queue admin commands (queued status / list / show / replay-failed / purge),
run in-process through ``queued.cli.main`` on spools prepared in tmp_path."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from hookclient.clock import FakeClock, parse_iso, utc_iso
from hookclient.config import load_config
from hookclient.logs import LogWriter
from hookclient.spool import Record, Spool, State, new_state
from queued import admin
from queued.cli import main
from queued.daemon import Daemon

URL = "http://127.0.0.1:8931/hooks"  # loopback: no plain-http warning in the logs
DAY = 86400.0


def rid(n: int, prefix: str = "0191aaaa") -> str:
    return f"{prefix}-{n:04d}-7000-8000-{n:012d}"


class AdminEnv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.spool_dir = root / "spool"
        self.log_dir = root / "logs"
        self.config_path = root / "hookclient.toml"
        self.spool = Spool(self.spool_dir)
        self.write_config(self.spool_dir)

    def write_config(self, spool_dir: Path, url: str = URL) -> None:
        self.config_path.write_text(
            "[endpoint]\n"
            f"url = {json.dumps(url)}\n"
            "[delivery]\n"
            "autostart = false\n"  # replay, flush and adopt start no daemon here
            "[queue]\n"
            f"dir = {json.dumps(str(spool_dir))}\n"
            "[logs]\n"
            f"dir = {json.dumps(str(self.log_dir))}\n"
        )

    def add(
        self,
        where: State,
        n: int,
        *,
        event: str = "Stop",
        prefix: str = "0191aaaa",
        created_ago: float = 60.0,
        due_in: float = 0.0,
        status: int | None = None,
        attempted_ago: float | None = None,
        retries: int = 0,
    ) -> Record:
        now = time.time()
        envelope = {
            "schemaVersion": 1,
            "requestId": rid(n, prefix),
            "traceId": f"{n + 1:032x}",
            "spanId": f"{n + 1:016x}",
            "event": event,
            "sessionId": "s-admin",
            "timestamp": utc_iso(now - created_ago),
            "payload": {"hook_event_name": event, "session_id": "s-admin", "n": n},
        }
        state = new_state(now - created_ago, due=now + due_in)
        state["retries"] = retries
        if status is not None:
            at = now - (attempted_ago if attempted_ago is not None else created_ago)
            state["attempts"] = retries + 1
            state["lastAttemptAt"] = utc_iso(at)
            state["lastError"] = {"kind": "http", "status": status, "detail": f"HTTP {status}"}
            state["history"] = [
                {"at": utc_iso(at), "attempt": 1, "by": "daemon", "outcome": "permanent"}
            ]
        if where is State.PROCESSING:
            state["owner"] = {"pid": 1, "by": "hook", "claimedAt": utc_iso(now)}
        return self.spool.add(envelope, state, where)

    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args, "--config", str(self.config_path)])
        out, err = capsys.readouterr()
        return code, out, err

    def only_pending_due(self) -> str:
        [record] = [r for r in self.spool.records(State.PENDING) if isinstance(r, Record)]
        return str(record.state["nextAttemptAt"])

    def names(self, state: str) -> list[str]:
        directory = self.spool_dir / state
        return sorted(p.name for p in directory.iterdir()) if directory.exists() else []

    def body(self, state: str, record: Record) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.spool_dir / state / record.path.name).read_text())
        return data

    def log(self, stream: str, msg: str) -> list[dict[str, Any]]:
        path = self.log_dir / f"{stream}.log"
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return [line for line in lines if line["msg"] == msg]


@pytest.fixture
def env(tmp_path: Path) -> AdminEnv:
    return AdminEnv(tmp_path)


@pytest.fixture
def full(env: AdminEnv) -> AdminEnv:
    """A spool with files in every state."""
    env.add(State.PENDING, 1, created_ago=7200.0, due_in=-30.0)
    env.add(State.PENDING, 2, event="PostToolUse", created_ago=600.0, due_in=-120.0)
    env.add(State.PROCESSING, 3)
    env.add(State.FAILED, 4, status=401, retries=0)
    env.add(State.FAILED, 5, event="PostToolUse", status=503, retries=5)
    (env.spool_dir / "corrupt" / "20260101T000000000000Z-bad.json").write_bytes(b"{")
    (env.spool_dir / "tmp" / "20260101T000000000000Z-x.json.99.tmp").write_bytes(b"{")
    return env


# -- status ------------------------------------------------------------------------------


def test_status_of_a_spool_with_every_state(
    full: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = full.run(capsys, "status")
    assert code == 0
    assert err == ""
    lines = dict(
        (line.split(None, 1)[0], line.split(None, 1)[1]) if " " in line else (line, "")
        for line in out.splitlines()
    )
    assert lines["spool"].strip() == str(full.spool_dir)
    assert lines["endpoint"].strip() == URL
    assert lines["events"].split() == [
        *("pending", "2", "processing", "1", "failed", "2"),
        *("corrupt", "1", "tmp", "1"),
    ]
    assert lines["oldest"].strip() == "2.0h ago (pending)"
    due = parse_iso(lines["next"].split()[-1])  # "next due    <time>"
    assert abs(due - (time.time() - 120.0)) < 5
    assert lines["daemon"].strip() == "not running"
    assert lines["breaker"].strip() == "closed (0 failures in a row)"
    assert "last sent   -" in out
    assert "last error  -" in out


def test_status_json(full: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = full.run(capsys, "status", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["counts"] == {"pending": 2, "processing": 1, "failed": 2, "corrupt": 1, "tmp": 1}
    assert 7190 <= info["oldestPendingAgeSeconds"] <= 7300
    assert abs(parse_iso(info["nextDueAt"]) - (time.time() - 120.0)) < 5
    assert info["daemon"] is None
    assert info["breaker"] == {"state": "closed", "failures": 0}
    assert info["spool"] == str(full.spool_dir)
    assert info["endpoint"] == URL
    assert info["lastDelivery"] is None
    assert info["lastFailure"] is None


def test_status_shows_breaker_last_delivery_and_last_failure(
    full: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    until = time.time() + 25  # within the 30 s cooldown (further means the clock went back)
    (full.spool_dir / "breaker.json").write_text(
        json.dumps({"state": "open", "failures": 5, "openUntil": until})
    )
    writer = LogWriter(full.log_dir, component="daemon")
    spool = str(full.spool_dir)
    writer.log("success", "info", "delivered", requestId=rid(7), status=200, spool=spool)
    writer.log("success", "info", "delivered", requestId=rid(8), status=202, spool=spool)
    writer.log(
        "error",
        "error",
        "failed permanently",
        requestId=rid(9),
        status=404,
        error="nope",
        spool=spool,
    )
    writer.log(
        "error", "warning", "attempt", requestId=rid(10), status=503, spool=spool
    )  # not a failure

    code, out, _ = full.run(capsys, "status")
    assert code == 0
    assert f"breaker     open until {utc_iso(until)} (5 failures in a row)" in out
    [sent] = [line for line in out.splitlines() if line.startswith("last sent")]
    assert "delivered" in sent and rid(8) in sent and "HTTP 202" in sent
    [failed] = [line for line in out.splitlines() if line.startswith("last error")]
    assert "failed permanently" in failed and rid(9) in failed and "HTTP 404" in failed
    assert "nope" in failed

    info = json.loads(full.run(capsys, "status", "--json")[1])
    assert info["breaker"]["state"] == "open"
    assert info["lastDelivery"]["requestId"] == rid(8)
    assert info["lastFailure"]["requestId"] == rid(9)

    (full.spool_dir / "breaker.json").write_text(
        json.dumps({"state": "open", "failures": 5, "openUntil": time.time() - 1})
    )
    info = json.loads(full.run(capsys, "status", "--json")[1])
    assert info["breaker"]["state"] == "half-open (next attempt probes)"


OTHER_URL = "http://127.0.0.1:8932/hooks"


@pytest.mark.parametrize("outage", ["refused", "503"])
def test_status_reads_only_its_own_spools_lines_and_says_why_during_an_outage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], outage: str
) -> None:
    """Two endpoints, two spools, one logs directory (the default): each status shows
    its own last delivery and last failure, and a retryable failure is a failure."""
    shared = tmp_path / "logs"
    for name in ("up", "down"):
        (tmp_path / name).mkdir()
    up, down = AdminEnv(tmp_path / "up"), AdminEnv(tmp_path / "down")
    for env, url in ((up, URL), (down, OTHER_URL)):
        env.log_dir = shared
        env.write_config(env.spool_dir, url)

    def drain(env: AdminEnv) -> None:
        config = load_config([env.config_path], environ={})
        daemon = Daemon(config, clock=FakeClock(time.time()), watch=False, workers=1)
        daemon.start()
        try:
            daemon.drain_due()
        finally:
            daemon.close()

    with respx.mock(assert_all_called=False) as router:
        up_route = router.post(URL).mock(return_value=httpx.Response(200))
        down_route = router.post(OTHER_URL).mock(return_value=httpx.Response(200))
        down.add(State.PENDING, 1, prefix="0191bbbb")
        drain(down)  # delivered, before the outage
        if outage == "503":
            down_route.mock(return_value=httpx.Response(503))
        else:
            down_route.mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
        down.add(State.PENDING, 2, prefix="0191bbbb")
        drain(down)  # the outage: will retry
        up.add(State.PENDING, 1)
        drain(up)  # the newest delivery is the other endpoint's
        up_route.mock(return_value=httpx.Response(404))
        up.add(State.PENDING, 2)
        drain(up)  # and so is the newest failure

    [retry] = [
        json.loads(x)
        for x in (shared / "error.log").read_text().splitlines()
        if json.loads(x)["msg"] == "delivery failed, will retry"
    ]
    why = (
        "HTTP 503  HTTP 503 Service Unavailable"
        if outage == "503"
        else ("ConnectError: [Errno 111] Connection refused")
    )
    out = down.run(capsys, "status")[1].splitlines()
    [sent] = [line for line in out if line.startswith("last sent")]
    assert rid(1, "0191bbbb") in sent and rid(1) not in sent and "HTTP 200" in sent
    assert (
        f"last error  {retry['ts']}  delivery failed, will retry  {rid(2, '0191bbbb')}  {why}"
        in out
    )
    info = json.loads(down.run(capsys, "status", "--json")[1])
    assert info["lastFailure"]["spool"] == str(down.spool_dir)
    assert info["lastFailure"]["nextAttemptAt"] == down.only_pending_due()

    out = up.run(capsys, "status")[1].splitlines()
    [sent] = [line for line in out if line.startswith("last sent")]
    assert rid(1) in sent and "0191bbbb" not in sent
    [failed] = [line for line in out if line.startswith("last error")]
    assert "failed permanently" in failed and rid(2) in failed and "HTTP 404" in failed


def test_status_names_a_running_daemon(full: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config([full.config_path], environ={})
    daemon = Daemon(
        config, clock=FakeClock(), watch=False, workers=1, idle_exit=600, autostarted=True
    )
    daemon.start()
    try:
        code, out, _ = full.run(capsys, "status")
        info = json.loads(full.run(capsys, "status", "--json")[1])
    finally:
        daemon.close()
    assert code == 0
    expected = f"running, pid {os.getpid()} (autostarted by a hook, exits after 600 s idle)"
    assert f"daemon      {expected}" in out
    assert info["daemon"]["pid"] == os.getpid()
    assert "daemon      not running" in full.run(capsys, "status")[1]


# -- list ---------------------------------------------------------------------------------


def test_list_every_state_oldest_first(full: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = full.run(capsys, "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        *("requestId", "state", "event", "createdAt"),
        *("retries", "nextAttemptAt", "lastStatus"),
    ]
    assert [row.split()[0] for row in rows] == [rid(1), rid(2), rid(3), rid(4), rid(5)]
    assert [row.split()[1] for row in rows] == [
        *("pending", "pending", "processing", "failed", "failed")
    ]
    assert rows[4].split()[-1] == "503"
    assert rows[0].split()[-1] == "-"


def test_list_filters(full: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    def ids(*args: str) -> list[str]:
        code, out, _ = full.run(capsys, "list", "--json", *args)
        assert code == 0
        return [row["requestId"] for row in json.loads(out)]

    assert ids("--state", "failed") == [rid(4), rid(5)]
    assert ids("--state", "pending") == [rid(1), rid(2)]
    assert ids("--state", "processing") == [rid(3)]
    assert ids("--event", "PostToolUse") == [rid(2), rid(5)]
    assert ids("--event", "PostToolUse", "--state", "failed") == [rid(5)]
    assert ids("--event", "Nothing") == []
    assert ids("--limit", "1") == [rid(1)]
    assert ids("--limit", "3") == [rid(1), rid(2), rid(3)]
    assert ids("--limit", "0") == []
    assert ids("--event", "PostToolUse", "--limit", "1") == [rid(2)]


def test_list_json_rows(full: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = full.run(capsys, "list", "--json", "--state", "failed")
    assert code == 0
    first, second = json.loads(out)
    assert first["requestId"] == rid(4)
    assert first["state"] == "failed"
    assert first["event"] == "Stop"
    assert first["sessionId"] == "s-admin"
    assert first["lastStatus"] == 401
    assert first["lastError"] == "HTTP 401"
    assert first["attempts"] == 1
    assert second["retries"] == 5
    assert second["file"].endswith(f"-{rid(5)}.json")


def test_list_of_an_empty_spool(env: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    env.spool.ensure()
    assert env.run(capsys, "list") == (0, "no events\n", "")
    assert env.run(capsys, "list", "--json") == (0, "[]\n", "")


def test_list_rejects_an_unknown_state(full: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = full.run(capsys, "list", "--state", "corrupt")
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert "invalid choice" in line and "queued list --help" in line


# -- show ---------------------------------------------------------------------------------


def test_show_by_full_id_and_by_prefix(full: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = full.run(capsys, "show", rid(4))
    assert code == 0
    shown = json.loads(out)
    assert shown["where"] == "failed"
    assert shown["file"] == str(next((full.spool_dir / "failed").glob(f"*-{rid(4)}.json")))
    assert shown["envelope"]["requestId"] == rid(4)
    assert shown["envelope"]["payload"]["n"] == 4

    code, out, _ = full.run(capsys, "show", rid(2)[:-1])  # a unique prefix
    assert code == 0
    shown = json.loads(out)
    assert shown["where"] == "pending"
    assert shown["envelope"]["requestId"] == rid(2)
    assert shown["envelope"]["event"] == "PostToolUse"

    code, out, _ = full.run(capsys, "show", rid(3)[:20])
    assert code == 0
    assert json.loads(out)["where"] == "processing"


def test_show_prints_the_state_and_its_history(
    full: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = full.run(capsys, "show", rid(5))
    assert code == 0
    shown = json.loads(out)
    on_disk = json.loads(Path(shown["file"]).read_text())
    assert shown["state"] == on_disk["state"]
    assert shown["envelope"] == on_disk["envelope"]
    assert shown["state"]["retries"] == 5
    assert shown["state"]["lastError"]["status"] == 503
    assert shown["state"]["history"] == [
        {
            "at": on_disk["state"]["lastAttemptAt"],
            "attempt": 1,
            "by": "daemon",
            "outcome": "permanent",
        }
    ]


def test_show_ambiguous_and_unknown(full: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = full.run(capsys, "show", "0191aaaa")
    assert (code, out) == (1, "")
    [line] = err.splitlines()
    assert line == "queued: 0191aaaa matches 5 events; give more of the id"

    code, out, err = full.run(capsys, "show", "0191bbbb")
    assert (code, out) == (1, "")
    [line] = err.splitlines()
    assert line.startswith("queued: no event 0191bbbb in ")
    assert "delivered events leave no file" in line


def test_show_does_not_match_the_time_stamp_or_the_middle_of_an_id(
    full: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    [name] = [n for n in full.names("failed") if rid(4) in n]
    stamp = name.split("-", 1)[0]
    assert full.run(capsys, "show", stamp)[0] == 1
    assert full.run(capsys, "show", rid(4)[4:])[0] == 1  # the middle of an id
    assert full.run(capsys, "show", "")[0] == 1


# -- replay-failed ----------------------------------------------------------------------


@pytest.fixture
def failed(env: AdminEnv) -> AdminEnv:
    env.add(State.FAILED, 1, event="Stop", status=401, created_ago=4 * DAY, attempted_ago=3 * DAY)
    env.add(State.FAILED, 2, event="PostToolUse", status=500, attempted_ago=600.0)
    env.add(State.FAILED, 3, event="Stop", status=500, created_ago=3600.0, attempted_ago=1800.0)
    env.add(State.PENDING, 4, event="Stop")  # not failed: never touched by replay
    return env


SELECTORS = [
    pytest.param([rid(1)], [1], id="full-id"),
    pytest.param([rid(2)[:-1], rid(3)], [2, 3], id="prefix-and-id"),
    pytest.param(["--all"], [1, 2, 3], id="all"),
    pytest.param(["--event", "Stop"], [1, 3], id="event"),
    pytest.param(["--status", "401"], [1], id="status"),
    pytest.param(["--status", "500"], [2, 3], id="status-500"),
    pytest.param(["--since", "1h"], [2, 3], id="since-duration"),
    pytest.param(["--since", "15m"], [2], id="since-minutes"),
    pytest.param(["--since", "SINCE_ISO"], [2, 3], id="since-iso"),
    pytest.param(["--event", "Stop", "--status", "500"], [3], id="event-and-status"),
    pytest.param(["--status", "404"], [], id="nothing-matches"),
]


@pytest.mark.parametrize(("args", "expected"), SELECTORS)
def test_replay_failed_selectors(
    failed: AdminEnv, capsys: pytest.CaptureFixture[str], args: list[str], expected: list[int]
) -> None:
    args = [utc_iso(time.time() - DAY) if a == "SINCE_ISO" else a for a in args]
    before = {n: n for n in failed.names("failed")}
    start = time.time()
    code, out, err = failed.run(capsys, "replay-failed", *args)
    assert code == 0, err
    moved_ids = [rid(n) for n in expected]
    lines = out.splitlines()
    if expected:
        assert lines[-1] == "no daemon runs: start one with `queued run` (or `queued run --once`)"
        lines = lines[:-1]
    assert lines[-1] == f"{len(expected)} event(s) moved from failed/ to pending/"
    assert [line.split()[1] for line in lines[:-1]] == moved_ids
    for line in lines[:-1]:
        assert line.startswith("moved  ")
        assert "last status" in line

    pending = failed.names("pending")
    for n in expected:
        [name] = [x for x in pending if x.endswith(f"-{rid(n)}.json")]
        state = json.loads((failed.spool_dir / "pending" / name).read_text())["state"]
        assert state["retries"] == 0
        assert start - 1 <= parse_iso(state["nextAttemptAt"]) <= time.time() + 1
        assert state["history"][-1]["by"] == "replay-failed"
        assert state["history"][-1]["outcome"] == "replayed"
        assert state["lastError"]["status"] in (401, 500)  # kept for the record
    assert len(pending) == 1 + len(expected)
    assert len(failed.names("failed")) == len(before) - len(expected)
    logged = failed.log("queue", "replayed from failed")
    assert [line["requestId"] for line in logged] == moved_ids
    for entry in logged:
        assert entry["component"] == "cli"
        assert entry["state"] == "pending"


def test_replay_failed_dry_run_moves_nothing(
    failed: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {s: failed.names(s) for s in ("pending", "failed")}
    bodies = {n: (failed.spool_dir / "failed" / n).read_bytes() for n in before["failed"]}
    code, out, _ = failed.run(capsys, "replay-failed", "--all", "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[-1] == "3 event(s) would move from failed/ to pending/"
    assert [line.split()[:2] for line in lines[:-1]] == [
        ["would", "move"],
        ["would", "move"],
        ["would", "move"],
    ]
    assert {s: failed.names(s) for s in ("pending", "failed")} == before
    for name, data in bodies.items():
        assert (failed.spool_dir / "failed" / name).read_bytes() == data
    assert failed.log("queue", "replayed from failed") == []


def test_replay_failed_json(failed: AdminEnv, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = failed.run(capsys, "replay-failed", "--status", "401", "--json")
    assert code == 0
    [row] = json.loads(out)
    assert row["requestId"] == rid(1)
    assert row["lastStatus"] == 401
    assert row["state"] == "failed"  # where it was


def test_replay_failed_refuses_without_a_selector(
    failed: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    before = failed.names("failed")
    code, out, err = failed.run(capsys, "replay-failed")
    assert (code, out) == (1, "")
    [line] = err.splitlines()
    assert line.startswith("queued: replay-failed needs a selector")
    for word in ("REQUEST_ID", "--all", "--event", "--status", "--since", "--dry-run"):
        assert word in line
    assert failed.names("failed") == before


def test_replay_failed_with_an_unreadable_since(
    failed: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = failed.run(capsys, "replay-failed", "--since", "yesterday-ish")
    assert (code, out) == (1, "")
    assert "cannot read --since 'yesterday-ish'" in err
    assert len(failed.names("failed")) == 3


def test_replayed_events_are_delivered_by_the_daemon(
    failed: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert failed.run(capsys, "replay-failed", rid(1))[0] == 0
    config = load_config([failed.config_path], environ={})
    daemon = Daemon(config, watch=False, workers=1)
    with respx.mock(assert_all_called=False) as router:
        route = router.post(URL).mock(return_value=httpx.Response(200))
        daemon.start()
        try:
            daemon.drain_due()
        finally:
            daemon.close()
    sent = {json.loads(c.request.content)["requestId"]: c.request for c in route.calls}
    assert sorted(sent) == [rid(1), rid(4)]
    assert sent[rid(1)].headers["X-Hook-Attempt"] == "2"  # its second attempt in all
    assert sent[rid(4)].headers["X-Hook-Attempt"] == "1"
    assert failed.names("failed") == sorted(n for n in failed.names("failed") if rid(1) not in n)
    assert len(failed.names("failed")) == 2


# -- purge ---------------------------------------------------------------------------------


@pytest.fixture
def aged(env: AdminEnv) -> tuple[AdminEnv, list[str], list[str]]:
    old, new = [], []
    for n in range(4):
        record = env.add(State.FAILED, n, status=500)
        if n < 2:
            stamp = time.time() - 40 * DAY
            os.utime(record.path, (stamp, stamp))
            old.append(record.path.name)
        else:
            new.append(record.path.name)
    corrupt = env.spool_dir / "corrupt" / "20260101T000000000000Z-bad.json"
    corrupt.write_bytes(b"\x00")
    os.utime(corrupt, (time.time() - 40 * DAY,) * 2)
    return env, old, new


def test_purge_with_yes_deletes_only_old_files(
    aged: tuple[AdminEnv, list[str], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    env, old, new = aged
    code, out, _ = env.run(capsys, "purge", "--state", "failed", "--older-than", "30d", "--yes")
    assert code == 0
    assert env.names("failed") == sorted(new)
    lines = out.splitlines()
    assert lines[-1] == "2 file(s) deleted"
    assert sorted(line.split()[1] for line in lines[:-1]) == sorted(old)
    assert env.names("corrupt") == ["20260101T000000000000Z-bad.json"]  # other state


def test_purge_corrupt(
    aged: tuple[AdminEnv, list[str], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    env, _, _ = aged
    code, out, _ = env.run(capsys, "purge", "--state", "corrupt", "--older-than", "7d", "--yes")
    assert code == 0
    assert env.names("corrupt") == []
    assert len(env.names("failed")) == 4
    assert out.splitlines()[-1] == "1 file(s) deleted"


def test_purge_without_yes_and_no_tty_refuses(
    aged: tuple[AdminEnv, list[str], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    env, old, new = aged
    code, out, _ = env.run(capsys, "purge", "--state", "failed", "--older-than", "30d")
    assert code == 1
    assert "not confirmed: nothing deleted" in out
    assert "--yes" in out
    assert env.names("failed") == sorted(old + new)


def test_purge_asks_on_a_tty(
    aged: tuple[AdminEnv, list[str], list[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env, old, new = aged
    answers = iter(["n", "y"])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert env.run(capsys, "purge", "--state", "failed", "--older-than", "30d")[0] == 1
    assert env.names("failed") == sorted(old + new)
    assert env.run(capsys, "purge", "--state", "failed", "--older-than", "30d")[0] == 0
    assert env.names("failed") == sorted(new)


def test_purge_with_nothing_old_enough(
    aged: tuple[AdminEnv, list[str], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    env, old, new = aged
    code, out, _ = env.run(capsys, "purge", "--state", "failed", "--older-than", "60d", "--yes")
    assert (code, out) == (0, "nothing in failed/ older than 60d\n")
    assert env.names("failed") == sorted(old + new)


def test_purge_with_a_bad_duration(
    aged: tuple[AdminEnv, list[str], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    env, old, new = aged
    code, _, err = env.run(capsys, "purge", "--state", "failed", "--older-than", "a while")
    assert code == 1
    assert "cannot read duration 'a while'" in err
    assert env.names("failed") == sorted(old + new)


def test_the_purge_that_status_suggests_for_corrupt_files_works_as_written(
    env: AdminEnv, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warning's command is run word for word: accepted, it asks, and it deletes every
    corrupt file, one written just now and one dated in the future (a skewed clock) too."""
    (env.spool_dir / "pending").mkdir(parents=True)
    corrupt = env.spool_dir / "corrupt"
    corrupt.mkdir()
    (corrupt / "20260101T000000000000Z-now.json").write_bytes(b"\x00")
    ahead = corrupt / "20260101T000000000000Z-ahead.json"
    ahead.write_bytes(b"{")
    os.utime(ahead, (time.time() + 3600,) * 2)
    [warning] = admin.status(load_config([env.config_path], environ={}))["warnings"]
    suggested = warning.split("`")[-2]
    assert suggested == "queued purge --state corrupt --older-than 0"
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: "y")

    code, out, err = env.run(capsys, *shlex.split(suggested)[1:])

    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "2 file(s) deleted"
    assert env.names("corrupt") == []


def test_purge_of_a_state_directory_that_was_never_made(
    env: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    (env.spool_dir / "pending").mkdir(parents=True)  # a spool from before corrupt/ existed
    code, out, err = env.run(capsys, "purge", "--state", "corrupt", "--older-than", "1d", "--yes")
    assert (code, out, err) == (0, "nothing in corrupt/ older than 1d\n", "")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("7d", 604800), ("2w", 1209600)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert admin.parse_duration(text) == seconds


# -- no spool, help --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["list"],
        ["show", rid(1)],
        ["replay-failed", "--all"],
        ["purge", "--state", "failed", "--older-than", "1d", "--yes"],
    ],
)
def test_a_spool_that_does_not_exist(
    env: AdminEnv, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    missing = env.root / "nowhere"
    env.write_config(missing)
    code, out, err = env.run(capsys, *args)
    assert (code, out) == (1, "")
    [line] = err.splitlines()
    assert line.startswith(f"queued: no spool at {missing}: nothing was ever spooled")
    assert not missing.exists()  # looking does not create it


HELP = {
    "run": ["--once", "--workers", "--idle-exit", "--config"],
    "status": ["--config", "--json"],
    "list": ["--state", "--event", "--limit", "--config", "--json"],
    "show": ["REQUEST_ID", "--config"],
    "replay-failed": ["REQUEST_ID", "--all", "--event", "--status", "--since", "--dry-run"],
    "purge": ["--state", "--older-than", "--yes", "--config"],
}


@pytest.mark.parametrize("command", sorted(HELP))
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: queued {command}")
    for flag in HELP[command]:
        assert flag in out


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in HELP:
        assert command in out


def test_no_command_prints_help_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "usage: queued" in captured.err


def test_status_warns_about_failed_corrupt_and_a_stuck_backlog(
    env: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    env.add(State.PENDING, 1, created_ago=3 * 3600.0)  # older than the last step (7200 s)
    env.add(State.FAILED, 2, status=401)
    (env.spool_dir / "corrupt" / "20260101T000000000000Z-bad.json").write_bytes(b"{")

    code, out, _ = env.run(capsys, "status")
    warnings = [line for line in out.splitlines() if line.startswith("warning")]
    assert code == 0 and len(warnings) == 3
    assert "1 event(s) in failed/" in warnings[0] and "replay-failed" in warnings[0]
    assert "3.0 h, longer than the last backoff step" in warnings[1]
    assert "1 file(s) in corrupt/" in warnings[2]
    assert "\033[" not in out  # not a terminal: no colour

    env.spool_dir.joinpath("failed").joinpath(env.names("failed")[0]).unlink()
    code, out, _ = env.run(capsys, "status", "--json")
    assert len(json.loads(out)["warnings"]) == 2


def test_status_finds_its_own_last_line_under_another_spools_megabytes(
    full: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another endpoint's busy daemon wrote 3 MB since this spool's last delivery,
    and lines written before the spool field (none) are not taken for this spool's."""
    mine = LogWriter(full.log_dir, component="daemon", max_bytes=1 << 30)
    mine.log(
        "success", "info", "delivered", requestId=rid(7), status=200, spool=str(full.spool_dir)
    )
    other = str(full.root / "elsewhere" / "spool")
    with (full.log_dir / "success.log").open("a") as fh:
        for n in range(10_000):
            line = {"ts": "t", "msg": "delivered", "requestId": rid(n, "0191cccc"), "spool": other}
            fh.write(json.dumps(line, separators=(",", ":")) + " " * (n % 300) + "\n")
        fh.write(json.dumps({"ts": "t", "msg": "delivered", "requestId": rid(9)}) + "\n")
    assert (full.log_dir / "success.log").stat().st_size > 3_000_000
    info = json.loads(full.run(capsys, "status", "--json")[1])
    assert info["lastDelivery"]["requestId"] == rid(7)
    assert info["lastFailure"] is None


@pytest.mark.parametrize("block", [1, 7, 64, 65536])
def test_lines_backwards_gives_every_line_newest_first(tmp_path: Path, block: int) -> None:
    path = tmp_path / "x.log"
    lines = [f"line {n} " + "x" * (n * 7 % 50) for n in range(200)]
    path.write_text("\n".join(lines) + "\n")
    got = [raw.decode() for raw in admin._lines_backwards(path, block) if raw]
    assert got == lines[::-1]
    path.write_text("no newline at the end")
    assert list(admin._lines_backwards(path, block)) == [b"no newline at the end"]
