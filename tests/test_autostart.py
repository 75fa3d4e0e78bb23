"""Auto mode: the hook spools and makes sure a daemon delivers (README "What the hook
does with an event")."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    FIXTURES,
    HookEnv,
    Receiver,
    daemon_pid,
    kill_daemons,
    pid_alive,
    start_receiver,
    wait_for,
)

STOP = (FIXTURES / "stop.json").read_bytes()


@pytest.fixture
def auto(hook: HookEnv) -> Iterator[HookEnv]:
    yield hook
    kill_daemons(hook.spool)


def configure(env: HookEnv, url: str, idle_exit: float = 2.0, **delivery: object) -> None:
    env.configure(
        endpoint={"url": url},
        delivery={"mode": "auto", **delivery},
        queue={"idle_exit": idle_exit, "backoff": [0.5], "jitter": 0.0},
    )


def daemons_of(spool: Path) -> list[int]:
    """Live `queued run` processes whose command line names this spool's config."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(c.endswith(b"queued") for c in cmd) and b"run" in cmd:
            config = cmd[cmd.index(b"--config") + 1] if b"--config" in cmd else b""
            if config.decode().startswith(str(spool.parent)) and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_first_event_starts_a_daemon_that_delivers_and_idles_out(
    auto: HookEnv, receiver: Receiver
) -> None:
    configure(auto, receiver.url, idle_exit=1.0)
    run = auto.run(STOP)

    assert (run.returncode, run.stdout, run.stderr) == (0, b"", b"")
    wait_for(lambda: len(receiver.rows()) == 1)
    pid = wait_for(lambda: daemon_pid(auto.spool))
    wait_for(lambda: not pid_alive(pid), timeout=60)  # idle exit after 1 s
    lines = auto.log_lines()
    assert [line["reason"] for line in lines if line["msg"] == "spooled"] == [
        "no daemon running: starting one"
    ]
    assert any(line["msg"] == "idle exit" and line["pid"] == pid for line in lines)
    started = [line for line in lines if line["msg"] == "daemon started"]
    assert {line["component"] for line in started} == {"hook", "daemon"}
    print(f"auto-mode hook that started the daemon: {run.seconds * 1000:.0f} ms wall")


def test_the_hook_does_not_hold_its_pipes_open_for_the_daemon(
    auto: HookEnv, receiver: Receiver
) -> None:
    """Claude Code waits for the hook's stdout and stderr to close, not just its exit."""
    configure(auto, receiver.url, idle_exit=30.0)
    proc = auto.popen()
    assert proc.stdin and proc.stdout and proc.stderr
    hook_pipes = {
        f"pipe:[{os.fstat(f.fileno()).st_ino}]" for f in (proc.stdin, proc.stdout, proc.stderr)
    }
    out, err = proc.communicate(STOP, timeout=30)  # returns only when both pipes close

    assert (proc.returncode, out, err) == (0, b"", b"")
    pid = wait_for(lambda: daemon_pid(auto.spool))
    assert pid_alive(pid)  # the daemon lives on, yet the pipes were closed
    fds = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # the daemon opens and closes files
            fds.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    assert not fds & hook_pipes, fds  # none of the hook's pipes was inherited
    for n in (0, 1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{n}") == "/dev/null"
    assert os.getsid(pid) == pid  # its own session


@pytest.mark.slow
def test_fifty_hooks_at_once_start_one_daemon(auto: HookEnv, receiver: Receiver) -> None:
    configure(auto, receiver.url, idle_exit=2.0)
    procs = [auto.popen() for _ in range(50)]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(STOP)
        proc.stdin.close()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            assert stream.read() == b""
            stream.close()

    wait_for(lambda: len(receiver.rows()) == 50, timeout=120)
    ids = [row["request_id"] for row in receiver.rows()]
    assert len(set(ids)) == 50
    wait_for(lambda: daemons_of(auto.spool) == [], timeout=60)  # all idled out or lost
    started = [line for line in auto.log_lines() if line["msg"] == "daemon started"]
    assert len([line for line in started if line["component"] == "daemon"]) == 1
    errors = [line for line in auto.log_lines() if line["level"] == "error"]
    assert errors == []


def test_autostart_off_delivers_directly(auto: HookEnv, receiver: Receiver) -> None:
    configure(auto, receiver.url, autostart=False)
    run = auto.run(STOP)

    assert run.returncode == 0
    assert len(receiver.rows()) == 1  # delivered before the hook exited
    assert daemon_pid(auto.spool) is None and daemons_of(auto.spool) == []


@pytest.mark.parametrize("problem", ["missing", "not-executable"])
def test_no_usable_queued_falls_back_to_direct(
    auto: HookEnv,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    problem: str,
) -> None:
    """No `queued` beside the interpreter (or one that cannot run): deliver directly."""
    from hookclient import autostart as starter
    from hookclient.hook import SendOptions, send

    script = tmp_path / "queued"
    if problem == "not-executable":
        script.write_text("#!/bin/sh\n")
        script.chmod(0o644)
    monkeypatch.setattr(starter, "queued_script", lambda: script)
    configure(auto, receiver.url)
    read_end, write_end = os.pipe()
    os.write(write_end, STOP)
    os.close(write_end)
    try:
        rc = send(SendOptions(config=str(auto.config)), environ=auto.env(), stdin_fd=read_end)
    finally:
        os.close(read_end)

    assert rc == 0
    assert len(receiver.rows()) == 1  # delivered by the hook itself
    assert auto.files("pending") == [] and daemon_pid(auto.spool) is None
    # the async backends it hid from httpcore while delivering are not hidden from us
    assert sys.modules.get("trio", "absent") is not None
    assert sys.modules.get("anyio", "absent") is not None
    [why] = [line for line in auto.log_lines() if line["msg"].startswith("autostart failed")]
    assert "no queued script" in why["error"]


def test_a_killed_daemon_is_replaced_by_the_next_hook(auto: HookEnv, receiver: Receiver) -> None:
    configure(auto, receiver.url, idle_exit=30.0)
    auto.run(STOP)
    first = wait_for(lambda: daemon_pid(auto.spool))
    wait_for(lambda: len(receiver.rows()) == 1)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not pid_alive(first))

    auto.run(STOP)
    second = wait_for(lambda: (daemon_pid(auto.spool) or first) != first and daemon_pid(auto.spool))
    wait_for(lambda: len(receiver.rows()) == 2)
    assert second != first and pid_alive(second)


