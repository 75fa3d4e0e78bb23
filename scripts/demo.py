"""`make demo`: the whole job end to end on local defaults, then an outage and a 401.

1. Start the reference receiver on a free local port with a generated token.
2. Feed every sample payload in tests/fixtures/ (captured Claude Code 2.1.197 ones,
   hand-written ones, hostile ones) to `hookclient send` as Claude Code does: JSON on
   stdin, the project as cwd, CLAUDE_PROJECT_DIR set. Mode auto (the default): the first
   hook starts a `queued` daemon, every hook only writes a file.
3. Show what the receiver stored and every log line of one event (`grep <requestId>`).
4. Outage: the receiver stops. In direct mode the first event tries the network and
   opens the circuit breaker; the next ones are spooled in milliseconds. More events
   arrive in auto mode. pending/ fills up.
5. The receiver comes back on the same port: the daemon drains the backlog on its own.
6. The receiver's token changes: events get 401 and go to failed/. The token is fixed
   and `queued replay-failed --all` delivers them.
7. The store's API reads the conversation back: one captured session's prompt,
   assistant text and tool call (``GET /api/sessions/{id}/messages`` and ``/tools``).
8. The receiver's row count is compared with the number of events sent.

Logs go to ./logs/ (kept, for grepping); spool, database and config live in a temporary
directory that is removed at the end (``--keep DIR`` keeps them there), and every process
started here is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
LOGS = ROOT / "logs"
BIN = Path(sys.executable).parent
OUTAGE = ["pre-tool-use-bash.json", "post-tool-use-edit.json", "notification.json"]
MORE = ["stop.json", "subagent-stop.json", "user-prompt-submit.json"]
REJECTED = ["pre-compact.json", "session-start.json"]
#: The session of the captured 2.1.197 payloads: a prompt, a Bash call, the reply.
SESSION = "04aff4b6-2a3f-417c-9233-9c77515b28d9"


def say(text: str = "") -> None:
    print(text, flush=True)


def wait(predicate: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"demo: timed out after {timeout:.0f} s waiting for {what}")


class Demo:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.project = work / "project"
        self.project.mkdir()
        self.spool = work / "spool"
        self.db = work / "receiver.db"
        self.token = secrets.token_urlsafe(24)
        self.receiver: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.sent = 0

    # -- processes -------------------------------------------------------------------

    def start_receiver(self, token: str) -> None:
        port_file = self.work / "receiver.port"
        port_file.unlink(missing_ok=True)
        self.receiver = subprocess.Popen(
            [
                str(BIN / "hookclient-receiver"),
                "--port",
                str(self.port),
                "--port-file",
                str(port_file),
                "--db",
                str(self.db),
            ],
            env={**os.environ, "HOOKCLIENT_TOKEN": token},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            if self.receiver is not None and self.receiver.poll() is not None:
                raise SystemExit(f"demo: the receiver exited with {self.receiver.returncode}")
            try:
                port = int(port_file.read_text())
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
            except (OSError, ValueError, httpx.HTTPError):
                return False
            self.port = port
            return True

        wait(up, "the receiver to come up", 30)

    def stop_receiver(self) -> None:
        if self.receiver is not None:
            stop(self.receiver)
            self.receiver = None

    def stop_daemon(self) -> None:
        try:
            pid = int(json.loads((self.spool / "daemon.pid").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return
        with_signal(pid, signal.SIGTERM)
        wait(lambda: not alive(pid), "the daemon to stop", 30)

    # -- the hook -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def write_config(self) -> Path:
        config = self.work / "hookclient.toml"
        config.write_text(
            "[endpoint]\n"
            f'url = "{self.url}"\n'
            "timeout = 2.0\n"
            "[delivery]\n"
            "stdin_timeout = 1.0\n"
            "[queue]\n"
            f'dir = "{self.spool}"\n'
            "backoff = [1, 2, 4]\n"
            "breaker_failures = 1\n"
            "breaker_cooldown = 2\n"
            "idle_exit = 60\n"
            "heartbeat = 5\n"  # the backlog, for the store's dashboard
            "[logs]\n"
            f'dir = "{LOGS}"\n'
        )
        return config

    def send(self, sample: Path, *flags: str) -> dict[str, Any]:
        """Run the hook exactly as Claude Code would, and time it."""
        env = {
            **os.environ,
            "HOOKCLIENT_TOKEN": self.token,
            "CLAUDE_PROJECT_DIR": str(self.project),
            "CLAUDECODE": "1",
        }
        args = [str(BIN / "hookclient"), "send", "--config", str(self.work / "hookclient.toml")]
        if sample.name.startswith("hostile"):
            args += ["--event", "PostToolUse"]
        start = time.perf_counter()
        proc = subprocess.run(
            [*args, *flags],
            input=sample.read_bytes(),
            capture_output=True,
            cwd=self.project,
            env=env,
            timeout=60,
            check=False,
        )
        self.sent += 1
        name = sample.name if sample.parent == FIXTURES else f"{sample.parent.name}/{sample.name}"
        return {
            "sample": name,
            "exit": proc.returncode,
            "stdout": len(proc.stdout),
            "ms": f"{(time.perf_counter() - start) * 1000:.0f}",
            "stderr": proc.stderr.decode(errors="replace").strip(),
        }

    def queued(self, *args: str) -> str:
        proc = subprocess.run(
            [str(BIN / "queued"), *args, "--config", str(self.work / "hookclient.toml")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "HOOKCLIENT_TOKEN": self.token},
        )
        return (proc.stdout + proc.stderr).rstrip()

    # -- what happened -------------------------------------------------------------------

    def conversation(self, session_id: str) -> dict[str, Any]:
        """A session's messages and tool calls from /api, printed as a user would read them."""
        headers = {"Authorization": f"Bearer {self.token}"}
        base = f"http://127.0.0.1:{self.port}/api/sessions/{session_id}"
        say(f"  $ curl -H 'Authorization: Bearer ...' {base}/messages")
        messages = httpx.get(f"{base}/messages", headers=headers, timeout=10).json()["messages"]
        for message in messages:
            text = " ".join(b.get("text", "") for b in message["content"] if b["type"] == "text")
            say(
                f"    {message['position']}. {message['kind']:<9} ({message['origin']}) {text[:60]}"
            )
        say(f"  $ curl -H 'Authorization: Bearer ...' {base}/tools")
        tools = httpx.get(f"{base}/tools", headers=headers, timeout=10).json()["tool_calls"]
        for tool in tools:
            say(
                f"    {tool['name']} {json.dumps(tool['input'])[:50]} -> {tool['status']}, "
                f"{tool['duration_ms']} ms: {str(tool['output'])[:40]}"
            )
        return {"messages": messages, "tool_calls": tools}

    def rows(self) -> list[dict[str, Any]]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [
                dict(r)
                for r in conn.execute(
                    "SELECT request_id, event, session_id, envelope FROM events ORDER BY id"
                )
            ]

    def audit(self) -> dict[str, int]:
        with sqlite3.connect(self.db) as conn:
            return dict(conn.execute("SELECT status, COUNT(*) FROM webhook_events GROUP BY status"))

    def files(self, state: str) -> list[Path]:
        return sorted((self.spool / state).glob("*.json"))


