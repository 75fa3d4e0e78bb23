"""The daemon follows the transcripts of the sessions whose events pass through it
(queued/follower.py): read ``delay`` after an event, again ``settle`` after a turn ends,
at each rescan for files that grew, and (with watchdog) when a file is written.

In-process tests drive a daemon with a fake clock and respx; the last ones run the real
``queued`` against a real receiver and check the store's rows."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from hookclient.clock import FakeClock
from hookclient.envelope import StdinCapture, build
from queued.daemon import Daemon
from tests import test_daemon_unit
from tests.conftest import (
    HookEnv,
    Receiver,
    daemon_pid,
    kill_daemons,
    start_queued,
    wait_for,
)
from tests.test_daemon_unit import URL, Harness

SESSION = "f0110e00-0000-4000-8000-000000000001"


def line(n: int) -> bytes:
    record = {"type": "user", "uuid": f"u-{n}", "parentUuid": f"u-{n - 1}" if n else None,
              "sessionId": SESSION, "promptId": f"p-{n}",
              "message": {"role": "user", "content": f"prompt {n}"}}  # fmt: skip
    return (json.dumps(record) + "\n").encode()


def hook_event(clock: FakeClock, event: str, transcript: Path) -> dict[str, Any]:
    payload = {"hook_event_name": event, "session_id": SESSION, "transcript_path": str(transcript)}
    data = json.dumps(payload).encode()
    return build(StdinCapture(data, len(data), False, False), event_flag=None, redact_keys=(),
                 limit=1 << 20, now=clock.at)  # fmt: skip


#: the in-process daemon harness's fixture, found by pytest under this name
h = test_daemon_unit.h


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(URL).mock(return_value=httpx.Response(200, json={"status": "accepted"}))
        yield mock


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    folder = tmp_path / "projects" / "-proj"
    folder.mkdir(parents=True)
    path = folder / f"{SESSION}.jsonl"
    path.write_bytes(b"")
    return path


def settle(d: Daemon) -> None:
    """Run steps until nothing is in flight and no read runs (real threads, fake clock)."""

    def quiet() -> bool:
        d.step()
        follower = d.follower
        reading = follower is not None and follower.due_now()
        return not d.inflight and not reading and not d._has_due()

    wait_for(quiet, timeout=30)


def add(h: Harness, d: Daemon, envelope: dict[str, Any]) -> None:
    """A hook's event in pending/, as the watchdog observer would report it."""
    d.notice(h.add(envelope).name)


def posted(router: respx.MockRouter) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in router.calls]


def shipped(router: respx.MockRouter) -> list[str]:
    """The uuids of the transcript records the endpoint received, in order."""
    return [
        r["uuid"] for e in posted(router) if e["event"] == "Transcript"
        for r in e["payload"]["records"]
    ]  # fmt: skip


def test_a_sessions_transcript_is_read_delay_after_its_event_and_again_after_stop(
    h: Harness, router: respx.MockRouter, transcript: Path
) -> None:
    d = h.start()
    transcript.write_bytes(line(0))
    add(h, d, hook_event(h.clock, "UserPromptSubmit", transcript))
    settle(d)
    assert shipped(router) == []  # not before `delay` (1 s): the CLI writes asynchronously
    h.clock.advance(1.0)
    settle(d)  # read, spooled, then delivered
    assert shipped(router) == ["u-0"]
    with transcript.open("ab") as fh:
        fh.write(line(1))
    add(h, d, hook_event(h.clock, "Stop", transcript))
    settle(d)
    h.clock.advance(1.0)
    settle(d)
    assert shipped(router) == ["u-0", "u-1"]
    with transcript.open("ab") as fh:  # the turn's last line, written after Stop
        fh.write(line(2))
    h.clock.advance(2.0)  # settle
    settle(d)
    assert shipped(router) == ["u-0", "u-1", "u-2"]
    [spooled] = [x for x in h.log("queue", "transcript spooled") if x["offset"] == 0]
    assert spooled["sessionId"] == SESSION and spooled["records"] == 1
    delivered = {x["requestId"] for x in h.log("success", "delivered")}
    assert spooled["requestId"] in delivered  # one requestId: spooled, then delivered


