"""One log line as the hook writes it (LogWriter.log: build the record, json.dumps it,
one O_APPEND write), in-process, next to `json.dumps` of the same record, alternating.

    python bench/logline.py [--lines 2000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hookclient.clock import utc_iso  # noqa: E402
from hookclient.logs import LogWriter  # noqa: E402

FIELDS = {
    "requestId": "01a0c450-6c00-7564-b54c-da6cc03d0052",
    "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
    "spanId": "00f067aa0ba902b7",
    "event": "PostToolUse",
    "state": "pending",
    "file": "20261124T021929421184Z-01a0c450-6c00-7564-b54c-da6cc03d0052.json",
    "elapsedMs": 12.3,
}


def per_line_ms(fn: object, lines: int) -> float:
    start = time.perf_counter()
    for _ in range(lines):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000 / lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-log-"))
    writer = LogWriter(work, component="hook", max_bytes=1 << 40)  # no rotation mid-run

    def hook_line() -> None:
        writer.log("queue", "info", "spooled", **FIELDS)

    def dumps_only() -> None:
        record = {"ts": utc_iso(time.time()), "level": "info", "msg": "spooled"}
        record.update(component="hook", pid=os.getpid(), **FIELDS)
        json.dumps(record, separators=(",", ":"))

    hook_line()  # opens the directory once, as the hook's first line does
    logs, dumps = [], []
    for _ in range(args.rounds):
        logs.append(per_line_ms(hook_line, args.lines))
        dumps.append(per_line_ms(dumps_only, args.lines))
    log_ms, dumps_ms = statistics.median(logs), statistics.median(dumps)
    size = (work / "queue.log").stat().st_size
    print(
        f"log line benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}; median of {args.rounds} rounds of {args.lines} lines)"
    )
    print(f"  LogWriter.log (hook path, one O_APPEND write)  {log_ms * 1000:7.1f} us/line")
    print(f"  json.dumps of the same record (yardstick)       {dumps_ms * 1000:7.1f} us/line")
    print(
        f"  ratio {log_ms / dumps_ms:.1f}x; target <= 0.5 ms/line: "
        f"{'met' if log_ms <= 0.5 else 'missed'} ({size // (args.lines * args.rounds + 1)} "
        "bytes/line)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
