"""Folding judged measurements into status: counted once, bounded per series, turned into a verdict.

A step (or the bake) passes on evidence, not on the clock alone: besides its duration, every metric
needs a Successful measurement in every region judged. A canary with no data, or a Prometheus that
is down, keeps being measured; the Inconclusive results then reach `inconclusiveLimit`, and the
message names the metric and region that never had a Successful measurement, with the reasons given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from bellwether.api import Measurement
from bellwether.api.status import MAX_MEASUREMENTS, MAX_MEASUREMENTS_PER_SERIES
from bellwether.api.units import format_value
from bellwether.rollout.clock import elapsed, not_before, parse
from bellwether.rollout.state import Work

Outcome = Literal["measuring", "passed", "failed", "inconclusive"]


@dataclass(frozen=True)
class Weighing:
    """Where a step's (or bake's) analysis stands after this decision's measurements."""

    outcome: Outcome
    why: str = ""


def series(metric: str, region: str) -> str:
    """How status.progress.evidence names a series (metric names and region names have no '@')."""
    return f"{metric}@{region}"


def _key(m: Measurement) -> tuple[str, str, str]:
    return (m.metric, m.region, m.at)


def record(
    work: Work,
    regions: Iterable[str],
    since: str | None,
    reference: Mapping[tuple[str, str], float] | None = None,
) -> list[Measurement]:
    """Add the observed measurements for `regions` taken since `since`; returns only the new ones.

    A measurement already in status is not counted again, so replaying observations is harmless.
    With `reference` (bake time: no live stable), a measurement without a baseline gets the stable
    value it was judged against, so that value survives the bounded history for the next request.
    """
    wanted = set(regions)
    st = work.status
    judged = st.canary_revision or st.stable_revision
    known = {_key(m) for m in st.analysis}
    fresh = [
        m
        for m in work.obs.measurements
        if m.region in wanted and _key(m) not in known and not_before(m.at, since)
        if m.revision is None or m.revision == judged  # taken for a canary since replaced: not evidence
    ]
    if not fresh:
        return []
    if reference:
        fresh = [
            m.model_copy(update={"baseline": reference[(m.metric, m.region)]})
            if m.baseline is None and (m.metric, m.region) in reference
            else m
            for m in fresh
        ]
    merged = st.analysis + fresh
    kept: list[Measurement] = []
    counts: dict[tuple[str, str], int] = {}
    # At most MAX_MEASUREMENTS in all (status must stay small): fewer per series when there are many.
    per_series = max(
        1,
        min(
            MAX_MEASUREMENTS_PER_SERIES,
            MAX_MEASUREMENTS
            // max(1, len(work.spec.regions) * len(work.spec.analysis.metrics if work.spec.analysis else [])),
        ),
    )
    for m in sorted(merged, key=lambda m: parse(m.at), reverse=True):
        key = (m.metric, m.region)
        if counts.get(key, 0) < per_series:
            counts[key] = counts.get(key, 0) + 1
            kept.append(m)
    st.analysis = sorted(kept, key=lambda m: (parse(m.at), m.region, m.metric))
    return fresh


def count(work: Work, fresh: list[Measurement], *, pending_counts: bool = False) -> Measurement | None:
    """Add verdicts to the counters and the evidence; returns the latest failed measurement, if any.

    An Inconclusive that is only pending (not enough evidence yet: warm-up, few requests, not yet
    conclusive) is not a failure to measure and does not count, unless `pending_counts` (the analysis
    has run twice its duration without a conclusion: then it counts, so nothing waits forever)."""
    p = work.status.progress
    worst: Measurement | None = None
    evidence = set(p.evidence)
    for m in fresh:
        if m.verdict == "Failed":
            p.failures += 1
            worst = m
        elif m.verdict == "Inconclusive":
            p.inconclusives += m.cause != "pending" or pending_counts
        else:
            p.successes += 1
            evidence.add(series(m.metric, m.region))
    if len(evidence) != len(p.evidence):
        p.evidence = sorted(evidence)
    return worst


def reset(work: Work) -> None:
    """A new step (or bake, or a promoted step): its analysis starts with no counts and no evidence."""
    p = work.status.progress
    p.failures = p.inconclusives = p.successes = 0
    p.evidence = []
    p.resumed_at = None


def missing_evidence(work: Work, regions: Iterable[str]) -> list[tuple[str, str]]:
    """(metric, region) pairs without a Successful measurement yet in this step (or bake)."""
    analysis = work.spec.analysis
    if analysis is None:
        return []
    have = set(work.status.progress.evidence)
    return [(m.name, r) for r in regions for m in analysis.metrics if series(m.name, r) not in have]


