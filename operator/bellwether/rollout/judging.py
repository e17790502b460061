"""Folding judged measurements into status: counted once, bounded per series, turned into a verdict."""

from __future__ import annotations

from collections.abc import Iterable

from bellwether.api import Measurement
from bellwether.api.status import MAX_MEASUREMENTS_PER_SERIES
from bellwether.rollout.clock import not_before, parse
from bellwether.rollout.state import Work


def _key(m: Measurement) -> tuple[str, str, str]:
    return (m.metric, m.region, m.at)


def record(work: Work, regions: Iterable[str], since: str | None) -> list[Measurement]:
    """Add the observed measurements for `regions` taken since `since`; returns only the new ones.

    A measurement already in status is not counted again, so replaying observations is harmless.
    """
    wanted = set(regions)
    st = work.status
    known = {_key(m) for m in st.analysis}
    fresh = [
        m for m in work.obs.measurements if m.region in wanted and _key(m) not in known and not_before(m.at, since)
    ]
    if not fresh:
        return []
    merged = st.analysis + fresh
    kept: list[Measurement] = []
    counts: dict[tuple[str, str], int] = {}
    for m in sorted(merged, key=lambda m: parse(m.at), reverse=True):
        series = (m.metric, m.region)
        if counts.get(series, 0) < MAX_MEASUREMENTS_PER_SERIES:
            counts[series] = counts.get(series, 0) + 1
            kept.append(m)
    st.analysis = sorted(kept, key=lambda m: (parse(m.at), m.region, m.metric))
    return fresh


def count(work: Work, fresh: list[Measurement]) -> Measurement | None:
    """Add verdicts to the step's counters; returns the latest failed measurement, if any, for the reason."""
    p = work.status.progress
    worst: Measurement | None = None
    for m in fresh:
        if m.verdict == "Failed":
            p.failures += 1
            worst = m
        elif m.verdict == "Inconclusive":
            p.inconclusives += 1
        else:
            p.successes += 1
    return worst


def describe(m: Measurement) -> str:
    value = "no value" if m.value is None else f"{m.value:g}"
    bound = f", bound {m.bound}" if m.bound else ""
    why = f" ({m.reason})" if m.reason else ""
    return f"metric {m.metric} in {m.region} measured {value}{bound}{why}"


def last_failure(work: Work, regions: Iterable[str], since: str | None) -> Measurement | None:
    wanted = set(regions)
    failed = [
        m for m in work.status.analysis if m.verdict == "Failed" and m.region in wanted and not_before(m.at, since)
    ]
    return failed[-1] if failed else None
