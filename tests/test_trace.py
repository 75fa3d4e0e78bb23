"""`hookclient trace`: a timeline across rotated logs, with other events interleaved."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hookclient.errors import TraceError
from hookclient.logs import LogWriter
from hookclient.trace import session_events, timeline
from tests.conftest import BIN, FIXTURES, HookEnv, Receiver


def write_history(log_dir: Path) -> None:
    """Three events' lines, interleaved, with rotation forced so they span files."""
    hook = LogWriter(log_dir, component="hook", max_bytes=600, backups=50)
    daemon = LogWriter(log_dir, component="daemon", max_bytes=600, backups=50)
    for n in range(3):
        rid = f"0000000{n}-aaaa-7aaa-8aaa-aaaaaaaaaaaa"
        hook.log(
            "queue", "info", "spooled", requestId=rid, event="Stop", sessionId="s1", state="pending"
        )
    for n in range(3):
        rid = f"0000000{n}-aaaa-7aaa-8aaa-aaaaaaaaaaaa"
        daemon.log(
            "queue",
            "warning",
            "attempt",
            requestId=rid,
            attempt=1,
            status=503,
            outcome="retryable",
            elapsedMs=3.1,
        )
        daemon.log("queue", "warning", "retry scheduled", requestId=rid, state="pending")
    for n in range(3):
        rid = f"0000000{n}-aaaa-7aaa-8aaa-aaaaaaaaaaaa"
        daemon.log(
            "queue",
            "info",
            "attempt",
            requestId=rid,
            attempt=2,
            status=200,
            outcome="delivered",
            elapsedMs=2.0,
        )
        daemon.log("success", "info", "delivered", requestId=rid, attempt=2, status=200)


def test_timeline_spans_rotated_files_in_order(tmp_path: Path) -> None:
    write_history(tmp_path)
    assert len(list(tmp_path.glob("queue.log.*"))) >= 2  # really rotated

    rid, lines = timeline(tmp_path, "00000001")

    assert rid == "00000001-aaaa-7aaa-8aaa-aaaaaaaaaaaa"
    assert [(x["msg"], x.get("attempt")) for x in lines] == [
        ("spooled", None),
        ("attempt", 1),
        ("retry scheduled", None),
        ("attempt", 2),
        ("delivered", 2),
    ]
    assert {x["requestId"] for x in lines} == {rid}


def test_ambiguous_and_unknown_prefixes_are_refused(tmp_path: Path) -> None:
    write_history(tmp_path)
    with pytest.raises(TraceError, match="matches 3 events"):
        timeline(tmp_path, "0000000")
    with pytest.raises(TraceError, match="no log line"):
        timeline(tmp_path, "ffff")


def test_session_lists_its_events_with_outcomes(tmp_path: Path) -> None:
    write_history(tmp_path)
    events = session_events(tmp_path, "s1")
    assert [(e["requestId"][:8], e["event"], e["outcome"]) for e in events] == [
        (f"0000000{n}", "Stop", "delivered") for n in range(3)
    ]


def test_trace_command_on_a_real_delivery_and_a_spooled_event(
    hook: HookEnv, receiver: Receiver
) -> None:
    hook.configure(endpoint={"url": receiver.url})
    hook.run((FIXTURES / "stop.json").read_bytes())
    delivered = receiver.rows()[0]["request_id"]
    hook.run((FIXTURES / "stop.json").read_bytes(), "--mode", "spool")
    [pending] = hook.bodies("pending")
    spooled = pending["envelope"]["requestId"]

    def trace(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "hookclient"), "trace", *args, "--config", str(hook.config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    out = trace(delivered[:18])
    assert out.returncode == 0, out.stderr
    assert f"requestId {delivered}" in out.stdout
    assert "claimed for direct delivery" in out.stdout and "status=200" in out.stdout
    assert out.stdout.rstrip().endswith("now: delivered")

    data = json.loads(trace(spooled, "--json").stdout)
    assert data["spool"]["state"] == "pending"
    assert [x["msg"] for x in data["lines"]] == ["spooled"]

    session = trace("--session", "3f1c2a9e-7b4d-4c1e-9a57-0d2b6e8f4c11", "--json")
    rows = json.loads(session.stdout)
    assert {(r["requestId"], r["outcome"]) for r in rows} == {
        (delivered, "delivered"),
        (spooled, "spooled"),
    }

    missing = trace("nope")
    assert missing.returncode == 1 and "no log line mentions nope" in missing.stderr
