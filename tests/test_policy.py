"""The delivery policy as a table: one attempt's outcome and the event's state in,
the transition out (hookclient.policy.after_attempt).  The hook and the daemon both
apply what it returns, so these rows are the rules for both."""

from __future__ import annotations

import random
from typing import Any

import pytest

from hookclient.config import load_config
from hookclient.outcome import Outcome
from hookclient.policy import (
    BUDGET_EXHAUSTED,
    Transition,
    after_attempt,
    requeue_unattempted,
)
from hookclient.spool import new_state
from hookclient.spoolstate import Owner, SpoolState

NOW = 1_790_000_000.0
QUEUE = load_config(
    [],
    {
        "HOOKCLIENT_QUEUE_BACKOFF": "60,300,900",
        "HOOKCLIENT_QUEUE_JITTER": "0",
        "HOOKCLIENT_QUEUE_MAX_RETRIES": "3",
        "HOOKCLIENT_QUEUE_RETRY_AFTER_CAP": "3600",
    },
).queue
OWNER: Owner = {"pid": 1, "by": "daemon", "claimedAt": "2026-01-01T00:00:00.000000Z"}


def spooled(retries: int = 0, owner: Owner | None = OWNER) -> SpoolState:
    """A state as the spool holds it, with ``retries`` spent already."""
    state = new_state(NOW - 100.0, due=NOW - 100.0, owner=owner)
    state["retries"] = retries
    return state


def outcome(kind: str, status: int | None = None, **extra: Any) -> Outcome:
    error = None if kind == "delivered" else extra.pop("error", "http")
    return Outcome(kind, status, f"{kind} {status}", 2, "ab" * 8, 3.0, error=error, at=NOW, **extra)  # type: ignore[arg-type]


ROWS = [
    # (outcome, retries before, first, -> to, retries after, delay, reason, breaker)
    (outcome("delivered", 200), 0, True, "delivered", 0, None, "delivered", "success"),
    (outcome("delivered", 204), 2, False, "delivered", 2, None, "delivered", "success"),
    (outcome("permanent", 404), 0, True, "failed", 0, None, "failed permanently", "success"),
    (outcome("permanent", 401), 1, False, "failed", 1, None, "failed permanently", "success"),
    (outcome("permanent", error="url"), 0, True, "failed", 0, None, "failed permanently", None),
    (outcome("retryable", 503), 0, True, "pending", 0, 60.0, "retry scheduled", "failure"),
    (outcome("retryable", 503), 0, False, "pending", 1, 300.0, "retry scheduled", "failure"),
    (outcome("retryable", 503), 1, False, "pending", 2, 900.0, "retry scheduled", "failure"),
    (outcome("retryable", 503), 2, False, "failed", 3, None, "retries exhausted", "failure"),
    (outcome("retryable", 503), 2, True, "pending", 2, 900.0, "retry scheduled", "failure"),
    (
        outcome("retryable", error="connect"),
        5,
        False,
        "failed",
        6,
        None,
        "retries exhausted",
        "failure",
    ),
    (
        outcome("retryable", 429, retry_after=7200.0),
        0,
        True,
        "pending",
        0,
        3600.0,
        "retry scheduled",
        "failure",
    ),
    (
        outcome("retryable", 429, retry_after=10.0),
        0,
        True,
        "pending",
        0,
        60.0,
        "retry scheduled",
        "failure",
    ),
]


@pytest.mark.parametrize(
    ("got", "retries", "first", "to", "after", "delay", "reason", "feed"), ROWS
)
def test_the_policy_table(
    got: Outcome,
    retries: int,
    first: bool,
    to: str,
    after: int,
    delay: float | None,
    reason: str,
    feed: str | None,
) -> None:
    state = spooled(retries)
    step = after_attempt(state, got, by="daemon", first=first, queue=QUEUE, now=NOW)
    assert (step.to, step.reason, step.breaker) == (to, reason, feed)
    assert step.state.get("retries", 0) == after
    assert step.due == (None if delay is None else NOW + delay)
    assert "owner" not in step.state and state["owner"] == OWNER  # a new dict
    assert step.state["attempts"] == 2
    assert step.state["history"][-1]["outcome"] == got.kind
    assert step.state["history"][-1]["by"] == "daemon"
    assert (step.state["lastError"] is not None) == (to != "delivered")


def test_jitter_comes_from_the_given_rng_and_history_accumulates() -> None:
    jittery = load_config([], {"HOOKCLIENT_QUEUE_JITTER": "0.5"}).queue

    def seeded() -> Transition:
        failed = outcome("retryable", 500)
        rng = random.Random(7)
        return after_attempt(
            spooled(), failed, by="hook", first=True, queue=jittery, now=NOW, rng=rng
        )

    first, again = seeded(), seeded()
    assert first.due == again.due and first.due is not None
    assert 30.0 <= first.due - NOW <= 90.0
    second = after_attempt(
        first.state, outcome("retryable", 500), by="hook", first=True, queue=jittery, now=NOW
    )
    assert [h["by"] for h in second.state["history"]] == ["hook", "hook"]


def test_a_request_the_hook_could_not_make_or_finish_changes_no_count() -> None:
    """No attempt to show (no time left, or the alarm cut the one in flight): attempts,
    history and retries stay, so the daemon's first attempt is the first delivery."""
    state = spooled()
    step = requeue_unattempted(state, QUEUE, NOW, last_error=BUDGET_EXHAUSTED)
    assert (step.to, step.due, step.breaker) == ("pending", NOW + 60.0, None)
    assert (step.state["attempts"], step.state["retries"], step.state["history"]) == (0, 0, [])
    assert step.state["lastError"] == BUDGET_EXHAUSTED
    assert "owner" not in step.state
    assert requeue_unattempted(state, QUEUE, NOW).state["lastError"] is None


def test_the_hook_never_moves_a_retryable_event_to_failed() -> None:
    """Even with max_retries = 0: the daemon decides when retries run out."""
    none_left = load_config([], {"HOOKCLIENT_QUEUE_MAX_RETRIES": "0"}).queue
    failed = outcome("retryable", 503)
    by_hook = after_attempt(spooled(), failed, by="hook", first=True, queue=none_left, now=NOW)
    by_daemon = after_attempt(spooled(), failed, by="daemon", first=True, queue=none_left, now=NOW)
    assert (by_hook.to, by_daemon.to) == ("pending", "failed")