def test_two_endpoints_two_spools_two_daemons(tmp_path: Path) -> None:
    """Default spool dirs are keyed by the endpoint URL: two projects never share."""
    receivers = [start_receiver(tmp_path, name=n) for n in ("a", "b")]
    state = Path(os.environ["HOME"]) / ".local" / "state" / "hookclient" / "spool"
    try:
        envs = []
        for name, rx in zip("ab", receivers, strict=True):
            env = HookEnv(tmp_path / name)
            env.root.mkdir()
            env.config.write_text(
                f'[endpoint]\nurl = "{rx.url}"\n[queue]\nidle_exit = 30\n'
                f'[logs]\ndir = "{env.logs}"\n'
            )
            env.settings = {"written": {}}
            envs.append(env)
        for env in envs:
            assert env.run(STOP).returncode == 0
        wait_for(lambda: [len(rx.rows()) for rx in receivers] == [1, 1])
        spools = sorted(state.iterdir())
        assert len(spools) == 2
        pids = {
            daemon_pid(p)
            for p in wait_for(lambda: spools if all(map(daemon_pid, spools)) else None)
        }
        assert len(pids) == 2
        for rx, env in zip(receivers, envs, strict=True):  # each event at its own endpoint
            rid = rx.rows()[0]["request_id"]

            def delivered(env: HookEnv = env) -> list[dict[str, Any]]:
                return [x for x in env.log_lines() if x["msg"] == "delivered"]

            # the row is committed before the daemon, back from the POST, logs it
            wait_for(delivered)
            assert [(x["requestId"], x["component"]) for x in delivered()] == [(rid, "daemon")]
    finally:
        for rx in receivers:
            rx.stop()
        if state.exists():
            kill_daemons(*state.iterdir())


def test_a_hook_started_daemon_runs_below_the_session(auto: HookEnv, receiver: Receiver) -> None:
    """It gives way to Claude Code and the next hook: nice 10 above the hook's own."""
    configure(auto, receiver.url, idle_exit=30.0)
    auto.run(STOP)
    pid = wait_for(lambda: daemon_pid(auto.spool))
    wait_for(lambda: len(receiver.rows()) == 1)
    assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[cmdline.index(b"--nice") + 1] == b"10"
