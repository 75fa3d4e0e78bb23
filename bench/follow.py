"""The daemon following transcripts (issue 19's targets), in one run:

- live: a real Claude Code session (the pinned CLI, offline, the scripted fake model of
  tests/claude: thinking and text around two tool calls, a subagent, a long output),
  with the daemon running: for each transcript line, the time from the CLI's timestamp
  in the record to the store's ``received_at``; median and p95 (target <= 3 s);
- memory: the daemon's RSS (VmRSS) while it follows ``--sessions`` transcripts (default
  1,000), each named by one hook event in its spool, against the RSS of the same daemon
  following none (the yardstick, same run).

Usage: .venv/bin/python bench/follow.py [--sessions 1000] [--no-live]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hookclient.envelope import StdinCapture, build  # noqa: E402
from hookclient.spool import Spool, State, new_state  # noqa: E402
from tests.conftest import TOKEN, start_receiver, wait_for  # noqa: E402

BIN = Path(sys.executable).parent


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def config_file(work: Path, url: str, projects: Path) -> Path:
    path = work / "hookclient.toml"
    path.write_text(
        f'[endpoint]\nurl = "{url}"\n[queue]\ndir = "{work / "spool"}"\n'
        f'[logs]\ndir = "{work / "logs"}"\n[transcripts]\nprojects_dir = "{projects}"\n'
    )
    return path


def daemon_rss(work: Path, sessions: int) -> tuple[int, float]:
    """(RSS in KiB, seconds to ship them all) of a daemon following ``sessions``."""
    projects = work / "projects" / "-bench"
    projects.mkdir(parents=True)
    rx = start_receiver(work, name=f"rx{sessions}")
    config = config_file(work, rx.url, projects.parent)
    spool = Spool(work / "spool")
    for _ in range(sessions):
        session = str(uuid.uuid4())
        path = projects / f"{session}.jsonl"
        lines = [
            {
                "type": "user",
                "uuid": str(uuid.uuid4()),
                "sessionId": session,
                "message": {"role": "user", "content": f"prompt {n}"},
            }
            for n in range(5)
        ]
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        payload = json.dumps(
            {
                "hook_event_name": "UserPromptSubmit",
                "session_id": session,
                "transcript_path": str(path),
            }
        ).encode()
        envelope = build(
            StdinCapture(payload, len(payload), False, False),
            event_flag=None,
            redact_keys=(),
            limit=1 << 20,
        )
        spool.add(envelope, new_state(time.time(), due=time.time()), State.PENDING)
    env = {**os.environ, "HOOKCLIENT_TOKEN": TOKEN}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "queued"), "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def shipped() -> bool:
            with sqlite3.connect(rx.db) as conn:
                (n,) = conn.execute("SELECT COUNT(DISTINCT session_id) FROM records").fetchone()
            return int(n) >= sessions

        wait_for(shipped, timeout=3600, interval=0.2)
        took = time.perf_counter() - start
        time.sleep(2.0)  # let it settle into following: nothing left to read
        return rss_kib(proc.pid), took
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        rx.stop()


def live(work: Path) -> list[float]:
    """Seconds from each transcript line's own timestamp to its arrival in the store."""
    from tests.claude.cli import ensure_claude
    from tests.claude.fake_model import FakeModel
    from tests.claude.session import claude_env, run_claude, write_toml
    from tests.test_claude_transcripts import RICH, SUBAGENT, TOOLS

    claude = ensure_claude(dict(os.environ))
    work.mkdir(parents=True)
    rx = start_receiver(work, name="live")
    home, project = work / "home", work / "project"
    home.mkdir()
    project.mkdir()
    config = write_toml(
        work / "live.toml",
        {
            "endpoint": {"url": rx.url},
            "queue": {"dir": str(work / "live-spool")},
            "logs": {"dir": str(work / "live-logs")},
        },
    )
    env = {**os.environ, "HOME": str(home), "HOOKCLIENT_TOKEN": TOKEN}
    subprocess.run(
        [str(BIN / "hookclient"), "install", "--scope", "project", "--config", str(config)],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    try:
        with FakeModel(RICH, agents={"SUBTASK": SUBAGENT}) as model:
            session = run_claude(
                claude,
                project,
                claude_env(model.url, home, HOOKCLIENT_TOKEN=TOKEN),
                "do the whole thing",
                allowed_tools=TOOLS,
            )
        session_id = session.result["session_id"]
        files = list((home / ".claude" / "projects").rglob("*.jsonl"))
        expected = sum(len(p.read_text().splitlines()) for p in files)

        def arrived() -> list[tuple[str, str]]:
            with sqlite3.connect(rx.db) as conn:
                rows = conn.execute(
                    "SELECT r.timestamp, r.received_at FROM records r JOIN session_records s"
                    " ON s.record_id = r.id WHERE s.session_id = ?",
                    (session_id,),
                ).fetchall()
            return [(a, b) for a, b in rows]

        wait_for(lambda: len(arrived()) >= expected * 0.9, timeout=120)
        time.sleep(3.0)
        return [_epoch(b) - _epoch(a) for a, b in arrived() if a and b]
    finally:
        subprocess.run(
            [str(BIN / "queued"), "stop", "--config", str(config)],
            env=env,
            capture_output=True,
            check=False,
        )
        rx.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--no-live", action="store_true")
    args = parser.parse_args()
    print(f"follow bench, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-follow-"))
    if not args.no_live:
        delays = sorted(live(work / "live"))
        p95 = delays[max(0, round(0.95 * len(delays)) - 1)]
        print(
            f"  live: {len(delays)} transcript lines, line -> store: median "
            f"{statistics.median(delays):.2f} s, p95 {p95:.2f} s (target <= 3 s)"
        )
    one, _ = daemon_rss(work / "one", 1)
    many, took = daemon_rss(work / "many", args.sessions)
    print(f"  RSS following 1 transcript: {one / 1024:.1f} MiB (the yardstick)")
    print(
        f"  RSS following {args.sessions:,} transcripts: {many / 1024:.1f} MiB "
        f"({many / one:.2f}x; all shipped in {took:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
