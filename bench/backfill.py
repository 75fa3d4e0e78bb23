"""``hookclient backfill`` end to end (issue 19's target): spool, daemon, store, rows.

Generates ``--mb`` megabytes (default 100) of real-shaped transcripts: the sample
sessions of tests/fixtures/transcripts (a four-line reply, a subagent, a 575 KB tool
output, compaction, resume and fork) copied again and again with fresh session ids,
uuids, message ids and tool ids, each copy in a project directory of its own. Then, with
a real receiver (SQLite store) and the daemon the backfill starts:

- first run: from ``hookclient backfill`` to the last record in the store's rows;
- second run: ``hookclient backfill`` again (nothing to ship), to its exit.

Yardstick, in the same run: reading and parsing every line of every file (``json.loads``)
in this process, the least any backfill must do. Figures as seconds, MB/s, and the ratio.

Usage: .venv/bin/python bench/backfill.py [--mb 100]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import TOKEN, start_receiver, wait_for  # noqa: E402

SAMPLES = ROOT / "tests" / "fixtures" / "transcripts"
BIN = Path(sys.executable).parent
#: ids the CLI writes: UUIDs, and the fake model's message and tool ids
_IDS = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|msg_fake\w+|toolu_\w+|"
    r"(?<![0-9a-f])a[0-9a-f]{16}(?![0-9a-f])"  # a subagent's id
)


def fresh_ids(text: str, mapping: dict[str, str]) -> str:
    """The text with every id replaced, consistently within one copy."""

    def new(match: re.Match[str]) -> str:
        old = match.group(0)
        if old not in mapping:
            if old.startswith("msg_"):
                mapping[old] = f"msg_{uuid.uuid4().hex[:24]}"
            elif old.startswith("toolu_"):
                mapping[old] = f"toolu_{uuid.uuid4().hex[:24]}"
            elif len(old) == 17:
                mapping[old] = "a" + uuid.uuid4().hex[:16]
            else:
                mapping[old] = str(uuid.uuid4())
        return mapping[old]

    return _IDS.sub(new, text)


def generate(root: Path, megabytes: float) -> tuple[int, int, int]:
    """Copies of the samples under ``root`` until ``megabytes``; (files, lines, bytes)."""
    samples = [d for d in sorted(SAMPLES.iterdir()) if d.is_dir()]
    files = lines = size = copy = 0
    while size < megabytes * 1e6:
        sample = samples[copy % len(samples)]
        project = root / f"-bench-{copy:05d}"
        mapping: dict[str, str] = {}
        for source in sorted(sample.rglob("*")):
            if not source.is_file() or source.suffix not in (".jsonl", ".txt", ".json"):
                continue
            relative = fresh_ids(str(source.relative_to(sample)), mapping)
            target = project / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            text = source.read_text()
            text = fresh_ids(text, mapping) if source.suffix != ".txt" else text
            target.write_text(text)
            size += len(text.encode())
            if source.suffix == ".jsonl":
                files += 1
                lines += text.count("\n")
            elif source.suffix == ".txt":
                lines += 1  # a tool-result file is one record
        copy += 1
    return files, lines, size


def yardstick(root: Path) -> float:
    """Seconds to read and parse every line of every transcript: the floor."""
    start = time.perf_counter()
    for path in root.rglob("*.jsonl"):
        with path.open("rb") as fh:
            for line in fh:
                json.loads(line)
    for path in root.rglob("tool-results/*.txt"):
        path.read_bytes()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hookclient-bench-backfill-"))
    projects = work / "projects"
    files, lines, size = generate(projects, args.mb)
    print(f"backfill bench, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores")
    print(f"  generated: {files} transcript files, {lines:,} records, {size / 1e6:.1f} MB")
    floor = yardstick(projects)
    rx = start_receiver(work)
    config = work / "hookclient.toml"
    config.write_text(
        f'[endpoint]\nurl = "{rx.url}"\n[queue]\ndir = "{work / "spool"}"\nidle_exit = 30\n'
        f'[logs]\ndir = "{work / "logs"}"\n[transcripts]\nprojects_dir = "{projects}"\n'
    )
    env = {**os.environ, "HOOKCLIENT_TOKEN": TOKEN}
    command = [str(BIN / "hookclient"), "backfill", "--config", str(config), "--json"]
    try:
        start = time.perf_counter()
        first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        spooled = time.perf_counter() - start
        counts = json.loads(first.stdout)

        def stored() -> bool:
            with sqlite3.connect(rx.db) as conn:
                sql = "SELECT COUNT(*) FROM events WHERE event = 'Transcript'"
                (n,) = conn.execute(sql).fetchone()
            return int(n) >= counts["envelopes"]

        wait_for(stored, timeout=3600, interval=0.1)
        whole = time.perf_counter() - start
        start = time.perf_counter()
        again = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        second = time.perf_counter() - start
        with sqlite3.connect(rx.db) as conn:
            (records,) = conn.execute("SELECT COUNT(*) FROM records").fetchone()
            (messages,) = conn.execute("SELECT COUNT(*) FROM messages").fetchone()
    finally:
        subprocess.run([str(BIN / "queued"), "stop", "--config", str(config)], env=env,
                       capture_output=True, check=False)  # fmt: skip
        rx.stop()
    print(f"  backfill spooled {counts['records']:,} records in {counts['envelopes']:,} "
          f"envelopes: {spooled:.2f} s")  # fmt: skip
    print(f"  end to end (spool, daemon, store, rows): {whole:.2f} s, "
          f"{size / 1e6 / whole:.1f} MB/s (target <= 30 s for 100 MB)")  # fmt: skip
    print(f"  second run: {second:.2f} s (target <= 2 s); it said {again.stdout.strip()}")
    print(f"  yardstick, parse every line in one process: {floor:.2f} s; "
          f"end to end = {whole / floor:.1f}x")  # fmt: skip
    print(f"  store: {records:,} records, {messages:,} messages")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
