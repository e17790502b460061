"""The per-interval judge: one number per interval, canary against stable in one region, to
Successful, Failed or Inconclusive.

This is the judgment for a query of the user's that returns one number (the presets are judged on
their requests instead: `request_level`). It is also the benchmark's "Mann-Whitney" policy, the
approach of Kayenta, kept so the two can be compared on the same seeds.

Bounds, in order:

1. No usable canary number (query error, Prometheus unreachable, no series, NaN or Inf) is Inconclusive:
   missing evidence is never success.
2. Absolute bounds (`max`, `min`) apply to the latest interval, as the user wrote them.
3. A baseline bound compares with the stable revision over the same window and region; the stable value
   is raised to `minValue` first, so a tiny baseline does not turn noise into a large ratio.

One interval is one noisy point: a canary serving 10 % of the traffic from one pod estimates its p99
from a few dozen requests. So the baseline bound is judged on the window, as Kayenta does: over the
lookback (up to `LOOKBACK` intervals since warm-up, one value per interval) the canary's typical value
(median for latencies, mean for error rates) is compared with stable's. Within the ratio: Successful.
Beyond it, Failed needs evidence as well: at least `MIN_INTERVALS` canary intervals and a one-sided
Mann-Whitney U test finding the canary's values larger than stable's (both raised to the floor first,
so values below it tie) at `ALPHA`; otherwise the breach
is Inconclusive ("not yet significant") and the next interval adds a point. Both gates are needed: the
test alone flags a real but harmless 3 % shift once there are many points, the ratio alone flags one
unlucky minute.

Measured on seeded noise (tests/unit/analysis/test_analysis_judge.py; canary p99 +-25 % per interval,
the noisiest a 10 % canary gets, stable +-8 %): a healthy canary fails under 2 % of measurements at the
first chance (3 intervals) and under 0.5 % from 5 intervals on; since a rollback takes `failureLimit`+1
failures, false rollbacks are rarer still. A 2x regression fails at the third interval after warm-up in
over 95 % of cases; a 1.5x one in about 90 % by the tenth (95 % from the third when the canary's
noise is +-12 %, i.e. at 20 % of the traffic or more). Error rates (binomial counts, 180 canary
requests per interval, 0.4 % healthy): under 1 % false alarms; a 5x rise fails ~90 % of measurements
at 3 intervals and all by 10; a 3x rise sits barely past the default bound (2x the 0.5 % floor) and
fails about half the measurements, enough for `failureLimit` to trip over a step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean, median
from typing import Literal

from bellwether.analysis.presets import Kind, baseline_of, kind_of
from bellwether.analysis.source import Sample
from bellwether.api.metrics import Baseline
from bellwether.api.spec import Metric

# Error counts are small and lumpy (a few per interval), so the test has less power on them; the floor
# on the baseline already keeps noise from a near-zero baseline out, so a looser level is enough.
ALPHA: dict[Kind, float] = {"latency": 0.01, "error-rate": 0.05}
MIN_INTERVALS = 3  # the fewest canary intervals a Failed verdict rests on
LOOKBACK = 10  # intervals of history each side contributes to the statistical comparison

Verdict = Literal["Successful", "Failed", "Inconclusive"]
Cause = Literal["pending", "error"]


@dataclass(frozen=True)
class Judgement:
    """A verdict; an Inconclusive one says its `cause`: `pending` (not enough evidence yet: warm-up, a
    new series' first scrapes, too few requests, not yet conclusive) or `error` (the query failed, found
    no series, or gave no number), which only the latter counts against `inconclusiveLimit`."""

    verdict: Verdict
    value: float | None = None
    baseline: float | None = None
    bound: str | None = None
    reason: str | None = None
    cause: Cause | None = None


def pending(
    reason: str, value: float | None = None, baseline: float | None = None, bound: str | None = None
) -> Judgement:
    return Judgement("Inconclusive", value, baseline, bound, reason, "pending")


def failed_to_measure(
    reason: str, value: float | None = None, baseline: float | None = None, bound: str | None = None
) -> Judgement:
    return Judgement("Inconclusive", value, baseline, bound, reason, "error")


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def bound_text(metric: Metric) -> str | None:
    """The metric's bounds as status shows them, e.g. `<= 1.3x stable`."""
    return " and ".join(_bounds(metric)) or None


def _bounds(metric: Metric) -> list[str]:
    out = []
    if metric.max is not None:
        out.append(f"<= {metric.max:g}")
    if metric.min is not None:
        out.append(f">= {metric.min:g}")
    baseline = baseline_of(metric)
    if baseline is not None:
        floor = f" (stable floored at {baseline.min_value:g})" if baseline.min_value > 0 else ""
        out.append(f"<= {baseline.max_ratio:g}x stable{floor}")
    return out