def describe(m: Measurement) -> str:
    value = format_value(m.value, m.unit)
    bound = f", bound {m.bound}" if m.bound else ""
    why = f" ({m.reason})" if m.reason else ""
    return f"metric {m.metric} in {m.region} measured {value}{bound}{why}"


def last_failure(work: Work, regions: Iterable[str], since: str | None) -> Measurement | None:
    wanted = set(regions)
    failed = [
        m for m in work.status.analysis if m.verdict == "Failed" and m.region in wanted and not_before(m.at, since)
    ]
    return failed[-1] if failed else None


def _reasons(work: Work, metric: str, region: str, since: str | None) -> list[str]:
    """The distinct reasons this series was not Successful, newest first."""
    out: list[str] = []
    for m in reversed(work.status.analysis):
        if m.metric == metric and m.region == region and m.verdict != "Successful" and not_before(m.at, since):
            why = m.reason or m.verdict.lower()
            if why not in out:
                out.append(why)
    return out[:3]


def no_evidence(work: Work, regions: Iterable[str], since: str | None) -> str | None:
    """'no evidence: ...' naming each metric and region without a Successful measurement, or None."""
    missing = missing_evidence(work, regions)
    if not missing:
        return None
    parts = []
    for metric, region in missing:
        reasons = _reasons(work, metric, region, since)
        parts.append(f"{metric} in {region}" + (f" ({'; '.join(reasons)})" if reasons else ""))
    return "no evidence: no successful measurement of " + ", ".join(parts)


def _inconclusive_why(work: Work, regions: list[str], since: str | None, limit: int) -> str:
    p = work.status.progress
    counted = f"{p.inconclusives} inconclusive measurements > inconclusiveLimit {limit}"
    lacking = no_evidence(work, regions, since)
    if lacking is not None:
        return f"{lacking}; {counted}"
    wanted = set(regions)
    latest = next(
        (
            m
            for m in reversed(work.status.analysis)
            if m.verdict == "Inconclusive" and m.region in wanted and not_before(m.at, since)
        ),
        None,
    )
    return f"{counted}; latest: {describe(latest)}" if latest is not None else counted


def conclusive(work: Work, regions: Iterable[str], since: str | None) -> bool:
    """Every metric's latest measurement in every region, since `since`, is Successful."""
    analysis = work.spec.analysis
    if analysis is None:
        return True
    latest: dict[tuple[str, str], Measurement] = {}
    for m in work.status.analysis:
        if not_before(m.at, since):
            latest[(m.metric, m.region)] = m
    wanted = [(m.name, r) for r in regions for m in analysis.metrics]
    return all(key in latest and latest[key].verdict == "Successful" for key in wanted)


def weigh(
    work: Work,
    regions: list[str],
    since: str,
    seconds: float,
    reference: Mapping[tuple[str, str], float] | None = None,
    early: float | None = None,
) -> Weighing:
    """Count this decision's measurements for `regions` taken since `since` (the end of warm-up).

    Failed past `failureLimit` fails; Inconclusive past `inconclusiveLimit` is inconclusive; the
    analysis passes once `seconds` have gone by since `since` and every metric has been Successful
    in every region, or as `early` as that once every metric's latest measurement is Successful.
    """
    analysis = work.spec.analysis
    if analysis is None:
        return Weighing("passed")
    p = work.status.progress
    overdue = elapsed(since, work.now) >= 2 * seconds
    worst = count(work, record(work, regions, since, reference), pending_counts=overdue)
    if worst is not None and worst.sequential:
        # A sequential test's Failed already holds under continuous monitoring: waiting for more
        # failures would only keep the regression serving longer.
        return Weighing("failed", f"{describe(worst)}; conclusive (sequential test)")
    if p.failures > analysis.failure_limit:
        failed = worst or last_failure(work, regions, since)
        detail = describe(failed) if failed is not None else "analysis failed"
        return Weighing("failed", f"{detail}; {p.failures} failed > failureLimit {analysis.failure_limit}")
    if p.inconclusives > analysis.inconclusive_limit:
        return Weighing("inconclusive", _inconclusive_why(work, regions, since, analysis.inconclusive_limit))
    if elapsed(since, work.now) >= seconds and not missing_evidence(work, regions):
        return Weighing("passed")
    if early is not None and elapsed(since, work.now) >= early and conclusive(work, regions, since):
        return Weighing("passed")
    return Weighing("measuring")
