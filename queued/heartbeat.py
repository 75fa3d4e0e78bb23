"""The daemon's heartbeat (``[queue] heartbeat``, seconds; 0 is off): a ``Heartbeat``
envelope POSTed straight to the endpoint that often, with the spool's backlog, so the
store's dashboard shows each host's queue, and its alerts can tell a silent host.

A heartbeat is never spooled and never retried: it says how things are now, and the next
one says it again.  It goes out on one of the delivery workers, so a slow endpoint never
holds up the daemon's loop, and at most one is in flight.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hookclient import __version__
from hookclient.delivery import Sender
from hookclient.envelope import wrap
from hookclient.spool import Spool, State

HEARTBEAT = "Heartbeat"


def backlog(spool: Spool, now: float) -> dict[str, Any]:
    """The spool's counts, and how long the oldest pending event has waited (seconds)."""
    pending = spool.names(State.PENDING)
    oldest = _age(pending[0], now) if pending else None
    return {
        "pending": len(pending),
        "processing": len(spool.names(State.PROCESSING)),
        "failed": len(spool.names(State.FAILED)),
        "oldestPendingAge": oldest,
        "version": __version__,
    }


def _age(name: str, now: float) -> float | None:
    """Seconds since a spool file's name says it was written (``20261202T053824726902Z-...``)."""
    try:
        written = datetime.strptime(name[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return round(max(0.0, now - written.timestamp()), 3)


class Heartbeat:
    """Sends one heartbeat every ``every`` seconds of ``monotonic`` time."""

    def __init__(
        self,
        every: float,
        spool: Spool,
        sender: Callable[[], Sender],
        log: Any,
        *,
        monotonic: Callable[[], float],
        now: Callable[[], float],
        timeout: float,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.every = every
        self.spool = spool
        self.sender = sender
        self.log = log
        self.monotonic = monotonic
        self.now = now
        self.timeout = timeout
        self.wake = wake
        self.next_at = monotonic()  # the first one at start
        self._out = False

    def claim(self) -> bool:
        """On the loop's thread: whether to send one now (one is due and none is out);
        the next is then due ``every`` seconds from now."""
        if self._out or self.monotonic() < self.next_at:
            return False
        self._out = True
        self.next_at = self.monotonic() + self.every
        return True

    def next_due(self) -> float:
        """When the loop should wake for the next one: never while one is out (its end
        wakes the loop), so a hung endpoint cannot make the loop spin."""
        return math.inf if self._out else self.next_at

    def beat(self) -> None:
        """Send the claimed heartbeat (on a worker); a failure is a log line, no more."""
        try:
            now = self.now()
            envelope = wrap(HEARTBEAT, None, now, {"payload": backlog(self.spool, now)})
            body = json.dumps(envelope, separators=(",", ":")).encode()
            outcome = self.sender().post(envelope, body, attempt=1, timeout=self.timeout)
            fields = {"requestId": envelope["requestId"], "status": outcome.status}
            if outcome.kind == "delivered":
                self.log.debug("heartbeat sent", **fields, **envelope["payload"])
            else:
                self.log.info("heartbeat not delivered", **fields, detail=outcome.detail)
        except OSError as exc:  # the spool unreadable; on a worker, nothing else would see it
            self.log.error("heartbeat failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._out = False
            self.wake()
