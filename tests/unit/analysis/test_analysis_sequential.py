"""The sequential tests: their error rates hold under continuous monitoring, and they have power.

Every test here looks at a growing sample after every batch, as the engine does every interval, and
counts how often a test ever concludes. Seeded, so the figures are the same on every run.
"""

from __future__ import annotations

import numpy as np
import pytest

from bellwether.analysis import sequential

LOOKS = 40  # looks per trial: 20 minutes at a 30 s interval
TRIALS = 1500


def ever(decide: object, trials: int = TRIALS) -> float:
    """The share of trials in which `decide(trial_rng)` came true at some look."""
    rng = np.random.default_rng(20261202)
    return sum(bool(decide(rng)) for _ in range(trials)) / trials  # type: ignore[operator]


@pytest.mark.parametrize(("p0", "batch"), [(0.01, 480), (0.05, 120), (0.2, 30)])
def test_a_share_exactly_at_the_threshold_is_rarely_ever_called_above_it(p0: float, batch: int) -> None:
    alpha = 0.05

    def trial(rng: np.random.Generator) -> bool:
        k = np.cumsum(rng.binomial(batch, p0, LOOKS))
        return any(sequential.above(float(k[i]), batch * (i + 1.0), p0, alpha).conclusive for i in range(LOOKS))

    assert ever(trial) <= alpha


@pytest.mark.parametrize(("p0", "batch"), [(0.01, 480), (0.05, 120), (0.2, 30)])
def test_a_share_exactly_at_the_threshold_is_rarely_ever_called_below_it(p0: float, batch: int) -> None:
    alpha = 0.1

    def trial(rng: np.random.Generator) -> bool:
        k = np.cumsum(rng.binomial(batch, p0, LOOKS))
        return any(sequential.below(float(k[i]), batch * (i + 1.0), p0, alpha).conclusive for i in range(LOOKS))

    assert ever(trial) <= alpha


def test_looking_every_interval_at_a_fixed_sample_test_would_false_alarm_far_more_often() -> None:
    """Why the judge does not check a p-value each interval: at the same 5 % level, a one-sided z-test
    looked at 40 times concludes on a share exactly at the threshold in a quarter of the trials."""
    p0, batch = 0.01, 480

    def trial(rng: np.random.Generator) -> bool:
        k = np.cumsum(rng.binomial(batch, p0, LOOKS))
        n = batch * np.arange(1, LOOKS + 1)
        z = (k / n - p0) / np.sqrt(p0 * (1 - p0) / n)
        return bool((z > 1.645).any())

    assert ever(trial) > 0.15


@pytest.mark.parametrize(("ratio", "share"), [(1.0, 0.01), (2.0, 0.004), (1.0, 0.05)])
def test_two_revisions_at_exactly_the_ratio_are_rarely_ever_called_beyond_it(ratio: float, share: float) -> None:
    """Canary at 20 % of the traffic, its per-request chance exactly `ratio` x stable's."""
    alpha = 0.05

    def trial(rng: np.random.Generator) -> bool:
        n, ns = 480, 1920
        k = np.cumsum(rng.binomial(n, ratio * share, LOOKS))
        ks = np.cumsum(rng.binomial(ns, share, LOOKS))
        for i in range(LOOKS):
            over, _ = sequential.versus(float(k[i]), n * (i + 1.0), float(ks[i]), ns * (i + 1.0), ratio, alpha, alpha)
            if over.conclusive:
                return True
        return False

    assert ever(trial) <= alpha


def looks_until(conclusive: object, rng: np.random.Generator) -> int:
    """The first look at which `conclusive(k, n, ks, ns)` holds (LOOKS + 1 if never)."""
    k = ks = 0.0
    for i in range(LOOKS):
        k += rng.binomial(480, 0.02)
        ks += rng.binomial(1920, 0.005)
        if conclusive(k, 480 * (i + 1.0), ks, 1920 * (i + 1.0)):  # type: ignore[operator]
            return i + 1
    return LOOKS + 1


def test_four_times_the_errors_against_a_twice_stable_bound_is_caught_within_minutes() -> None:
    """0.5 % -> 2 % at a 20 % canary (480 requests an interval): the two-rate comparison concludes in
    a few intervals, as the information in ~10 errors an interval allows."""
    rng = np.random.default_rng(4)

    def over(k: float, n: float, ks: float, ns: float) -> bool:
        return sequential.versus(k, n, ks, ns, 2.0, 0.05, 0.1)[0].conclusive

    looks = sorted(looks_until(over, rng) for _ in range(300))
    assert looks[len(looks) // 2] <= 5 and looks[int(0.95 * len(looks))] <= 10, looks


def test_confidence_bounds_hold_at_every_look() -> None:
    alpha, p = 0.05, 0.01

    def trial(rng: np.random.Generator) -> bool:
        k = np.cumsum(rng.binomial(480, p, LOOKS))
        for i in range(0, LOOKS, 4):
            n = 480 * (i + 1.0)
            if not sequential.lower_bound(float(k[i]), n, alpha) <= p <= sequential.upper_bound(float(k[i]), n, alpha):
                return True
        return False

    assert ever(trial, 400) <= 2 * alpha  # each side at alpha


def test_the_requests_needed_are_the_first_that_can_conclude() -> None:
    needed = sequential.requests_needed(0.01, 0.1)
    assert sequential.below(0.0, needed, 0.01, 0.1).conclusive
    assert not sequential.below(0.0, needed - 2, 0.01, 0.1).conclusive
    assert 200 < needed < 600  # about ln(grid / alpha) / p0 requests without a single slow one


def test_no_requests_are_no_evidence() -> None:
    assert sequential.above(0.0, 0.0, 0.01, 0.05).evidence == 1.0  # a likelihood ratio of 1: neither way
    assert not sequential.below(0.0, 0.0, 0.01, 0.05).conclusive
    over, under = sequential.versus(0.0, 0.0, 5.0, 100.0, 1.0, 0.05, 0.1)
    assert not over.conclusive and not under.conclusive
