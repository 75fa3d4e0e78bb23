"""The hook's inline retries after a failed first attempt, with tenacity.

Kept apart from :mod:`hookclient.delivery` so that a direct-mode hook whose first
attempt is delivered (nearly all of them) never imports tenacity (BENCHMARKS.md
"Hook fast path" has what that import costs).
"""

from __future__ import annotations

from collections.abc import Callable

import tenacity

from hookclient.clock import Clock
from hookclient.outcome import Outcome, no_time_for_another


class StopAtDeadline(tenacity.stop.stop_base):
    """Stop when the next attempt could not start (after its wait) before the deadline.

    tenacity's own ``stop_before_delay`` reads ``time.monotonic`` directly; this one uses
    the injected clock, so tests exercise the budget without waiting.
    """

    def __init__(self, deadline: float, delay: float, clock: Clock) -> None:
        self.deadline, self.delay, self.clock = deadline, delay, clock

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return no_time_for_another(self.clock, self.delay, self.deadline)


class StopWhen(tenacity.stop.stop_base):
    """Stop as soon as a predicate says so (the breaker just opened)."""

    def __init__(self, predicate: Callable[[], bool]) -> None:
        self.predicate = predicate

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.predicate()


def retry_inline(
    attempt: Callable[[], Outcome],
    *,
    attempts: int,
    delay: float,
    deadline: float,
    clock: Clock,
    give_up: Callable[[], bool],
) -> Outcome:
    """``attempt`` up to ``attempts`` more times while its outcome is retryable,
    ``delay`` apart, none started past ``deadline`` (monotonic) or after ``give_up``
    says so; returns the last outcome (tenacity's ``retry_error_callback`` hands back
    the last result instead of raising RetryError)."""
    retrying = tenacity.Retrying(
        stop=(
            tenacity.stop_after_attempt(attempts)
            | StopAtDeadline(deadline, delay, clock)
            | StopWhen(give_up)
        ),
        wait=tenacity.wait_fixed(delay),
        retry=tenacity.retry_if_result(_retryable),
        retry_error_callback=_last_outcome,
        sleep=clock.sleep,
    )
    result: Outcome = retrying(attempt)
    return result


def _retryable(outcome: Outcome) -> bool:
    return outcome.kind == "retryable"


def _last_outcome(retry_state: tenacity.RetryCallState) -> Outcome:
    assert retry_state.outcome is not None  # tenacity calls this after an attempt
    result: Outcome = retry_state.outcome.result()
    return result
