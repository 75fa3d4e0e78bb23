"""``hookclient backfill``, run as a user runs it: real transcripts under a projects
directory, a real receiver, the daemon it starts; the check is the store's rows."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import sqlite3
import struct
import subprocess
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BIN, HookEnv, Receiver, kill_daemons, wait_for
from tests.test_conversations import LARGE, RICH, SUBAGENT, TRANSCRIPTS

SESSIONS = sorted(p.stem for p in TRANSCRIPTS.glob("*/*.jsonl"))


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    """Every sample transcript, with its subagent and tool-result folders, in one project."""
    folder = tmp_path / "claude" / "projects" / "-home-me-proj"
    for sample in (p for p in TRANSCRIPTS.iterdir() if p.is_dir()):
        shutil.copytree(sample, folder, dirs_exist_ok=True)
    return folder.parent


@pytest.fixture
def env(hook: HookEnv, receiver: Receiver, projects: Path) -> Iterator[HookEnv]:
    hook.configure(
        endpoint={"url": receiver.url},
        delivery={"mode": "auto"},
        queue={"idle_exit": 5.0},
        transcripts={"projects_dir": str(projects)},
    )
    yield hook
    kill_daemons(hook.spool)


def backfill(env: HookEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "hookclient"), "backfill", "--config", str(env.config), *args],
        env=env.env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def store(receiver: Receiver, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(receiver.db) as conn:
        return conn.execute(sql, params).fetchall()


def drained(env: HookEnv) -> bool:
    return not env.files("pending") and not env.files("processing")


def lines_of_all() -> int:
    """Every transcript line, and every tool-result file (a record of its own)."""
    lines = sum(len(p.read_text().splitlines()) for p in TRANSCRIPTS.rglob("*.jsonl"))
    return lines + len(list(TRANSCRIPTS.glob("*/*/tool-results/*.txt")))


def test_backfill_brings_every_session_to_the_store_once(env: HookEnv, receiver: Receiver) -> None:
    done = backfill(env)
    assert done.returncode == 0, done.stderr
    [summary] = done.stdout.splitlines()
    assert summary.startswith(f"backfill: spooled {lines_of_all()} records (")
    assert "started a daemon (pid " in summary and done.stderr == ""
    wait_for(lambda: drained(env) and len(env.files("pending")) == 0, timeout=60)
    sessions = [row[0] for row in store(receiver, "SELECT session_id FROM sessions ORDER BY 1")]
    assert sessions == SESSIONS
    kinds = store(
        receiver,
        "SELECT kind FROM messages WHERE session_id = ? ORDER BY position",
        RICH.stem,
    )
    assert [k for (k,) in kinds] == [
        "prompt",
        "assistant",
        "tool_result",
        "tool_result",
        "assistant",
    ]
    full = (LARGE.parent / LARGE.stem / "tool-results" / "bpfz5n2lv.txt").read_text()
    outputs = [o for (o,) in store(receiver, "SELECT output FROM tool_calls") if o == full]
    assert len(outputs) == 1  # the whole tool output, from its tool-result file
    agents = store(receiver, "SELECT COUNT(*) FROM messages WHERE session_id = ?"
                   " AND agent_id IS NOT NULL", SUBAGENT.stem)  # fmt: skip
    assert agents[0][0] > 0
    before = store(receiver, "SELECT COUNT(*) FROM records")[0][0]

    again = backfill(env)
    assert again.stdout.startswith("backfill: spooled 0 records (0.0 kB) from 0 of ")
    assert env.files("pending") == []

    forced = backfill(env, "--force")
    assert forced.stdout.startswith(f"backfill: spooled {lines_of_all()} records")
    wait_for(lambda: drained(env), timeout=60)
    assert store(receiver, "SELECT COUNT(*) FROM records")[0][0] == before  # nothing twice
    duplicates = store(receiver, "SELECT COUNT(*) FROM messages GROUP BY session_id, uuid, "
                       "message_id, kind HAVING COUNT(*) > 1")  # fmt: skip
    assert duplicates == []


def test_dry_run_counts_and_writes_nothing(env: HookEnv) -> None:
    done = backfill(env, "--dry-run", "--json")
    counts = json.loads(done.stdout)
    assert counts == {
        "files": len(list(TRANSCRIPTS.rglob("*.jsonl"))),
        "records": lines_of_all(),
        "bytes": counts["bytes"],
        "envelopes": counts["envelopes"],
        "skipped": 0,
        "errors": 0,
    }
    assert counts["bytes"] > 0 and counts["envelopes"] >= len(SESSIONS)
    assert not env.spool.exists() and not env.logs.exists()


def test_session_and_since_choose_what_is_read(env: HookEnv, projects: Path) -> None:
    one = json.loads(backfill(env, "--session", RICH.stem, "--dry-run", "--json").stdout)
    assert one["records"] == len(RICH.read_text().splitlines()) and one["files"] == 1
    old = projects / "-home-me-proj" / RICH.name
    os.utime(old, (1_600_000_000, 1_600_000_000))  # 2020
    since = json.loads(backfill(env, "--since", "2021-01-01", "--dry-run", "--json").stdout)
    assert since["files"] == len(list(TRANSCRIPTS.rglob("*.jsonl"))) - 1


def test_bad_input_is_one_line_naming_the_fix(env: HookEnv, tmp_path: Path) -> None:
    bad = backfill(env, "--since", "last week")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr == (
        "hookclient: backfill: --since 'last week' is not a date: use YYYY-MM-DD or an ISO "
        "time such as 2026-12-01T09:00\n"
    )
    missing = backfill(env, "--projects-dir", str(tmp_path / "nowhere"))
    [line] = missing.stderr.splitlines()
    assert line.startswith(f"hookclient: backfill: no projects directory at {tmp_path / 'nowhere'}")
    assert "--projects-dir DIR" in line


def test_on_a_terminal_it_shows_a_progress_bar(env: HookEnv) -> None:
    out, err = pty.openpty()
    fcntl.ioctl(err, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    with subprocess.Popen(
        [str(BIN / "hookclient"), "backfill", "--config", str(env.config), "--dry-run"],
        env=env.env(), stdout=subprocess.PIPE, stderr=err, text=True,
    ) as proc:  # fmt: skip
        os.close(err)
        shown = b""
        while True:
            try:
                chunk = os.read(out, 4096)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            shown += chunk
        summary = proc.stdout.read() if proc.stdout else ""
    os.close(out)
    text = shown.decode()
    assert "backfill: 100%" in text and "records=" in text and "B/s" in text
    assert summary.startswith("backfill: would spool ")


def test_with_sync_off_backfill_refuses_and_says_how_to_turn_it_on(env: HookEnv) -> None:
    done = subprocess.run(
        [str(BIN / "hookclient"), "backfill", "--config", str(env.config)],
        env={**env.env(), "HOOKCLIENT_TRANSCRIPTS_SYNC": "false"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "hookclient: backfill: [transcripts] sync is false (env HOOKCLIENT_TRANSCRIPTS_SYNC): "
        "this machine ships hook events only; set sync = true (or "
        "HOOKCLIENT_TRANSCRIPTS_SYNC=1) to backfill\n"
    )
    assert not env.spool.exists()


def test_a_session_or_a_folder_that_names_nothing_is_said_not_skipped(
    env: HookEnv, projects: Path
) -> None:
    unknown = backfill(env, "--session", RICH.stem[:8], "--dry-run")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith(
        f"hookclient: backfill: no transcript under {projects} for session {RICH.stem[:8]}: "
        "give full session ids"
    )
    one_project = projects / "-home-me-proj"
    inside = backfill(env, "--projects-dir", str(one_project), "--dry-run")
    assert inside.returncode == 1
    assert inside.stderr.strip().endswith(f"(--projects-dir {projects})")


def test_a_projects_dir_flag_with_a_tilde_is_the_home_folder(env: HookEnv, projects: Path) -> None:
    home = Path(env.env()["HOME"])
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    shutil.copytree(projects, home / ".claude" / "projects")
    done = backfill(env, "--projects-dir", "~/.claude/projects", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"] == lines_of_all()
