"""Soak: events arriving steadily through the chaos server, two daemon restarts (one
SIGTERM, one kill -9), then the invariant checker and the daemon's resources.

``make soak`` runs 10,000 events (SOAK_EVENTS); ``make test`` a short version.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosServer, check, drained, report
from tests.conftest import (
    HookEnv,
    Queued,
    daemon_pid,
    kill_daemons,
    make_envelope,
    start_queued,
    wait_for,
)

pytestmark = [pytest.mark.soak, pytest.mark.timeout(1800)]
EVENTS = int(os.environ.get("SOAK_EVENTS", "1500"))
MIX = {
    "ok": 0.80,
    "500": 0.03,
    "503": 0.02,
    "429": 0.02,
    "reset": 0.04,
    "applied_reset": 0.05,
    "trickle": 0.04,
    "retry_after": "1",
}


@pytest.fixture
def env(hook: HookEnv) -> Iterator[HookEnv]:
    yield hook
    kill_daemons(hook.spool)


def resources(pid: int) -> tuple[int, int, int]:
    """(RSS in kB, open descriptors other than sockets, sockets) of a live process.
    Sockets are counted apart: keep-alive connections come and go with the endpoint's
    resets, up to one per worker; a leak shows as files or as sockets past that."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss = int(next(line for line in status if line.startswith("VmRSS")).split()[1])
    files = sockets = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            sockets += 1
        else:
            files += 1
    return rss, files, sockets


def test_soak_events_with_two_restarts_lose_nothing_and_hold_steady(
    env: HookEnv, tmp_path: Path
) -> None:
    from hookclient.spool import Spool, State, new_state

    server = ChaosServer(tmp_path, MIX, seed=10_000).start()
    env.configure(
        endpoint={"url": server.url, "timeout": 2.0},
        queue={
            "backoff": [0.05, 0.1, 0.2],
            "max_retries": 1000,
            "breaker_cooldown": 0.3,
            "rescan_interval": 5.0,
        },
    )
    sent: list[str] = []
    spool = Spool(env.spool)

    def feed() -> None:  # as spool-mode hooks would, at a steady pace
        for n in range(EVENTS):
            envelope = make_envelope(n)
            now = time.time()
            spool.add(envelope, new_state(now, due=now), State.PENDING)
            sent.append(envelope["requestId"])
            if n % 50 == 49:
                time.sleep(0.05)

    def applied() -> int:
        return len(server.applied_ids())

    started = time.monotonic()
    feeder = threading.Thread(target=feed)
    try:
        daemon = start_queued(env, "--workers", "4")
        feeder.start()
        wait_for(lambda: applied() >= EVENTS // 3, timeout=600)
        assert daemon.stop(signal.SIGTERM) == 0  # restart 1: graceful
        daemon = start_queued(env, "--workers", "4")
        wait_for(lambda: applied() >= EVENTS // 2, timeout=600)
        daemon.stop(signal.SIGKILL)  # restart 2: a crash
        last: Queued = start_queued(env, "--workers", "4")
        wait_for(lambda: daemon_pid(env.spool) == last.proc.pid, timeout=60)
        base = applied()
        wait_for(lambda: applied() >= base + max(100, EVENTS // 20), timeout=600)
        warm = resources(last.proc.pid)  # after warm-up
        feeder.join(timeout=600)
        wait_for(lambda: applied() == EVENTS and drained(env), timeout=900)
        end = resources(last.proc.pid)
        assert last.stop() == 0
        took = time.monotonic() - started
        result = check(set(sent), env.spool, env.logs, applied=server.applied())
    finally:
        feeder.join(timeout=60)
        server.stop()

    assert result.applied == EVENTS == len(sent)
    assert result.files == dict.fromkeys(result.files, 0)
    rss_growth = (end[0] - warm[0]) / warm[0]
    assert rss_growth <= 0.10, f"RSS grew {rss_growth:.0%}: {warm[0]} -> {end[0]} kB"
    assert end[1] <= warm[1] * 1.10, f"open files grew: {warm[1]} -> {end[1]}"
    assert end[2] <= 4 + 1, f"{end[2]} sockets open with 4 workers"
    figures = {
        **result.figures(),
        "restarts": 2,
        "seconds": round(took, 1),
        "events_per_s": round(EVENTS / took, 1),
        "rss_kb_warm": warm[0],
        "rss_kb_end": end[0],
        "files_open_warm": warm[1],
        "files_open_end": end[1],
        "sockets_warm": warm[2],
        "sockets_end": end[2],
    }
    report("soak", figures)