def conversation_ok(shown: dict[str, Any]) -> bool:
    """The captured session reads as a conversation: its prompt, the reply, the tool call."""
    kinds = [m["kind"] for m in shown["messages"]]
    return (
        "prompt" in kinds
        and "assistant" in kinds
        and any(t["status"] == "ok" for t in shown["tool_calls"])
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def with_signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    say("  " + "  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        say("  " + "  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def samples() -> list[Path]:
    captured = sorted((FIXTURES / "claude-2.1.197").glob("*.json"))
    ours = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".json", ".txt", ".bin"))
    return captured + ours


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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="work in DIR (emptied first) and keep it: its receiver.db is the demo's store "
        "(make screenshots reads it)",
    )
    args = parser.parse_args()
    LOGS.mkdir(exist_ok=True)
    for old in LOGS.glob("*.log*"):
        old.unlink()
    if args.keep is not None:
        args.keep = args.keep.resolve()  # the hooks run in the project, not here
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True, mode=0o700)
    work = args.keep or Path(tempfile.mkdtemp(prefix="hookclient-demo-"))
    demo = Demo(work)
    try:
        return run(demo)
    finally:
        demo.stop_daemon()
        demo.stop_receiver()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run(demo: Demo) -> int:
    demo.start_receiver(demo.token)
    demo.write_config()
    say(f"== 1. Receiver up at {demo.url} (token generated; spool {demo.spool})")

    say(
        "\n== 2. Every sample payload through `hookclient send` (mode auto), as Claude Code runs it"
    )
    results = [demo.send(sample) for sample in samples()]
    table(results, ["sample", "exit", "stdout", "ms"])
    bad = [r for r in results if r["exit"] != 0 or r["stdout"]]
    wait(lambda: len(demo.rows()) == len(results), "the daemon to deliver every sample")
    rows = demo.rows()
    say(
        f"  the first hook started `queued`; it delivered {len(rows)} of {len(results)} events. "
        f"Receiver audit: {demo.audit()}"
    )

    say("\n== 3. What the receiver stored")
    shown = []
    for row in rows:
        envelope = json.loads(row["envelope"])
        shown.append(
            {
                "requestId": row["request_id"],
                "event": row["event"],
                "sessionId": (row["session_id"] or "-")[:13],
                "payloadError": envelope.get("payloadError", "")[:44],
            }
        )
    table(shown, ["requestId", "event", "sessionId", "payloadError"])
    rid = rows[0]["request_id"]
    say(f"\n  Every log line of one event: grep {rid} logs/*")
    for line in grep(rid):
        say("  " + line)

    say("\n== 4. Outage: the receiver stops; events keep coming")
    demo.stop_receiver()
    outage = [demo.send(FIXTURES / name, "--mode", "direct") for name in OUTAGE]
    for row, note in zip(
        outage,
        [
            "tried the network: refused, breaker opens",
            "breaker open: spooled",
            "breaker open: spooled",
        ],
        strict=True,
    ):
        row["mode"], row["what happened"] = "direct", note
    more = [demo.send(FIXTURES / name) for name in MORE]
    for row in more:
        row["mode"], row["what happened"] = "auto", "daemon running: spooled"
    table(outage + more, ["sample", "mode", "exit", "ms", "what happened"])
    say("  " + demo.queued("status").replace("\n", "\n  "))
    say(f"  pending/: {len(demo.files('pending'))} files")
    for path in demo.files("pending"):
        say(f"    {path.name}")

    say("\n== 5. The receiver is back on the same port: the daemon drains the backlog itself")
    demo.start_receiver(demo.token)
    start = time.monotonic()
    wait(lambda: len(demo.rows()) == demo.sent, "the backlog to drain", 90)
    say(
        f"  drained {len(OUTAGE) + len(MORE)} events {time.monotonic() - start:.1f} s after the "
        f"receiver came back (backoff and breaker cooldown are short in this demo); "
        f"pending/ now holds {len(demo.files('pending'))}"
    )

    say("\n== 6. The receiver's token changes: 401 is permanent, events go to failed/")
    demo.stop_receiver()
    demo.start_receiver(secrets.token_urlsafe(24))
    for name in REJECTED:
        demo.send(FIXTURES / name)
    wait(lambda: len(demo.files("failed")) == len(REJECTED), "the 401s to land in failed/")
    say("  " + demo.queued("list", "--state", "failed").replace("\n", "\n  "))
    say("  The token is fixed (the receiver restarts with the right one); then:")
    demo.stop_receiver()
    demo.start_receiver(demo.token)
    say("  $ queued replay-failed --all")
    say("  " + demo.queued("replay-failed", "--all").replace("\n", "\n  "))
    wait(lambda: len(demo.rows()) == demo.sent, "the replayed events to arrive")

    say("\n== 7. The conversation, read back from the store's API")
    conversation = demo.conversation(SESSION)
    read_back = conversation_ok(conversation)

    total = len(demo.rows())
    left = sum(len(demo.files(s)) for s in ("pending", "processing", "failed"))
    ok = not bad and total == demo.sent and left == 0 and read_back
    say(
        f"\n== 8. Result: {'OK' if ok else 'PROBLEM'}: {demo.sent} events sent, {total} rows at "
        f"the receiver (one per requestId), {left} left in the spool, {len(bad)} hooks "
        "misbehaved. Logs: logs/"
    )
    for r in bad:
        say(f"  {r['sample']}: exit {r['exit']}, {r['stdout']} bytes on stdout, {r['stderr']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
