"""What does an auto-mode hook cost when it has to start the daemon itself?

Each round kills the daemon (and waits until it is gone), then times one auto-mode hook,
which spools the event and spawns `queued run --idle-exit`; `python -c pass` is timed in
the same rounds.  Usage: .venv/bin/python bench/autostart.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PAYLOAD = (ROOT / "tests" / "fixtures" / "post-tool-use-edit.json").read_bytes()


def timed(cmd: list[str], stdin: bytes = b"") -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return (time.perf_counter() - start) * 1000


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except (ProcessLookupError, FileNotFoundError):
        return True


def kill_daemon(spool: Path) -> None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        pid = int(json.loads((spool / "daemon.pid").read_text())["pid"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not gone(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
    for name in ("daemon.pid", "daemon.starting"):
        (spool / name).unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-autostart-"))
    spool = work / "spool"
    config = work / "c.toml"
    config.write_text(
        f'[endpoint]\nurl = "http://127.0.0.1:9/hooks"\n[queue]\ndir = "{spool}"\n'
        f'idle_exit = 600\n[logs]\ndir = "{work / "logs"}"\n'
    )
    hook = [str(BIN / "hookclient"), "send", "--config", str(config)]
    timed(hook, PAYLOAD)  # warm-up: bytecode, config cache
    time.sleep(3)  # let the config file settle so the cache serves it
    passes, starts = [], []
    try:
        for _ in range(args.runs):
            passes.append(timed([str(BIN / "python"), "-c", "pass"]))
            kill_daemon(spool)
            starts.append(timed(hook, PAYLOAD))
            time.sleep(0.5)  # the new daemon comes up, off the clock
    finally:
        kill_daemon(spool)
    p, s = statistics.median(passes), statistics.median(starts)
    print(
        f"auto mode, hook starts the daemon: median {s:.1f} ms vs python -c pass {p:.1f} ms "
        f"({s / p:.2f}x), {args.runs} alternating runs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
