"""The token and the signing secret never leave the environment variables they came in.

One whole flow, as a user runs it, with a unique token and secret: hooks delivering,
the endpoint down, spooled events, the daemon draining, a 401 into failed/, every
operator command. Then every file written and every byte printed is searched for both,
and so is the command line of every process started.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
from pathlib import Path

from tests.chaos.harness import report
from tests.conftest import BIN, FIXTURES, HookEnv, Receiver, queued_once, sample_files, wait_for


def start_rx(tmp_path: Path, token: str, secret: str, port: int = 0) -> tuple[Receiver, Path]:
    port_file = tmp_path / f"rx-{port}.port"
    log = tmp_path / f"rx-{port}.stderr"
    env = {**os.environ, "HOOKCLIENT_TOKEN": token, "RX_SIGNING": secret}
    cmd = [str(BIN / "hookclient-receiver"), "--port", str(port), "--port-file", str(port_file)]
    cmd += ["--db", str(tmp_path / "rx.db"), "--signing-secret-env", "RX_SIGNING"]
    cmd += ["--log-level", "debug", "--access-log"]
    with open(log, "ab") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=err, stderr=err)
    bound = int(wait_for(lambda: port_file.exists() and port_file.read_text()))
    return Receiver(proc, bound, tmp_path / "rx.db", token), log


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_no_secret_reaches_a_file_an_output_or_a_command_line(
    hook: HookEnv, tmp_path: Path
) -> None:
    token = "tok-" + secrets.token_hex(16)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    outputs: list[bytes] = []
    cmdlines: list[bytes] = []

    def env(**extra: str) -> dict[str, str]:
        return {**os.environ, "HOOKCLIENT_TOKEN": token, "HC_SIGNING": secret, **extra}

    def run(*cmd: str, stdin: bytes = b"", ok: tuple[int, ...] = (0,)) -> bytes:
        done = subprocess.run(cmd, input=stdin, env=env(), capture_output=True, timeout=120)
        outputs.extend([done.stdout, done.stderr])
        assert done.returncode in ok, (cmd, done.stderr[-2000:])
        return done.stdout

    rx, rx_log = start_rx(tmp_path, token, secret)
    hook.configure(
        endpoint={"url": rx.url, "timeout": 2.0, "signing_secret_env": "HC_SIGNING"},
        delivery={"mode": "direct", "inline_attempts": 1},
        queue={"backoff": [0.1], "breaker_failures": 1000},
    )
    send = [str(BIN / "hookclient"), "send", "--config", str(hook.config)]
    for sample in sample_files()[:6]:  # delivered directly, signed
        run(*send, stdin=sample.read_bytes())
    cmdlines += [cmdline(rx.proc.pid)]

    rx.stop()  # the endpoint is down: direct mode spools, spool mode too
    run(*send, stdin=(FIXTURES / "stop.json").read_bytes())
    run(*send, "--mode", "spool", stdin=(FIXTURES / "notification.json").read_bytes())
    held = subprocess.Popen([*send, "--mode", "spool"], stdin=subprocess.PIPE, env=env())
    cmdlines.append(wait_for(lambda: b"send" in cmdline(held.pid) and cmdline(held.pid)))
    assert held.stdin is not None
    held.stdin.write((FIXTURES / "pre-compact.json").read_bytes())
    held.stdin.close()
    assert held.wait(timeout=60) == 0

    rx, rx_log = start_rx(tmp_path, token, secret, port=rx.port)  # back, same port
    daemon = subprocess.Popen(
        [str(BIN / "queued"), "run", "--config", str(hook.config)],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    cmdlines.append(wait_for(lambda: b"run" in cmdline(daemon.pid) and cmdline(daemon.pid)))
    wait_for(lambda: not hook.files("pending"))
    daemon.send_signal(signal.SIGTERM)
    out, err = daemon.communicate(timeout=60)
    outputs.extend([out, err])
    rx.stop()

    rx, rx_log = start_rx(tmp_path, "another-token", secret, port=rx.port)  # 401 -> failed/
    run(*send, stdin=(FIXTURES / "stop.json").read_bytes())
    [failed] = hook.bodies("failed")
    rid = failed["envelope"]["requestId"]
    queued = [str(BIN / "queued")]
    conf = ["--config", str(hook.config)]
    run(*queued, "status", *conf)
    run(*queued, "status", "--json", *conf)
    run(*queued, "list", "--state", "failed", *conf)
    run(*queued, "show", rid, *conf)
    run(*queued, "replay-failed", "--all", *conf)
    run(*queued, "purge", "--state", "failed", "--older-than", "1d", "--yes", *conf)
    once = queued_once(hook)  # still 401: back to failed/
    outputs.extend([once.stdout, once.stderr])
    run(str(BIN / "hookclient"), "trace", rid, *conf)
    run(str(BIN / "hookclient"), "config", "show", *conf)
    run(str(BIN / "hookclient"), "config", "path", *conf)
    run(str(BIN / "hookclient"), "doctor", *conf, ok=(0, 1))
    rx.stop()

    rows = len(rx.rows())
    assert rows >= 9  # the flow really ran: signed, delivered, drained
    leaks, files, scanned = [], 0, 0
    needles = [token.encode(), secret.encode(), secret.removeprefix("whsec_").encode()]
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # SQLite's -shm, gone with the last connection
            continue
        files += 1
        scanned += len(data)
        leaks += [f"{path}" for needle in needles if needle in data]
    for i, text in enumerate(outputs + cmdlines):
        scanned += len(text)
        leaks += [f"output #{i}" for needle in needles if needle in text]
    assert not leaks, leaks
    assert files >= 10 and all(cmdlines)
    report(
        "secret_leak_scan",
        {
            "files": files,
            "bytes": scanned,
            "outputs": len(outputs),
            "command_lines": len(cmdlines),
            "receiver_rows": rows,
            "receiver_log_bytes": rx_log.stat().st_size,
        },
    )
