"""hookclient inside the real Claude Code CLI (pinned, offline, scripted fake model).

Each test runs ``claude -p`` against :mod:`tests.claude.fake_model` with the hooks that
``hookclient install --scope project`` writes, plus a second, recording hook on the same
events that keeps every payload the CLI sent. Every test checks the session as well as
the events: the CLI's ``result`` is the scripted final text, its stderr reports no failed
or cancelled hook, and the fake model saw exactly the scripted turns (a hook that blocked
a prompt or looped Stop would add or remove one).

What the pinned CLI (2.1.197) was seen to do, and these tests rely on:

- hooks of one event run in parallel, and events one after another, except that
  InstructionsLoaded (a project CLAUDE.md) runs alongside SessionStart: their relative
  order is not fixed, so order checks leave InstructionsLoaded out;
- a Bash command that ``--allowedTools`` does not cover is denied without any hook
  event beyond PreToolUse, so the failing-tool test allows ``exit`` as well as ``echo``;
- a failing hook (exit 1) is reported on stderr only for SessionEnd, and its output
  reaches neither stdout nor the model.

The real-CLI tests carry the ``claude`` marker: ``make e2e`` runs them, ``make test``
does not. The fake model's own tests are unmarked and run with the unit suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.claude import cli
from tests.claude.fake_model import (
    EXHAUSTED,
    SIDE_ANSWER,
    FakeModel,
    Recorded,
    Text,
    ToolUse,
    Turn,
    tool_use_id,
    turn_index,
)
from tests.claude.session import (
    API_KEY,
    Session,
    add_hook_everywhere,
    claude_env,
    recorded,
    recorder_command,
    run_claude,
    write_toml,
)
from tests.conftest import (
    BIN,
    TOKEN,
    BlackHole,
    Receiver,
    daemon_pid,
    kill_daemons,
    pid_alive,
    wait_for,
)

#: The environment as pytest started: read before the autouse fixture scrubs CLAUDE_BIN,
#: XDG_CACHE_HOME and HOME for each test.
STARTING_ENVIRON = dict(os.environ)
#: The events of a one-tool print-mode session that hookclient registers on, in order.
ONE_TOOL_EVENTS = [
    "SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolBatch",
    "Stop", "SessionEnd",
]  # fmt: skip
ECHO_SCRIPT: list[Turn] = [[ToolUse("Bash", {"command": "echo hello"})], [Text("done")]]
STATES = ("pending", "processing", "failed", "corrupt", "tmp")
DEFAULT_REDACT = ["token", "secret", "password", "api_key", "apikey", "authorization"]


# -- fixtures and helpers -----------------------------------------------------------------


@dataclass(frozen=True)
class ClaudeCLI:
    """The pinned CLI's executable, or why it could not be had."""

    path: Path | None
    unavailable: str | None = None

    def require(self) -> Path:
        """The executable, or skip the calling test.

        The skip is raised here, in the test's body, not in a fixture: pytest reports a
        fixture's skip at each test's own line, one summary line per test, while skips
        raised from one line fold into a single ``SKIPPED [N] ...: reason`` line.
        """
        if self.path is None:
            pytest.skip(f"real Claude Code CLI unavailable: {self.unavailable}")
        return self.path


@pytest.fixture(scope="session")
def claude_cli() -> ClaudeCLI:
    """The pinned CLI, found or installed once per test session (as ``make claude``)."""
    try:
        return ClaudeCLI(cli.ensure_claude(STARTING_ENVIRON))
    except cli.ClaudeUnavailable as exc:
        return ClaudeCLI(None, str(exc))


