"""The delivery policy: what happens to an event after an attempt, in one pure function.

Both deliverers, the direct-mode hook and the ``queued`` daemon, hand every attempt's
:class:`~hookclient.outcome.Outcome` to :func:`after_attempt` and apply the
:class:`Transition` it returns through :class:`~hookclient.spool.Spool` (and the
breaker).  Nothing else decides whether an attempt counts as a retry, when the next one
is due, or whether an event is done with: no I/O, no clock (``now`` is given), so it is
tested with tables (``tests/test_policy.py``).

The rules (README "Running the daemon"):

- delivered: the file goes; the breaker hears a success.
- permanent (3xx, 501, other 4xx, an unusable URL): failed/ at once.  An HTTP answer
  means the endpoint is up, so the breaker hears a success (a run of outage failures
  is broken); a transport-level permanent failure feeds it nothing.
- retryable: the breaker hears a failure.  The first delivery of an event (a spooled
  event's first attempt, or the hook's inline attempts, all of them) is not a retry;
  every later attempt is.  Once ``max_retries`` retries have failed, failed/; else
  pending/, due after ``backoff[retries]`` with jitter, or the server's Retry-After if
  longer (capped at ``retry_after_cap``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from hookclient.backoff import next_delay
from hookclient.clock import utc_iso
from hookclient.config import Queue
from hookclient.outcome import Outcome

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hookclient.spoolstate import LastError, SpoolState

Target = Literal["delivered", "pending", "failed"]
Feed = Literal["success", "failure"]


@dataclass(frozen=True)
class Transition:
    """Where the event goes and with what state; the caller applies it."""

    to: Target
    #: the spool state to write (a new dict: the caller's is not changed)
    state: SpoolState
    #: wall time of the next attempt (pending only)
    due: float | None
    #: the log message that says why: delivered, failed permanently, retries exhausted,
    #: retry scheduled
    reason: str
    #: what the circuit breaker hears, if anything
    breaker: Feed | None


def after_attempt(
    state: SpoolState,
    outcome: Outcome,
    *,
    by: str,
    first: bool,
    queue: Queue,
    now: float,
    rng: random.Random | None = None,
) -> Transition:
    """The transition after ``outcome``, the attempt ``by`` (``hook`` or ``daemon``) made
    of an event whose spool state is ``state``.  ``first``: this attempt belongs to the
    event's first delivery, so a retryable outcome spends no retry."""
    new = state.copy()
    new.pop("owner", None)
    new["attempts"] = outcome.attempt
    new["lastAttemptAt"] = utc_iso(outcome.at)
    new["history"] = [*new.get("history", []), outcome.history_entry(by)]
    if outcome.kind == "delivered":
        return Transition("delivered", new, None, "delivered", "success")
    new["lastError"] = outcome.last_error()
    if outcome.kind == "permanent":
        feed: Feed | None = "success" if outcome.answered else None
        return Transition("failed", new, None, "failed permanently", feed)
    retries = int(new.get("retries", 0)) + (0 if first else 1)
    new["retries"] = retries
    if retries >= queue.max_retries and by != "hook":  # the hook never gives up: it requeues
        return Transition("failed", new, None, "retries exhausted", "failure")
    delay = next_delay(
        retries,
        schedule=queue.backoff,
        jitter=queue.jitter,
        rng=rng,
        retry_after=outcome.retry_after,
        retry_after_cap=queue.retry_after_cap,
    )
    due = now + delay
    new["nextAttemptAt"] = utc_iso(due)
    return Transition("pending", new, due, "retry scheduled", "failure")


#: lastError of a request the hook's alarm cut when it outlived the budget.
BUDGET_EXHAUSTED: LastError = {
    "kind": "timeout",
    "status": None,
    "detail": "hook budget exhausted while the request was in flight",
}


def requeue_unattempted(
    state: SpoolState,
    queue: Queue,
    now: float,
    *,
    last_error: LastError | None = None,
    rng: random.Random | None = None,
) -> Transition:
    """The hook had no attempt to show: none was made for lack of time, or the alarm
    cut the one in flight (``last_error`` says so).  Back to pending/, due after the
    first backoff step; attempts, history and the retry count stay as they were, so
    the daemon's first attempt is still the event's first delivery."""
    new = state.copy()
    new.pop("owner", None)
    if last_error is not None:
        new["lastError"] = last_error
    retries = int(new.get("retries", 0))
    new["retries"] = retries
    delay = next_delay(retries, schedule=queue.backoff, jitter=queue.jitter, rng=rng)
    new["nextAttemptAt"] = utc_iso(now + delay)
    return Transition("pending", new, now + delay, "retry scheduled", None)
