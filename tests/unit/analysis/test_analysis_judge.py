"""The judge: verdicts and reasons, and its false-alarm and detection rates on seeded noise."""

from __future__ import annotations

import math
import random

import pytest

from bellwether.analysis.judge import Judgement, judge
from bellwether.analysis.source import Sample
from bellwether.api.spec import Metric

LATENCY = Metric(name="p99-latency", preset="vllm-e2e-latency-p99")
ERRORS = Metric(name="error-rate", preset="vllm-error-rate")


def noisy(rng: random.Random, true: float, rel_sd: float, n: int) -> list[float]:
    return [true * math.exp(rng.gauss(0.0, rel_sd)) for _ in range(n)]


def run(metric: Metric, canary: list[float], stable: list[float]) -> Judgement:
    return judge(metric, Sample(canary[-1], tuple(canary)), Sample(stable[-1], tuple(stable)))


def test_missing_evidence_is_inconclusive_with_the_reason() -> None:
    stable = Sample(1.0, (1.0, 1.1))
    assert judge(LATENCY, Sample(None), stable).reason.startswith("no data for the canary")  # type: ignore[union-attr]
    assert judge(LATENCY, Sample(float("nan")), stable).verdict == "Inconclusive"
    assert judge(LATENCY, Sample(float("inf")), stable).verdict == "Inconclusive"
    outage = judge(LATENCY, Sample(None, error="Prometheus at http://p:9090 unreachable: refused"), stable)
    assert outage.verdict == "Inconclusive" and "unreachable" in (outage.reason or "")
    no_baseline = judge(LATENCY, Sample(1.0, (1.0,)), Sample(None))
    assert no_baseline.verdict == "Inconclusive" and "stable" in (no_baseline.reason or "")


def test_absolute_bounds_apply_to_the_latest_interval() -> None:
    metric = Metric(name="errors", query='sum(rate(x{revision="{{revision}}"}[{{interval}}]))', max=0.01)
    failed = judge(metric, Sample(0.02, (0.0, 0.02)), None)
    assert (failed.verdict, failed.bound, failed.reason) == ("Failed", "<= 0.01", "0.02 is above the maximum 0.01")
    assert judge(metric, Sample(0.005), None).verdict == "Successful"
    throughput = Metric(name="tokens", query='sum(rate(t{revision="{{revision}}"}[{{interval}}]))', min=100)
    assert judge(throughput, Sample(50.0), None).verdict == "Failed"


def test_a_clear_latency_regression_fails_with_ratio_and_evidence() -> None:
    rng = random.Random(1)
    stable = noisy(rng, 2.4, 0.08, 10)
    verdict = run(LATENCY, noisy(rng, 4.8, 0.1, 3), stable)
    assert verdict.verdict == "Failed"
    assert "x stable" in (verdict.reason or "") and "Mann-Whitney" in (verdict.reason or "")
    assert verdict.bound == "<= 1.3x stable"


STABLE = [2.4, 2.5, 2.3, 2.4, 2.6, 2.4, 2.5, 2.3, 2.4, 2.5]


def test_one_bad_interval_is_not_enough_evidence() -> None:
    for canary in ([5.0], [5.0, 5.2]):
        verdict = run(LATENCY, canary, STABLE)
        assert verdict.verdict == "Inconclusive" and "not yet significant" in (verdict.reason or "")


def test_a_noisy_latest_interval_is_outweighed_by_the_window() -> None:
    verdict = run(LATENCY, [2.4, 2.5, 2.3, 3.4], STABLE)
    assert verdict.verdict == "Successful" and verdict.reason == "1.02x stable (median of 4 intervals)"


def test_a_canary_slightly_worse_but_within_the_ratio_passes() -> None:
    rng = random.Random(2)
    verdict = run(LATENCY, noisy(rng, 2.4 * 1.1, 0.02, 5), noisy(rng, 2.4, 0.02, 10))
    assert verdict.verdict == "Successful"


def test_a_tiny_error_baseline_is_floored() -> None:
    # stable 0.1 % errors, canary 0.6 %: 6x stable, but under 2x the 0.5 % floor, so not a regression
    verdict = run(ERRORS, [0.006] * 4, [0.001] * 10)
    assert verdict.verdict == "Successful" and verdict.baseline == 0.001
    assert verdict.bound == "<= 2x stable (stable floored at 0.005)"


