"""The model-serving fleet: how a revision's replicas answer requests, as the counters Prometheus scrapes.

Time is cut into scrape intervals (`SCRAPE` seconds). In each one a revision serving a share of a
region's demand receives a Poisson number of requests; each request's latency is drawn from a
lognormal (or, for heavy tails, a log-t with 3 degrees of freedom, matched at the same quantile) and
falls into a histogram bucket, and fails with the revision's error rate. So an interval's p99 is
estimated from the requests it actually served (a canary with one pod at 10 % of the traffic is
noisier than a stable revision with four, as in production), and counts over any window add up
across it, as a real counter's increase does. Everything is a pure function of
(seed, region, revision, quantity, interval), so the same window queried twice answers the same.

What shapes a request's latency, all multiplied: the profile's healthy level; a slowly varying
regional load every revision in the region shares (the reason canaries are compared with stable over
the same window instead of against a fixed bound); the revision's behaviour (a regression, maybe only
in some requests, some quantities or some regions, maybe ramping in); a new pod's warm-up spike; and
what happens around the rollout (`Meanwhile`: a load surge, the stable revision degrading, heavy tails).
"""

from __future__ import annotations

import itertools
import math
import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from scipy.special import ndtr, stdtr, stdtrit

Quantity = Literal["e2e_p99", "ttft_p95", "itl_p95", "latency_avg", "error_rate"]
LATENCIES: tuple[Quantity, ...] = ("e2e_p99", "ttft_p95", "itl_p95", "latency_avg")
QUANTILE: dict[Quantity, float] = {"e2e_p99": 0.99, "ttft_p95": 0.95, "itl_p95": 0.95}
SCRAPE = 5.0  # seconds between scrapes of the simulated Prometheus: counts exist per scrape interval
# Geometric buckets, 15 % apart from 1 ms to ~2 min: fine enough for histogram_quantile to interpolate.
BUCKETS: tuple[float, ...] = tuple(round(0.001 * 1.15**i, 6) for i in range(84))
HEAVY_DOF = 3.0  # degrees of freedom of the log-t of heavy-tailed latencies


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
class Meanwhile:
    """What the region does while a revision rolls out, timed from when that revision first serves
    there: things every revision shares (a load surge, heavy tails, the baseline error rate, the demand),
    or that the revision being replaced suffers alone (degrading on its own)."""

    surge_factor: float = 1.0  # every revision's latency, for `surge_seconds` from `surge_after`
    surge_after: float = 0.0
    surge_seconds: float = 0.0
    stable_factor: float = 1.0  # the other revisions' latency reaches this, ramping over `stable_ramp`
    stable_ramp: float = 0.0
    heavy_tails: bool = False
    error_rate: float | None = None  # every revision's healthy error rate
    rps: float | None = None  # the region's requests per second

    def factor(self, since: float, carrier: bool) -> float:
        surge = self.surge_factor if self.surge_after <= since < self.surge_after + self.surge_seconds else 1.0
        if carrier or self.stable_factor == 1.0:
            return surge
        ramp = min(1.0, max(0.0, since) / self.stable_ramp) if self.stable_ramp > 0 else 1.0
        return surge * (1.0 + (self.stable_factor - 1.0) * ramp)


@dataclass(frozen=True)
class Behaviour:
    """How one revision differs from the profile; `regions` limits a regression to some regions.

    A regression may ramp in (`ramp_seconds`, a slow burn) from when the revision first serves in a
    region; may touch only time to first token (`ttft_factor`) or only some requests (`tail_share`
    of them `tail_factor` slower); a warm-up spike slows each new pod for `spike_seconds` after it
    becomes ready. `meanwhile` is what the world does around this revision's rollout.
    """

    latency_factor: float = 1.0
    error_factor: float = 1.0
    regions: frozenset[str] | None = None
    ramp_seconds: float = 0.0
    spike_factor: float = 1.0
    spike_seconds: float = 0.0
    exports_metrics: bool = True
    ttft_factor: float = 1.0
    tail_share: float = 0.0
    tail_factor: float = 1.0
    meanwhile: Meanwhile | None = None

    def factor(self, q: Quantity, region: str, since_first_ready: float) -> float:
        if self.regions is not None and region not in self.regions:
            return 1.0
        full = self.error_factor if q == "error_rate" else self.latency_factor
        if q == "ttft_p95":
            full *= self.ttft_factor
        if self.ramp_seconds > 0:
            return 1.0 + (full - 1.0) * min(1.0, max(0.0, since_first_ready) / self.ramp_seconds)
        return full

    def tail(self, region: str) -> tuple[float, float]:
        """(share of requests, how much slower) of a tail-only regression here."""
        if self.tail_share <= 0 or (self.regions is not None and region not in self.regions):
            return 0.0, 1.0
        return self.tail_share, self.tail_factor

    def spike(self, pod_age: float) -> float:
        if self.spike_seconds <= 0 or pod_age >= self.spike_seconds:
            return 1.0
        return 1.0 + (self.spike_factor - 1.0) * (1.0 - max(0.0, pod_age) / self.spike_seconds)


