"""`SimMetricSource`: the metrics port answered from the simulated fleet instead of Prometheus.

It answers each metric by its preset (or, for a custom query, by what its name and query say it
measures) from the fleet's per-scrape counters, the way Prometheus would: `counts` sums a window's
bucket and request increases; `sample` gives one value per interval, a quantile interpolated from
that interval's buckets as `histogram_quantile` does, a mean, or failed over total requests. So the
analysis code under test is the production code, and the per-interval and request-level judges see
the same requests. Outages and metrics that were never exported come back the way Prometheus
reports them: an error, or no series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bellwether.analysis.buckets import Histogram
from bellwether.analysis.source import Counts, Sample, Window
from bellwether.api.spec import Metric
from bellwether.render.names import fit
from bellwether.sim.cluster import Cluster
from bellwether.sim.fleet import BUCKETS, QUANTILE, SCRAPE, Around, Quantity, Serving, bucket_midpoints
from bellwether.sim.world import World

PRESET_QUANTITY: dict[str, Quantity] = {
    "vllm-e2e-latency-p99": "e2e_p99",
    "tgi-request-duration-p99": "e2e_p99",
    "http-latency-p99": "e2e_p99",
    "vllm-ttft-p95": "ttft_p95",
    "vllm-inter-token-latency-p95": "itl_p95",
    "triton-first-response-p95": "ttft_p95",
    "tgi-time-per-token-p95": "itl_p95",
    # The fleet models time to first token whole; TGI's queue time, its waiting part, stands in for it.
    "tgi-queue-duration-p95": "ttft_p95",
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
_MIDPOINTS = np.asarray(bucket_midpoints())


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
        self._serving: dict[tuple[str, str, int], tuple[dict[str, Serving], Around | None]] = {}
        self._totals: dict[tuple[str, str, str, str], list[np.ndarray[Any, np.dtype[np.int64]]]] = {}

    async def sample(self, metric: Metric, window: Window) -> Sample:
        self.queries += 1
        found = self._find(metric, window)
        if isinstance(found, Sample):
            return found
        quantity, cluster, end = found
        step = window.step if window.step > 0 else max(1.0, window.end - window.start)
        count = max(1, math.floor((window.end - window.start) / step + 1e-9))
        series: list[float] = []
        last: float | None = None
        for k in range(count):
            t = end - (count - 1 - k) * step
            last = self._value(quantity, cluster, fit(window.name), window.revision, t - step, t)
            if last is not None:
                series.append(last)
        return Sample(last, tuple(series))

    async def counts(self, metric: Metric, window: Window) -> Counts:
        self.queries += 1
        found = self._find(metric, window)
        if isinstance(found, Sample):
            return Counts(present=False, error=found.error)
        quantity, cluster, end = found
        owner, start = fit(window.name), self.world.clock.at(window.start)
        if not self._served(cluster, owner, window.revision, end):
            return Counts(present=False)
        if quantity == "error_rate":
            n, e = self._sums(cluster, owner, window.revision, start, end)
            return Counts(failed=float(e), total=float(n))
        h = self._histogram(quantity, cluster, owner, window.revision, start, end)
        cumulative = np.cumsum(h)
        buckets = [*zip(BUCKETS, map(float, cumulative[:-1]), strict=True), (math.inf, float(cumulative[-1]))]
        return Counts(buckets=buckets, total=float(cumulative[-1]))

    # -- finding the series --------------------------------------------------------------------------

    def _find(self, metric: Metric, window: Window) -> tuple[Quantity, Cluster, float] | Sample:
        """What the window's series measure, where, and its end in elapsed seconds; or the Sample
        Prometheus would give instead (an outage, an unknown metric, no series)."""
        end = self.world.clock.at(window.end)
        if any(a <= end < b for a, b in self.outages):
            return Sample(None, error="Prometheus unreachable: connection refused (simulated outage)")
        quantity = quantity_of(metric)
        if quantity is None:
            return Sample(None, error=f"the simulator cannot tell what custom metric {metric.name!r} measures")
        cluster = self.world.clusters.get(window.region)
        if cluster is None or not self.world.fleet.behaviour(window.revision).exports_metrics:
            return Sample(None)
        return quantity, cluster, end

    def _served(self, cluster: Cluster, owner: str, revision: str, end: float) -> bool:
        """Whether the revision's series exist by `end`: a pod of it was ready a scrape before."""
        return any(
            p.owner == owner and p.revision == revision and p.ready_at is not None and p.ready_at + SCRAPE <= end
            for p in cluster.pods
        )

    # -- the fleet's scrape intervals ---------------------------------------------------------------------

    def _state(self, cluster: Cluster, owner: str, i: int) -> tuple[dict[str, Serving], Around | None]:
        """Who served what in scrape interval `i` of a region, read at its middle."""
        key = (cluster.region, owner, i)
        if key not in self._serving:
            t = (i + 0.5) * SCRAPE
            pods, shares = cluster.serving_pods(owner, t), cluster.shares(owner, t)
            first: dict[str, float] = {}
            for p in cluster.pods:
                if p.owner == owner and p.ready_at is not None and p.ready_at <= t:
                    first[p.revision] = min(first.get(p.revision, p.ready_at), p.ready_at)
            serving = {
                rev: Serving(shares.get(rev, 0.0), tuple(t - (p.ready_at or t) for p in ps), t - first.get(rev, t))
                for rev, ps in pods.items()
            }
            self._serving[key] = (serving, self.world.fleet.around(first, t))
        return self._serving[key]

    def _intervals(self, start: float, end: float) -> range:
        """The scrape intervals ending in (start, end]."""
        return range(max(0, math.floor(start / SCRAPE)), math.floor(end / SCRAPE + 1e-9))

    def _total(
        self, what: Quantity, cluster: Cluster, owner: str, revision: str, start: float, end: float
    ) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The fleet's counts of the revision over the scrape intervals of (start, end]: requests and
        errors for "error_rate", the histogram's buckets otherwise. From running totals kept per
        series, as Prometheus's counters are, so a window since the analysis began costs no more than
        a short one (a long pause is measured every interval over an ever longer window)."""
        span = self._intervals(start, end)
        if not span:
            return np.zeros(2 if what == "error_rate" else len(BUCKETS) + 1, dtype=np.int64)
        totals = self._totals.setdefault((what, cluster.region, owner, revision), [])
        fleet = self.world.fleet
        while len(totals) <= span.stop:
            i = len(totals) - 1  # totals[i + 1] counts intervals 0..i
            if i < 0:
                totals.append(np.zeros(2 if what == "error_rate" else len(BUCKETS) + 1, dtype=np.int64))
                continue
            serving, around = self._state(cluster, owner, i)
            got = serving.get(revision)
            if got is None:
                totals.append(totals[-1])
            elif what == "error_rate":
                n = fleet.requests(cluster.region, revision, i, got, around)
                e = fleet.errors(cluster.region, revision, i, got, around)
                totals.append(totals[-1] + np.asarray((n, e), dtype=np.int64))
            else:
                totals.append(totals[-1] + fleet.histogram(what, cluster.region, revision, i, got, around))
        return totals[span.stop] - totals[span.start]

    def _sums(self, cluster: Cluster, owner: str, revision: str, start: float, end: float) -> tuple[int, int]:
        n, e = self._total("error_rate", cluster, owner, revision, start, end)
        return int(n), int(e)

    def _histogram(
        self, q: Quantity, cluster: Cluster, owner: str, revision: str, start: float, end: float
    ) -> np.ndarray[Any, np.dtype[np.int64]]:
        return self._total(q, cluster, owner, revision, start, end)

    def _value(
        self, q: Quantity, cluster: Cluster, owner: str, revision: str, start: float, end: float
    ) -> float | None:
        """The quantity over (start, end], as the preset's PromQL computes it; None without requests."""
        if q == "error_rate":
            n, e = self._sums(cluster, owner, revision, start, end)
            return e / n if n else None
        h = self._histogram(q, cluster, owner, revision, start, end)
        n = int(h.sum())
        if n == 0:
            return None
        if q not in QUANTILE:
            return float(h @ _MIDPOINTS) / n
        cumulative = np.cumsum(h)
        histogram = Histogram(BUCKETS, tuple(map(float, cumulative[:-1])), float(cumulative[-1]))
        return histogram.quantile(QUANTILE[q])