def judge(
    metric: Metric, canary: Sample, stable: Sample | None, reference: float | None = None, *, young: bool = False
) -> Judgement:
    """Judge the canary's sample; `stable` is None when no stable revision serves (bake time), and then
    `reference`, stable's last known value, stands in for it. `young`: the analysis has just started,
    so a missing series may only be a new pod's first scrapes (pending, not an error)."""
    bound = bound_text(metric)
    if canary.error is not None:
        return failed_to_measure(f"canary query failed: {canary.error}", bound=bound)
    value = canary.value
    if value is None:
        if young:
            return pending(
                "no data for the canary yet: a new series needs two scrapes before a rate has a value", bound=bound
            )
        return failed_to_measure(
            "no data for the canary: the query returned no series (no traffic yet, or labels that do not match)",
            bound=bound,
        )
    if not math.isfinite(value):
        return failed_to_measure(f"the canary's value is {value} (no requests in the interval?)", bound=bound)
    if metric.max is not None and value > metric.max:
        return Judgement("Failed", value, bound=bound, reason=f"{value:g} is above the maximum {metric.max:g}")
    if metric.min is not None and value < metric.min:
        return Judgement("Failed", value, bound=bound, reason=f"{value:g} is below the minimum {metric.min:g}")
    baseline = baseline_of(metric)
    if baseline is None:
        return Judgement("Successful", value, bound=bound, reason="within bounds")

    if stable is not None:
        if stable.error is not None:
            return failed_to_measure(f"stable query failed: {stable.error}", value, bound=bound)
        if not _finite(stable.value):
            return failed_to_measure("no data for the stable revision to compare with", value, bound=bound)
    elif not _finite(reference):
        return failed_to_measure("no stable value to compare with", value, bound=bound)
    return _against_stable(metric, baseline, canary, value, stable, reference, bound)


def _against_stable(
    metric: Metric,
    baseline: Baseline,
    canary: Sample,
    value: float,
    stable: Sample | None,
    reference: float | None,
    bound: str | None,
) -> Judgement:
    """The ratio bound on the window: typical values, then a Mann-Whitney test for a breach."""
    base = stable.value if stable is not None else reference
    assert base is not None
    floor = max(base, baseline.min_value)
    if floor <= 0:
        floor = math.ulp(0.0)
    kind = kind_of(metric)
    canary_series = [x for x in canary.series if math.isfinite(x)] or [value]
    typical = _typical(kind, canary_series)
    n = len(canary_series)
    if stable is None:
        # No live stable to test against (bake time): the canary's typical value must breach the bound.
        ratio = typical / floor
        if ratio <= baseline.max_ratio:
            return Judgement("Successful", value, base, bound, _summary(ratio, kind, n))
        if n < MIN_INTERVALS:
            return _waiting(value, base, bound, ratio, n)
        return Judgement("Failed", value, base, bound, f"{_summary(ratio, kind, n)}, against stable's last value")
    stable_series = [max(x, baseline.min_value) for x in stable.series if math.isfinite(x)] or [floor]
    stable_typical = max(_typical(kind, stable_series), baseline.min_value, math.ulp(0.0))
    ratio = typical / stable_typical
    if ratio <= baseline.max_ratio:
        return Judgement("Successful", value, base, bound, _summary(ratio, kind, n))
    p = significance([max(x, baseline.min_value) for x in canary_series], stable_series)
    if p < ALPHA[kind] and n >= MIN_INTERVALS:
        why = f"{_summary(ratio, kind, n)}; Mann-Whitney p={p:.2g} against {len(stable_series)} stable intervals"
        return Judgement("Failed", value, base, bound, why)
    return _waiting(value, base, bound, ratio, n, p)


def significance(canary: Sequence[float], stable: Sequence[float]) -> float:
    """One-sided p-value that the canary's values are larger than stable's (exact for small samples)."""
    if not canary or not stable:
        return 1.0
    if len(set(canary) | set(stable)) == 1:
        return 1.0  # all equal: no evidence either way
    from scipy.stats import mannwhitneyu  # imported on first use: it costs a second of operator start-up

    return float(mannwhitneyu(canary, stable, alternative="greater").pvalue)


def _typical(kind: Kind, series: Sequence[float]) -> float:
    return fmean(series) if kind == "error-rate" else median(series)


def _word(kind: Kind) -> str:
    return "mean" if kind == "error-rate" else "median"


def _summary(ratio: float, kind: Kind, n: int) -> str:
    return f"{ratio:.2f}x stable ({_word(kind)} of {n} interval{'s' if n != 1 else ''})"


def _waiting(value: float, base: float, bound: str | None, ratio: float, n: int, p: float | None = None) -> Judgement:
    evidence = f"Mann-Whitney p={p:.2g}" if p is not None else f"{n} interval{'s' if n != 1 else ''}"
    return pending(
        f"{ratio:.2f}x stable but not yet significant ({evidence}); measuring again before calling it",
        value,
        base,
        bound,
    )
