"""Transcript sync under kill -9: the daemon (and a backfill) killed at random instants
while the CLI is still writing the file, some lines in two pieces. The check is the
store's rows: every line of the transcript there, none missing (the store keeps each
record once, so a line read twice is harmless; a line skipped would be lost)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    BIN,
    HookEnv,
    Receiver,
    daemon_pid,
    kill_daemons,
    start_queued,
    wait_for,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]
SCALE = max(1, int(os.environ.get("CHAOS_SCALE", "1")))
SESSION = "c4a05000-0000-4000-8000-000000000001"


def line(n: int) -> bytes:
    record = {
        "type": "user",
        "uuid": f"{SESSION[:24]}{n:012d}",
        "sessionId": SESSION,
        "parentUuid": f"{SESSION[:24]}{n - 1:012d}" if n else None,
        "message": {"role": "user", "content": f"line {n} " + "x" * (n % 300)},
    }
    return (json.dumps(record) + "\n").encode()


@pytest.fixture
def env(hook: HookEnv, receiver: Receiver, tmp_path: Path) -> Iterator[HookEnv]:
    hook.configure(
        endpoint={"url": receiver.url},
        delivery={"mode": "spool"},
        queue={"backoff": [0.1], "jitter": 0.0, "rescan_interval": 1.0},
        transcripts={
            "batch_records": 40,
            "delay": 0.05,
            "settle": 0.1,
            "projects_dir": str(tmp_path / "projects"),
        },
    )
    yield hook
    kill_daemons(hook.spool)


def stored(receiver: Receiver) -> set[str]:
    with sqlite3.connect(receiver.db) as conn:
        return {u for (u,) in conn.execute("SELECT uuid FROM records")}


def cli_writes(path: Path, lines: int, rng: random.Random) -> None:
    """The CLI appending, now and then a line in two writes with a pause between."""
    with path.open("ab") as fh:
        for n in range(lines):
            data = line(n)
            if rng.random() < 0.2:
                cut = rng.randrange(1, len(data))
                fh.write(data[:cut])
                fh.flush()
                time.sleep(0.002)
                data = data[cut:]
            fh.write(data)
            fh.flush()
            if n % 50 == 0:
                time.sleep(0.01)


def test_the_daemon_killed_while_it_follows_a_growing_transcript_loses_no_line(
    env: HookEnv, receiver: Receiver, tmp_path: Path
) -> None:
    lines, kills = 3000 * SCALE, 12 * SCALE
    transcript = tmp_path / "projects" / "-p" / f"{SESSION}.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_bytes(b"")
    payload = {
        "hook_event_name": "UserPromptSubmit",
        "session_id": SESSION,
        "transcript_path": str(transcript),
    }
    assert env.run(json.dumps(payload).encode()).returncode == 0
    rng = random.Random(19)
    writer = threading.Thread(target=cli_writes, args=(transcript, lines, rng))
    writer.start()
    done = 0
    try:
        while done < kills:
            daemon = start_queued(env)
            wait_for(lambda d=daemon: daemon_pid(env.spool) == d.proc.pid or d.proc.poll())
            time.sleep(rng.uniform(0.05, 0.4))  # a random instant, not a condition
            daemon.stop(signal.SIGKILL)
            done += 1
    finally:
        writer.join()
    final = start_queued(env)
    wait_for(lambda: daemon_pid(env.spool) == final.proc.pid)  # up: SIGTERM is handled
    want = {json.loads(line(n))["uuid"] for n in range(lines)}
    wait_for(lambda: stored(receiver) >= want, timeout=300)
    assert final.stop() == 0
    assert stored(receiver) == want  # every line, and nothing that is not a line
    spooled = [x for x in env.log_lines() if x["msg"] == "transcript spooled"]
    assert len(spooled) >= lines // 40 and done == kills


def test_a_backfill_killed_mid_run_then_run_again_ships_every_line(
    env: HookEnv, receiver: Receiver, tmp_path: Path
) -> None:
    lines = 4000 * SCALE
    transcript = tmp_path / "projects" / "-p" / f"{SESSION}.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_bytes(b"".join(line(n) for n in range(lines)))
    command = [str(BIN / "hookclient"), "backfill", "--config", str(env.config)]
    rng = random.Random(7)
    for _ in range(5 * SCALE):
        proc = subprocess.Popen(
            command, env=env.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finish = subprocess.run(
        command, env=env.env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert finish.returncode == 0, finish.stderr
    want = {json.loads(line(n))["uuid"] for n in range(lines)}
    wait_for(lambda: stored(receiver) >= want, timeout=300)
    assert stored(receiver) == want
