"""Time in one place: wall-clock RFC 3339 stamps and an injectable clock for tests.

The spool stores times as RFC 3339 UTC strings with milliseconds (``...T10:00:00.123Z``)
so files stay readable by people; policy code works with epoch seconds.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def utc_iso(ts: float) -> str:
    """Format epoch seconds as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    whole = int(ts)
    ms = int((ts - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def parse_iso(text: str) -> float:
    """Parse an RFC 3339 timestamp (``Z`` or an offset) back to epoch seconds."""
    from datetime import UTC, datetime  # not on the hook's path: only readers parse

    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def file_stamp(ts: float) -> str:
    """The sortable prefix of spool file names: ``yyyymmddTHHMMSSffffffZ``."""
    whole = int(ts)
    micro = int((ts - whole) * 1_000_000)
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(whole)) + f"{micro:06d}Z"


class Clock:
    """Wall time, a monotonic timer and sleep, swappable together in tests.

    A plain class: the hook imports this module (for :func:`utc_iso`), and it leaves
    the dataclasses module (and inspect) out; BENCHMARKS.md "Hook fast path" has
    what each import costs.
    """

    def __init__(
        self,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.now = now
        self.monotonic = monotonic
        self.sleep = sleep


class FakeClock(Clock):
    """A clock that only moves when told to; ``sleep`` advances it and records the call."""

    def __init__(self, at: float = 1_790_000_000.0, sleeps: list[float] | None = None) -> None:
        self.at = at
        self.offset = 0.0  # wall minus monotonic: moved by jump(), as NTP or a user would
        self.sleeps: list[float] = [] if sleeps is None else sleeps
        super().__init__(
            now=lambda: self.at + self.offset, monotonic=lambda: self.at, sleep=self._sleep
        )

    def __repr__(self) -> str:
        return f"FakeClock(at={self.at!r}, sleeps={self.sleeps!r})"

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.at += seconds

    def advance(self, seconds: float) -> None:
        self.at += seconds

    def jump(self, seconds: float) -> None:
        """Step the wall clock (not the monotonic one) forwards or backwards."""
        self.offset += seconds
