"""When a ModelDeployment's next cycle runs: one pacing module (cycle.py), clock and RNG injected."""

from __future__ import annotations

import random

from pytest import approx

from bellwether.cycle import ERROR_REQUEUE, LATE_BY, crowded_backoff, pace, wall_wait


def test_the_wait_counts_from_the_cycle_start_and_wakes_just_after_the_due_time() -> None:
    assert wall_wait(10.0, took=3.0, max_requeue=30.0) == approx(7.0 + LATE_BY)
    assert wall_wait(10.0, took=12.0, max_requeue=30.0) == 0.0  # late already: run again at once


def test_a_cycle_that_raised_before_deciding_waits_the_longest_wait() -> None:
    assert wall_wait(None, took=0.5, max_requeue=30.0) == approx(30.0 + LATE_BY - 0.5)


def test_only_the_periodic_recheck_is_jittered_and_errors_come_back_soon() -> None:
    rng = random.Random(7)
    due = [pace(12.0, 30.0, False, rng) for _ in range(50)]
    assert set(due) == {12.0}  # a measurement due in 12 s is never moved
    idle = [pace(300.0, 30.0, False, rng) for _ in range(200)]
    assert all(27.0 <= w <= 30.0 for w in idle) and len(set(idle)) > 100  # spread, within 10% early
    assert pace(300.0, 30.0, True, rng) == ERROR_REQUEUE


def test_only_a_cycle_slowed_by_the_operators_own_load_backs_off() -> None:
    rng = random.Random(3)
    assert crowded_backoff(took=5.0, computed=0.2, rng=rng) == 0.0  # waited on a slow server
    assert crowded_backoff(took=0.5, computed=0.5, rng=rng) == 0.0  # quick
    waits = [crowded_backoff(took=5.0, computed=4.9, rng=rng) for _ in range(100)]
    assert all(0.0 <= w <= 5.0 for w in waits) and len(set(waits)) > 90
