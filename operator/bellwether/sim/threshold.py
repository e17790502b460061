"""A fixed-threshold judge, the way most canary tools decide: one absolute bound per metric, checked
on the canary alone each interval; the engine's `failureLimit` then counts the failed checks.

It exists to be compared with Bellwether's judges in the decision-quality benchmark: it plugs into
the same loop in place of `analysis.measure`, over the same metrics port and analysis requests.
Like most such tools it has no notion of evidence: one number, over the bound or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bellwether.analysis.source import MetricSource, Window
from bellwether.api import Measurement, ModelDeploymentSpec
from bellwether.api.units import parse_duration
from bellwether.rollout.types import AnalysisRequest
from bellwether.sim.fleet import Profile
from bellwether.sim.runner import Measure
from bellwether.sim.source import quantity_of

# Headroom over the healthy level, as someone would pick it from last week's dashboards.
MARGINS = {"error_rate": 2.0, "e2e_p99": 1.3, "ttft_p95": 1.3, "itl_p95": 1.3, "latency_avg": 1.3}


def bounds_for(spec: ModelDeploymentSpec, profile: Profile) -> dict[str, float]:
    """One upper bound per metric: the metric's own `max` if it has one, else healthy level x margin."""
    out: dict[str, float] = {}
    for metric in spec.analysis.metrics if spec.analysis else []:
        q = quantity_of(metric)
        if metric.max is not None:
            out[metric.name] = metric.max
        elif q is not None:
            out[metric.name] = profile.base(q) * MARGINS[q]
    return out


def fixed_threshold(bounds: Mapping[str, float]) -> Measure:
    async def measure(
        spec: ModelDeploymentSpec,
        name: str,
        namespace: str,
        requests: Sequence[AnalysisRequest],
        source: MetricSource,
        now: datetime,
    ) -> tuple[Measurement, ...]:
        assert spec.analysis is not None
        interval = parse_duration(spec.analysis.interval)
        end, at = now.timestamp(), now.isoformat()
        out = []
        for req in requests:
            start = end - req.window_seconds
            warm = datetime.fromisoformat(req.warmup_until).timestamp() > start
            for metric in spec.analysis.metrics:
                bound = bounds.get(metric.name)
                base = {"metric": metric.name, "region": req.region, "revision": req.canary_revision, "at": at}
                if warm or bound is None:
                    why = "warming up" if warm else "no fixed bound for this metric"
                    out.append(
                        Measurement(**base, verdict="Inconclusive", reason=why, cause="pending" if warm else "error")
                    )
                    continue
                window = Window(name, namespace, req.region, req.canary_revision, "canary", start, end, interval)
                sample = await source.sample(metric, window)
                if sample.value is None:
                    out.append(
                        Measurement(**base, verdict="Inconclusive", reason=sample.error or "no data", cause="error")
                    )
                    continue
                verdict = "Failed" if sample.value > bound else "Successful"
                out.append(Measurement(**base, verdict=verdict, value=sample.value, bound=f"<= {bound:.4g}"))
        return tuple(out)

    return measure
