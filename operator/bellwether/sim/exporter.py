"""A real Prometheus exporter for a simulated serving fleet, in the formats the presets expect.

Each served (region, revision) gets requests at its rate, drawn the way the simulated fleet draws
them (`sim.fleet`: lognormal or heavy-tailed latencies, the revision's regression, tail, time to
first token, warm-up spike and error rate), counted into the metric families the real runtimes
export: vLLM's histograms and HTTP status counter, Triton's cumulative counters and its optional
first-response histogram (in milliseconds), TGI's histograms and counters, and the conventional HTTP
histogram. A real Prometheus reads them, so the analysis code is
tested against real PromQL evaluation, `increase` and `rate` windows and histogram interpolation.

Two ways to feed it. `start()` serves `/metrics` on a loopback port with requests arriving in real
time, for a Prometheus scraping it. `write_openmetrics(...)` writes the same counters over a span of
the past, one sample per scrape interval with its timestamp, for `promtool tsdb create-blocks-from
openmetrics`: a Prometheus started on those blocks has minutes of history at once, and a test on it
does not depend on scrapes keeping time on a loaded machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from bellwether.render.names import fit
from bellwether.sim.fleet import BUCKETS, HEALTHY, Behaviour, Fleet, Profile, Quantity, Serving, bucket_midpoints

LABELS = ("namespace", "deployment", "region", "revision", "role")
HISTOGRAMS: dict[str, tuple[Quantity, str]] = {
    "vllm:e2e_request_latency_seconds": ("e2e_p99", "End-to-end request latency."),
    "vllm:time_to_first_token_seconds": ("ttft_p95", "Time to first token."),
    "vllm:inter_token_latency_seconds": ("itl_p95", "Time between output tokens."),
    "tgi_request_duration": ("e2e_p99", "Request duration."),
    # The fleet models time to first token whole: TGI's queue time, its waiting part, is drawn from it.
    "tgi_request_queue_duration": ("ttft_p95", "Request time spent in queue."),
    "tgi_request_mean_time_per_token_duration": ("itl_p95", "Mean time per token, per request."),
    "nv_inference_first_response_histogram_ms": ("ttft_p95", "Duration from request to first response in ms."),
    "http_request_duration_seconds": ("e2e_p99", "HTTP request duration."),
}
# Histograms in other units than seconds: units per second, applied to their edges and sums.
PER_SECOND = {"nv_inference_first_response_histogram_ms": 1000.0}
COUNTERS = {
    "nv_inference_request_success": "Successful inference requests.",
    "nv_inference_request_failure": "Failed inference requests.",
    "nv_inference_request_duration_us": "Cumulative inference request duration in microseconds.",
    "tgi_request_count": "Requests.",
    "tgi_request_failure": "Failed requests.",
}
# vLLM's own bucket edges (vllm/engine/metrics.py): far coarser than the default 15 % steps.
VLLM_BUCKETS: dict[str, tuple[float, ...]] = {
    "vllm:e2e_request_latency_seconds": (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0),
    "vllm:time_to_first_token_seconds": (
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ),
}  # fmt: skip


@dataclass
class _Group:
    """One revision in one region: its traffic, behaviour and accumulated metrics."""

    labels: tuple[str, ...]
    fleet: Fleet  # the group's own: the same revision may behave differently in each region
    rps: float
    started: float
    ticks: int = 0
    counts: dict[str, np.ndarray[Any, np.dtype[np.int64]]] = field(default_factory=dict)  # per bucket
    sums: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0.0))
    http: dict[tuple[str, str], float] = field(default_factory=dict)  # (status class, code) -> count


class FleetExporter(Collector):
    """`serve(...)` what each revision does, then `start()` to listen on a loopback port, or
    `write_openmetrics(...)` to write a span of history; thread-safe. `buckets` replaces the edges
    of some histograms (e.g. `VLLM_BUCKETS`)."""

    def __init__(
        self,
        namespace: str = "ml",
        name: str = "llama",
        profile: Profile | None = None,
        seed: int = 0,
        buckets: Mapping[str, tuple[float, ...]] | None = None,
    ) -> None:
        self.namespace = namespace
        self.deployment = fit(name)
        self.profile = profile or Profile()
        self.edges = {h: tuple((buckets or {}).get(h, BUCKETS)) for h in HISTOGRAMS}
        self._rng = np.random.default_rng(seed)
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
        since: float | None = None,
    ) -> None:
        """Start (or change) the traffic of a revision in a region; `rps=0` keeps its series but idle.
        `since`: when it started serving (for `write_openmetrics`; default now)."""
        ns = namespace if namespace is not None else self.namespace
        with self._lock:
            key = (ns, region, revision)
            group = self._groups.get(key)
            if group is None:
                fleet = Fleet(profile=self.profile, load_swing=0.0, load_jitter=0.0)
                group = _Group((ns, self.deployment, region, revision, role), fleet, rps, since or time.time())
                group.counts = {h: np.zeros(len(e) + 1, dtype=np.int64) for h, e in self.edges.items()}
                group.sums = dict.fromkeys(HISTOGRAMS, 0.0)
                self._groups[key] = group
            group.fleet.behaviours[revision], group.rps = behaviour, rps

    # -- traffic ----------------------------------------------------------------------------------

    def _tick(self, group: _Group, now: float, seconds: float) -> None:
        """The requests of `seconds` ending at `now`, into the group's counters."""
        n = int(self._rng.poisson(group.rps * seconds)) if group.rps > 0 else 0
        if n == 0:
            return
        age = max(0.0, now - group.started)
        region, revision, fleet = group.labels[2], group.labels[3], group.fleet
        behaviour, serving = fleet.behaviour(revision), Serving(1.0, (age,), age)
        for histogram, (q, _) in HISTOGRAMS.items():
            edges = self.edges[histogram]
            probs = fleet.bucket_probabilities(q, region, revision, now, serving, None, edges)
            drawn = self._rng.multinomial(n, probs)
            group.counts[histogram] += drawn
            group.sums[histogram] += float(drawn @ np.asarray(bucket_midpoints(edges)))
        p = min(1.0, self.profile.error_rate * behaviour.factor("error_rate", region, age))
        failed = int(self._rng.binomial(n, p))
        for code, count in ((("5xx", "503"), failed), (("2xx", "200"), n - failed)):
            group.http[code] = group.http.get(code, 0.0) + count
        c = group.counters
        c["nv_inference_request_failure"] += failed
        c["nv_inference_request_success"] += n - failed
        mean = self.profile.latency_avg * behaviour.factor("latency_avg", region, age) * behaviour.spike(age)
        c["nv_inference_request_duration_us"] += n * mean * 1e6
        c["tgi_request_count"] += n
        c["tgi_request_failure"] += failed

    def _traffic(self, tick: float = 0.05) -> None:
        last = time.time()
        while not self._stop.wait(tick):
            now = time.time()
            with self._lock:
                for group in self._groups.values():
                    self._tick(group, now, now - last)
            last = now

    # -- serving ----------------------------------------------------------------------------------

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

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            groups = list(self._groups.values())
            for name, (_, doc) in HISTOGRAMS.items():
                family = HistogramMetricFamily(name, doc, labels=LABELS)
                unit = PER_SECOND.get(name, 1.0)
                for g in groups:
                    buckets = _cumulative(self.edges[name], g.counts[name], unit)
                    family.add_metric(list(g.labels), buckets, g.sums[name] * unit)
                yield family
            for name, doc in COUNTERS.items():
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

    # -- history ----------------------------------------------------------------------------------

    def write_openmetrics(self, out: IO[str], start: float, end: float, scrape: float = 5.0) -> None:
        """Every group's series from `start` to `end` (Unix seconds), one sample per `scrape` seconds,
        as OpenMetrics text with timestamps (what `promtool tsdb create-blocks-from openmetrics` reads).
        A group serves from its `since` on; before that its series do not exist."""
        ticks = [start + k * scrape for k in range(int((end - start) / scrape) + 1)]
        rows: dict[str, list[str]] = {}  # family -> sample lines, in time order per series
        with self._lock:
            for t in ticks:
                for g in self._groups.values():
                    if t < g.started:
                        continue
                    if g.ticks:
                        self._tick(g, t, scrape)
                    g.ticks += 1
                    for family, line in self._lines(g, t):
                        rows.setdefault(family, []).append(line)
        for family, kind in self._families():
            out.write(f"# TYPE {family} {kind}\n")
            out.writelines(f"{line}\n" for line in rows.get(family, []))
        out.write("# EOF\n")

    def _families(self) -> list[tuple[str, str]]:
        return [
            *((h, "histogram") for h in HISTOGRAMS),
            *((c, "unknown") for c in COUNTERS),
            ("http_requests", "counter"),
        ]

    def _lines(self, g: _Group, t: float) -> Iterator[tuple[str, str]]:
        base = ",".join(f'{k}="{v}"' for k, v in zip(LABELS, g.labels, strict=True))
        for name in HISTOGRAMS:
            unit = PER_SECOND.get(name, 1.0)
            buckets = _cumulative(self.edges[name], g.counts[name], unit)
            for le, count in buckets:
                yield name, f'{name}_bucket{{{base},le="{le}"}} {count:g} {t:.3f}'
            yield name, f"{name}_count{{{base}}} {buckets[-1][1]:g} {t:.3f}"
            yield name, f"{name}_sum{{{base}}} {g.sums[name] * unit:.6f} {t:.3f}"
        for name in COUNTERS:
            yield name, f"{name}{{{base}}} {g.counters[name]:.6f} {t:.3f}"
        for status, code in (("5xx", "503"), ("2xx", "200")):
            count = g.http.get((status, code), 0.0)
            yield "http_requests", f'http_requests_total{{{base},status="{status}",code="{code}"}} {count:g} {t:.3f}'


def _cumulative(
    edges: tuple[float, ...], counts: np.ndarray[Any, np.dtype[np.int64]], unit: float = 1.0
) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs; `unit`: the histogram's units per second, applied to the edges."""
    running = np.cumsum(counts)
    finite = ((f"{e * unit:g}", float(c)) for e, c in zip(edges, running[:-1], strict=True))
    return [*finite, ("+Inf", float(running[-1]))]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every second would flood the test output."""
