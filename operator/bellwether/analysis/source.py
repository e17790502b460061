"""The metrics port: where measured values come from (a real Prometheus, or the simulated fleet).

The judge only ever sees numbers; this seam is what lets `sim/` and the operator share it.
"""

from __future__ import annotations

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


class MetricSource(Protocol):
    async def sample(self, metric: Metric, window: Window) -> Sample: ...
