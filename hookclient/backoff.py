"""Backoff policy as pure functions: when is the next attempt due?

Kept free of I/O and clocks so it can be tested with tables and a seeded RNG
(tenacity's ``wait`` functions are the model).  The spool stores the answer as
``nextAttemptAt``; nothing ever sleeps on it.
"""

from __future__ import annotations

import random


def next_delay(
    retries: int,
    *,
    schedule: tuple[float, ...],
    jitter: float,
    rng: random.Random | None = None,
    retry_after: float | None = None,
    retry_after_cap: float = 6 * 3600.0,
) -> float:
    """Seconds until retry ``retries + 1``: ``schedule[retries]`` (the last value repeats)
    times a factor in [1 - jitter, 1 + jitter], or the server's Retry-After if longer,
    capped at ``retry_after_cap``."""
    base = schedule[min(max(retries, 0), len(schedule) - 1)]
    factor = 1.0 + (rng or random).uniform(-jitter, jitter) if jitter else 1.0
    delay = base * factor
    if retry_after is not None:  # the cap bounds the server's wish, never our own schedule
        delay = max(delay, min(retry_after, retry_after_cap))
    return max(0.0, delay)
