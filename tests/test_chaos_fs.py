"""The file system misbehaves under real hooks and daemons: a full disk, a read-only
spool, the spool removed under the daemon, junk dropped into pending/, hostile stdin.

Each ends in the invariant checker or in the exact files and lines it left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import fulldisk
from tests.chaos.harness import ChaosServer, check, report
from tests.conftest import (
    BIN,
    FIXTURES,
    HookEnv,
    Receiver,
    daemon_pid,
    kill_daemons,
    pid_alive,
    queued_once,
    spool_events,
    start_queued,
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(hook: HookEnv) -> Iterator[HookEnv]:
    yield hook
    kill_daemons(hook.spool)


def configure(env: HookEnv, url: str, **queue: Any) -> None:
    env.configure(
        endpoint={"url": url, "timeout": 2.0},
        delivery={"autostart": False},
        queue={"backoff": [0.1], "jitter": 0.0, "rescan_interval": 1.0, **queue},
    )


def unsaved(*stderrs: str) -> set[str]:
    """The requestIds hooks reported as not saved (their log lines name them too)."""
    import re

    return {m for text in stderrs for m in re.findall(r"event ([0-9a-f-]{36}) not saved", text)}


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- a full disk ----------------------------------------------------------------------


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    import tempfile

    target = Path(tempfile.mkdtemp(dir=tmp_path))
    flags = ["-m"] if os.geteuid() == 0 else ["-rm"]
    probe = subprocess.run(
        ["unshare", *flags, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.parametrize("how", ["tmpfs", "injected ENOSPC"])
def test_a_full_disk_loses_nothing_and_the_daemon_resumes_when_space_returns(
    env: HookEnv, tmp_path: Path, how: str
) -> None:
    configure(env, "http://127.0.0.1:9/hooks", breaker_cooldown=0.5)
    if how == "tmpfs":
        if not _can_mount_tmpfs(tmp_path):
            pytest.skip("cannot mount a tmpfs in a mount namespace here (unshare -m)")
        flags = ["-m"] if os.geteuid() == 0 else ["-rm"]
        cmd = ["unshare", *flags, sys.executable, "-m", "tests.chaos.fulldisk"]
        done = subprocess.run(
            [*cmd, str(env.spool), str(env.config)],
            cwd=ROOT,
            env=env.env(),
            capture_output=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        result = json.loads(done.stdout)
    else:
        flag = tmp_path / "disk-is-full"
        injected = env.env(
            PYTHONPATH=str(ROOT / "tests" / "chaos" / "enospc"),
            CHAOS_ENOSPC_FLAG=str(flag),
            CHAOS_ENOSPC_DIR=str(env.spool),
        )
        result = fulldisk.scenario(
            env.spool, env.config, injected, flag.touch, lambda: flag.unlink()
        )

    assert result["before"] == [0] * 10
    for mode in ("full_spool_mode", "full_direct_mode"):
        hook = result[mode]
        assert hook["rc"] == 1 and hook["stdout"] == "", (mode, hook)  # never 2, no stdout
        assert "no space left to spool into" in one_line(hook["stderr"])
    assert result["daemon_alive_when_full"] and result["files_when_full"] == 10
    assert result["drained"], result
    assert result["daemon_rc"] == 0 and result["daemon_stderr"] == ""
    sent = {name[23:59] for name in result["sent"]}
    lost = unsaved(result["full_spool_mode"]["stderr"], result["full_direct_mode"]["stderr"])
    assert len(lost) == 2
    figures = check(sent, env.spool, env.logs, applied=result["applied"], named=lost).figures()
    assert figures["applied"] == 10 and figures["tmp"] == 0
    troubles = [line["msg"] for line in env.log_lines() if line["level"] == "error"]
    report(
        f"full_disk[{how}]",
        {
            **figures,
            "drain_after_space_s": result["drain_after_space_s"],
            "daemon_errors_while_full": sorted(set(troubles)),
        },
    )


def test_a_daemon_started_on_a_full_disk_runs_without_its_pid_file_and_delivers(
    env: HookEnv, receiver: Receiver, tmp_path: Path
) -> None:
    """No space for daemon.pid, nor for a claim's owner record: `queued run` starts all
    the same (one error line, no traceback) and delivers, which is what frees space."""
    configure(env, receiver.url)
    ids = spool_events(env.spool, 3)
    (env.spool / "daemon.pid").write_text('{"pid": 1}')  # a stale one from before
    (env.spool / "daemon.lock").touch()  # a daemon ran here before (a new empty file
    # needs no block on a real full disk, but the injection refuses every creation)
    flag = tmp_path / "disk-is-full"
    flag.touch()
    injected = env.env(
        PYTHONPATH=str(ROOT / "tests" / "chaos" / "enospc"),
        CHAOS_ENOSPC_FLAG=str(flag),
        CHAOS_ENOSPC_DIR=str(env.spool),
    )
    done = subprocess.run(
        [str(BIN / "queued"), "run", "--once", "--config", str(env.config)],
        env=injected,
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert (done.returncode, done.stderr.decode()) == (0, "")
    assert sorted(r["envelope"]["requestId"] for r in receiver.rows()) == sorted(ids)
    assert [p.name for p in env.spool.glob("*/*.json")] == []
    assert not (env.spool / "daemon.pid").exists()  # the stale one is gone, none written
    errors = [(x["msg"], x.get("error")) for x in env.log_lines() if x["level"] == "error"]
    assert ("cannot write daemon.pid; running without it", "No space left on device") in errors
    claims = [x for x in env.log_lines() if x["msg"].startswith("claimed without writing")]
    assert sorted(x["requestId"] for x in claims) == sorted(ids)


# -- a read-only spool ----------------------------------------------------------------


def _read_only(env: HookEnv, tmp_path: Path, cmd: list[str], stdin: bytes) -> Any:
    """Run ``cmd`` with the spool read-only: chmod for a normal user; root ignores
    modes, so it gets a read-only bind mount in a mount namespace."""
    if os.geteuid() != 0:
        for path in [env.spool, *env.spool.iterdir()]:
            path.chmod(0o500)
        try:
            return subprocess.run(cmd, input=stdin, env=env.env(), capture_output=True, timeout=120)
        finally:
            for path in [env.spool, *env.spool.iterdir()]:
                path.chmod(0o700)
    if not shutil.which("unshare") or not _can_mount_tmpfs(tmp_path):
        pytest.skip("root, and no mount namespace to make the spool read-only in")
    spool = str(env.spool)
    script = f'mount --bind "{spool}" "{spool}" && mount -o remount,bind,ro "{spool}" && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *cmd],
        input=stdin,
        env=env.env(),
        capture_output=True,
        timeout=120,
    )


def test_a_read_only_spool_is_one_clear_line_from_the_hook_and_the_daemon(
    env: HookEnv, receiver: Receiver, tmp_path: Path
) -> None:
    configure(env, receiver.url)
    sent = spool_events(env.spool, 3)
    payload = (FIXTURES / "post-tool-use-edit.json").read_bytes()
    send = [str(BIN / "hookclient"), "send", "--config", str(env.config)]

    refused: set[str] = set()  # none: each hook keeps its event in the unrouted spool
    unrouted = Path(os.environ["HOME"]) / ".local/state/hookclient/spool/unrouted"
    for n, mode in enumerate(("spool", "direct"), 1):
        hook = _read_only(env, tmp_path, [*send, "--mode", mode], payload)
        assert hook.returncode == 0 and hook.stdout == b""
        said = one_line(hook.stderr.decode())
        assert "cannot write to spool" in said and f"kept in {unrouted} instead" in said
        kept = sorted((unrouted / "pending").glob("*.json"))
        assert len(kept) == n
        refused |= {p.name[23:59] for p in kept}  # named in the logs, kept elsewhere
    daemon = _read_only(
        env, tmp_path, [str(BIN / "queued"), "run", "--once", "--config", str(env.config)], b""
    )
    assert daemon.returncode == 1 and daemon.stdout == b""
    line = one_line(daemon.stderr.decode())
    assert str(env.spool) in line
    assert receiver.rows() == []  # nothing sent that could not be recorded as sent

    once = queued_once(env)
    assert once.returncode == 0, once.stderr
    rows = [r["request_id"] for r in receiver.rows()]
    result = check(set(sent), env.spool, env.logs, rows=rows, named=refused)
    assert result.applied == 3
    report("read_only_spool", {**result.figures(), "daemon_error": line})


# -- the spool removed under a running daemon -------------------------------------------


def test_the_spool_removed_under_the_daemon_stops_it_and_the_next_hook_recovers(
    env: HookEnv, receiver: Receiver
) -> None:
    env.configure(
        endpoint={"url": receiver.url, "timeout": 2.0},
        delivery={"mode": "auto", "autostart": True},
        queue={"rescan_interval": 0.5},
    )
    first = spool_events(env.spool, 2)
    daemon = start_queued(env)
    wait_for(lambda: len(receiver.rows()) == 2)

    shutil.rmtree(env.spool)
    code = daemon.proc.wait(timeout=60)  # at its next rescan, not a spin, not forever
    assert daemon.proc.stderr is not None
    line = one_line(daemon.proc.stderr.read().decode())
    assert code == 1
    assert f"the spool directory {env.spool} was removed" in line

    payload = (FIXTURES / "post-tool-use-edit.json").read_bytes()
    hook = env.run(payload)  # recreates the spool and starts a daemon on it
    assert hook.returncode == 0 and hook.stderr == b""
    wait_for(lambda: len(receiver.rows()) == 3)
    pid = wait_for(lambda: daemon_pid(env.spool))
    assert pid != daemon.proc.pid and pid_alive(pid)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid))
    rows = [r["request_id"] for r in receiver.rows()]
    assert set(first) < set(rows) and len(rows) == len(set(rows))
    gone = [line for line in env.log_lines() if line["msg"] == "spool directory gone"]
    assert len(gone) == 1


# -- junk in pending/ --------------------------------------------------------------------


def test_symlinks_dirs_fifos_and_huge_files_in_pending_are_quarantined_unopened(
    env: HookEnv, tmp_path: Path
) -> None:
    server = ChaosServer(tmp_path, {"ok": 1.0}).start()
    try:
        configure(env, server.url)
        sent = set(spool_events(env.spool, 5))
        pending = env.spool / "pending"
        # a whole, valid record outside the spool: following the link would send it
        outside = tmp_path / "outside.json"
        victim = json.loads(next(pending.iterdir()).read_text())
        victim["envelope"]["requestId"] = "01a0c450-0000-7000-8000-00000000dead"
        outside.write_text(json.dumps(victim))
        stamp = "20260101T000000000000Z"
        junk = {
            f"{stamp}-01a0c450-0000-7000-8000-000000000001.json": "symlink",
            f"{stamp}-01a0c450-0000-7000-8000-000000000002.json": "directory",
            f"{stamp}-01a0c450-0000-7000-8000-000000000003.json": "fifo",
            f"{stamp}-01a0c450-0000-7000-8000-000000000004.json": "100 MB",
        }
        for name, kind in junk.items():
            path = pending / name
            if kind == "symlink":
                path.symlink_to(outside)
            elif kind == "directory":
                path.mkdir()
            elif kind == "fifo":
                os.mkfifo(path)  # opening it for reading would block the daemon forever
            else:
                with open(path, "wb") as fh:  # sparse: 100 MB long, no disk used
                    fh.truncate(100 * 1024 * 1024)

        daemon = start_queued(env)
        wait_for(lambda: len(server.applied_ids()) == 5 and not any(pending.iterdir()))
        pid = daemon.proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        peak_kb = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1])
        assert daemon.stop() == 0
        junk_ids = {name[23:59] for name in junk}
        result = check(
            sent, env.spool, env.logs, applied=server.applied(), allow_corrupt=True, named=junk_ids
        )
    finally:
        server.stop()

    corrupt = env.spool / "corrupt"
    assert sorted(p.name for p in corrupt.iterdir()) == sorted(junk)
    assert (corrupt / next(iter(junk))).is_symlink()  # moved as it was, not followed
    assert outside.exists() and json.loads(outside.read_text()) == victim
    assert "01a0c450-0000-7000-8000-00000000dead" not in server.applied_ids()
    assert peak_kb < 100 * 1024, f"the daemon's peak RSS {peak_kb} kB: it read the 100 MB file"
    quarantined = [line for line in env.log_lines() if line["msg"] == "corrupt file quarantined"]
    assert sorted(line["file"] for line in quarantined) == sorted(junk)
    report(
        "junk_in_pending", {**result.figures(), "quarantined": len(junk), "peak_rss_kb": peak_kb}
    )


# -- hostile stdin -------------------------------------------------------------------------


HOSTILE: dict[str, bytes] = {
    "empty": b"",
    "20 MiB": b'{"hook_event_name": "PostToolUse", "blob": "' + b"x" * (20 << 20) + b'"}',
    "binary": bytes(range(256)) * 64,
    "invalid UTF-8": b'{"hook_event_name": "Stop", "text": "\xff\xfe\xc3("}',
    "deeply nested": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "nested arrays": b"[" * 200_000 + b"]" * 200_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_stdin_is_captured_within_bounds(env: HookEnv, name: str) -> None:
    env.configure(delivery={"mode": "spool", "max_payload_bytes": 8 << 20})
    started = time.monotonic()
    run = env.run(HOSTILE[name])
    took = time.monotonic() - started
    assert run.returncode == 0 and run.stdout == b"" and run.stderr == b""
    [body] = env.bodies("pending")
    envelope = body["envelope"]
    if name == "20 MiB":
        assert envelope["payloadTruncated"] is True and envelope["payloadBytes"] > 8 << 20
        assert len(json.dumps(envelope)) < 12 << 20  # bounded: never the whole 20 MiB
    elif name in ("deeply nested", "nested arrays", "invalid UTF-8", "binary", "empty"):
        assert envelope["payload"] is None or name == "invalid UTF-8"
        assert "payloadError" in envelope or name == "invalid UTF-8"
    sent = {envelope["requestId"]}
    check(sent, env.spool, env.logs)
    report(f"hostile_stdin[{name}]", {"bytes": len(HOSTILE[name]), "seconds": round(took, 2)})


def test_a_never_closing_stdin_killed_at_the_claude_code_timeout_leaves_no_half_file(
    env: HookEnv,
) -> None:
    """Claude Code kills a hook at its timeout. With stdin_timeout longer than that, the
    hook dies while still reading: nothing was written, nothing half-written."""
    env.configure(delivery={"mode": "spool", "stdin_timeout": 30.0})
    proc = env.popen()
    assert proc.stdin is not None
    proc.stdin.write(b'{"hook_event_name": "PreToolUse", "tool_input": {"command": "')
    proc.stdin.flush()
    time.sleep(1.0)  # the "timeout" of this test's Claude Code
    proc.kill()
    proc.wait(timeout=30)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        assert stream is not None
        stream.close()
    for state in ("pending", "processing", "failed", "corrupt", "tmp"):
        directory = env.spool / state
        assert not directory.exists() or list(directory.iterdir()) == [], state
