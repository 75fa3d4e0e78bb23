"""The hook as Claude Code runs it: a real process, real payloads, a real receiver."""

from __future__ import annotations

import ast
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookclient.config import default_paths, load_config
from hookclient.configcache import ConfigCache, default_file
from tests.conftest import (
    BIN,
    FIXTURES,
    TOKEN,
    BlackHole,
    HookEnv,
    Receiver,
    sample_files,
)

HOSTILE = ["hostile-empty.txt", "hostile-truncated.txt", "hostile-binary.bin", "hostile-array.json"]


def grep_token(*roots: Path) -> list[Path]:
    hits = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and TOKEN.encode() in path.read_bytes():
                hits.append(path)
    return hits


@pytest.mark.parametrize("sample", sample_files(), ids=lambda p: p.name)
def test_each_sample_reaches_the_receiver(hook: HookEnv, receiver: Receiver, sample: Path) -> None:
    hook.configure(endpoint={"url": receiver.url})
    run = hook.run(sample.read_bytes())

    assert (run.returncode, run.stdout) == (0, b""), run.stderr
    [row] = receiver.rows()
    payload = json.loads(sample.read_bytes())
    envelope = row["envelope"]
    assert row["event"] == payload["hook_event_name"] == envelope["event"]
    assert row["session_id"] == payload.get("session_id")
    assert envelope["payload"] == payload
    assert envelope["source"]["client"].startswith("hookclient/")
    headers = row["headers"]
    rid = envelope["requestId"]
    assert headers["idempotency-key"] == headers["x-request-id"] == rid
    assert headers["traceparent"].startswith(f"00-{envelope['traceId']}-")
    assert headers["traceparent"].endswith("-01")
    assert headers["x-hook-attempt"] == "1"
    assert headers["user-agent"].startswith("hookclient/")
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "[REDACTED]"  # it was sent; the receiver hides it
    for state in ("pending", "processing", "failed"):
        assert hook.files(state) == []
    delivered = [line for line in hook.log_lines() if line["msg"] == "delivered"]
    assert [(d["requestId"], d["status"]) for d in delivered] == [(rid, 200)]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_stdin_is_captured_and_delivered(
    hook: HookEnv, receiver: Receiver, name: str
) -> None:
    hook.configure(endpoint={"url": receiver.url}, delivery={"stdin_timeout": 1.0})
    raw = (FIXTURES / name).read_bytes()
    run = hook.run(raw, "--event", "PostToolUse")

    assert (run.returncode, run.stdout) == (0, b""), run.stderr
    [row] = receiver.rows()
    envelope = row["envelope"]
    assert envelope["payloadError"]
    if name == "hostile-array.json":
        assert envelope["payload"] == [1, 2, 3]
    else:
        assert envelope["payload"] is None
    if name == "hostile-binary.bin":
        import base64

        assert base64.b64decode(envelope["payloadRawBase64"]) == raw
    elif name != "hostile-array.json":
        assert envelope["payloadRaw"] == raw.decode()
    # the truncated sample names its event; the others fall back to --event
    assert envelope["event"] == "PostToolUse"
    warned = [line for line in hook.log_lines() if line["msg"] == "payload kept as raw text"]
    assert [w["requestId"] for w in warned] == [envelope["requestId"]]


def test_payload_over_the_limit_is_cut_and_flagged(hook: HookEnv, receiver: Receiver) -> None:
    hook.configure(endpoint={"url": receiver.url}, delivery={"max_payload_bytes": 1024})
    big = json.dumps({"hook_event_name": "PostToolUse", "blob": "x" * 20_000}).encode()
    run = hook.run(big)

    assert run.returncode == 0
    [row] = receiver.rows()
    envelope = row["envelope"]
    assert envelope["payloadTruncated"] is True
    assert envelope["payloadBytes"] == len(big)
    assert len(envelope["payloadRaw"].encode()) == 1024
    assert envelope["event"] == "PostToolUse"  # sniffed from the kept prefix


