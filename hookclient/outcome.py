"""What one delivery attempt came to, as a value: the vocabulary shared by the sender,
the delivery policy, the hook and the daemon.

Standard library only, and no httpx: :mod:`hookclient.policy` and the code that applies
its decisions depend on this, not on the transport.  Every attempt ends as an
:class:`Outcome` (delivered, retryable or permanent: the README's outcome table); it is
returned, never raised, so no caller unwraps an exception to read it, and tenacity
retries on the result (:mod:`hookclient.retrying`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

from hookclient.clock import Clock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hookclient.spoolstate import Attempt, LastError

Kind = Literal["delivered", "retryable", "permanent"]
#: An attempt with less time than this left is not started.
MIN_ATTEMPT = 0.05
RETRYABLE_STATUS = frozenset({408, 425, 429, *range(500, 600)}) - {501}


@dataclass(frozen=True)
class Outcome:
    """One attempt's result.  ``kind`` says what happens next (delivered, retryable,
    permanent); ``error`` says what went wrong in a word (``timeout``, ``connect``,
    ``tls``, ``reset``, ``network``, ``url``, ``http``), stored as ``lastError.kind``."""

    kind: Kind
    status: int | None
    detail: str
    attempt: int
    span_id: str
    elapsed_ms: float
    error: str | None = None
    retry_after: float | None = None
    at: float = field(default_factory=time.time)

    @property
    def answered(self) -> bool:
        """The endpoint gave an HTTP answer (even a 4xx): it is up, not an outage."""
        return self.status is not None

    def history_entry(self, by: str) -> Attempt:
        from hookclient.clock import utc_iso

        return {
            "at": utc_iso(self.at),
            "attempt": self.attempt,
            "by": by,
            "outcome": self.kind,
            "status": self.status,
            "error": self.error,
            "detail": self.detail,
            "elapsedMs": round(self.elapsed_ms, 1),
            "spanId": self.span_id,
        }

    def last_error(self) -> LastError:
        return {"kind": self.error or "http", "status": self.status, "detail": self.detail}


def classify(status: int) -> Kind:
    """2xx delivered; 408, 425, 429 and 5xx but 501 retryable; anything else permanent."""
    if 200 <= status < 300:
        return "delivered"
    if status in RETRYABLE_STATUS:
        return "retryable"
    return "permanent"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²" or "١٢": isdigit() alone says yes
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        if when is None:
            return None
        if when.tzinfo is None:  # asctime and "-0000" dates: HTTP dates are GMT, not local
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def no_time_for_another(clock: Clock, delay: float, deadline: float) -> bool:
    """True when another attempt, after its ``delay``, could not start with at least
    MIN_ATTEMPT left before ``deadline`` (monotonic).  The one test of the budget, for
    the first retry and for tenacity's stop in :mod:`hookclient.retrying`."""
    return clock.monotonic() + delay + MIN_ATTEMPT >= deadline
