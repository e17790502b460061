"""A real Prometheus exporter for a simulated serving fleet, in the formats the presets expect.

Each served (region, revision) gets requests in real time at its rate; every request is drawn from the
fleet's latency profile (lognormal, so tails behave like tails) and its revision's behaviour (a
regression, more errors, a warm-up spike), and lands in the same metric families the real runtimes
export: vLLM's histograms and HTTP status counter, Triton's cumulative counters, TGI's histogram and
counters, and the conventional HTTP histogram. A real Prometheus scrapes it, so the analysis code is
tested against real PromQL evaluation, rate windows and histogram interpolation.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from bellwether.render.names import fit
from bellwether.sim.fleet import HEALTHY, Behaviour, Profile

LABELS = ("namespace", "deployment", "region", "revision", "role")
# Geometric buckets, 15 % apart from 1 ms to ~2 min: fine enough for histogram_quantile to interpolate.
BUCKETS: tuple[float, ...] = tuple(round(0.001 * 1.15**i, 6) for i in range(84))
_Z = {0.99: NormalDist().inv_cdf(0.99), 0.95: NormalDist().inv_cdf(0.95)}
_HISTOGRAMS = {
    "vllm:e2e_request_latency_seconds": "End-to-end request latency.",
    "vllm:time_to_first_token_seconds": "Time to first token.",
    "vllm:inter_token_latency_seconds": "Time between output tokens.",
    "tgi_request_duration": "Request duration.",
    "http_request_duration_seconds": "HTTP request duration.",
}
_COUNTERS = {
    "nv_inference_request_success": "Successful inference requests.",
    "nv_inference_request_failure": "Failed inference requests.",
    "nv_inference_request_duration_us": "Cumulative inference request duration in microseconds.",
    "tgi_request_count": "Requests.",
    "tgi_request_failure": "Failed requests.",
}


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value


@dataclass
class _Group:
    """One revision in one region: its traffic, behaviour and accumulated metrics."""

    labels: tuple[str, ...]
    behaviour: Behaviour
    rps: float
    started: float
    histograms: dict[str, _Histogram] = field(default_factory=lambda: {n: _Histogram() for n in _HISTOGRAMS})
    counters: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0.0))
    http: dict[tuple[str, str], float] = field(default_factory=dict)  # (status class, code) -> count


class FleetExporter(Collector):
    """`serve(...)` what each revision does, `start()` to listen on a loopback port; thread-safe."""

    def __init__(
        self, namespace: str = "ml", name: str = "llama", profile: Profile | None = None, seed: int = 0
    ) -> None:
        self.namespace = namespace
        self.deployment = fit(name)
        self.profile = profile or Profile()
        self._rng = random.Random(seed)
        self._groups: dict[tuple[str, str, str], _Group] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def serve(
        self,
        region: str,
        revision: str,
        role: str,
        behaviour: Behaviour = HEALTHY,
        rps: float = 100.0,
        namespace: str | None = None,
    ) -> None:
        """Start (or change) the traffic of a revision in a region; `rps=0` keeps its series but idle."""
        ns = namespace if namespace is not None else self.namespace
        with self._lock:
            key = (ns, region, revision)
            group = self._groups.get(key)
            if group is None:
                labels = (ns, self.deployment, region, revision, role)
                self._groups[key] = _Group(labels, behaviour, rps, time.monotonic())
            else:
                group.behaviour, group.rps = behaviour, rps

    def start(self) -> int:
        registry = CollectorRegistry()
        registry.register(self)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            # Always the text format: prometheus_client's OpenMetrics output rewrites vLLM's `vllm:` names
            # to `vllm_`, which the real vLLM's metrics do not go through.
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest(registry)]

        self._server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, name="fleet-metrics", daemon=True).start()
        self._thread = threading.Thread(target=self._traffic, name="fleet-traffic", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _traffic(self, tick: float = 0.05) -> None:
        last = time.monotonic()
        while not self._stop.wait(tick):
            now = time.monotonic()
            with self._lock:
                for group in self._groups.values():
                    for _ in range(_poisson(self._rng, group.rps * (now - last))):
                        self._request(group, now)
            last = now

    def _request(self, group: _Group, now: float) -> None:
        b, p, rng, region = group.behaviour, self.profile, self._rng, group.labels[2]
        age = now - group.started
        slow = b.factor("e2e_p99", region, age) * b.spike(age)

        def draw(quantile_value: float, q: float | None) -> float:
            # lognormal with the profile's spread, scaled so its q-quantile (or mean) is the profile's value
            centre = quantile_value / math.exp(_Z[q] * p.spread) if q else quantile_value / math.exp(p.spread**2 / 2)
            return centre * slow * math.exp(rng.gauss(0.0, p.spread))

        e2e = draw(p.e2e_p99, 0.99)
        for name, value in (
            ("vllm:e2e_request_latency_seconds", e2e),
            ("vllm:time_to_first_token_seconds", draw(p.ttft_p95, 0.95)),
            ("vllm:inter_token_latency_seconds", draw(p.itl_p95, 0.95)),
            ("tgi_request_duration", e2e),
            ("http_request_duration_seconds", e2e),
        ):
            group.histograms[name].observe(value)
        failed = rng.random() < min(1.0, p.error_rate * b.factor("error_rate", region, age))
        code = ("5xx", "503") if failed else ("2xx", "200")
        group.http[code] = group.http.get(code, 0.0) + 1
        c = group.counters
        c["nv_inference_request_failure" if failed else "nv_inference_request_success"] += 1
        c["nv_inference_request_duration_us"] += draw(p.latency_avg, None) * 1e6
        c["tgi_request_count"] += 1
        c["tgi_request_failure"] += failed

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            groups = list(self._groups.values())
            for name, doc in _HISTOGRAMS.items():
                family = HistogramMetricFamily(name, doc, labels=LABELS)
                for g in groups:
                    h = g.histograms[name]
                    cumulative, buckets = 0, []
                    for bound, n in zip([*map(str, BUCKETS), "+Inf"], h.counts, strict=True):
                        cumulative += n
                        buckets.append((bound, float(cumulative)))
                    family.add_metric(list(g.labels), buckets, h.total)
                yield family
            for name, doc in _COUNTERS.items():
                # Triton and TGI name these without `_total`; an untyped family keeps the exact name.
                untyped = Metric(name, doc, "untyped")
                for g in groups:
                    untyped.add_sample(name, dict(zip(LABELS, g.labels, strict=True)), g.counters[name])
                yield untyped
            http = Metric("http_requests", "HTTP responses by status class and code.", "counter")
            for g in groups:
                for (status, code), count in sorted(g.http.items()):
                    labels = dict(zip(LABELS, g.labels, strict=True)) | {"status": status, "code": code}
                    http.add_sample("http_requests_total", labels, count)
            yield http


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every second would flood the test output."""


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        prod *= rng.random()
        k += 1
    return k
