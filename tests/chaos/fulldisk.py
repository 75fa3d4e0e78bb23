"""The full-disk scenario, run on a real small tmpfs or with injected ENOSPC.

    unshare -m python -m tests.chaos.fulldisk SPOOL CONFIG   (root: a 1 MiB tmpfs)

prints one JSON report.  The same :func:`scenario` runs in-process with the injection
(tests/chaos/enospc/sitecustomize.py) where no namespace can be made.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def hook(config: Path, env: dict[str, str], n: int, mode: str) -> dict[str, Any]:
    payload = json.dumps({"hook_event_name": "PostToolUse", "session_id": "full", "n": n})
    done = subprocess.run(
        [str(BIN / "hookclient"), "send", "--config", str(config), "--mode", mode],
        input=payload.encode(),
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return {"rc": done.returncode, "stdout": done.stdout.decode(), "stderr": done.stderr.decode()}


def pending(spool: Path) -> list[str]:
    return sorted(p.name for p in (spool / "pending").glob("*.json"))


def wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def scenario(
    spool: Path,
    config: Path,
    env: dict[str, str],
    fill: Callable[[], None],
    unfill: Callable[[], None],
) -> dict[str, Any]:
    """Events spooled, a daemon retrying them against an endpoint answering 500, then
    the disk fills: hooks must fail loudly (exit 1, one line), the daemon must keep
    every file whole; then space returns and the endpoint recovers: all delivered."""
    from tests.chaos.harness import ChaosServer

    report: dict[str, Any] = {}
    down = ChaosServer(config.parent, {"500": 1.0}).start()
    text = re.sub(r'(?m)^url = ".*"$', f'url = "{down.url}"', config.read_text())
    config.write_text(text)
    report["before"] = [hook(config, env, n, "spool")["rc"] for n in range(10)]
    report["sent"] = pending(spool)
    daemon = subprocess.Popen(
        [str(BIN / "queued"), "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait(lambda: len(down.applied()) > 0 or os.path.exists(spool / "breaker.json"), 30)
    # The daemon, retrying, rewrites files as the disk fills, and a rewrite frees the
    # page of the file it replaces: stopped while the disk fills and the two hooks run,
    # it cannot hand them a page (it failed a CI run once, a hook spooling into it).
    daemon.send_signal(signal.SIGSTOP)
    try:
        fill()
        report["full_spool_mode"] = hook(config, env, 100, "spool")
        report["full_direct_mode"] = hook(config, env, 101, "direct")
    finally:
        daemon.send_signal(signal.SIGCONT)
    time.sleep(2.0)  # the daemon retries, cannot write, pauses: give it that time
    report["daemon_alive_when_full"] = daemon.poll() is None
    report["files_when_full"] = len(pending(spool)) + len(list((spool / "processing").iterdir()))
    down.stop()
    up = ChaosServer(config.parent, {"ok": 1.0}, port=down.port).start()
    unfill()
    started = time.monotonic()
    report["drained"] = wait(
        lambda: not pending(spool) and not any((spool / "processing").iterdir()), 60
    )
    report["drain_after_space_s"] = round(time.monotonic() - started, 2)
    daemon.send_signal(signal.SIGTERM)
    report["daemon_rc"] = daemon.wait(timeout=60)
    assert daemon.stderr is not None
    report["daemon_stderr"] = daemon.stderr.read().decode()
    daemon.stderr.close()
    report["applied"] = up.applied()
    up.stop()
    return report


def main() -> None:
    spool, config = Path(sys.argv[1]), Path(sys.argv[2])
    spool.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(spool)]
    subprocess.run(mount, check=True)
    filler = spool / "filler"

    def fill() -> None:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        for size in (65536, 4096, 512, 64, 1):  # to the last byte
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
        os.close(fd)

    def unfill() -> None:
        filler.unlink()

    print(json.dumps(scenario(spool, config, dict(os.environ), fill, unfill)))


if __name__ == "__main__":
    main()
