"""`measure`: what the engine's analysis requests become, one judged `Measurement` per metric and region.

The windows: the canary's values since its warm-up ended (at most `LOOKBACK` intervals), stable's over
the last `LOOKBACK` intervals, one value per analysis interval, both ending now. Stable has served all
along, so its longer history is what lets the judge reach a verdict early without trusting one point.
All queries of one call run concurrently; a slow Prometheus costs one timeout, not one per metric.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from bellwether.analysis.judge import LOOKBACK, Judgement, judge
from bellwether.analysis.presets import PRESETS
from bellwether.analysis.source import MetricSource, Window
from bellwether.api import Measurement, ModelDeploymentSpec
from bellwether.api.spec import Metric
from bellwether.api.status import MAX_REASON
from bellwether.api.units import parse_duration
from bellwether.rollout.clock import parse, stamp
from bellwether.rollout.types import AnalysisRequest, Role


async def measure(
    spec: ModelDeploymentSpec,
    name: str,
    namespace: str,
    requests: Sequence[AnalysisRequest],
    source: MetricSource,
    now: datetime,
) -> tuple[Measurement, ...]:
    if spec.analysis is None or not requests:
        return ()
    interval = parse_duration(spec.analysis.interval)
    at = stamp(now)
    # `{{namespace}}` is where the region's pods run (and so what their series carry), which for a region
    # with its own `namespace` is not the ModelDeployment's.
    jobs = [
        _one(metric, request, name, _namespace(spec, request.region, namespace), interval, now, source)
        for request in requests
        for metric in spec.analysis.metrics
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
            at=at,
        )
        for (request, metric), j in zip(((r, m) for r in requests for m in spec.analysis.metrics), judged, strict=True)
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
) -> Judgement:
    end = now.timestamp()
    warm = parse(request.warmup_until).timestamp()
    if end - request.window_seconds < warm:
        return Judgement(
            "Inconclusive",
            reason=f"canary still warming up until {request.warmup_until} (runtime.warmupSeconds); its numbers do not count",
        )
    lookback = LOOKBACK * interval

    def window(revision: str, role: Role, start: float) -> Window:
        return Window(name, namespace, request.region, revision, role, start, end, interval)

    canary_window = window(request.canary_revision, "canary", max(warm, end - lookback))
    stable_revision = request.stable_revision
    if stable_revision is None:
        canary = await source.sample(metric, canary_window)
        return judge(metric, canary, None, request.reference.get(metric.name))
    canary, stable = await asyncio.gather(
        source.sample(metric, canary_window), source.sample(metric, window(stable_revision, "stable", end - lookback))
    )
    return judge(metric, canary, stable)
