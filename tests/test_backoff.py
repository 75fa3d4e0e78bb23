"""hookclient.backoff.next_delay: schedule, jitter bounds, Retry-After, caps."""

from __future__ import annotations

import random

import pytest

from hookclient.backoff import next_delay

SCHEDULE = (60.0, 300.0, 900.0, 3600.0, 7200.0)
CAP = 6 * 3600.0


def exact(retries: int, **kw: float | None) -> float:
    return next_delay(retries, schedule=SCHEDULE, jitter=0.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("retries", "expected"),
    [
        (0, 60.0),
        (1, 300.0),
        (2, 900.0),
        (3, 3600.0),
        (4, 7200.0),
        (5, 7200.0),
        (17, 7200.0),
        (10**6, 7200.0),
        (-3, 60.0),
    ],
)
def test_schedule_index_and_last_value_repeats(retries: int, expected: float) -> None:
    assert exact(retries) == expected


def test_single_value_schedule() -> None:
    assert next_delay(9, schedule=(5.0,), jitter=0.0) == 5.0


@pytest.mark.parametrize("retries", [0, 2, 4, 10**6])
@pytest.mark.parametrize("jitter", [0.1, 0.5])
def test_jitter_stays_within_bounds(retries: int, jitter: float) -> None:
    base = SCHEDULE[min(retries, len(SCHEDULE) - 1)]
    rng = random.Random(1234)
    values = [next_delay(retries, schedule=SCHEDULE, jitter=jitter, rng=rng) for _ in range(2000)]
    assert all(base * (1 - jitter) <= v <= base * (1 + jitter) for v in values)
    # and it really spreads: both halves of the band are used
    assert min(values) < base * (1 - jitter / 2)
    assert max(values) > base * (1 + jitter / 2)


def test_jitter_is_reproducible_with_a_seed() -> None:
    a = [next_delay(1, schedule=SCHEDULE, jitter=0.1, rng=random.Random(7)) for _ in range(3)]
    b = [next_delay(1, schedule=SCHEDULE, jitter=0.1, rng=random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(7)
    expected = 300.0 * (1 + random.Random(7).uniform(-0.1, 0.1))
    assert next_delay(1, schedule=SCHEDULE, jitter=0.1, rng=rng) == expected


def test_zero_jitter_is_exact_and_does_not_draw() -> None:
    rng = random.Random(99)
    state = rng.getstate()
    assert next_delay(2, schedule=SCHEDULE, jitter=0.0, rng=rng) == 900.0
    assert rng.getstate() == state


@pytest.mark.parametrize(
    ("retries", "retry_after", "cap", "expected"),
    [
        (0, 120.0, CAP, 120.0),  # larger Retry-After wins
        (0, 30.0, CAP, 60.0),  # smaller Retry-After does not shorten the schedule
        (0, 0.0, CAP, 60.0),
        (0, None, CAP, 60.0),
        (4, 10_000.0, CAP, 10_000.0),
        (0, 10**9, CAP, CAP),  # absurd Retry-After is capped
        (0, 500.0, 100.0, 100.0),  # capped, still above the schedule's 60
        (4, 10**9, 100.0, 7200.0),  # the cap limits the server, never shortens the schedule
    ],
)
def test_retry_after(retries: int, retry_after: float | None, cap: float, expected: float) -> None:
    assert exact(retries, retry_after=retry_after, retry_after_cap=cap) == expected


def test_retry_after_default_cap_is_six_hours() -> None:
    assert next_delay(0, schedule=SCHEDULE, jitter=0.0, retry_after=10**9) == 6 * 3600.0


def test_retry_after_against_a_jittered_schedule() -> None:
    rng = random.Random(3)
    jittered = next_delay(0, schedule=SCHEDULE, jitter=0.1, rng=random.Random(3))
    assert next_delay(0, schedule=SCHEDULE, jitter=0.1, rng=rng, retry_after=1.0) == jittered
    assert next_delay(0, schedule=SCHEDULE, jitter=0.1, rng=rng, retry_after=500.0) == 500.0


def test_never_negative() -> None:
    assert next_delay(0, schedule=(0.0,), jitter=0.5, rng=random.Random(1)) == 0.0