def test_endpoint_down_spools_the_full_envelope_without_the_token(hook: HookEnv) -> None:
    hook.configure(endpoint={"url": "http://127.0.0.1:9/hooks"})
    sample = FIXTURES / "pre-tool-use-bash.json"
    run = hook.run(sample.read_bytes())

    assert (run.returncode, run.stdout, run.stderr) == (0, b"", b"")
    [body] = hook.bodies("pending")
    assert body["envelope"]["payload"] == json.loads(sample.read_bytes())
    state = body["state"]
    assert state["retries"] == 0 and state["attempts"] == 1
    assert state["lastError"]["kind"] == "connect"
    assert "owner" not in state
    assert state["nextAttemptAt"] > state["createdAt"]
    assert hook.files("processing") == [] and hook.files("tmp") == []
    assert grep_token(hook.spool, hook.logs) == []
    [path] = hook.files("pending")
    assert path.stat().st_mode & 0o777 == 0o600
    assert (hook.spool / "pending").stat().st_mode & 0o777 == 0o700


def test_spool_mode_writes_pending_due_now_and_never_posts(
    hook: HookEnv, receiver: Receiver
) -> None:
    hook.configure(endpoint={"url": receiver.url})
    run = hook.run((FIXTURES / "stop.json").read_bytes(), "--mode", "spool")

    assert (run.returncode, run.stdout) == (0, b"")
    [body] = hook.bodies("pending")
    assert body["state"]["attempts"] == 0
    assert body["state"]["nextAttemptAt"] == body["state"]["createdAt"]
    assert receiver.rows() == []


def test_spool_path_imports_no_network_or_logging_library(hook: HookEnv) -> None:
    """The fast path pays for no httpx, tenacity, structlog or watchdog import."""
    hook.configure()
    modules = probe_send(["--mode", "spool", "--config", str(hook.config)], hook.env())
    heavy = {"httpx", "httpcore", "tenacity", "structlog", "watchdog", "anyio", "ssl", "argparse"}
    assert heavy & {m.split(".")[0] for m in modules} == set()
    # even the first run, before the config cache is warm (tomllib, and the typing and
    # re it pulls, are allowed then; see test_fast_path_imports_only_what_it_needs)
    never = FAST_PATH_NEVER - {"tomllib", "typing", "contextlib", "re", "enum", "functools"}
    never -= {"collections"}
    assert never & ({m.split(".")[0] for m in modules} | modules) == set()
    assert len(hook.files("pending")) == 1  # the probe did run the real send


#: What the hook's fast path never imports (BENCHMARKS.md "Hook fast path" has what each
#: cost it): besides the network and logging libraries above, typing, dataclasses (and
#: inspect), pathlib (and urllib), tomllib once the config is cached, platformdirs,
#: hashlib (OpenSSL), contextlib, signal, subprocess, filelock; json (which imports re,
#: enum, functools and collections: see hookclient.jsoncodec); fcntl but to probe the
#: daemon's lock.
FAST_PATH_NEVER = {
    "httpx",
    "httpcore",
    "tenacity",
    "structlog",
    "watchdog",
    "anyio",
    "ssl",
    "argparse",
    "typing",
    "dataclasses",
    "inspect",
    "pathlib",
    "urllib",
    "tomllib",
    "platformdirs",
    "hashlib",
    "_hashlib",
    "contextlib",
    "signal",
    "subprocess",
    "filelock",
    "json",
    "re",
    "enum",
    "functools",
    "collections",
}
#: The hookclient modules the spool path loads; auto mode adds the lock probe, direct
#: mode the breaker, and nothing else ever joins them on these paths.
FAST_PATH_OURS = {
    "hookclient",
    "hookclient.__main__",
    "hookclient.hook",
    "hookclient.clock",
    "hookclient.config",
    "hookclient.configcache",
    "hookclient.dirs",
    "hookclient.envelope",
    "hookclient.errors",
    "hookclient.jsoncodec",
    "hookclient.logs",
    "hookclient.spool",
    "hookclient.settings",  # the configuration's value classes, split out of config
}
#: The probes of "spool" and "default dirs" write the first event into a new spool,
#: which records its endpoint once (hookclient.urls, which imports nothing itself).
FAST_PATH_EXTRA = {
    "spool": {"hookclient.urls"},
    "auto, daemon running": {"hookclient.lockprobe"},
    "breaker open": {"hookclient.breaker"},
    "default dirs": {"hookclient.urls"},
}
#: (reports with repr, not json: json itself is one of the modules the hook avoids)
PROBE = (
    "import sys\n"
    "from hookclient.__main__ import main\n"
    "rc = main(['send', *sys.argv[1:]])\n"
    "sys.stderr.write(repr({'rc': rc, 'modules': sorted(sys.modules)}))\n"
)


