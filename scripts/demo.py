"""`make demo`: the whole job end to end on local defaults, then an outage.

1. Start the reference receiver on a free local port with a generated token.
2. Feed every sample payload in tests/fixtures/ (the captured Claude Code 2.1.197 ones,
   the hand-written ones and the hostile ones) to `hookclient send`, as Claude Code does:
   JSON on stdin, the project directory as cwd, CLAUDE_PROJECT_DIR set.
3. Show what the receiver stored, and every log line of one event (`grep <requestId>`).
4. Stop the receiver and send more events: the first finds the endpoint down and opens
   the circuit breaker, the rest are spooled in milliseconds; list pending/.

Logs go to ./logs/ (kept, for grepping); the spool, database and config live in a
temporary directory that is removed at the end, as is every process started here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
LOGS = ROOT / "logs"
BIN = Path(sys.executable).parent
OUTAGE_EVENTS = [
    "pre-tool-use-bash.json",
    "post-tool-use-edit.json",
    "notification.json",
    "stop.json",
    "subagent-stop.json",
    "session-end.json",
]


def say(text: str = "") -> None:
    print(text, flush=True)


def samples() -> list[Path]:
    captured = sorted((FIXTURES / "claude-2.1.197").glob("*.json"))
    ours = sorted(
        p for p in FIXTURES.glob("*") if p.is_file() and p.suffix in (".json", ".txt", ".bin")
    )
    return captured + ours


def start_receiver(work: Path, token: str) -> tuple[subprocess.Popen[bytes], str]:
    port_file = work / "receiver.port"
    env = {**os.environ, "HOOKCLIENT_TOKEN": token}
    proc = subprocess.Popen(
        [
            str(BIN / "hookclient-receiver"),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--db",
            str(work / "receiver.db"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the receiver exited with {proc.returncode}")
        try:
            port = int(port_file.read_text())
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
            return proc, f"http://127.0.0.1:{port}/hooks"
        except (OSError, ValueError, httpx.HTTPError):
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("demo: the receiver did not come up within 30 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_config(work: Path, url: str) -> Path:
    config = work / "hookclient.toml"
    config.write_text(
        "[endpoint]\n"
        f'url = "{url}"\n'
        "timeout = 2.0\n"
        "[delivery]\n"
        "inline_attempts = 3\n"
        "inline_budget = 5.0\n"
        "stdin_timeout = 1.0\n"
        "[queue]\n"
        f'dir = "{work / "spool"}"\n'
        "breaker_failures = 1\n"
        "breaker_cooldown = 300\n"
        "[logs]\n"
        f'dir = "{LOGS}"\n'
    )
    return config


def send(config: Path, project: Path, sample: Path, token: str) -> dict[str, Any]:
    """Run the hook exactly as Claude Code would, and time it."""
    env = {
        **os.environ,
        "HOOKCLIENT_TOKEN": token,
        "CLAUDE_PROJECT_DIR": str(project),
        "CLAUDECODE": "1",
    }
    event = sample.stem if sample.parent.name.startswith("claude") else None
    args = [str(BIN / "hookclient"), "send", "--config", str(config)]
    if event is None and sample.name.startswith("hostile"):
        args += ["--event", "PostToolUse"]
    start = time.perf_counter()
    proc = subprocess.run(
        args,
        input=sample.read_bytes(),
        capture_output=True,
        cwd=project,
        env=env,
        timeout=60,
        check=False,
    )
    return {
        "sample": f"{sample.parent.name}/{sample.name}" if event else sample.name,
        "exit": proc.returncode,
        "stdout": len(proc.stdout),
        "stderr": proc.stderr.decode(errors="replace").strip(),
        "ms": (time.perf_counter() - start) * 1000,
    }


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    say("  " + "  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        say("  " + "  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def receiver_rows(db: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = [
            dict(r)
            for r in conn.execute(
                "SELECT request_id, event, session_id, envelope FROM events ORDER BY id"
            )
        ]
        audit = dict(conn.execute("SELECT status, COUNT(*) FROM webhook_events GROUP BY status"))
    return rows, audit


def grep(request_id: str) -> list[str]:
    lines = []
    for path in sorted(LOGS.glob("*.log*")):
        if path.is_file() and not path.name.endswith(".lock"):
            lines += [
                f"{path.relative_to(ROOT)}:{line}"
                for line in path.read_text().splitlines()
                if request_id in line
            ]
    return lines


def main() -> int:
    for old in LOGS.glob("*.log*"):
        old.unlink()
    LOGS.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hookclient-demo-"))
    project = work / "project"
    project.mkdir()
    token = secrets.token_urlsafe(24)
    receiver, url = start_receiver(work, token)
    try:
        return run(work, project, token, receiver, url)
    finally:
        stop(receiver)
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, project: Path, token: str, receiver: subprocess.Popen[bytes], url: str) -> int:
    config = write_config(work, url)
    say(f"== 1. Receiver up at {url} (token generated, db {work / 'receiver.db'})")
    say("== 2. Every sample payload through `hookclient send`, as Claude Code runs it")
    results = [send(config, project, sample, token) for sample in samples()]
    for r in results:
        r["ms"] = f"{r['ms']:.0f}"
    table(results, ["sample", "exit", "stdout", "ms"])
    bad = [r for r in results if r["exit"] != 0 or r["stdout"]]
    stop(receiver)
    rows, audit = receiver_rows(work / "receiver.db")
    say(
        f"\n== 3. Receiver stopped. It stored {len(rows)} events for {len(results)} sent "
        f"(audit: {audit})"
    )
    shown = []
    for row in rows:
        envelope = json.loads(row["envelope"])
        note = envelope.get("payloadError", "")
        shown.append(
            {
                "requestId": row["request_id"],
                "event": row["event"],
                "sessionId": (row["session_id"] or "-")[:13],
                "payloadError": note[:48],
            }
        )
    table(shown, ["requestId", "event", "sessionId", "payloadError"])
    leftover = sorted((work / "spool").glob("*/*.json"))
    say(f"  spool after delivery: {len(leftover)} files")
    if rows:
        rid = rows[0]["request_id"]
        say(f"\n== 4. Every log line of one event: grep {rid} logs/*")
        for line in grep(rid):
            say("  " + line)
    say("\n== 5. Outage: the receiver is down; events keep coming")
    outage = [send(config, project, FIXTURES / name, token) for name in OUTAGE_EVENTS]
    for r in outage:
        r["ms"] = f"{r['ms']:.0f}"
    table(outage, ["sample", "exit", "stdout", "ms"])
    breaker = json.loads((work / "spool" / "breaker.json").read_text())
    say(
        f"  breaker: {breaker['state']} after {breaker['failures']} failure(s); the first "
        "event tried the network, the others were spooled without touching it"
    )
    pending = sorted((work / "spool" / "pending").glob("*.json"))
    say(f"  pending/ ({len(pending)} files, delivered by `queued` once the endpoint is back):")
    for path in pending:
        body = json.loads(path.read_text())
        say(
            f"    {path.name}  {body['envelope']['event']}  next attempt "
            f"{body['state']['nextAttemptAt']}"
        )
    lost = len(results) - len(rows) - len(leftover)
    ok = not bad and lost == 0 and len(pending) == len(OUTAGE_EVENTS)
    say(
        f"\n== Result: {'OK' if ok else 'PROBLEM'}: {len(rows)} delivered, {lost} lost, "
        f"{len(pending)} spooled during the outage, {len(bad)} hooks misbehaved. Logs: logs/"
    )
    for r in bad:
        say(f"  {r['sample']}: exit {r['exit']}, {r['stdout']} bytes on stdout, {r['stderr']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
