"""`measure`: what the engine's analysis requests become, one judged `Measurement` per metric and region.

A preset is judged on its requests (`request_level`): the canary's and stable's counts over the whole
analysis so far, from `warmup_until` (when the current analysis started) to now, so the evidence
grows with traffic and every measurement re-reads all of it; and, for Failed, over windows restarted
every few intervals since and over the analysis without its first interval. A query of the user's is judged per
interval (`judge`): the canary's values since its warm-up ended (at most `LOOKBACK` intervals),
stable's over the last `LOOKBACK` intervals, one value per analysis interval, both ending now.
All queries of one call run concurrently; a slow Prometheus costs one timeout, not one per metric.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from bellwether.analysis.judge import LOOKBACK, Judgement, judge, pending
from bellwether.analysis.presets import PRESETS, Counting, counting_of
from bellwether.analysis.request_level import RESTART_EVERY, RESTART_WEIGHTS, Context, Windows, judge_counts
from bellwether.analysis.source import MetricSource, Window
from bellwether.api import Measurement, ModelDeploymentSpec
from bellwether.api.spec import Metric
from bellwether.api.status import MAX_REASON
from bellwether.api.units import parse_duration
from bellwether.rollout.clock import parse, stamp
from bellwether.rollout.types import AnalysisRequest, Role

_WindowOf = Callable[[str, Role, float], Window]  # (revision, role, start) -> a window ending now in the region
YOUNG_INTERVALS = 2  # for this many intervals after warm-up, a missing series is a new pod's first scrapes


async def measure(
    spec: ModelDeploymentSpec,
    name: str,
    namespace: str,
    requests: Sequence[AnalysisRequest],
    source: MetricSource,
    now: datetime,
) -> tuple[Measurement, ...]:
    """Every metric in every requested region, presets on their requests."""
    return await _measure(spec, name, namespace, requests, source, now, by_requests=True)


async def measure_per_interval(
    spec: ModelDeploymentSpec,
    name: str,
    namespace: str,
    requests: Sequence[AnalysisRequest],
    source: MetricSource,
    now: datetime,
) -> tuple[Measurement, ...]:
    """Every metric judged per interval, presets too: the judge before request-level judgment (Kayenta's
    approach), kept for the decision-quality benchmark to compare with."""
    return await _measure(spec, name, namespace, requests, source, now, by_requests=False)


async def _measure(
    spec: ModelDeploymentSpec,
    name: str,
    namespace: str,
    requests: Sequence[AnalysisRequest],
    source: MetricSource,
    now: datetime,
    *,
    by_requests: bool,
) -> tuple[Measurement, ...]:
    if spec.analysis is None or not requests:
        return ()
    interval = parse_duration(spec.analysis.interval)
    at = stamp(now)
    pairs = [(request, metric) for request in requests for metric in spec.analysis.metrics]
    # `{{namespace}}` is where the region's pods run (and so what their series carry), which for a region
    # with its own `namespace` is not the ModelDeployment's.
    jobs = [
        _one(metric, request, name, _namespace(spec, request.region, namespace), interval, now, source, by_requests)
        for request, metric in pairs
    ]
    judged = await asyncio.gather(*jobs)
    return tuple(
        Measurement(
            metric=metric.name,
            region=request.region,
            revision=request.canary_revision,
            verdict=j.verdict,
            value=j.value,
            baseline=j.baseline,
            bound=j.bound,
            unit=_unit(metric),
            reason=j.reason if j.reason is None or len(j.reason) <= MAX_REASON else j.reason[: MAX_REASON - 1] + "…",
            cause=j.cause if j.verdict == "Inconclusive" else None,
            sequential=by_requests and counting_of(metric) is not None,
            at=at,
        )
        for (request, metric), j in zip(pairs, judged, strict=True)
    )


def _namespace(spec: ModelDeploymentSpec, region: str, default: str) -> str:
    return next((r.namespace for r in spec.regions if r.name == region and r.namespace), default)


def _unit(metric: Metric) -> Literal["s", "ratio"] | None:
    """A preset knows what it measures; a query of the user's does not say."""
    unit = PRESETS[metric.preset].unit if metric.preset in PRESETS else None
    return unit if unit in ("s", "ratio") else None  # type: ignore[return-value]


async def _one(
    metric: Metric,
    request: AnalysisRequest,
    name: str,
    namespace: str,
    interval: float,
    now: datetime,
    source: MetricSource,
    by_requests: bool,
) -> Judgement:
    end = now.timestamp()
    warm = parse(request.warmup_until).timestamp()
    if end - request.window_seconds < warm:
        return pending(
            f"canary still warming up until {request.warmup_until} (runtime.warmupSeconds); its numbers do not count"
        )
    young = end - warm < YOUNG_INTERVALS * interval

    def window(revision: str, role: Role, start: float) -> Window:
        return Window(name, namespace, request.region, revision, role, start, end, interval)

    counting = counting_of(metric) if by_requests else None
    if counting is not None:
        context = Context(warm, young, end, int((end - warm) / interval + 1e-6))
        return await _on_requests(metric, counting, request, window, context, source, interval)
    canary_window = window(request.canary_revision, "canary", max(warm, end - LOOKBACK * interval))
    stable_revision = request.stable_revision
    if stable_revision is None:
        canary = await source.sample(metric, canary_window)
        return judge(metric, canary, None, request.reference.get(metric.name), young=young)
    canary, stable = await asyncio.gather(
        source.sample(metric, canary_window),
        source.sample(metric, window(stable_revision, "stable", end - LOOKBACK * interval)),
    )
    return judge(metric, canary, stable, young=young)


async def _on_requests(
    metric: Metric,
    counting: Counting,
    request: AnalysisRequest,
    window: _WindowOf,
    context: Context,
    source: MetricSource,
    interval: float,
) -> Judgement:
    """Both revisions' counts over the same windows: the whole analysis so far, the windows restarted
    every `RESTART_EVERY` intervals since, and the analysis without its first interval (see `request_level`)."""
    restarts = [context.since + j * RESTART_EVERY * interval for j in range(1, len(RESTART_WEIGHTS))]
    starts = [context.since, *(s for s in restarts if s <= context.now - interval), context.since + interval]

    async def windows(revision: str, role: Role) -> Windows:
        got = await asyncio.gather(*(source.counts(metric, window(revision, role, s)) for s in starts))
        return Windows(got[0], tuple(got[1:-1]), got[-1])

    if request.stable_revision is None:
        canary = await windows(request.canary_revision, "canary")
        return judge_counts(metric, counting, canary, None, request.reference.get(metric.name), context)
    canary, stable = await asyncio.gather(
        windows(request.canary_revision, "canary"), windows(request.stable_revision, "stable")
    )
    return judge_counts(metric, counting, canary, stable, None, context)