def test_a_fivefold_error_rate_fails() -> None:
    rng = random.Random(3)
    stable = [rng.choice([0.0, 0.004, 0.008]) for _ in range(10)]
    verdict = run(ERRORS, [0.02, 0.025, 0.018, 0.022], stable)
    assert verdict.verdict == "Failed"


def test_bake_time_compares_with_stable_s_last_known_value() -> None:
    assert judge(LATENCY, Sample(4.9, (4.8, 5.1, 4.9)), None, reference=2.4).verdict == "Failed"
    assert judge(LATENCY, Sample(4.9, (4.8, 5.1)), None, reference=2.4).verdict == "Inconclusive"
    assert judge(LATENCY, Sample(2.5, (2.4, 2.5)), None, reference=2.4).verdict == "Successful"
    assert judge(LATENCY, Sample(2.5, (2.4, 2.5)), None).verdict == "Inconclusive"


@pytest.mark.parametrize(("n_canary", "most"), [(2, 0.0), (3, 0.02), (5, 0.005), (10, 0.005)])
def test_false_alarm_rate_on_healthy_canaries(n_canary: int, most: float) -> None:
    """Canary p99 from ~60 requests per interval (+-25 %), stable from ~500 (+-8 %): the same true value."""
    rng = random.Random(1000 + n_canary)
    trials = 2000
    alarms = sum(
        run(LATENCY, noisy(rng, 2.4, 0.25, n_canary), noisy(rng, 2.4, 0.08, 10)).verdict == "Failed"
        for _ in range(trials)
    )
    assert alarms / trials <= most, f"{alarms}/{trials} healthy canaries failed"


@pytest.mark.parametrize(
    ("factor", "noise", "n_canary", "least"),
    [(2.0, 0.25, 3, 0.95), (2.0, 0.25, 10, 0.99), (1.5, 0.25, 10, 0.85), (1.5, 0.12, 3, 0.9), (1.5, 0.12, 10, 0.99)],
)
def test_detection_rate_of_latency_regressions(factor: float, noise: float, n_canary: int, least: float) -> None:
    rng = random.Random(int(factor * 100 + noise * 1000) + n_canary)
    trials = 1000
    caught = sum(
        run(LATENCY, noisy(rng, 2.4 * factor, noise, n_canary), noisy(rng, 2.4, 0.08, 10)).verdict == "Failed"
        for _ in range(trials)
    )
    assert caught / trials >= least, f"caught {caught}/{trials} {factor}x regressions with {n_canary} intervals"


def binomial(rng: random.Random, requests: int, p: float, n: int) -> list[float]:
    return [sum(rng.random() < p for _ in range(requests)) / requests for _ in range(n)]


@pytest.mark.parametrize(
    ("factor", "n_canary", "least", "most"), [(1, 3, 0.0, 0.02), (1, 10, 0.0, 0.005), (5, 3, 0.8, 1), (5, 10, 0.97, 1)]
)
def test_error_rate_false_alarms_and_detection(factor: int, n_canary: int, least: float, most: float) -> None:
    """180 canary and 450 stable requests per interval, 0.4 % errors when healthy: counts of a few per interval."""
    rng = random.Random(factor * 100 + n_canary)
    trials = 300
    failed = sum(
        run(ERRORS, binomial(rng, 180, 0.004 * factor, n_canary), binomial(rng, 450, 0.004, 10)).verdict == "Failed"
        for _ in range(trials)
    )
    assert least <= failed / trials <= most, f"{failed}/{trials} failed at {factor}x errors, {n_canary} intervals"


def test_an_inconclusive_verdict_says_whether_it_is_pending_or_an_error() -> None:
    stable = Sample(2.4, tuple(STABLE))
    assert judge(LATENCY, Sample(None, error="Prometheus unreachable"), stable).cause == "error"
    assert judge(LATENCY, Sample(None), stable).cause == "error"  # no series: labels or traffic
    assert judge(LATENCY, Sample(None), stable, young=True).cause == "pending"  # a new series' first scrapes
    assert judge(LATENCY, Sample(float("nan")), stable).cause == "error"
    assert judge(LATENCY, Sample(5.0, (5.0,)), stable).cause == "pending"  # one bad interval: not yet significant
    assert judge(LATENCY, Sample(2.5, (2.4, 2.5)), None).cause == "error"  # no stable value at all
    assert judge(LATENCY, Sample(2.4, (2.4, 2.5)), stable).cause is None