def test_at_start_and_rescan_files_that_grew_are_read(
    h: Harness, router: respx.MockRouter, transcript: Path
) -> None:
    d = h.start()
    transcript.write_bytes(line(0))
    add(h, d, hook_event(h.clock, "SessionStart", transcript))
    settle(d)
    h.clock.advance(1.0)
    settle(d)
    d.close()
    with transcript.open("ab") as fh:  # written while no daemon ran
        fh.write(line(1) + line(2))
    again = h.start()
    settle(again)  # no event of the session: the checkpoint says the file grew
    assert shipped(router) == ["u-0", "u-1", "u-2"]
    with transcript.open("ab") as fh:
        fh.write(line(3))
    h.clock.advance(30.0)  # rescan_interval
    settle(again)
    assert shipped(router) == ["u-0", "u-1", "u-2", "u-3"]


def test_with_sync_off_only_hook_events_leave(h: Harness, router: respx.MockRouter,
                                              transcript: Path) -> None:  # fmt: skip
    cfg = h.config()
    text = h.config_path.read_text() + "[transcripts]\nsync = false\n"
    h.config_path.write_text(text)
    from hookclient.config import load_config

    cfg = load_config([h.config_path], environ={})
    d = h.start(cfg)
    transcript.write_bytes(line(0))
    add(h, d, hook_event(h.clock, "Stop", transcript))
    settle(d)
    h.clock.advance(5.0)
    settle(d)
    assert [e["event"] for e in posted(router)] == ["Stop"]
    assert not (h.spool_dir / "transcripts").exists()


def test_the_real_daemon_ships_lines_as_the_cli_writes_them(
    hook: HookEnv, receiver: Receiver, tmp_path: Path
) -> None:
    """Real processes: the hook spools an event naming the transcript; queued follows the
    file (watchdog) and each line appended later reaches the store without another event."""
    folder = tmp_path / "projects" / "-proj"
    folder.mkdir(parents=True)
    transcript = folder / f"{SESSION}.jsonl"
    transcript.write_bytes(line(0))
    hook.configure(
        endpoint={"url": receiver.url},
        delivery={"mode": "spool"},
        transcripts={"delay": 0.2, "projects_dir": str(tmp_path / "projects")},
    )
    payload = {
        "hook_event_name": "UserPromptSubmit",
        "session_id": SESSION,
        "transcript_path": str(transcript),
        "prompt": "prompt 0",
        "prompt_id": "p-0",
    }
    assert hook.run(json.dumps(payload).encode()).returncode == 0
    start_queued(hook)

    def stored() -> list[str]:
        with sqlite3.connect(receiver.db) as conn:
            rows = conn.execute("SELECT uuid FROM records ORDER BY id").fetchall()
        return [u for (u,) in rows]

    wait_for(lambda: stored() == ["u-0"], timeout=30)
    for n in (1, 2, 3):
        with transcript.open("ab") as fh:
            fh.write(line(n))
        wait_for(lambda n=n: stored() == [f"u-{i}" for i in range(n + 1)], timeout=30)
    with sqlite3.connect(receiver.db) as conn:
        prompts = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE session_id = ? AND kind = 'prompt'", (SESSION,)
        ).fetchone()
    assert prompts == (4,)  # the hook's prompt 0 and the transcript's, once


def test_a_transcript_path_that_is_a_fifo_blocks_neither_the_hook_nor_the_daemon(
    hook: HookEnv, receiver: Receiver, tmp_path: Path
) -> None:
    fifo = tmp_path / f"{SESSION}.jsonl"
    os.mkfifo(fifo)  # nobody writes to it: whoever opens it to read would wait forever
    hook.configure(
        endpoint={"url": receiver.url}, delivery={"mode": "auto"},
        queue={"idle_exit": 5.0}, transcripts={"delay": 0.1},
    )  # fmt: skip
    try:
        for event in ("UserPromptSubmit", "Stop"):
            payload = {
                "hook_event_name": event,
                "session_id": SESSION,
                "transcript_path": str(fifo),
            }
            run = hook.run(json.dumps(payload).encode(), timeout=30)  # the hook never opens it
            assert (run.returncode, run.stdout) == (0, b"")
        wait_for(lambda: len(receiver.rows()) == 2, timeout=30)  # the daemon goes on delivering

        def refused() -> bool:
            return any(x["msg"] == "transcript unreadable" and "not a regular file" in x["error"]
                       for x in hook.log_lines())  # fmt: skip

        wait_for(refused, timeout=30)
    finally:
        kill_daemons(hook.spool)


