"""The whole conversation, from the real Claude Code CLI (pinned, offline) to the store.

A scripted session gives the CLI everything a transcript holds that hooks do not: a
reply of thinking and text around two parallel tool calls, a subagent (the Agent tool)
with its own tool call, and a command printing more than the 30,000 characters the CLI
keeps in a tool_result (the rest goes to a tool-result file). The check is always the
store's rows: the assistant's intermediate text and thinking, each tool call once, the
subagent's messages, the full tool output, no duplicates; whether the store was up during
the session, down until after it, or the spool was lost and ``hookclient backfill``
brought it all from the transcript. ``--resume`` and ``--fork-session`` come out as one
growing session and a fork of it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import test_claude_cli
from tests.claude.fake_model import FakeModel, Text, Thinking, ToolUse, Turn
from tests.claude.session import Session
from tests.conftest import BIN, TOKEN, Receiver, wait_for
from tests.test_claude_cli import ECHO_SCRIPT, Rig, free_port, report, start_receiver_on

pytestmark = pytest.mark.claude
#: the real-CLI rig's fixtures, found by pytest under these names
claude_cli = test_claude_cli.claude_cli
rig = test_claude_cli.rig

SEQ = 40_000  # `seq 1 40000` prints 228,894 bytes: past the CLI's 30,000-character cut
RICH: list[Turn] = [
    [
        Thinking("THINK-1 two commands, then a subagent"),
        Text("INTERMEDIATE-1 I will run two commands."),
        ToolUse("Bash", {"command": "echo one"}),
        ToolUse("Bash", {"command": "echo two"}),
    ],
    [
        ToolUse(
            "Agent",
            {
                "description": "fake subtask",
                "prompt": "SUBTASK: run echo",
                "subagent_type": "general-purpose",
            },
        )
    ],
    [ToolUse("Bash", {"command": f"seq 1 {SEQ}"})],
    [Text("FINAL-DONE")],
]
SUBAGENT: list[Turn] = [[ToolUse("Bash", {"command": "echo sub"})], [Text("SUB-DONE")]]
CALLS = {
    "toolu_fake_00_02",
    "toolu_fake_00_03",
    "toolu_fake_01_00",
    "toolu_fake_02_00",
    "toolu_fake_a0_00_00",
}
TOOLS = "Bash(echo:*) Bash(seq:*) Agent"


def rich_session(rig: Rig) -> Session:
    with FakeModel(RICH, agents={"SUBTASK": SUBAGENT}) as model:
        session = rig.run(model, "do the whole thing", allowed_tools=TOOLS)
    assert session.returncode == 0, session.stderr
    assert session.result["result"] == "FINAL-DONE", session.result
    assert session.hook_trouble() == [], session.stderr
    return session


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def transcripts(rig: Rig, session_id: str) -> list[Path]:
    """The session's transcript files under the CLI's projects dir (main, subagents)."""
    projects = rig.home / ".claude" / "projects"
    main = list(projects.glob(f"*/{session_id}.jsonl"))
    return main + sorted(projects.glob(f"*/{session_id}/subagents/agent-*.jsonl"))


def whole(db: Path, session_id: str) -> bool:
    """The store holds the conversation a transcript has and hooks do not."""
    calls = {c for (c,) in query(db, "SELECT tool_use_id FROM tool_calls")}
    texts = " ".join(
        t or ""
        for (t,) in query(db, "SELECT content FROM messages WHERE session_id = ?", session_id)
    )
    return (
        calls >= CALLS
        and all(word in texts for word in ("THINK-1", "INTERMEDIATE-1", "SUB-DONE", "FINAL-DONE"))
        and _full_output(db) is not None
    )


def _full_output(db: Path) -> str | None:
    [(output,)] = query(
        db, "SELECT output FROM tool_calls WHERE tool_use_id = 'toolu_fake_02_00'"
    ) or [(None,)]
    expected = "\n".join(str(n) for n in range(1, SEQ + 1))
    return output if isinstance(output, str) and output.strip() == expected else None


def check_store(db: Path, rig: Rig, session_id: str, scenario: str) -> None:
    """Every tool call once, the subagent's messages under its session, the full output,
    no message twice; one ``E2E`` report line with the counts."""
    calls = query(db, "SELECT tool_use_id, COUNT(*) FROM tool_calls GROUP BY tool_use_id")
    assert {c for c, _ in calls} >= CALLS and all(n == 1 for _, n in calls)
    agents = query(
        db,
        "SELECT COUNT(*) FROM messages WHERE session_id = ? AND agent_id IS NOT NULL",
        session_id,
    )
    assert agents[0][0] >= 2  # the subagent's reply with its tool call, and its last text
    duplicates = query(
        db,
        "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE session_id = ? "
        "AND uuid IS NOT NULL GROUP BY uuid, kind HAVING COUNT(*) > 1)",
        session_id,
    )
    assert duplicates == [(0,)]
    [(complete, prompts)] = query(
        db, "SELECT complete, prompts FROM sessions WHERE session_id = ?", session_id
    )
    assert complete == 1 and prompts == 1
    lines = sum(len(p.read_text().splitlines()) for p in transcripts(rig, session_id))
    report(
        scenario,
        transcript_records=lines,
        records=query(db, "SELECT COUNT(*) FROM records")[0][0],
        messages=query(db, "SELECT COUNT(*) FROM messages WHERE session_id = ?", session_id)[0][0],
        tool_calls=len(calls),
        duplicates=duplicates[0][0],
    )


def test_the_store_holds_the_whole_conversation_of_a_real_session(
    rig: Rig, receiver: Receiver
) -> None:
    rig.configure(receiver.url, delivery={"mode": "auto"})
    rig.install()
    session = rich_session(rig)
    session_id = session.result["session_id"]
    wait_for(lambda: whole(receiver.db, session_id), timeout=90)
    check_store(receiver.db, rig, session_id, "transcripts, store up")


def test_with_the_store_down_everything_arrives_once_after_it_is_back(
    rig: Rig, tmp_path: Path
) -> None:
    port = free_port()
    rig.configure(
        f"http://127.0.0.1:{port}/hooks",
        delivery={"mode": "auto"},
        queue={"backoff": [1.0], "jitter": 0.0, "breaker_cooldown": 1.0},
    )
    rig.install()
    session = rich_session(rig)
    session_id = session.result["session_id"]
    wait_for(
        lambda: any(b["envelope"]["event"] == "Transcript" for b in rig.bodies("pending")),
        timeout=60,
    )
    rx = start_receiver_on(tmp_path, port, "back")
    try:
        wait_for(lambda: whole(rx.db, session_id), timeout=120)
        check_store(rx.db, rig, session_id, "transcripts, store down during the session")
    finally:
        rx.stop()


def test_with_the_spool_lost_backfill_brings_the_conversation_from_the_transcript(
    rig: Rig, tmp_path: Path
) -> None:
    port = free_port()
    rig.configure(f"http://127.0.0.1:{port}/hooks", delivery={"mode": "spool"})
    rig.install()
    session = rich_session(rig)
    session_id = session.result["session_id"]
    shutil.rmtree(rig.spool)  # every event of the session lost: only the transcript is left
    rx = start_receiver_on(tmp_path, port, "after")
    try:
        done = subprocess.run(
            [
                str(BIN / "hookclient"),
                "backfill",
                "--config",
                str(rig.config),
                "--projects-dir",
                str(rig.home / ".claude" / "projects"),
            ],
            env={**os.environ, "HOOKCLIENT_TOKEN": TOKEN},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("backfill: spooled "), done.stdout
        wait_for(lambda: whole(rx.db, session_id), timeout=120)
        assert query(rx.db, "SELECT COUNT(*) FROM events WHERE event != 'Transcript'") == [(0,)]
        check_store(rx.db, rig, session_id, "transcripts, spool lost, backfill")
    finally:
        rx.stop()


def test_resume_grows_one_session_and_a_fork_is_a_session_of_its_own(
    rig: Rig, receiver: Receiver
) -> None:
    rig.configure(receiver.url, delivery={"mode": "auto"})
    rig.install()
    script = [*ECHO_SCRIPT, [Text("RESUMED")], [Text("FORKED")]]
    with FakeModel(script) as model:
        first = rig.run(model)
        session_id = first.result["session_id"]
        resumed = rig.run(model, "and more", args=["--resume", session_id])
        forked = rig.run(model, "fork it", args=["--resume", session_id, "--fork-session"])
    assert (first.result["result"], resumed.result["result"]) == ("done", "RESUMED")
    assert forked.result["result"] == "FORKED"
    fork_id = forked.result["session_id"]
    assert resumed.result["session_id"] == session_id and fork_id != session_id

    def stored() -> bool:
        rows = dict(query(receiver.db, "SELECT session_id, forked_from FROM sessions"))
        texts = " ".join(
            t or ""
            for (t,) in query(
                receiver.db, "SELECT content FROM messages WHERE session_id = ?", fork_id
            )
        )
        return rows.get(fork_id) == session_id and "FORKED" in texts

    wait_for(stored, timeout=90)
    sessions = dict(query(receiver.db, "SELECT session_id, prompts FROM sessions"))
    assert sessions == {session_id: 2, fork_id: 3}  # the fork repeats both earlier prompts
    [(complete,)] = query(
        receiver.db, "SELECT complete FROM sessions WHERE session_id = ?", fork_id
    )
    assert complete == 1
    files = transcripts(rig, session_id) + transcripts(rig, fork_id)
    uuids = {json.loads(x).get("uuid") for p in files for x in p.read_text().splitlines()}
    uuids.discard(None)
    stored_uuids = query(receiver.db, "SELECT COUNT(*) FROM records WHERE uuid IS NOT NULL")
    assert stored_uuids == [(len(uuids),)]  # the fork's copies of its parent's records: once
    report(
        "transcripts, --resume and --fork-session",
        transcript_records=sum(len(p.read_text().splitlines()) for p in files),
        records=query(receiver.db, "SELECT COUNT(*) FROM records")[0][0],
        sessions=len(sessions),
        duplicates=0,
    )