HEALTHY = Behaviour()


@dataclass(frozen=True)
class Serving:
    """One revision in one region during one scrape interval: its share of the requests, the ages of
    the pods that served them (seconds since ready), and seconds since it first served there."""

    share: float
    pod_ages: tuple[float, ...]
    since_first: float


@dataclass(frozen=True)
class Around:
    """The rollout the region is in: the revision whose behaviour says what happens meanwhile, and
    seconds since it first served there."""

    meanwhile: Meanwhile
    carrier: str
    since: float


def _rng(*key: object) -> random.Random:
    return random.Random("|".join(str(k) for k in key))  # str seeds hash with SHA-512: stable across runs


def _key(*parts: object) -> list[int]:
    return [zlib.crc32(str(p).encode()) for p in parts]


@dataclass
class Fleet:
    """Serving behaviour per revision (unknown revisions are healthy) and request demand per region."""

    seed: int = 0
    profile: Profile = field(default_factory=Profile)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    demand: dict[str, float] = field(default_factory=dict)  # requests per second, by region
    load_swing: float = 0.12  # amplitude of the regional load cycle's effect on latency
    load_period: float = 2400.0
    load_jitter: float = 0.03  # per-minute noise on the load
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False, compare=False)

    def behaviour(self, revision: str) -> Behaviour:
        return self.behaviours.get(revision, HEALTHY)

    def around(self, first_served: Mapping[str, float], t: float) -> Around | None:
        """The rollout under way in a region, from the revisions that served there and when each began."""
        for revision, since in first_served.items():
            m = self.behaviour(revision).meanwhile
            if m is not None:
                return Around(m, revision, t - since)
        return None

    def load(self, region: str, t: float) -> float:
        """Shared by every revision in a region at time t: a slow cycle plus per-minute jitter."""
        phase = _rng(self.seed, region, "phase").random() * 2 * math.pi
        jitter = (
            _rng(self.seed, region, "load", math.floor(t / 60)).gauss(0.0, self.load_jitter)
            if self.load_jitter
            else 0.0
        )
        return max(0.5, 1.0 + self.load_swing * math.sin(2 * math.pi * t / self.load_period + phase) + jitter)

    # -- one scrape interval ----------------------------------------------------------------------

    def requests(self, region: str, revision: str, i: int, serving: Serving, around: Around | None) -> int:
        """Requests the revision served in scrape interval `i` ((i, i+1] x SCRAPE seconds)."""
        key = ("n", region, revision, i)
        if key not in self._memo:
            rps = around.meanwhile.rps if around and around.meanwhile.rps is not None else self.demand.get(region, 0)
            lam = rps * serving.share * SCRAPE
            rng = np.random.default_rng(_key(self.seed, region, revision, "n", i))
            self._memo[key] = int(rng.poisson(lam)) if lam > 0 and serving.pod_ages else 0
        n: int = self._memo[key]
        return n

    def errors(self, region: str, revision: str, i: int, serving: Serving, around: Around | None) -> int:
        key = ("e", region, revision, i)
        if key not in self._memo:
            n = self.requests(region, revision, i, serving, around)
            healthy = around.meanwhile.error_rate if around and around.meanwhile.error_rate is not None else None
            p = (healthy if healthy is not None else self.profile.error_rate) * self.behaviour(revision).factor(
                "error_rate", region, serving.since_first
            )
            rng = np.random.default_rng(_key(self.seed, region, revision, "e", i))
            self._memo[key] = int(rng.binomial(n, min(1.0, p))) if n else 0
        e: int = self._memo[key]
        return e

    def histogram(
        self, q: Quantity, region: str, revision: str, i: int, serving: Serving, around: Around | None
    ) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Requests per bucket (len(BUCKETS) + 1, the last one above every edge) in scrape interval `i`."""
        key = ("h", q, region, revision, i)
        if key not in self._memo:
            n = self.requests(region, revision, i, serving, around)
            if n == 0:
                self._memo[key] = np.zeros(len(BUCKETS) + 1, dtype=np.int64)
            else:
                probs = self.bucket_probabilities(q, region, revision, (i + 0.5) * SCRAPE, serving, around)
                rng = np.random.default_rng(_key(self.seed, region, revision, q, i))
                self._memo[key] = rng.multinomial(n, probs)
        h: np.ndarray[Any, np.dtype[np.int64]] = self._memo[key]
        return h

    def bucket_probabilities(
        self,
        q: Quantity,
        region: str,
        revision: str,
        t: float,
        serving: Serving,
        around: Around | None,
        edges: Sequence[float] = BUCKETS,
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        """The chance of a request landing in each bucket (len(edges) + 1, the last above them all)."""
        weights, medians = self.components(q, region, revision, t, serving, around)
        heavy = around is not None and around.meanwhile.heavy_tails
        scale = self.log_scale(q, heavy)
        z = (np.log(np.asarray(edges))[None, :] - np.log(medians)[:, None]) / scale
        cdf = (stdtr(HEAVY_DOF, z) if heavy else ndtr(z)).T @ weights
        probs = np.diff(np.concatenate(([0.0], cdf, [1.0])))
        clipped = np.clip(probs, 0.0, None)
        out: np.ndarray[Any, np.dtype[np.float64]] = clipped / clipped.sum()
        return out

    def components(
        self, q: Quantity, region: str, revision: str, t: float, serving: Serving, around: Around | None
    ) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
        """The latency distribution as a mixture: (weights, medians), one part per pod (a warm-up spike
        differs by age) and per tail (the slower share of a tail-only regression)."""
        b = self.behaviour(revision)
        heavy = around is not None and around.meanwhile.heavy_tails
        level = self.median(q, heavy) * b.factor(q, region, serving.since_first) * self.load(region, t)
        if around is not None:
            level *= around.meanwhile.factor(around.since, revision == around.carrier)
        ages = serving.pod_ages or (1e9,)
        tail_share, tail_factor = b.tail(region)
        weights, medians = [], []
        for age in ages:
            spike = b.spike(age)
            weights.append((1 - tail_share) / len(ages))
            medians.append(level * spike)
            if tail_share > 0:
                weights.append(tail_share / len(ages))
                medians.append(level * spike * tail_factor)
        return np.asarray(weights), np.asarray(medians)

    def log_scale(self, q: Quantity, heavy: bool) -> float:
        """The spread of log(latency): the profile's, or for heavy tails the log-t scale that keeps the
        same quantile (the body narrower, the tail beyond it far longer)."""
        s = self.profile.spread
        if not heavy:
            return s
        level = QUANTILE.get(q, 0.95)
        return s * NormalDist().inv_cdf(level) / float(stdtrit(HEAVY_DOF, level))

    def median(self, q: Quantity, heavy: bool = False) -> float:
        """The healthy median of a latency: the profile gives its quantile (or, for `latency_avg`, its
        mean), at the profile's spread; heavy tails keep that quantile."""
        s = self.profile.spread
        if q in QUANTILE:
            return self.profile.base(q) / math.exp(NormalDist().inv_cdf(QUANTILE[q]) * s)
        return self.profile.base(q) / math.exp(s * s / 2)


def bucket_midpoints(edges: Sequence[float] = BUCKETS) -> list[float]:
    """A representative latency per bucket (len(edges) + 1), for sums and means estimated from histograms."""
    lows = (0.0, *edges)
    return [*((lo * hi) ** 0.5 if lo > 0 else hi / 2 for lo, hi in itertools.pairwise(lows)), edges[-1] * 1.15]
