"""The chaos server as a process, and the invariant checker every chaos test ends with.

The checker is the suite's definition of "never lose an event, never apply one twice":

- every requestId sent is applied at the receiver (its dedup makes the effect once, however
  many times it was delivered) or sits in exactly one spool state directory, never two;
- no file in pending/, processing/ or failed/ fails to parse, and nothing is half-written
  outside tmp/;
- every log line parses, and every line about an event carries that event's requestId.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import wait_for

STATES = ("pending", "processing", "failed", "corrupt")
#: Spool file names: <yyyymmddTHHMMSSffffffZ>-<requestId>.json
NAME = re.compile(r"^\d{8}T\d{12}Z-(?P<rid>[0-9a-f-]{36})\.json$")
#: Log fields that only appear on a line about one event.
EVENT_FIELDS = ("attempt", "outcome", "retries", "nextAttemptAt", "owner")


class ChaosServer:
    """``python -m tests.chaos.server`` on a port (0: any), with its applied log."""

    def __init__(self, root: Path, plan: dict[str, Any], *, seed: int = 1, port: int = 0) -> None:
        self.root = root
        self.plan = plan
        self.seed = seed
        self.applied_file = root / "applied.jsonl"
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> ChaosServer:
        port_file = self.root / "chaos.port"
        port_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "tests.chaos.server", "--port", str(self.port)]
        cmd += ["--port-file", str(port_file), "--applied", str(self.applied_file)]
        cmd += ["--plan", json.dumps(self.plan), "--seed", str(self.seed)]
        cwd = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL)
        self.port = int(wait_for(lambda: port_file.exists() and port_file.read_text()))
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def applied(self) -> list[dict[str, Any]]:
        if not self.applied_file.exists():
            return []
        lines = self.applied_file.read_text().splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def applied_ids(self) -> set[str]:
        return {line["requestId"] for line in self.applied()}


@dataclass
class Report:
    """What a chaos test ends with; ``figures()`` is what the closing note quotes."""

    sent: int
    applied: int  # distinct requestIds applied (the effect)
    deliveries: int  # applied requests, before dedup
    duplicates_before_dedup: int  # requestIds delivered more than once
    duplicates_after_dedup: int  # requestIds with more than one effect: must be 0
    files: dict[str, int]
    tmp_files: int
    log_lines: int
    extra: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "applied": self.applied,
            "deliveries": self.deliveries,
            "duplicates_before_dedup": self.duplicates_before_dedup,
            "duplicates_after_dedup": self.duplicates_after_dedup,
            "files": self.files,
            "tmp": self.tmp_files,
            "log_lines": self.log_lines,
            **self.extra,
        }


def drained(env: Any) -> bool:
    """No file left in pending/ or processing/ (a HookEnv's), seen twice 0.5 s apart.
    pending/ is listed before and after processing/: a retry can move a file back to
    pending/ between two listings, and a spool that still holds it then looks empty
    (the soak test failed so once, in CI)."""

    def empty() -> bool:
        return not any(env.files(state) for state in ("pending", "processing", "pending"))

    if not empty():
        return False
    time.sleep(0.5)  # and still empty half a second later: nothing was in flight
    return empty()


def spool_ids(spool: Path) -> dict[str, list[str]]:
    """requestId -> the state directories holding a file for it."""
    where: dict[str, list[str]] = {}
    for state in STATES:
        directory = spool / state
        if not directory.is_dir():
            continue
        for entry in os.scandir(directory):
            match = NAME.match(entry.name)
            if match:
                where.setdefault(match["rid"], []).append(state)
    return where


def check(
    sent: set[str],
    spool: Path,
    logs: Path,
    *,
    applied: list[dict[str, Any]] | None = None,
    rows: list[str] | None = None,
    allow_corrupt: bool = False,
    named: set[str] = frozenset(),  # type: ignore[assignment]
) -> Report:
    """Assert the invariants; return the figures.

    ``applied`` are the chaos server's lines (every delivery, with ``new``); ``rows`` the
    reference receiver's requestIds (one per effect).  Give one of them.  ``named``:
    requestIds that log lines may name besides those sent (junk the test dropped in).
    """
    applied = applied or []
    if rows is not None:
        effects = Counter(rows)
        deliveries = len(rows)
    else:
        effects = Counter(line["requestId"] for line in applied if line["new"])
        deliveries = len(applied)
    delivered = Counter(line["requestId"] for line in applied) if rows is None else effects
    where = spool_ids(spool)

    twice = {rid: n for rid, n in effects.items() if n > 1}
    assert not twice, f"applied more than once: {twice}"
    unknown = set(effects) - sent
    assert not unknown, f"applied but never sent: {sorted(unknown)[:5]}"
    split = {rid: dirs for rid, dirs in where.items() if len(dirs) > 1}
    assert not split, f"in two state directories at once: {split}"
    lost = sent - set(effects) - set(where)
    assert not lost, f"{len(lost)} events lost (neither applied nor spooled): {sorted(lost)[:5]}"
    _check_files(spool, allow_corrupt=allow_corrupt)
    lines = _check_logs(logs, sent | named)

    files = {state: sum(1 for dirs in where.values() if state in dirs) for state in STATES}
    tmp = spool / "tmp"
    return Report(
        sent=len(sent),
        applied=len(effects),
        deliveries=deliveries,
        duplicates_before_dedup=sum(1 for n in delivered.values() if n > 1),
        duplicates_after_dedup=len(twice),
        files=files,
        tmp_files=len(os.listdir(tmp)) if tmp.is_dir() else 0,
        log_lines=lines,
    )


def _check_files(spool: Path, *, allow_corrupt: bool) -> None:
    """Every file in a state directory is a whole, parseable record named for its id."""
    from hookclient.errors import CorruptFile
    from hookclient.spool import Spool

    reader = Spool(spool)
    for state in ("pending", "processing", "failed"):
        directory = spool / state
        if not directory.is_dir():
            continue
        for entry in os.scandir(directory):
            assert NAME.match(entry.name), f"stray file in {state}/: {entry.name}"
            try:
                record = reader.read(entry.path)
            except CorruptFile as exc:
                raise AssertionError(f"unparseable file outside tmp/: {exc}") from None
            assert record.request_id in entry.name
    if not allow_corrupt:
        corrupt = spool / "corrupt"
        assert not (corrupt.is_dir() and os.listdir(corrupt)), os.listdir(corrupt)


def _check_logs(logs: Path, sent: set[str]) -> int:
    count = 0
    for path in sorted(logs.glob("*.log*")):
        if path.name.endswith(".lock"):
            continue
        for number, text in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.name}:{number}"
            try:
                line = json.loads(text)
            except ValueError:
                raise AssertionError(f"{where} is not JSON: {text[:200]!r}") from None
            assert isinstance(line, dict), where
            for key in ("ts", "level", "msg", "component", "pid"):
                assert key in line, f"{where} has no {key}: {text[:200]}"
            rid = line.get("requestId")
            about_event = any(line.get(key) is not None for key in EVENT_FIELDS)
            named = NAME.match(str(line.get("file") or ""))
            if about_event or named:
                assert rid, f"{where} is about an event but has no requestId: {text[:300]}"
            if rid is not None and named:
                assert named["rid"] == rid, where
            if rid is not None:
                assert rid in sent, f"{where} names a requestId never sent: {rid}"
            count += 1
    return count


def report(name: str, figures: dict[str, Any]) -> None:
    """Print a test's figures, and append them to $CHAOS_REPORT when set."""
    line = json.dumps({"test": name, **figures})
    print(f"\nCHAOS {line}")
    target = os.environ.get("CHAOS_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
