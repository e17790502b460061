"""The model-serving fleet: how a revision's replicas answer requests, as numbers a metric reports.

Latency is lognormal per request; an interval's p99 (or p95, or mean) is then estimated from the
requests it actually served, so a canary with one pod at 10% of the traffic is noisier than a stable
revision with four, as in production. Error counts are Poisson. A slowly varying regional load
multiplies the latency of every revision in the region alike (the reason canaries are compared with
stable over the same window instead of against a fixed bound). Noise is a pure function of
(seed, region, revision, quantity, time), so the same window queried twice answers the same.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

Quantity = Literal["e2e_p99", "ttft_p95", "itl_p95", "latency_avg", "error_rate"]
LATENCIES: tuple[Quantity, ...] = ("e2e_p99", "ttft_p95", "itl_p95", "latency_avg")
_QUANTILE: dict[Quantity, float] = {"e2e_p99": 0.99, "ttft_p95": 0.95, "itl_p95": 0.95}


@dataclass(frozen=True)
class Profile:
    """A healthy revision, in seconds and fractions. Defaults: an 8B chat model on one H100."""

    e2e_p99: float = 2.4
    ttft_p95: float = 0.21
    itl_p95: float = 0.028
    latency_avg: float = 0.95
    error_rate: float = 0.004
    spread: float = 0.45  # sigma of log(latency) per request: sets how noisy a tail estimate is
    rps_per_replica: float = 20.0

    def base(self, q: Quantity) -> float:
        value: float = getattr(self, q)
        return value


@dataclass(frozen=True)
class Behaviour:
    """How one revision differs from the profile; `regions` limits a regression to some regions.

    A regression may ramp in (`ramp_seconds`, a slow burn) from when the revision first serves in a
    region; a warm-up spike slows each new pod for `spike_seconds` after it becomes ready.
    """

    latency_factor: float = 1.0
    error_factor: float = 1.0
    regions: frozenset[str] | None = None
    ramp_seconds: float = 0.0
    spike_factor: float = 1.0
    spike_seconds: float = 0.0
    exports_metrics: bool = True

    def factor(self, q: Quantity, region: str, since_first_ready: float) -> float:
        full = self.error_factor if q == "error_rate" else self.latency_factor
        if self.regions is not None and region not in self.regions:
            return 1.0
        if self.ramp_seconds > 0:
            return 1.0 + (full - 1.0) * min(1.0, max(0.0, since_first_ready) / self.ramp_seconds)
        return full

    def spike(self, pod_age: float) -> float:
        if self.spike_seconds <= 0 or pod_age >= self.spike_seconds:
            return 1.0
        return 1.0 + (self.spike_factor - 1.0) * (1.0 - max(0.0, pod_age) / self.spike_seconds)


HEALTHY = Behaviour()


def _rng(*key: object) -> random.Random:
    return random.Random("|".join(str(k) for k in key))  # str seeds hash with SHA-512: stable across runs


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass
class Fleet:
    """Serving behaviour per revision (unknown revisions are healthy) and request demand per region."""

    seed: int = 0
    profile: Profile = field(default_factory=Profile)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    demand: dict[str, float] = field(default_factory=dict)  # requests per second, by region
    load_swing: float = 0.12  # amplitude of the regional load cycle's effect on latency
    load_period: float = 2400.0

    def behaviour(self, revision: str) -> Behaviour:
        return self.behaviours.get(revision, HEALTHY)

    def load(self, region: str, t: float) -> float:
        """Shared by every revision in a region at time t: a slow cycle plus per-minute jitter."""
        phase = _rng(self.seed, region, "phase").random() * 2 * math.pi
        jitter = _rng(self.seed, region, "load", math.floor(t / 60)).gauss(0.0, 0.03)
        return max(0.5, 1.0 + self.load_swing * math.sin(2 * math.pi * t / self.load_period + phase) + jitter)

    def measure(
        self,
        q: Quantity,
        region: str,
        revision: str,
        t: float,
        step: float,
        share: float,
        pod_ages: Sequence[float],
        since_first_ready: float,
    ) -> float | None:
        """The quantity over the interval (t - step, t] for a revision serving `share` of the region's
        requests from pods of the given ages; None when it served nothing."""
        requests = self.demand.get(region, 0.0) * share * step
        if requests < 1 or not pod_ages:
            return None
        b = self.behaviour(revision)
        rng = _rng(self.seed, region, revision, q, round(t * 1000))
        true = self.profile.base(q) * b.factor(q, region, since_first_ready)
        if q == "error_rate":
            return _poisson(rng, requests * min(1.0, true)) / requests
        spikes = [b.spike(a) for a in pod_ages]
        # A tail quantile is set by the slowest pods; a mean by all of them.
        slow = max(spikes) if q in _QUANTILE else sum(spikes) / len(spikes)
        true *= slow * self.load(region, t)
        s = self.profile.spread
        if q in _QUANTILE:
            p = _QUANTILE[q]
            rel_sd = s * math.sqrt(p * (1 - p)) / NormalDist().pdf(NormalDist().inv_cdf(p)) / math.sqrt(requests)
        else:
            rel_sd = math.sqrt(math.exp(s * s) - 1) / math.sqrt(requests)
        return true * math.exp(rng.gauss(0.0, rel_sd))
