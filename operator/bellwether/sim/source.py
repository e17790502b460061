"""`SimMetricSource`: the metrics port answered from the simulated fleet instead of Prometheus.

It answers each metric by its preset (or, for a custom query, by what its name and query say it
measures), over the same windows and with the same per-interval series the judge gets from
Prometheus, so the analysis code under test is the production code. Outages and metrics that were
never exported come back the way Prometheus reports them: an error, or no series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bellwether.analysis.source import Sample, Window
from bellwether.api.spec import Metric
from bellwether.render.names import fit
from bellwether.sim.fleet import Quantity
from bellwether.sim.world import World

PRESET_QUANTITY: dict[str, Quantity] = {
    "vllm-e2e-latency-p99": "e2e_p99",
    "tgi-request-duration-p99": "e2e_p99",
    "http-latency-p99": "e2e_p99",
    "vllm-ttft-p95": "ttft_p95",
    "vllm-inter-token-latency-p95": "itl_p95",
    "triton-request-latency-avg": "latency_avg",
    "vllm-error-rate": "error_rate",
    "triton-failure-rate": "error_rate",
    "tgi-error-rate": "error_rate",
    "http-error-rate": "error_rate",
}

# Checked in order against a custom metric's name and query text.
_KEYWORDS: tuple[tuple[tuple[str, ...], Quantity], ...] = (
    (("error", "fail", "5..", "5xx"), "error_rate"),
    (("ttft", "first_token", "first-token"), "ttft_p95"),
    (("inter-token", "inter_token", "itl", "time_per_output"), "itl_p95"),
)
_LATENCY = ("latency", "duration", "request_seconds", "p99")


def quantity_of(metric: Metric) -> Quantity | None:
    if metric.preset is not None:
        return PRESET_QUANTITY[metric.preset]
    text = f"{metric.name} {metric.query or ''}".lower()
    found = next((q for words, q in _KEYWORDS if any(w in text for w in words)), None)
    if found is None and any(w in text for w in _LATENCY):
        found = "latency_avg" if any(w in text for w in ("avg", "mean", "_sum")) else "e2e_p99"
    return found


class SimMetricSource:
    """`outages` are (start, end) spans of elapsed virtual seconds when "Prometheus" is unreachable."""

    def __init__(self, world: World, outages: Sequence[tuple[float, float]] = ()) -> None:
        self.world = world
        self.outages = list(outages)
        self.queries = 0

    async def sample(self, metric: Metric, window: Window) -> Sample:
        self.queries += 1
        clock = self.world.clock
        end = clock.at(window.end)
        if any(a <= end < b for a, b in self.outages):
            return Sample(None, error="Prometheus unreachable: connection refused (simulated outage)")
        quantity = quantity_of(metric)
        if quantity is None:
            return Sample(None, error=f"the simulator cannot tell what custom metric {metric.name!r} measures")
        cluster = self.world.clusters.get(window.region)
        fleet = self.world.fleet
        if cluster is None or not fleet.behaviour(window.revision).exports_metrics:
            return Sample(None)
        step = window.step if window.step > 0 else max(1.0, window.end - window.start)
        count = max(1, math.floor((window.end - window.start) / step + 1e-9))
        owner = fit(window.name)  # the bellwether.dev/deployment label value
        first_ready = min(
            (p.ready_at for p in cluster.pods if p.owner == owner and p.revision == window.revision and p.ready_at),
            default=None,
        )
        series: list[float] = []
        last: float | None = None
        for k in range(count):
            t = end - (count - 1 - k) * step
            # What the revision served: its share of the region's requests, spread over the pods that
            # received them (the serving Service's endpoints, or a routed revision's ready pods).
            pods = cluster.serving_pods(owner, t).get(window.revision, [])
            share = cluster.shares(owner, t).get(window.revision, 0.0)
            value = fleet.measure(
                quantity,
                window.region,
                window.revision,
                t,
                step,
                share,
                [t - (p.ready_at or t) for p in pods],
                t - first_ready if first_ready is not None else 0.0,
            )
            last = value
            if value is not None:
                series.append(value)
        return Sample(last, tuple(series))
