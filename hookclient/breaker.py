"""The circuit breaker shared by every hook process and the daemon of one spool.

State lives in ``<spool>/breaker.json`` so that all the short-lived hook processes of
a session see the same thing.  After ``breaker_failures`` retryable outcomes in a row
it opens for ``breaker_cooldown`` seconds; while open nobody touches the network and
events are spooled at once, so an outage costs the session milliseconds.  When the
cooldown has passed, exactly one caller wins the probe (it pushes ``openUntil`` forward
under the lock, so the others still see "open"); its success closes the breaker.

Reading is lock-free (the file is replaced atomically); changes take a filelock and
re-read, so concurrent failures are counted, not lost.

A hook with the breaker open reads one small file and imports nothing for it: a plain
class, ``str`` paths and no typing at run time (dataclasses, pathlib and typing are
among the imports the hook's path leaves out: BENCHMARKS.md "Hook fast path").
"""

from __future__ import annotations

import os
import time

from hookclient import jsoncodec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal

    Verdict = Literal["closed", "open", "probe"]
else:
    Verdict = str  # the Literal above, for type checkers; typing stays unimported

LOCK_TIMEOUT = 0.5
#: The breaker's file in its spool directory.
BREAKER_FILE = "breaker.json"


class Breaker:
    """The breaker of one spool; ``file`` names its ``breaker.json``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        failures: int = 5,
        cooldown: float = 30.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.file = os.fspath(path)
        self.failures = failures
        self.cooldown = cooldown
        self.now = now

    def __repr__(self) -> str:
        return f"Breaker(path={self.file!r}, failures={self.failures}, cooldown={self.cooldown})"

    def read(self) -> dict[str, Any]:
        try:
            with open(self.file, "rb") as fh:
                state = jsoncodec.loads(fh.read())
            if isinstance(state, dict):
                return state
        except (OSError, ValueError):
            pass
        return {"state": "closed", "failures": 0}

    def until(self, state: dict[str, Any]) -> float:
        """When the cooldown in ``state`` ends.  An ``openUntil`` further away than one
        cooldown was set before the wall clock went back: it has ended, or the breaker
        would hold every event back for as long as the clock jumped."""
        until = float(state.get("openUntil", 0))
        return 0.0 if until > self.now() + self.cooldown + 1.0 else until

    def is_open(self) -> bool:
        """Open and still cooling down (no lock, no write)."""
        state = self.read()
        return state.get("state") == "open" and self.now() < self.until(state)

    def check(self) -> Verdict:
        """closed: go ahead; open: do not touch the network; probe: you are the one try."""
        state = self.read()
        if state.get("state") != "open":
            return "closed"
        if self.now() < self.until(state):
            return "open"
        with self._locked() as current:
            if current is None:
                return "open"
            if current.get("state") != "open":
                return "closed"
            if self.now() < self.until(current):
                return "open"
            current["openUntil"] = self.now() + self.cooldown
            current["probeBy"] = os.getpid()
            self._save(current)
            return "probe"

    def success(self) -> dict[str, Any] | None:
        """The endpoint answered: close and reset.  Returns the open state this call
        closed (for the caller's one "circuit breaker closed" line), else None: it was
        closed already, or another process closed it first.  A closed breaker with no
        failures (nearly every delivery) costs one read, as before."""
        state = self.read()
        if state.get("state") == "closed" and not state.get("failures"):
            return None
        with self._locked() as current:
            if current is not None:
                self._save({"state": "closed", "failures": 0, "closedAt": self.now()})
                return current if current.get("state") == "open" else None
        return None

    def failure(self) -> bool:
        """Count one retryable outcome; True when the breaker is open after it (this one
        opened it, or re-opened it after a failed probe, or found it open)."""
        return self.failed()[1].get("state") == "open"

    def failed(self) -> tuple[bool, dict[str, Any]]:
        """Count one retryable outcome: (did this one open it, the state now).

        "Opened" is the move from closed to open only, so that callers log it once per
        outage: not again for a request that began before it opened and failed after,
        nor for each failed probe (the probe's own failure is logged).  A busy lock
        counts nothing: (False, {}).
        """
        with self._locked() as current:
            if current is None:
                return False, {}
            count = int(current.get("failures", 0)) + 1
            is_open = count >= self.failures
            new: dict[str, Any] = {"state": "open" if is_open else "closed", "failures": count}
            if is_open:
                new["openedAt"] = current.get("openedAt") or self.now()
                new["openUntil"] = self.now() + self.cooldown
            self._save(new)
            return is_open and current.get("state") != "open", new

    def probe_now(self) -> bool:
        """End an open breaker's cooldown at once (``queued flush``): the next attempt
        is its probe.  True if it was open."""
        if self.read().get("state") != "open":
            return False
        with self._locked() as current:
            if current is None or current.get("state") != "open":
                return False
            current["openUntil"] = self.now()
            self._save(current)
            return True

    def _locked(self) -> _Lock:
        return _Lock(self)

    def _save(self, state: dict[str, Any]) -> None:
        """Best effort: on a full or read-only disk the breaker keeps its last state
        (a missed count delays it by one event), and the caller's event goes on."""
        directory, name = os.path.split(self.file)
        tmp = os.path.join(directory, f".{name}.{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(jsoncodec.dumps(state))
            os.replace(tmp, self.file)
        except OSError:
            try:  # noqa: SIM105 - the hook's path imports no contextlib
                os.unlink(tmp)
            except OSError:
                pass


class _Lock:
    """``with``: the current state under the filelock, or None if the lock is busy.

    A busy lock is given up after half a second: a hook never waits longer for a
    bookkeeping update, and a missed count only delays the breaker by one event.
    """

    def __init__(self, breaker: Breaker) -> None:
        from filelock import FileLock

        self.breaker = breaker
        self.lock = FileLock(breaker.file + ".lock", timeout=LOCK_TIMEOUT, mode=0o600)
        self.held = False

    def __enter__(self) -> dict[str, Any] | None:
        from filelock import Timeout

        try:
            self.lock.acquire()
        except (Timeout, OSError):
            return None
        self.held = True
        return self.breaker.read()

    def __exit__(self, *exc: object) -> None:
        if self.held:
            self.lock.release()
