"""A Prometheus histogram's buckets, read the way the judge needs them: how many requests were slower
than a latency, and a quantile for people to read.

A histogram is cumulative: `le` edges with the count of requests at or below each, the last edge
`+Inf` holding them all. Counting the requests above an edge needs no assumption; above a latency
between two edges it does, and the one used here is that the share above falls geometrically across
the bucket (a straight line in log-share against log-latency: a power-law tail locally, which
lognormal and heavier tails are to within a few per cent over one bucket). It is used only for the
stable revision's share, read where a canary at the bound would be; the canary's own counts are only
ever read at edges.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts at finite edges (ascending) and the total, over one window."""

    edges: tuple[float, ...]
    cumulative: tuple[float, ...]
    total: float

    @classmethod
    def of(cls, buckets: Sequence[tuple[float, float]]) -> Histogram:
        """From (le, cumulative count) pairs in any order, `+Inf` included; counts made monotone, as
        `histogram_quantile` does, since `increase` over separate series can break monotony a little."""
        ordered = sorted(buckets)
        finite = [(le, c) for le, c in ordered if math.isfinite(le)]
        total = max((c for le, c in ordered if math.isinf(le)), default=max((c for _, c in finite), default=0.0))
        running, cumulative = 0.0, []
        for _, c in finite:
            running = max(running, c)
            cumulative.append(min(running, total))
        return cls(tuple(le for le, _ in finite), tuple(cumulative), max(0.0, total))

    def above(self, edge: float) -> float:
        """Requests slower than `edge`, which must be one of the edges."""
        i = bisect.bisect_left(self.edges, edge)
        return self.total - self.cumulative[i]

    def edge_at_or_above(self, x: float) -> float | None:
        i = bisect.bisect_left(self.edges, x * (1 - 1e-9))
        return self.edges[i] if i < len(self.edges) else None

    def edge_at_or_below(self, x: float) -> float | None:
        i = bisect.bisect_right(self.edges, x * (1 + 1e-9))
        return self.edges[i - 1] if i > 0 else None

    def above_between(self, x: float) -> float:
        """Requests slower than `x`, interpolated geometrically inside the bucket holding `x` (see the
        module's docstring); linear when the upper edge has none left above it."""
        hi = self.edge_at_or_above(x)
        if hi is None:
            return self.above(self.edges[-1]) if self.edges else 0.0
        lo = self.edge_at_or_below(x)
        upper = self.above(hi)
        if lo is None or lo == hi:
            lower_count = self.total if lo is None else self.above(lo)
            if lo == hi:
                return upper
            return lower_count - (lower_count - upper) * x / hi  # from 0 up to the first edge: linear
        lower = self.above(lo)
        f = math.log(x / lo) / math.log(hi / lo)
        if upper <= 0 or lower <= 0:
            return lower + (upper - lower) * f
        return float(lower * (upper / lower) ** f)

    def quantile(self, q: float) -> float | None:
        """The q-quantile as Prometheus' `histogram_quantile` estimates it (linear inside a bucket), so
        the values in status read like the dashboards; None without requests."""
        if self.total <= 0 or not self.edges:
            return None
        rank = q * self.total
        i = bisect.bisect_left(self.cumulative, rank)
        if i >= len(self.edges):
            return self.edges[-1]  # in the +Inf bucket: Prometheus answers the highest finite edge
        lo_edge = 0.0 if i == 0 else self.edges[i - 1]
        lo_count = 0.0 if i == 0 else self.cumulative[i - 1]
        inside = self.cumulative[i] - lo_count
        if inside <= 0:
            return self.edges[i]
        return lo_edge + (self.edges[i] - lo_edge) * (rank - lo_count) / inside