def probe_send(args: list[str], env: dict[str, str]) -> set[str]:
    """Run ``send`` in a fresh interpreter, as the hook runs (fixture payload on stdin);
    check that it exited 0 with nothing on stdout, and return the modules it loaded."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        input=(FIXTURES / "post-tool-use-edit.json").read_bytes(),
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    report = ast.literal_eval(proc.stderr.decode())
    assert report["rc"] == 0 and proc.stdout == b""
    return set(report["modules"])


def _warm_config_cache(paths: list[Path]) -> None:
    """What earlier hooks of the session did: the config files' tables are cached.
    (A file is cached only once it is a few seconds old; the clock says it is.)"""
    cache = ConfigCache(default_file(), now_ns=lambda: time.time_ns() + 10**10)
    load_config(paths, {}, strict=False, cache=cache)


@pytest.mark.parametrize("case", ["spool", "auto, daemon running", "breaker open", "default dirs"])
def test_fast_path_imports_only_what_it_needs(hook: HookEnv, tmp_path: Path, case: str) -> None:
    """The spool path, auto mode with a daemon running and direct mode with the breaker
    open pay for none of FAST_PATH_NEVER, once the config is cached: pinned by module
    sets, not milliseconds."""
    args = ["--config", str(hook.config)]
    env = hook.env()
    pending = hook.spool / "pending"
    held = None
    if case == "spool":
        hook.configure(delivery={"mode": "spool"})
    elif case == "auto, daemon running":
        hook.configure(delivery={"mode": "auto"})
        hook.spool.mkdir(parents=True)
        held = os.open(hook.spool / "daemon.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(held, fcntl.LOCK_EX)  # what queued's filelock holds
        from hookclient.config import fingerprint

        endpoint = load_config([hook.config], env).endpoint
        pidfile = {"pid": os.getpid(), "autostarted": True, "fingerprint": fingerprint(endpoint)}
        (hook.spool / "daemon.pid").write_text(json.dumps(pidfile))  # as a daemon writes it
    elif case == "breaker open":
        hook.configure(delivery={"mode": "direct"}, queue={"breaker_cooldown": 3600.0})
        hook.spool.mkdir(parents=True)
        breaker = {"state": "open", "failures": 9, "openUntil": time.time() + 3600}
        (hook.spool / "breaker.json").write_text(json.dumps(breaker))
    else:  # no --config: the user file and the project file; default spool and log dirs
        project = tmp_path / "project"
        hook.root.mkdir(parents=True)
        (project / ".claude").mkdir(parents=True)
        (project / ".claude" / "hookclient.toml").write_text(
            '[endpoint]\nurl = "http://127.0.0.1:9/hooks"\n[delivery]\nmode = "spool"\n'
        )
        args, env = [], hook.env(CLAUDE_PROJECT_DIR=str(project))
        spool_dir = Path(load_config(None, env).queue.dir)
        assert str(spool_dir).startswith(os.environ["HOME"])  # tmp HOME, not the real one
        pending = spool_dir / "pending"
    _warm_config_cache([hook.config] if args else [Path(p) for p in default_paths(env)])
    try:
        modules = probe_send(args, env)
    finally:
        if held is not None:
            os.close(held)
    assert FAST_PATH_NEVER & ({m.split(".")[0] for m in modules} | modules) == set()
    ours = {m for m in modules if m.split(".")[0] == "hookclient"}
    assert ours == FAST_PATH_OURS | FAST_PATH_EXTRA[case]
    assert ("fcntl" in modules) == (case == "auto, daemon running")
    assert len(list(pending.glob("*.json"))) == 1  # the event is spooled all the same


@pytest.mark.parametrize("endpoint", ["up", "refusing"])
def test_direct_mode_imports_tenacity_only_to_retry(
    hook: HookEnv, receiver: Receiver, endpoint: str
) -> None:
    """A first attempt that is delivered (most events) pays for no tenacity import; a
    failed one retries with it, within the same budget."""
    up = endpoint == "up"
    url = receiver.url if up else "http://127.0.0.1:9/hooks"  # nothing listens on 9
    hook.configure(endpoint={"url": url}, delivery={"inline_attempts": 2, "inline_delay": 0.01})
    modules = probe_send(["--config", str(hook.config)], hook.env())
    assert ("tenacity" in modules) == (not up)
    # httpcore's async backends, never needed here, are not loaded (anyio's key is there,
    # None: that is how the hook tells httpcore it is absent)
    assert [m for m in modules if m.startswith(("anyio.", "trio."))] == []
    attempts = [line for line in hook.log_lines() if line["msg"] == "attempt"]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == (
        [(1, "delivered")] if up else [(1, "retryable"), (2, "retryable")]
    )
    assert (len(receiver.rows()), len(hook.files("pending"))) == ((1, 0) if up else (0, 1))


def test_send_exits_without_the_interpreters_teardown(hook: HookEnv, tmp_path: Path) -> None:
    """The script skips finalization after ``send`` (2.4 ms a run), once the event and
    its log line are on disk; an atexit handler (from a sitecustomize here) shows it.
    Other commands end as usual."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import atexit, os\n"
        "atexit.register(lambda: open(os.environ['MARK'], 'a').write('torn down\\n'))\n"
    )
    mark = tmp_path / "mark"
    hook.configure(delivery={"mode": "spool"})
    env = hook.env(PYTHONPATH=str(site), MARK=str(mark))
    run = subprocess.run(
        [str(BIN / "hookclient"), "send", "--config", str(hook.config)],
        input=(FIXTURES / "post-tool-use-edit.json").read_bytes(),
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, b"", b"")
    assert not mark.exists()
    assert len(hook.files("pending")) == 1
    assert [line["msg"] for line in hook.log_lines()] == ["spooled"]
    other = subprocess.run(
        [str(BIN / "hookclient"), "config", "path", "--config", str(hook.config)],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert other.returncode == 0
    assert mark.read_text() == "torn down\n"


def test_kill_9_in_flight_leaves_the_event_claimed_by_the_hook(
    hook: HookEnv, black_hole: BlackHole
) -> None:
    hook.configure(
        endpoint={"url": black_hole.url, "timeout": 30.0}, delivery={"inline_budget": 30.0}
    )
    proc = hook.popen()
    assert proc.stdin is not None
    proc.stdin.write((FIXTURES / "post-tool-use-edit.json").read_bytes())
    proc.stdin.close()
    assert black_hole.requests.wait(30), "the hook never sent its request"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout and proc.stdout.close()
    proc.stderr and proc.stderr.close()

    [body] = hook.bodies("processing")
    assert body["state"]["owner"]["pid"] == proc.pid
    assert body["state"]["owner"]["by"] == "hook"
    assert body["envelope"]["event"] == "PostToolUse"
    assert hook.files("pending") == [] and hook.files("tmp") == []


def test_stdin_never_closed_is_cut_at_stdin_timeout(hook: HookEnv, receiver: Receiver) -> None:
    hook.configure(endpoint={"url": receiver.url}, delivery={"stdin_timeout": 0.5})
    proc = hook.popen()
    assert proc.stdin is not None
    proc.stdin.write(b'{"hook_event_name": "Stop", "session_id": "s1", "unfinished": ')
    proc.stdin.flush()
    # stdin stays open: the hook must stop reading on its own
    rc = proc.wait(timeout=60)
    proc.stdin.close()
    assert proc.stdout and proc.stdout.read() == b""
    proc.stdout.close()
    proc.stderr and proc.stderr.close()

    assert rc == 0
    [row] = receiver.rows()
    envelope = row["envelope"]
    assert envelope["payload"] is None
    assert "stdin_timeout" in envelope["payloadError"]
    assert (envelope["event"], envelope["sessionId"]) == ("Stop", "s1")


def test_complete_json_on_an_open_pipe_does_not_wait_for_the_timeout(
    hook: HookEnv, receiver: Receiver
) -> None:
    hook.configure(endpoint={"url": receiver.url}, delivery={"stdin_timeout": 120.0})
    proc = hook.popen()
    assert proc.stdin is not None
    proc.stdin.write((FIXTURES / "stop.json").read_bytes())
    proc.stdin.flush()
    rc = proc.wait(timeout=60)  # far less than stdin_timeout: it did not wait for EOF
    proc.stdin.close()
    for stream in (proc.stdout, proc.stderr):
        stream and stream.close()
    assert rc == 0
    [row] = receiver.rows()
    assert "payloadError" not in row["envelope"]


def test_endpoint_that_never_answers_is_cut_at_the_budget(
    hook: HookEnv, black_hole: BlackHole
) -> None:
    hook.configure(
        endpoint={"url": black_hole.url, "timeout": 30.0},
        delivery={"inline_budget": 1.0, "inline_attempts": 3},
    )
    run = hook.run((FIXTURES / "stop.json").read_bytes(), timeout=60)

    assert (run.returncode, run.stdout) == (0, b"")
    [body] = hook.bodies("pending")
    assert body["state"]["lastError"]["kind"] == "timeout"
    assert hook.files("processing") == []
    print(f"black-holed hook wall: {run.seconds:.3f} s (budget 1.0 s)")


def test_session_end_gets_the_short_budget(hook: HookEnv, black_hole: BlackHole) -> None:
    hook.configure(
        endpoint={"url": black_hole.url, "timeout": 30.0},
        delivery={"inline_budget": 30.0, "inline_attempts": 3},
    )
    run = hook.run((FIXTURES / "session-end.json").read_bytes(), timeout=60)

    assert run.returncode == 0
    [body] = hook.bodies("pending")
    assert body["envelope"]["event"] == "SessionEnd"
    # 30 s budget configured; SessionEnd is capped at 1 s, so the one attempt timed out
    # (at 30 s it would still be waiting, and this run's 60 s limit would have fired)
    assert body["state"]["lastError"]["kind"] == "timeout"
    assert body["state"]["attempts"] == 1


@pytest.mark.parametrize(("where", "status"), [("token", 401), ("path", 404)])
def test_permanent_answers_go_to_failed(
    hook: HookEnv, receiver: Receiver, where: str, status: int
) -> None:
    url = receiver.url if where == "token" else receiver.url.replace("/hooks", "/nope")
    hook.configure(endpoint={"url": url}, delivery={"inline_attempts": 3})
    env = hook.env(HOOKCLIENT_TOKEN="wrong-token") if where == "token" else None
    run = hook.run((FIXTURES / "stop.json").read_bytes(), env=env)

    assert run.returncode == 0
    [body] = hook.bodies("failed")
    assert body["state"]["lastError"]["status"] == status
    assert [h["status"] for h in body["state"]["history"]] == [status]  # no retry
    assert hook.files("pending") == [] and hook.files("processing") == []
    failed = [line for line in hook.log_lines() if line["msg"] == "failed permanently"]
    assert [f["status"] for f in failed] == [status]
    assert receiver.rows() == []


def test_duplicate_request_id_is_applied_once(hook: HookEnv, receiver: Receiver) -> None:
    hook.configure(endpoint={"url": receiver.url})
    hook.run((FIXTURES / "stop.json").read_bytes())
    [row] = receiver.rows()
    body = json.dumps(row["envelope"]).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    again = httpx.post(receiver.url, content=body, headers=headers, timeout=10)

    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert len(receiver.rows()) == 1
    assert [a["status"] for a in receiver.audit()] == ["SUCCESS", "DUPLICATE"]


def test_broken_config_still_spools_and_names_the_key(hook: HookEnv) -> None:
    hook.configure(delivery={"inline_attempts": "three"})
    run = hook.run((FIXTURES / "stop.json").read_bytes())

    assert (run.returncode, run.stdout) == (0, b"")
    assert len(hook.files("pending")) == 1
    [problem] = [line for line in hook.log_lines() if line["msg"].startswith("configuration")]
    assert "delivery.inline_attempts" in problem["error"]
    assert str(hook.config) in problem["error"]


def test_an_unwritable_spool_keeps_the_event_in_unrouted_with_one_line(
    hook: HookEnv, tmp_path: Path
) -> None:
    """A spool directory under a regular file is a configuration mistake: the event is
    kept in the unrouted spool (exit 0, one line saying where), not lost."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    hook.configure(queue={"dir": str(blocker / "spool")})
    run = hook.run((FIXTURES / "stop.json").read_bytes())

    assert (run.returncode, run.stdout) == (0, b"")
    [line] = run.stderr.decode().splitlines()
    unrouted = Path(os.environ["HOME"]) / ".local/state/hookclient/spool/unrouted"
    assert line.startswith(f"hookclient: cannot write to spool {blocker / 'spool'}")
    assert line.endswith(f"kept in {unrouted} instead (see `hookclient doctor`)")
    assert len(list((unrouted / "pending").glob("*.json"))) == 1


def test_when_no_spool_at_all_can_be_written_it_exits_1_with_one_line(
    hook: HookEnv, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    hook.configure(queue={"dir": str(blocker / "spool")})
    run = hook.run(
        (FIXTURES / "stop.json").read_bytes(),
        env=hook.env(XDG_STATE_HOME=str(blocker / "state")),  # the unrouted spool too
    )

    assert run.returncode == 1
    assert run.stdout == b""
    lines = run.stderr.decode().splitlines()
    assert len(lines) == 1 and "not saved" in lines[0] and "Traceback" not in lines[0]


def test_bad_flag_never_exits_2_and_still_captures(hook: HookEnv) -> None:
    hook.configure(delivery={"mode": "spool"})
    run = hook.run((FIXTURES / "stop.json").read_bytes(), "--no-such-flag")

    assert run.returncode == 0
    assert len(hook.files("pending")) == 1
    assert b"--no-such-flag" in run.stderr


def test_breaker_opens_and_later_events_skip_the_network(hook: HookEnv) -> None:
    hook.configure(queue={"breaker_failures": 2, "breaker_cooldown": 600.0})
    for _ in range(4):
        assert hook.run((FIXTURES / "stop.json").read_bytes()).returncode == 0

    bodies = hook.bodies("pending")
    assert len(bodies) == 4
    assert [b["state"]["attempts"] for b in bodies] == [1, 1, 0, 0]
    breaker = json.loads((hook.spool / "breaker.json").read_text())
    assert breaker["state"] == "open"
    reasons = [line.get("reason") for line in hook.log_lines() if line["msg"] == "spooled"]
    assert reasons == ["circuit breaker open"] * 2


def _fire(hook: HookEnv, count: int) -> list[subprocess.Popen[bytes]]:
    payload = (FIXTURES / "post-tool-use-edit.json").read_bytes()
    procs = [hook.popen() for _ in range(count)]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(payload)
        proc.stdin.close()
    return procs


def _finish(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        assert proc.wait(timeout=120) == 0
        assert proc.stdout and proc.stdout.read() == b""
        for stream in (proc.stdout, proc.stderr):
            stream and stream.close()


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ["receiver", "dead"])
def test_fifty_hooks_at_once(hook: HookEnv, receiver: Receiver, endpoint: str) -> None:
    url = receiver.url if endpoint == "receiver" else "http://127.0.0.1:9/hooks"
    hook.configure(
        endpoint={"url": url, "timeout": 30.0},
        delivery={"inline_budget": 60.0},
        queue={"breaker_failures": 1000},
        logs={"max_bytes": 2048, "backups": 10_000},
    )
    _finish(_fire(hook, 50))

    delivered = {r["request_id"] for r in receiver.rows()}
    pending = {b["envelope"]["requestId"] for b in hook.bodies("pending")}
    assert len(receiver.rows()) == len(delivered)  # none twice
    assert delivered.isdisjoint(pending)
    assert len(delivered | pending) == 50
    assert hook.files("processing") == [] and hook.files("failed") == []
    if endpoint == "receiver":
        assert len(delivered) == 50
    else:
        assert len(pending) == 50
    lines = hook.log_lines()  # every line parses (json.loads inside)
    assert len(list(hook.logs.glob("*.log.*"))) > 1, "rotation did not happen"
    final = "delivered" if endpoint == "receiver" else "retry scheduled"
    finals = [line["requestId"] for line in lines if line["msg"] == final]
    assert sorted(finals) == sorted(delivered | pending)  # one final line each, none lost
    claimed = [line["requestId"] for line in lines if line["msg"].startswith("claimed")]
    assert sorted(claimed) == sorted(finals)


def test_a_permanent_answer_resets_the_breakers_count(hook: HookEnv, receiver: Receiver) -> None:
    """Two refused connections, then a 404: the endpoint is up, so the count restarts."""
    hook.configure(queue={"breaker_failures": 3, "breaker_cooldown": 600.0})
    stop = (FIXTURES / "stop.json").read_bytes()
    for _ in range(2):
        hook.run(stop)  # refused: two retryable outcomes
    assert json.loads((hook.spool / "breaker.json").read_text())["failures"] == 2
    hook.configure(
        endpoint={"url": receiver.url.replace("/hooks", "/nope")},
        queue={"breaker_failures": 3, "breaker_cooldown": 600.0},
    )
    hook.run(stop)  # 404: permanent, but an answer
    state = json.loads((hook.spool / "breaker.json").read_text())
    assert state["state"] == "closed" and state["failures"] == 0


def error_lines(hook: HookEnv) -> list[dict[str, object]]:
    path = hook.logs / "error.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def queued_status(hook: HookEnv) -> str:
    done = subprocess.run(
        [str(BIN / "queued"), "status", "--config", str(hook.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**hook.env(), "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_direct_mode_says_why_in_error_log_and_queued_status(
    hook: HookEnv, receiver: Receiver
) -> None:
    """Refused connections: one error.log line per failed try (the last with its due
    time), the breaker's opening once; `queued status` shows that last failure.  Then
    a probe is delivered and closes the breaker, once."""
    from hookclient.clock import utc_iso

    settings: dict[str, dict[str, Any]] = {
        "delivery": {"inline_attempts": 2, "inline_delay": 0.01},
        "queue": {"dir": str(hook.spool), "breaker_failures": 2, "breaker_cooldown": 600.0},
    }
    hook.configure(**settings)  # nothing listens on 127.0.0.1:9
    stop = (FIXTURES / "stop.json").read_bytes()
    assert hook.run(stop).returncode == 0  # two refused tries; the second opens the breaker
    assert hook.run(stop).returncode == 0  # open: spooled, the network untouched
    first = hook.bodies("pending")[0]
    rid = first["envelope"]["requestId"]
    lines = error_lines(hook)
    assert [line["msg"] for line in lines] == [
        "delivery failed, will retry",
        "delivery failed, will retry",
        "circuit breaker opened",
    ]
    for line, attempt in zip(lines, (1, 2, None), strict=True):
        assert (line["requestId"], line["traceId"]) == (rid, first["envelope"]["traceId"])
        assert (line["event"], line["component"], line["spool"]) == (
            "Stop",
            "hook",
            str(hook.spool),
        )
        if attempt is not None:
            assert (line["attempt"], line["outcome"], line["level"]) == (
                attempt,
                "retryable",
                "warning",
            )
            assert str(line["error"]).startswith("ConnectError: ") and "status" not in line
    assert "nextAttemptAt" not in lines[0]  # tried again at once, inline
    assert lines[1]["nextAttemptAt"] == first["state"]["nextAttemptAt"]
    breaker = json.loads((hook.spool / "breaker.json").read_text())
    assert (lines[2]["failures"], lines[2]["cooldown"]) == (2, 600.0)
    assert lines[2]["openUntil"] == utc_iso(breaker["openUntil"])

    status = queued_status(hook)
    assert "last sent   -" in status
    expected = f"  delivery failed, will retry  {rid}  {str(lines[1]['error'])[:80]}"
    assert f"last error  {lines[1]['ts']}{expected}" in status.splitlines()

    (hook.spool / "breaker.json").write_text(json.dumps({**breaker, "openUntil": time.time() - 1}))
    hook.configure(endpoint={"url": receiver.url}, **settings)
    assert hook.run(stop).returncode == 0  # the probe: delivered, closes the breaker
    assert hook.run(stop).returncode == 0  # closed: delivered, no line
    [probe, after] = [row["request_id"] for row in receiver.rows()]
    lines = error_lines(hook)
    assert [line["msg"] for line in lines[3:]] == ["circuit breaker closed"]
    closed = lines[3]
    assert (closed["requestId"], closed["status"], closed["failures"]) == (probe, 200, 2)
    assert closed["spool"] == str(hook.spool)
    [sent] = [x for x in queued_status(hook).splitlines() if x.startswith("last sent")]
    assert f"  delivered  {after}  HTTP 200" in sent


@pytest.mark.parametrize("when", ["after the answer", "during the request"])
def test_the_budget_alarm_going_off_at_any_instant_is_no_traceback(
    hook: HookEnv, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """Found by the chaos suite: under load the alarm fired inside the old ``finally:``
    that disarmed it, and the hook died with a traceback and exit 1. Here the alarm is
    made to go off exactly there (and, for contrast, inside the request)."""
    from hookclient import delivery
    from hookclient import hook as hook_mod

    real_disarm = hook_mod._disarm_alarm
    fired: list[str] = []

    def alarm() -> None:
        if not fired:
            fired.append(when)
            hook_mod._on_alarm(signal.SIGALRM, None)

    if when == "after the answer":

        def racing_disarm() -> None:
            alarm()
            real_disarm()

        monkeypatch.setattr(hook_mod, "_disarm_alarm", racing_disarm)
    else:
        real_post = delivery.Sender.post

        def post(self: delivery.Sender, *args: object, **kwargs: object) -> object:
            alarm()
            return real_post(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(delivery.Sender, "post", post)
    hook.configure(endpoint={"url": receiver.url}, queue={"backoff": [60.0]})
    read_end, write_end = os.pipe()
    os.write(write_end, (FIXTURES / "post-tool-use-edit.json").read_bytes())
    os.close(write_end)
    try:
        rc = hook_mod.send(
            hook_mod.SendOptions(config=str(hook.config)), environ=hook.env(), stdin_fd=read_end
        )
    finally:
        os.close(read_end)

    assert fired == [when] and rc == 0
    if when == "after the answer":  # the 200 arrived before the alarm: it stands
        assert len(receiver.rows()) == 1 and hook.files("pending") == []
    else:  # cut before the request: back to pending/ for the daemon
        assert receiver.rows() == [] and len(hook.files("pending")) == 1
    assert hook.files("processing") == []
    assert not [line for line in hook.log_lines() if line["msg"] == "internal error"]


def test_an_insecure_endpoint_is_logged_once_per_hook_with_the_event(hook: HookEnv) -> None:
    hook.configure(
        endpoint={"url": "http://hooks.invalid/in", "timeout": 1.0},
        delivery={"inline_attempts": 1},
    )
    run = hook.run((FIXTURES / "stop.json").read_bytes())
    assert run.returncode == 0 and run.stdout == b"" and run.stderr == b""
    [body] = hook.bodies("pending")
    [line] = [entry for entry in hook.log_lines() if entry["msg"] == "insecure endpoint"]
    assert line["requestId"] == body["envelope"]["requestId"] and line["level"] == "warning"
    assert "plain http to a non-loopback host" in line["error"]
    assert TOKEN not in json.dumps(line)
