"""hookclient.breaker: open after N failures, one probe after the cooldown, shared state."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from hookclient.breaker import Breaker, Verdict

T0 = 1_790_000_000.0


class Time:
    """The breaker's injected clock: ``t.now()`` and ``t.advance(s)``."""

    def __init__(self) -> None:
        self.at = T0

    def now(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@pytest.fixture
def clock() -> Time:
    return Time()


def make(path: Path, clock: Time, failures: int = 3, cooldown: float = 30.0) -> Breaker:
    return Breaker(path / "breaker.json", failures=failures, cooldown=cooldown, now=clock.now)


def test_new_breaker_is_closed(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock)
    assert b.check() == "closed"
    assert not b.is_open()
    assert b.read() == {"state": "closed", "failures": 0}


def test_stays_closed_below_the_threshold(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock, failures=3)
    assert b.failure() is False
    assert b.failure() is False
    assert b.check() == "closed"
    assert b.read()["failures"] == 2


def test_opens_at_the_threshold(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock, failures=3, cooldown=30)
    b.failure()
    b.failure()
    assert b.failure() is True
    state = b.read()
    assert state["state"] == "open"
    assert state["openUntil"] == T0 + 30
    assert b.is_open()
    assert b.check() == "open"


def test_open_during_the_cooldown(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock, failures=1, cooldown=30)
    b.failure()
    for _ in range(5):
        clock.advance(5.9)
        assert b.check() == "open"
        assert b.is_open()


def test_exactly_one_probe_after_the_cooldown(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock, failures=1, cooldown=30)
    b.failure()
    clock.advance(30)
    assert not b.is_open()  # cooled down: the next caller may probe
    verdicts = [b.check() for _ in range(50)]
    assert verdicts.count("probe") == 1
    assert verdicts[0] == "probe"
    assert set(verdicts[1:]) == {"open"}


def test_exactly_one_probe_across_threads(tmp_path: Path, clock: Time) -> None:
    make(tmp_path, clock, failures=1, cooldown=30).failure()
    clock.advance(31)
    breakers = [make(tmp_path, clock, failures=1, cooldown=30) for _ in range(16)]
    barrier = threading.Barrier(len(breakers))
    verdicts: list[Verdict] = []
    lock = threading.Lock()

    def run(b: Breaker) -> None:
        barrier.wait()
        for _ in range(10):
            verdict = b.check()
            with lock:
                verdicts.append(verdict)

    threads = [threading.Thread(target=run, args=(b,)) for b in breakers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(verdicts) == 160
    assert verdicts.count("probe") == 1
    assert verdicts.count("closed") == 0


def test_success_closes_and_resets(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock, failures=2, cooldown=30)
    b.failure()
    b.failure()
    clock.advance(30)
    assert b.check() == "probe"
    b.success()
    assert b.check() == "closed"
    assert b.read()["failures"] == 0
    assert b.failure() is False  # counting starts again from zero


def test_failed_probe_reopens_for_another_cooldown(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock, failures=2, cooldown=30)
    b.failure()
    b.failure()
    clock.advance(30)
    assert b.check() == "probe"
    assert b.failure() is True
    assert b.read()["openUntil"] == clock.at + 30
    clock.advance(29)
    assert b.check() == "open"
    clock.advance(1)
    assert b.check() == "probe"


def test_success_between_failures_resets_the_count(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock, failures=3)
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()
    assert b.check() == "closed"
    assert b.failure() is True


def test_failures_are_counted_across_instances(tmp_path: Path, clock: Time) -> None:
    a = make(tmp_path, clock, failures=3)
    b = make(tmp_path, clock, failures=3)
    assert a.failure() is False
    assert b.failure() is False
    assert a.failure() is True
    assert b.check() == "open"
    assert b.is_open()


def test_concurrent_failures_are_not_lost(tmp_path: Path, clock: Time) -> None:
    breakers = [make(tmp_path, clock, failures=1000) for _ in range(8)]
    barrier = threading.Barrier(len(breakers))

    def run(b: Breaker) -> None:
        barrier.wait()
        for _ in range(10):
            b.failure()

    threads = [threading.Thread(target=run, args=(b,)) for b in breakers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert breakers[0].read()["failures"] == 80


def test_state_file_is_private_json(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock, failures=1)
    b.failure()
    assert json.loads(Path(b.file).read_text())["state"] == "open"
    assert stat.S_IMODE(Path(b.file).stat().st_mode) == 0o600


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_unreadable_state_counts_as_closed(tmp_path: Path, clock: Time, content: bytes) -> None:
    b = make(tmp_path, clock, failures=1)
    Path(b.file).write_bytes(content)
    assert b.check() == "closed"
    assert b.failure() is True  # and it can be written over
    assert b.check() == "open"


def test_success_on_a_closed_breaker_writes_nothing(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock)
    b.success()
    assert not Path(b.file).exists()


def test_failed_says_opened_once_per_outage(tmp_path: Path, clock: Time) -> None:
    """Only the failure that moves it from closed to open says "opened": not a later
    one from a request that began before it opened, nor a failed probe."""
    b = make(tmp_path, clock, failures=2, cooldown=30)
    opened, state = b.failed()
    assert (opened, state["state"], state["failures"]) == (False, "closed", 1)
    opened, state = b.failed()
    assert opened is True
    assert state == {"state": "open", "failures": 2, "openedAt": T0, "openUntil": T0 + 30}
    assert state == b.read()
    opened, state = b.failed()  # a straggler: it was open already
    assert (opened, state["state"], state["failures"]) == (False, "open", 3)
    assert b.failure() is True  # failure() still says "open after this one"
    clock.advance(31)
    assert b.check() == "probe"
    opened, state = b.failed()  # the probe failed: open again, not newly opened
    assert (opened, state["state"], state["openUntil"]) == (False, "open", clock.at + 30)
    b.success()
    assert b.failed()[0] is False
    assert b.failed()[0] is True  # a new outage opens it anew


def test_success_returns_the_open_state_it_closed(tmp_path: Path, clock: Time) -> None:
    b = make(tmp_path, clock, failures=2, cooldown=30)
    assert b.success() is None  # closed, nothing to reset
    b.failure()
    assert b.success() is None  # closed with a count: reset, but nothing was open
    assert b.read()["failures"] == 0
    b.failure()
    b.failure()
    clock.advance(30)
    assert b.check() == "probe"
    closed = b.success()
    assert closed is not None
    assert (closed["state"], closed["failures"], closed["openedAt"]) == ("open", 2, T0)
    assert b.read() == {"state": "closed", "failures": 0, "closedAt": clock.at}
    assert b.success() is None  # once per transition


def test_failed_with_the_lock_busy_counts_nothing(
    tmp_path: Path, clock: Time, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filelock import FileLock

    from hookclient import breaker

    monkeypatch.setattr(breaker, "LOCK_TIMEOUT", 0.01)
    b = make(tmp_path, clock, failures=1)
    with FileLock(str(Path(b.file)) + ".lock"):
        assert b.failed() == (False, {})
        assert b.failure() is False
    assert b.read() == {"state": "closed", "failures": 0}
