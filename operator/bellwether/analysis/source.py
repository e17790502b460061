"""The metrics port: where measured values come from (a real Prometheus, or the simulated fleet).

Two kinds of answer. `sample` is one number per analysis interval, for queries of the user's: the
judge compares those numbers. `counts` is what the requests did over a whole window, for the presets:
a latency histogram's buckets, or failed and total requests, so the judge can decide on the requests
themselves. This seam is what lets `sim/` and the operator share the judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bellwether.api.spec import Metric
from bellwether.rollout.types import Role


@dataclass(frozen=True)
class Window:
    """Which pods and which time span to measure. Times are Unix seconds."""

    name: str
    namespace: str
    region: str
    revision: str
    role: Role
    start: float
    end: float
    step: float  # the analysis interval: one sample per step for the statistical comparison


@dataclass(frozen=True)
class Sample:
    value: float | None  # the metric over the last `step` of the window; None = no data
    series: tuple[float, ...] = ()  # one value per step across the window, oldest first
    error: str | None = None  # the source failed (unreachable, timeout, bad query, wrong shape)


@dataclass(frozen=True)
class Counts:
    """What one revision's requests did over a whole window (`increase` from its start to its end).

    For a latency: `buckets`, (le, requests at or below it) with `+Inf` last (= all requests). For an
    error rate: `failed` of `total`. `present` is False when no series matched at all (wrong labels,
    no pods yet, or a series too new to have two scrapes), which is not the same as zero requests.
    """

    present: bool = True
    buckets: Sequence[tuple[float, float]] = ()
    failed: float = 0.0
    total: float = 0.0
    error: str | None = None


class MetricSource(Protocol):
    async def sample(self, metric: Metric, window: Window) -> Sample: ...

    async def counts(self, metric: Metric, window: Window) -> Counts: ...
