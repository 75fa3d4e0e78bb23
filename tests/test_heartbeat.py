"""``[queue] heartbeat``: the daemon tells the store its backlog that often, straight to
the endpoint: the store keeps it on the host's row (the dashboard's backlog column); it is
never spooled and never retried, and a failed one is one log line."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from hookclient.spool import Spool, State, new_state
from queued.heartbeat import backlog
from tests import test_daemon_e2e
from tests.conftest import (
    HookEnv,
    Receiver,
    make_envelope,
    spool_events,
    start_queued,
    wait_for,
)
from tests.test_daemon_e2e import configure

queue_env = test_daemon_e2e.queue_env  # a HookEnv whose daemons are stopped afterwards


def test_the_backlog_counts_each_state_and_the_oldest_pendings_age(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    now = time.time()
    for n in range(3):
        spool.add(make_envelope(n, "Stop"), new_state(now, due=now + 3600), State.PENDING)
    spool.add(make_envelope(9, "Stop"), new_state(now, due=now), State.FAILED)
    found = backlog(spool, now + 90)
    assert (found["pending"], found["processing"], found["failed"]) == (3, 0, 1)
    assert 89 <= found["oldestPendingAge"] <= 91
    assert backlog(Spool(tmp_path / "empty"), now)["oldestPendingAge"] is None


def hosts(rx: Receiver) -> list[dict[str, object]]:
    with sqlite3.connect(rx.db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM hosts")]


@pytest.mark.slow
def test_the_daemon_reports_its_backlog_to_the_store_without_spooling_it(
    queue_env: HookEnv, receiver: Receiver
) -> None:
    configure(queue_env, receiver.url, heartbeat=0.3, backoff=[3600.0])
    daemon = start_queued(queue_env)
    first = wait_for(lambda: [h for h in hosts(receiver) if h["heartbeat_at"]])
    assert first[0]["pending"] == 0 and first[0]["version"]
    spool_events(queue_env.spool, 2)
    wait_for(lambda: len(receiver.rows()) == 2)
    seen = {h["heartbeat_request_id"] for h in hosts(receiver)}
    wait_for(lambda: {h["heartbeat_request_id"] for h in hosts(receiver)} - seen)  # a next one
    assert daemon.stop() == 0
    assert [row["event"] for row in receiver.rows()] == ["PostToolUse", "PostToolUse"]
    assert not any(a["event"] == "Heartbeat" for a in receiver.audit())
    for state in ("pending", "processing", "failed"):
        assert queue_env.files(state) == []  # none was ever left in the spool
    sent = [line for line in queue_env.log_lines() if line["msg"] == "heartbeat sent"]
    assert sent == []  # debug lines: the log stays quiet at the default level


@pytest.mark.slow
def test_a_heartbeat_that_fails_is_one_log_line_and_never_retried(queue_env: HookEnv) -> None:
    queue_env.configure(
        endpoint={"url": "http://127.0.0.1:9/hooks", "timeout": 1.0},
        queue={"heartbeat": 0.3, "backoff": [3600.0]},
    )
    daemon = start_queued(queue_env)

    def failed() -> list[dict[str, object]]:
        return [x for x in queue_env.log_lines() if x["msg"] == "heartbeat not delivered"]

    lines = wait_for(lambda: len(failed()) >= 3 and failed())
    assert daemon.stop() == 0
    assert all(line["level"] == "info" for line in lines)
    assert "connect" in str(lines[0]["detail"]).lower()
    # each line is a new heartbeat (its own requestId), none the retry of an earlier one
    ids = [line["requestId"] for line in failed()]
    assert len(set(ids)) == len(ids)
    for state in ("pending", "processing", "failed"):
        assert queue_env.files(state) == []