def test_a_subagent_file_that_grows_alone_is_read_at_the_next_rescan(
    h: Harness, router: respx.MockRouter, transcript: Path
) -> None:
    d = h.start()
    agent = transcript.parent / SESSION / "subagents" / "agent-a1.jsonl"
    agent.parent.mkdir(parents=True)
    transcript.write_bytes(line(0))
    agent.write_bytes(line(10))
    add(h, d, hook_event(h.clock, "SubagentStop", transcript))
    settle(d)
    h.clock.advance(3.0)
    settle(d)
    assert shipped(router) == ["u-0", "u-10"]
    with agent.open("ab") as fh:  # the main transcript stays as it was
        fh.write(line(11))
    h.clock.advance(30.0)  # rescan_interval
    settle(d)
    assert shipped(router) == ["u-0", "u-10", "u-11"]


def test_a_daemon_stopped_between_an_event_and_its_read_still_follows_it_after(
    h: Harness, router: respx.MockRouter, transcript: Path
) -> None:
    d = h.start()
    transcript.write_bytes(line(0))
    add(h, d, hook_event(h.clock, "UserPromptSubmit", transcript))
    settle(d)  # the event is delivered; its transcript is due in `delay`
    d.close()  # and the daemon is gone before that
    assert shipped(router) == [] and h.names("pending") == []
    again = h.start()
    settle(again)  # nothing in pending/ names the session: its checkpoint does
    assert shipped(router) == ["u-0"]


def test_a_rescan_reads_only_the_checkpoints_it_has_not_seen(
    h: Harness, router: respx.MockRouter, transcript: Path
) -> None:
    d = h.start()
    follower = d.follower
    assert follower is not None
    for n in range(50):  # a year of sessions leaves thousands of checkpoints
        follower.syncer.remember(str(transcript.parent / f"s{n}.jsonl"), f"s{n}")
    loads: list[str] = []
    real = follower.syncer.checkpoints.load

    def counted(key: str) -> Any:
        loads.append(key)
        return real(key)

    follower.syncer.checkpoints.load = counted  # type: ignore[method-assign]
    follower._rescan()
    assert len(loads) == 50
    loads.clear()
    follower._rescan()
    assert loads == []  # one directory listing and a stat per file, no checkpoint read
    assert len(follower.sessions) == 50


def test_turning_sync_off_replaces_a_hook_started_daemon_at_the_next_event(
    hook: HookEnv, receiver: Receiver
) -> None:
    from hookclient.config import fingerprint, load_config

    hook.configure(endpoint={"url": receiver.url}, delivery={"mode": "auto"},
                   queue={"idle_exit": 30.0})  # fmt: skip
    stop = json.dumps({"hook_event_name": "Stop", "session_id": SESSION}).encode()
    try:
        assert hook.run(stop).returncode == 0
        wait_for(lambda: daemon_pid(hook.spool) is not None)
        first = daemon_pid(hook.spool)
        hook.configure(endpoint={"url": receiver.url}, delivery={"mode": "auto"},
                       queue={"idle_exit": 30.0}, transcripts={"sync": False})  # fmt: skip
        assert hook.run(stop).returncode == 0
        wait_for(lambda: daemon_pid(hook.spool) not in (None, first))
        info = json.loads((hook.spool / "daemon.pid").read_text())
        cfg = load_config([hook.config], environ=hook.env())
        assert info["fingerprint"] == fingerprint(cfg.endpoint, sync=False)
        wait_for(lambda: len(receiver.rows()) == 2)
    finally:
        kill_daemons(hook.spool)
