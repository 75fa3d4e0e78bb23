"""The daemon as users run it: real `queued run` processes, a real receiver."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    BIN,
    FIXTURES,
    BlackHole,
    HookEnv,
    Receiver,
    daemon_pid,
    kill_daemons,
    queued_once,
    spool_events,
    start_queued,
    start_receiver,
    wait_for,
)


@pytest.fixture
def queue_env(hook: HookEnv) -> Iterator[HookEnv]:
    yield hook
    kill_daemons(hook.spool)


def configure(env: HookEnv, url: str, **queue: object) -> None:
    env.configure(
        endpoint={"url": url, "timeout": 5.0},
        queue={
            "backoff": [0.2, 0.5, 1.0],
            "jitter": 0.0,
            "max_retries": 1000,
            "breaker_cooldown": 0.5,
            "rescan_interval": 30.0,
            **queue,
        },
    )


def no_duplicates(rx: Receiver) -> list[str]:
    ids = [row["request_id"] for row in rx.rows()]
    assert Counter(ids).most_common(1)[0][1] == 1 if ids else True
    return ids


def test_a_file_dropped_in_pending_reaches_the_receiver(
    queue_env: HookEnv, receiver: Receiver
) -> None:
    configure(queue_env, receiver.url)
    daemon = start_queued(queue_env)
    wait_for(lambda: daemon_pid(queue_env.spool))
    [rid] = spool_events(queue_env.spool, 1)

    wait_for(lambda: len(receiver.rows()) == 1)
    assert receiver.rows()[0]["request_id"] == rid
    wait_for(lambda: queue_env.files("pending") == [] and queue_env.files("processing") == [])
    assert daemon.stop() == 0
    delivered = [line for line in queue_env.log_lines() if line["msg"] == "delivered"]
    assert [(d["requestId"], d["component"]) for d in delivered] == [(rid, "daemon")]


@pytest.mark.slow
def test_backlog_drains_after_an_outage(queue_env: HookEnv, tmp_path: Path) -> None:
    rx = start_receiver(tmp_path, name="first")
    port = rx.port
    rx.stop()  # the endpoint is down: its port is known but closed
    configure(queue_env, f"http://127.0.0.1:{port}/hooks")
    sent = spool_events(queue_env.spool, 500)
    daemon = start_queued(queue_env, "--workers", "4")
    wait_for(lambda: any(line["msg"] == "retry scheduled" for line in queue_env.log_lines()))

    rx = start_receiver_on(tmp_path, port)
    try:
        wait_for(lambda: len(rx.rows()) == 500, timeout=120)
        assert sorted(no_duplicates(rx)) == sorted(sent)
        wait_for(lambda: queue_env.files("pending") == [] and queue_env.files("processing") == [])
        assert queue_env.files("failed") == []
        assert daemon.stop() == 0
    finally:
        rx.stop()


def start_receiver_on(tmp_path: Path, port: int) -> Receiver:
    """Restart a receiver on a known port (the daemon's configured endpoint)."""
    import os

    from tests.conftest import TOKEN

    db = tmp_path / "second.db"
    port_file = tmp_path / "second.port"
    proc = subprocess.Popen(
        [
            str(BIN / "hookclient-receiver"),
            "--port",
            str(port),
            "--port-file",
            str(port_file),
            "--db",
            str(db),
        ],
        env={**os.environ, "HOOKCLIENT_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(port_file.exists)
    return Receiver(proc, port, db, TOKEN)


def test_a_second_daemon_is_refused(queue_env: HookEnv, receiver: Receiver) -> None:
    configure(queue_env, receiver.url)
    first = start_queued(queue_env)
    pid = wait_for(lambda: daemon_pid(queue_env.spool))

    second = subprocess.run(
        [str(BIN / "queued"), "run", "--config", str(queue_env.config)],
        env=queue_env.env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert second.stdout == b""
    [line] = second.stderr.decode().splitlines()
    assert f"another queued (pid {pid}) holds {queue_env.spool}" in line
    assert first.stop() == 0


@pytest.mark.slow
def test_sigterm_mid_drain_exits_0_and_a_restart_finishes(
    queue_env: HookEnv, receiver: Receiver
) -> None:
    configure(queue_env, receiver.url)
    sent = spool_events(queue_env.spool, 400)
    daemon = start_queued(queue_env, "--workers", "2")
    wait_for(lambda: len(receiver.rows()) >= 20)

    assert daemon.stop(signal.SIGTERM, timeout=30) == 0
    assert queue_env.files("processing") == []  # in-flight ones finished first
    delivered = len(receiver.rows())
    assert delivered + len(queue_env.files("pending")) == 400

    once = queued_once(queue_env)
    assert once.returncode == 0, once.stderr
    assert sorted(no_duplicates(receiver)) == sorted(sent)
    assert queue_env.files("pending") == [] and queue_env.files("processing") == []


def test_kill_9_mid_delivery_then_restart_redelivers(
    queue_env: HookEnv, receiver: Receiver, black_hole: BlackHole
) -> None:
    spool_dir = str(queue_env.spool)
    configure(queue_env, black_hole.url, dir=spool_dir)
    [rid] = spool_events(queue_env.spool, 1)
    daemon = start_queued(queue_env)
    assert black_hole.requests.wait(30), "the daemon never sent its request"
    pid = daemon_pid(queue_env.spool)
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    [body] = queue_env.bodies("processing")
    assert body["state"]["owner"] == {**body["state"]["owner"], "pid": pid, "by": "daemon"}

    configure(queue_env, receiver.url, dir=spool_dir)  # the endpoint is back
    restarted = start_queued(queue_env)
    wait_for(lambda: len(receiver.rows()) == 1)
    assert restarted.stop() == 0
    assert receiver.rows()[0]["request_id"] == rid
    recovered = [
        line for line in queue_env.log_lines() if line["msg"] == "recovered abandoned claim"
    ]
    assert [line["requestId"] for line in recovered] == [rid]


@pytest.mark.slow
def test_kill_9_at_random_instants_loses_nothing_and_applies_once(
    queue_env: HookEnv, receiver: Receiver
) -> None:
    configure(queue_env, receiver.url)
    sent = spool_events(queue_env.spool, 300)
    rng = random.Random(4242)
    kills = 0
    while len(receiver.rows()) < 300 and kills < 8:
        daemon = start_queued(queue_env, "--workers", "4")
        time.sleep(rng.uniform(0.3, 1.2))  # a random instant, not a wait for a condition
        daemon.stop(signal.SIGKILL)
        kills += 1
    final = start_queued(queue_env)
    wait_for(lambda: daemon_pid(queue_env.spool) == final.proc.pid)
    # All 300 rows can be in before the spool is empty: a daemon killed after the
    # receiver answered leaves its claim, which the final one puts back and sends
    # again (DUPLICATE). Stopping before that would leave it pending, not lost.
    drained = ("pending", "processing")
    wait_for(
        lambda: len(receiver.rows()) == 300 and not any(queue_env.files(s) for s in drained),
        timeout=120,
    )
    assert final.stop() == 0

    assert sorted(no_duplicates(receiver)) == sorted(sent)
    for state in ("pending", "processing", "failed", "corrupt"):
        assert queue_env.files(state) == []
    statuses = Counter(a["status"] for a in receiver.audit())
    assert statuses["SUCCESS"] == 300  # redeliveries, if any, were DUPLICATE


def test_hook_in_auto_mode_spools_when_the_daemon_runs(
    queue_env: HookEnv, receiver: Receiver
) -> None:
    configure(queue_env, receiver.url)
    daemon = start_queued(queue_env)
    wait_for(lambda: daemon_pid(queue_env.spool))
    run = queue_env.run((FIXTURES / "stop.json").read_bytes(), "--mode", "auto")

    assert (run.returncode, run.stdout) == (0, b"")
    wait_for(lambda: len(receiver.rows()) == 1)
    spooled = [line for line in queue_env.log_lines() if line["msg"] == "spooled"]
    assert [line["reason"] for line in spooled] == ["daemon running"]
    assert daemon.stop() == 0


def test_queued_run_nice_lowers_its_cpu_priority(hook: HookEnv) -> None:
    """`queued run --nice 10` runs the daemon at nice 10 (a busy laptop's choice)."""
    from tests.conftest import daemon_pid, start_queued, wait_for

    hook.configure(delivery={"mode": "spool"})
    daemon = start_queued(hook, "--nice", "10")
    pid = wait_for(lambda: daemon_pid(hook.spool))
    with open(f"/proc/{pid}/stat") as fh:
        niceness = int(fh.read().rsplit(")", 1)[1].split()[16])
    assert niceness == max(10, os.nice(0))
    assert daemon.stop() == 0


def test_give_way_never_raises_the_priority_back() -> None:
    from queued.daemon import give_way

    assert give_way(target=os.nice(0) - 1) == os.nice(0)  # asking for more: nothing changes