@dataclass
class Rig:
    """One project with hookclient installed, a recording hook, and a way to run claude."""

    root: Path
    claude: ClaudeCLI

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config(self) -> Path:
        return self.root / "hookclient.toml"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def records(self) -> Path:
        return self.root / "recorded"

    @property
    def settings(self) -> Path:
        return self.project / ".claude" / "settings.json"

    def configure(self, url: str, **sections: dict[str, Any]) -> None:
        """The TOML the installed hook command names with ``--config``."""
        base: dict[str, dict[str, Any]] = {
            "endpoint": {"url": url},
            "delivery": {},
            "queue": {"dir": str(self.spool)},
            "logs": {"dir": str(self.logs)},
        }
        for name, values in sections.items():
            base.setdefault(name, {}).update(values)
        write_toml(self.config, base)

    def install(self, *args: str) -> list[str]:
        """``hookclient install --scope project --config ...`` plus the recording hook."""
        cmd = [str(BIN / "hookclient"), "install", "--scope", "project"]
        proc = subprocess.run(
            [*cmd, "--config", str(self.config), *args],
            cwd=self.project,
            env={**os.environ, "HOME": str(self.home)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("registered "), proc.stdout
        return add_hook_everywhere(
            self.settings,
            {"type": "command", "command": recorder_command(self.records), "timeout": 10},
        )

    def run(
        self,
        model: FakeModel,
        prompt: str = "say hello",
        *,
        allowed_tools: str = "Bash(echo:*)",
        args: Sequence[str] = (),
    ) -> Session:
        env = claude_env(model.url, self.home, HOOKCLIENT_TOKEN=TOKEN)
        claude = self.claude.require()
        return run_claude(claude, self.project, env, prompt, allowed_tools=allowed_tools, args=args)

    def recorded(self) -> list[dict[str, Any]]:
        return recorded(self.records) if self.records.exists() else []

    def files(self, state: str) -> list[Path]:
        directory = self.spool / state
        return sorted(directory.iterdir()) if directory.exists() else []

    def bodies(self, state: str) -> list[dict[str, Any]]:
        return [json.loads(p.read_bytes()) for p in self.files(state)]

    def log_lines(self, name: str) -> list[dict[str, Any]]:
        path = self.logs / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def spool_is_empty(self) -> bool:
        return all(self.files(state) == [] for state in STATES)

    def stop_daemon(self) -> None:
        """SIGTERM the daemon a hook started, and wait until it is gone (it finishes what
        it has in flight, bounded by the endpoint timeout)."""
        pid = daemon_pid(self.spool)
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not pid_alive(pid), timeout=60)


@pytest.fixture
def rig(tmp_path: Path, claude_cli: ClaudeCLI) -> Iterator[Rig]:
    rig = Rig(tmp_path, claude_cli)
    rig.project.mkdir()
    rig.home.mkdir(exist_ok=True)
    try:
        yield rig
    finally:
        kill_daemons(rig.spool)


def check_session(session: Session, model: FakeModel, script: Sequence[Turn], final: str) -> None:
    """The session went as scripted: result, no hook trouble, exactly the scripted turns."""
    assert session.returncode == 0, session.stderr
    result = session.result
    assert result["is_error"] is False, result
    assert result["result"] == final
    assert session.hook_trouble() == [], session.stderr
    check_turns(model.scripted(), script)


def check_turns(requests: list[Recorded], script: Sequence[Turn]) -> None:
    """One request per scripted turn, in order, each carrying the previous turn's results."""
    assert [turn_index(r.body) for r in requests] == list(range(len(script))), [
        turn_index(r.body) for r in requests
    ]
    for k, request in enumerate(requests[1:], start=1):
        expected = {
            tool_use_id(k - 1, i) for i, b in enumerate(script[k - 1]) if isinstance(b, ToolUse)
        }
        assert {r["tool_use_id"] for r in request.tool_results()} == expected
    assert EXHAUSTED not in json.dumps([r.body for r in requests])


def events_of(payloads: list[dict[str, Any]]) -> list[str]:
    return [p["hook_event_name"] for p in payloads]


def canonical(payloads: list[dict[str, Any]]) -> Counter[str]:
    """A multiset of payloads: equal when the same payloads arrived, each as many times."""
    return Counter(json.dumps(p, sort_keys=True) for p in payloads)


def in_session_order(envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Envelopes by creation time (UUIDv7 requestIds sort by their millisecond)."""
    return sorted(envelopes, key=lambda e: (e["timestamp"], e["requestId"]))


def same_order(got: list[str], want: list[str]) -> bool:
    """Equal sequences, InstructionsLoaded aside (it runs alongside SessionStart)."""
    return [e for e in got if e != "InstructionsLoaded"] == [
        e for e in want if e != "InstructionsLoaded"
    ] and sorted(got) == sorted(want)


def hook_rows(rx: Receiver) -> list[dict[str, Any]]:
    """The receiver's rows of hook events: the Transcript envelopes the daemon also ships
    (README "Transcripts") have tests of their own below."""
    return [row for row in rx.rows() if row["event"] != "Transcript"]


def check_delivered(rx: Receiver, sent: list[dict[str, Any]], session_id: str) -> None:
    """One accepted row per hook invocation, payloads as sent, in session order."""
    rows = hook_rows(rx)
    envelopes = [row["envelope"] for row in rows]
    assert len({e["requestId"] for e in envelopes}) == len(envelopes) == len(sent)
    audit = [a for a in rx.audit() if a["event"] != "Transcript"]
    assert Counter(a["status"] for a in audit) == {"SUCCESS": len(sent)}
    assert canonical([e["payload"] for e in envelopes]) == canonical(sent)
    ordered = events_of([e["payload"] for e in in_session_order(envelopes)])
    assert same_order(ordered, events_of(sent)), (ordered, events_of(sent))
    for row, envelope in zip(rows, envelopes, strict=True):
        assert row["session_id"] == envelope["sessionId"] == session_id
        assert envelope["payload"]["session_id"] == session_id
        assert envelope["event"] == envelope["payload"]["hook_event_name"]


def report(scenario: str, **figures: Any) -> None:
    """One ``E2E {...}`` line of what a scenario counted (shown with ``pytest -s``), also
    appended to ``$E2E_REPORT`` when set (``make e2e``: logs/e2e-report.jsonl)."""
    line = json.dumps({"scenario": scenario, **figures})
    print(f"E2E {line}")
    if path := os.environ.get("E2E_REPORT"):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def check_kept(rig: Rig, sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event in pending/, none lost, none twice; returns the spool bodies."""
    bodies = [b for b in rig.bodies("pending") if b["envelope"]["event"] != "Transcript"]
    assert rig.files("processing") == [] and rig.files("failed") == []
    ids = [b["envelope"]["requestId"] for b in bodies]
    assert len(set(ids)) == len(ids) == len(sent)
    assert canonical([b["envelope"]["payload"] for b in bodies]) == canonical(sent)
    return bodies


def check_no_secrets(*places: Path) -> None:
    """Neither the bearer token nor the CLI's API key (in every hook's environment)
    reaches the spool, the logs or the receiver's database (files, or directories)."""
    for place in places:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        for path in files:
            data = path.read_bytes()
            assert TOKEN.encode() not in data, path
            assert API_KEY.encode() not in data, path


def db_files(rx: Receiver) -> list[Path]:
    """The receiver's SQLite database with its WAL and shared-memory files."""
    return sorted(rx.db.parent.glob(rx.db.name + "*"))


def start_receiver_on(tmp_path: Path, port: int, name: str) -> Receiver:
    """A real receiver on a given port: the endpoint coming back where it was."""
    port_file = tmp_path / f"{name}.port"
    db = tmp_path / f"{name}.db"
    args = [str(BIN / "hookclient-receiver"), "--port", str(port), "--port-file", str(port_file)]
    proc = subprocess.Popen(
        [*args, "--db", str(db)],
        env={**os.environ, "HOOKCLIENT_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    rx = Receiver(proc, port, db, TOKEN)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"receiver exited {proc.returncode} on port {port}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
        except httpx.HTTPError:
            return False
        return True

    try:
        wait_for(ready)
    except BaseException:
        rx.stop()
        raise
    return rx


def free_port() -> int:
    """A port nobody listens on: bound, then closed (the receiver-down endpoint)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def all_due(rig: Rig) -> bool:
    """Every pending event due now and the breaker not cooling down: ``--once`` sends."""
    now = time.time()
    for body in rig.bodies("pending"):
        due = body["state"].get("nextAttemptAt")
        if due and _epoch(due) > now:
            return False
    try:
        breaker = json.loads((rig.spool / "breaker.json").read_bytes())
    except (OSError, ValueError):
        return True
    return breaker.get("state") != "open" or float(breaker.get("openUntil", 0)) <= now


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def paths_holding(value: Any, needle: str, path: str = "") -> list[str]:
    """Dotted paths of the strings in a JSON value that contain ``needle``."""
    if isinstance(value, dict):
        return [
            p for k, v in value.items() for p in paths_holding(v, needle, f"{path}.{k}".strip("."))
        ]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in paths_holding(v, needle, f"{path}.{i}")]
    return [path] if isinstance(value, str) and needle in value else []


def with_key_replaced(value: Any, key: str, new: Any) -> Any:
    """A copy of a JSON value with the value of every ``key``, at any depth, set to ``new``."""
    if isinstance(value, dict):
        return {k: new if k == key else with_key_replaced(v, key, new) for k, v in value.items()}
    if isinstance(value, list):
        return [with_key_replaced(v, key, new) for v in value]
    return value


def values_of(value: Any, key: str) -> list[Any]:
    """Every value stored under ``key``, at any depth."""
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == key] + [
            x for v in value.values() for x in values_of(v, key)
        ]
    if isinstance(value, list):
        return [x for v in value for x in values_of(v, key)]
    return []


# -- the fake model alone (no CLI needed: these run with the unit suite) ------------------


def test_fake_model_streams_a_scripted_turn_like_the_api() -> None:
    script: list[list[Text | ToolUse]] = [
        [Text("a" * 450), ToolUse("Bash", {"command": "echo hello"})],
        [Text("done")],
    ]
    with FakeModel(script) as model:
        body = {
            "model": "m",
            "stream": True,
            "tools": [{"name": "Bash"}],
            "messages": [{"role": "user", "content": "hi"}],
        }
        response = httpx.post(f"{model.url}/v1/messages?beta=true", json=body, timeout=10)
        events = [
            json.loads(line[len("data: ") :])
            for line in response.text.splitlines()
            if line.startswith("data: ")
        ]
        head = httpx.head(model.url, timeout=10)
        other = httpx.get(f"{model.url}/v1/models", timeout=10)
    assert response.headers["content-type"].startswith("text/event-stream")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    text = "".join(d["text"] for d in deltas if d["type"] == "text_delta")
    assert text == "a" * 450
    partial = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert json.loads(partial) == {"command": "echo hello"}
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[1] == {"type": "tool_use", "id": tool_use_id(0, 1), "name": "Bash", "input": {}}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert (head.status_code, head.content) == (200, b"")
    assert other.status_code == 404 and other.json()["type"] == "error"
    assert [r.is_scripted for r in model.requests] == [True, False, False]


def test_fake_model_answers_json_and_keeps_side_requests_apart() -> None:
    with FakeModel([[Text("done")]]) as model:
        hi = [{"role": "user", "content": "hi"}]
        turn = {"model": "m", "tools": [{"name": "Bash"}], "messages": hi}
        side = {"model": "small", "messages": [{"role": "user", "content": "title?"}]}
        first = httpx.post(f"{model.url}/v1/messages", json=turn, timeout=10).json()
        title = httpx.post(f"{model.url}/v1/messages", json=side, timeout=10).json()
        count = httpx.post(f"{model.url}/v1/messages/count_tokens", json=side, timeout=10)
        again = {**turn, "messages": [*turn["messages"], {"role": "assistant", "content": "x"}]}
        past = httpx.post(f"{model.url}/v1/messages", json=again, timeout=10).json()
        assert [r.body for r in model.scripted()] == [turn, again]
        assert [r.body for r in model.side()] == [side]
    assert first["content"] == [{"type": "text", "text": "done"}]
    assert first["stop_reason"] == "end_turn"
    assert title["content"] == [{"type": "text", "text": SIDE_ANSWER}]
    assert count.json() == {"input_tokens": 10}
    assert past["content"][0]["text"] == EXHAUSTED


# -- the real CLI -------------------------------------------------------------------------


@pytest.mark.claude
@pytest.mark.parametrize("mode", ["auto", "direct"])
def test_every_event_reaches_the_receiver(rig: Rig, receiver: Receiver, mode: str) -> None:
    rig.configure(receiver.url, delivery={"mode": mode})
    registered = rig.install()
    with FakeModel(ECHO_SCRIPT) as model:
        session = rig.run(model)
        check_session(session, model, ECHO_SCRIPT, "done")
        [_, second] = model.scripted()
    assert [r["content"] for r in second.tool_results()] == ["hello"]

    sent = rig.recorded()
    assert events_of(sent) == ONE_TOOL_EVENTS
    assert set(events_of(sent)) <= set(registered)
    wait_for(lambda: len(hook_rows(receiver)) >= len(sent) and rig.spool_is_empty(), timeout=60)
    check_delivered(receiver, sent, session.result["session_id"])
    if mode == "direct":  # each hook delivered before it returned: arrival is session order
        assert [r["event"] for r in hook_rows(receiver)] == ONE_TOOL_EVENTS
    check_no_secrets(rig.spool, rig.logs, *db_files(receiver))
    report(
        f"receiver up, {mode}",
        invocations=len(sent),
        rows=len(hook_rows(receiver)),
        spooled_left=sum(len(rig.files(state)) for state in STATES),
    )


@pytest.mark.claude
@pytest.mark.parametrize(
    ("mode", "down"),
    [("auto", "closed"), ("direct", "closed"), ("auto", "black-hole"), ("direct", "black-hole")],
)
def test_receiver_down_keeps_every_event_until_queued_delivers_it(
    rig: Rig, tmp_path: Path, mode: str, down: str
) -> None:
    hole = BlackHole() if down == "black-hole" else None
    port = hole.port if hole else free_port()
    try:
        # Short timings so that the test can wait for the backlog to fall due; the
        # breaker still opens after the default five failures.
        rig.configure(
            f"http://127.0.0.1:{port}/hooks",
            endpoint={"timeout": 1.0},
            delivery={"mode": mode},
            queue={"backoff": [1.0], "jitter": 0.0, "breaker_cooldown": 1.0},
        )
        rig.install()
        with FakeModel(ECHO_SCRIPT) as model:
            session = rig.run(model)
            check_session(session, model, ECHO_SCRIPT, "done")
        rig.stop_daemon()  # the autostarted one: `queued run --once` needs the lock
    finally:
        if hole:
            hole.close()

    sent = rig.recorded()
    assert events_of(sent) == ONE_TOOL_EVENTS
    bodies = check_kept(rig, sent)
    assert {b["state"]["lastError"]["kind"] for b in bodies if b["state"].get("lastError")} <= {
        "connect",
        "timeout",
    }
    spooled = [line for line in rig.log_lines("queue.log") if line["msg"] == "spooled"]
    if mode == "direct":  # the first failures opened the breaker; later hooks skip the network
        assert "circuit breaker open" in {line.get("reason") for line in spooled}
    else:  # the first hook started a daemon; the others found it running
        assert spooled[-1]["reason"] == "daemon running"
    rx = start_receiver_on(tmp_path, port, "back")
    try:
        wait_for(lambda: all_due(rig), timeout=60)
        once = subprocess.run(
            [str(BIN / "queued"), "run", "--once", "--config", str(rig.config)],
            env={**os.environ, "HOOKCLIENT_TOKEN": TOKEN},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert once.returncode == 0, once.stderr
        assert rig.spool_is_empty(), [p.name for s in STATES for p in rig.files(s)]
        check_delivered(rx, sent, session.result["session_id"])
        check_no_secrets(rig.spool, rig.logs, *db_files(rx))
        report(
            "receiver " + ("refusing" if down == "closed" else "a black hole") + f", {mode}",
            invocations=len(sent),
            kept_in_pending=len(bodies),
            rows_after_once=len(hook_rows(rx)),
        )
    finally:
        rx.stop()


@pytest.mark.claude
@pytest.mark.parametrize("endpoint", ["healthy", "black-hole"])
def test_session_end_is_delivered_or_spooled_never_cancelled(
    rig: Rig, receiver: Receiver, endpoint: str
) -> None:
    """With the ``timeout`` install writes, SessionEnd may spend its whole 1 s budget on
    a black hole (breaker never opening) and still not be cancelled by the CLI."""
    hole = BlackHole()
    try:
        url = receiver.url if endpoint == "healthy" else hole.url
        rig.configure(url, delivery={"mode": "direct"}, queue={"breaker_failures": 1000})
        rig.install("--events", "SessionEnd")
        [group] = json.loads(rig.settings.read_text())["hooks"]["SessionEnd"]
        ours = group["hooks"][0]
        assert ours["timeout"] >= 2 and "async" not in ours
        script = [[Text("done")]]
        with FakeModel(script) as model:
            session = rig.run(model)
            check_session(session, model, script, "done")
        assert "Hook cancelled" not in session.stderr
    finally:
        hole.close()

    sent = rig.recorded()
    assert events_of(sent) == ["SessionEnd"]
    if endpoint == "healthy":
        wait_for(lambda: len(hook_rows(receiver)) == 1)
        check_delivered(receiver, sent, session.result["session_id"])
        assert rig.spool_is_empty()
    else:  # it tried until its budget ran out, then left the event for the daemon
        [body] = check_kept(rig, sent)
        assert body["state"]["lastError"]["kind"] == "timeout"
        assert hook_rows(receiver) == []
    report(
        f"SessionEnd, {endpoint}",
        invocations=len(sent),
        rows=len(hook_rows(receiver)),
        kept_in_pending=len(rig.files("pending")),
        hook_cancelled="Hook cancelled" in session.stderr,
    )


@pytest.mark.claude
def test_the_stderr_check_sees_a_cancelled_session_end_hook(rig: Rig) -> None:
    """Control: the CLI's "Hook cancelled" line is real and ``hook_trouble`` catches it,
    so its absence in the other tests means something."""
    rig.settings.parent.mkdir(parents=True)
    slow = {"type": "command", "command": "sleep 3"}  # no timeout: cancelled at ~1.5 s
    rig.settings.write_text(json.dumps({"hooks": {"SessionEnd": [{"hooks": [slow]}]}}))
    with FakeModel([[Text("done")]]) as model:
        session = rig.run(model)
    assert session.result["result"] == "done"
    assert session.hook_trouble() == ["SessionEnd hook [sleep 3] failed: Hook cancelled"]


@pytest.mark.claude
def test_failing_tool_and_project_instructions_arrive(rig: Rig, receiver: Receiver) -> None:
    (rig.project / "CLAUDE.md").write_text("Answer briefly.\n")
    rig.configure(receiver.url, delivery={"mode": "direct"})
    rig.install()
    script: list[Turn] = [[ToolUse("Bash", {"command": "echo x; exit 3"})], [Text("it failed")]]
    with FakeModel(script) as model:
        session = rig.run(model, "run it", allowed_tools="Bash(echo:*),Bash(exit:*)")
        check_session(session, model, script, "it failed")
        [result] = model.scripted()[1].tool_results()
    assert result["is_error"] is True and result["content"] == "Exit code 3\nx"

    sent = rig.recorded()
    assert same_order(
        events_of(sent),
        ["SessionStart", "InstructionsLoaded", "UserPromptSubmit", "PreToolUse",
         "PostToolUseFailure", "PostToolBatch", "Stop", "SessionEnd"],
    )  # fmt: skip
    check_delivered(receiver, sent, session.result["session_id"])
    by_event = {row["event"]: row["envelope"]["payload"] for row in hook_rows(receiver)}
    failure = by_event["PostToolUseFailure"]
    assert failure["error"] == "Exit code 3\nx" and failure["is_interrupt"] is False
    assert failure["tool_input"]["command"] == "echo x; exit 3"
    loaded = by_event["InstructionsLoaded"]
    assert Path(loaded["file_path"]) == rig.project / "CLAUDE.md"
    assert loaded["load_reason"] == "session_start"
    assert rig.spool_is_empty()


@pytest.mark.claude
def test_several_tools_in_one_turn_and_a_long_answer(rig: Rig, receiver: Receiver) -> None:
    long_answer = " ".join(f"word{n}" for n in range(3000))  # ~26 KB, streamed in chunks
    script: list[Turn] = [
        [Text("Running two."), ToolUse("Bash", {"command": "echo one"}),
         ToolUse("Bash", {"command": "echo two"})],
        [Text(long_answer)],
    ]  # fmt: skip
    rig.configure(receiver.url, delivery={"mode": "direct"})
    rig.install()
    with FakeModel(script) as model:
        session = rig.run(model, "run two commands")
        check_session(session, model, script, long_answer)

    sent = rig.recorded()
    assert events_of(sent) == [
        "SessionStart", "UserPromptSubmit", "PreToolUse", "PreToolUse", "PostToolUse",
        "PostToolUse", "PostToolBatch", "Stop", "SessionEnd",
    ]  # fmt: skip
    check_delivered(receiver, sent, session.result["session_id"])
    payloads = [row["envelope"]["payload"] for row in hook_rows(receiver)]
    [batch] = [p for p in payloads if p["hook_event_name"] == "PostToolBatch"]
    assert [(c["tool_input"]["command"], c["tool_response"]) for c in batch["tool_calls"]] == [
        ("echo one", "one"),
        ("echo two", "two"),
    ]
    [stop] = [p for p in payloads if p["hook_event_name"] == "Stop"]
    assert stop["last_assistant_message"] == long_answer


@pytest.mark.claude
def test_secrets_in_a_bash_command_are_redacted_by_key_only(rig: Rig, receiver: Receiver) -> None:
    """Redaction works on payload keys: with ``command`` in ``redact_keys`` every Bash
    command arrives as "[REDACTED]". A value inside free text (the prompt, the command's
    output) is not found by key, and arrives as the CLI sent it: asserted here as it is,
    so that a change either way shows."""
    secret = "sk-live-e2e-51c3a9"
    rig.configure(
        receiver.url,
        delivery={"mode": "direct", "redact_keys": [*DEFAULT_REDACT, "command"]},
    )
    rig.install()
    command = f"echo API_KEY={secret}"
    script: list[Turn] = [[ToolUse("Bash", {"command": command})], [Text("done")]]
    with FakeModel(script) as model:
        session = rig.run(model, f"print API_KEY={secret} for me")
        check_session(session, model, script, "done")

    sent = rig.recorded()
    assert events_of(sent) == ONE_TOOL_EVENTS
    assert [p["tool_input"]["command"] for p in sent if "tool_input" in p] == [command] * 2
    rows = hook_rows(receiver)
    assert len(rows) == len(sent) and rig.spool_is_empty()
    envelopes = {row["event"]: row["envelope"] for row in rows}
    commands = [v for e in envelopes.values() for v in values_of(e["payload"], "command")]
    assert commands == ["[REDACTED]"] * 3  # PreToolUse, PostToolUse, PostToolBatch
    leaks = sorted(
        (event, path)
        for event, envelope in envelopes.items()
        for path in paths_holding(envelope["payload"], secret)
    )
    assert leaks == [
        ("PostToolBatch", "tool_calls.0.tool_response"),
        ("PostToolUse", "tool_response.stdout"),
        ("UserPromptSubmit", "prompt"),
    ]
    for event, envelope in envelopes.items():  # everything else arrives as sent
        [original] = [p for p in sent if p["hook_event_name"] == event]
        assert envelope["payload"] == with_key_replaced(original, "command", "[REDACTED]")


@pytest.mark.claude
@pytest.mark.parametrize("hookclient_state", ["healthy", "cannot-spool"])
def test_hook_output_never_reaches_the_model(
    rig: Rig, receiver: Receiver, hookclient_state: str
) -> None:
    """The CLI adds a hook's stdout to the model's context on SessionStart and
    UserPromptSubmit. A control hook there proves the channel is open; nothing of
    hookclient's (its name, its requestIds, its stderr line when it cannot spool and
    exits 1) may travel it."""
    queue: dict[str, Any] = {}
    if hookclient_state == "cannot-spool":  # a file where the spool's parent should be
        blocker = rig.root / "not-a-dir"
        blocker.write_text("")
        queue = {"dir": str(blocker / "spool")}
        # and where the unrouted spool would go instead: no spool can be written at all
        spools = rig.home / ".local" / "state" / "hookclient" / "spool"
        spools.parent.mkdir(parents=True, exist_ok=True)
        spools.write_text("")
    rig.configure(receiver.url, delivery={"mode": "direct"}, queue=queue)
    rig.install()
    settings = json.loads(rig.settings.read_text())
    control = {"type": "command", "command": "echo CONTROL-CONTEXT-MARK", "timeout": 10}
    for event in ("SessionStart", "UserPromptSubmit"):
        settings["hooks"][event].append({"hooks": [control]})
    rig.settings.write_text(json.dumps(settings, indent=2))

    with FakeModel(ECHO_SCRIPT) as model:
        session = rig.run(model)
        assert session.returncode == 0 and session.result["result"] == "done"
        check_turns(model.scripted(), ECHO_SCRIPT)
        # The test's own paths (cwd, HOME) are in the system prompt: mask them, so that a
        # base temp dir whose name holds "hookclient" cannot fake a finding.
        bodies = json.dumps([r.body for r in model.requests]).replace(str(rig.root), "<ROOT>")
    sent = rig.recorded()
    assert events_of(sent) == ONE_TOOL_EVENTS
    assert "CONTROL-CONTEXT-MARK" in bodies  # the channel works
    assert "hookclient" not in bodies
    if hookclient_state == "healthy":
        assert session.hook_trouble() == []
        ids = [row["envelope"]["requestId"] for row in hook_rows(receiver)]
        assert len(ids) == len(sent)
    else:
        # One line per event in error.log; the CLI prints SessionEnd's failure only.
        errors = rig.log_lines("error.log")
        ids = [e["requestId"] for e in errors if e["msg"] == "event could not be spooled"]
        assert len(ids) == len(sent)
        [line] = session.hook_trouble()
        assert line.startswith("SessionEnd hook [") and "hookclient: event " in line
        assert hook_rows(receiver) == []
    for request_id in ids:
        assert request_id not in bodies
    assert "not saved" not in bodies and "[REDACTED]" not in bodies


def test_marker_is_registered(pytestconfig: pytest.Config) -> None:
    """``make e2e`` selects by the ``claude`` marker; --strict-markers needs it declared."""
    markers = pytestconfig.getini("markers")
    assert any(str(m).startswith("claude:") for m in markers)
