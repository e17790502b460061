"""The request-level judge against a real Prometheus: the presets' bucket and counter queries, and the
sequential verdicts they lead to, at every minute of twenty minutes of canary and stable traffic.

The history is backfilled (see conftest): each scenario is a region where stable serves 100 requests a
second and a canary 40, from twelve minutes in warmed up. vLLM's histograms keep vLLM's own coarse
bucket edges; the generic HTTP and TGI ones the fine default, so both layouts are judged.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bellwether.analysis.measure import measure
from bellwether.analysis.prometheus import PrometheusSource
from bellwether.analysis.source import Window
from bellwether.api import Measurement, ModelDeploymentSpec, parse
from bellwether.api.spec import Metric
from bellwether.rollout.types import AnalysisRequest
from bellwether.sim.exporter import VLLM_BUCKETS, FleetExporter
from bellwether.sim.fleet import Behaviour
from support.promserver import Prometheus, backfilled

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vllm-single-region.yaml"
STABLE, CANARY = "5d1e88f0aa", "7c9f2a1bbb"
HISTORY, WARM_AFTER, INTERVAL, LOOK_EVERY = 1200.0, 480.0, 30.0, 60.0
LATENCY = [
    "vllm-e2e-latency-p99",
    "http-latency-p99",
    "vllm-ttft-p95",
    "triton-first-response-p95",
    "tgi-queue-duration-p95",
    "tgi-time-per-token-p95",
]
ERRORS = ["vllm-error-rate", "tgi-error-rate", "triton-failure-rate"]
SCENARIOS = {
    "healthy": Behaviour(),
    "latency-2x": Behaviour(latency_factor=2.0),
    "errors-5x": Behaviour(error_factor=5.0),
    "slightly-worse": Behaviour(latency_factor=1.08),
    "tail-only": Behaviour(tail_share=0.03, tail_factor=4.0),
    "ttft-only": Behaviour(ttft_factor=1.6),
}


@dataclass
class History:
    prometheus: Prometheus
    exporter: FleetExporter
    start: float
    end: float

    @property
    def warm(self) -> float:
        return self.start + WARM_AFTER

    def looks(self) -> list[float]:
        first = self.warm + LOOK_EVERY
        return [first + k * LOOK_EVERY for k in range(int((self.end - first) / LOOK_EVERY) + 1)]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    end = math.floor(time.time()) - 10
    start = end - HISTORY
    exporter = FleetExporter(namespace="ml", name="llama", seed=14, buckets=VLLM_BUCKETS)
    for region, behaviour in SCENARIOS.items():
        exporter.serve(region, STABLE, "stable", rps=100, since=start)
        exporter.serve(region, CANARY, "canary", behaviour, rps=40, since=start + WARM_AFTER - 60)
    prom = backfilled(tmp_path_factory.mktemp("history"), exporter, start, end)
    yield History(prom, exporter, start, end)
    prom.stop()


def spec_with(presets: list[str], url: str) -> ModelDeploymentSpec:
    md = yaml.safe_load(EXAMPLE.read_text())
    metrics = [{"name": name, "preset": name} for name in presets]
    md["spec"]["analysis"].update({"prometheus": {"url": url}, "interval": f"{INTERVAL:g}s", "metrics": metrics})
    return parse(md).spec


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


@pytest.fixture(scope="module")
def verdicts(history: History) -> dict[tuple[str, str], list[Measurement]]:
    """(region, preset) -> the measurement at every look, as the engine would ask for them."""
    spec = spec_with(LATENCY + ERRORS, history.prometheus.url)
    requests = [AnalysisRequest(region, CANARY, STABLE, INTERVAL, stamp(history.warm)) for region in SCENARIOS]

    async def all_looks() -> list[tuple[Measurement, ...]]:
        async with PrometheusSource(history.prometheus.url, 10.0) as source:
            return [
                await measure(spec, "llama", "ml", requests, source, datetime.fromtimestamp(t, UTC))
                for t in history.looks()
            ]

    out: dict[tuple[str, str], list[Measurement]] = {}
    for measured in asyncio.run(all_looks()):
        for m in measured:
            out.setdefault((m.region, m.metric), []).append(m)
    return out


def series(verdicts: dict[tuple[str, str], list[Measurement]], region: str, preset: str) -> list[str]:
    return [m.verdict for m in verdicts[(region, preset)]]


async def test_the_counts_are_the_requests_the_fleet_served(history: History) -> None:
    """Bucket increases and request counters over the whole history, through PromQL, are the exporter's
    own totals: `increase` from a counter's first sample at zero needs no extrapolation."""
    window = Window("llama", "ml", "healthy", CANARY, "canary", history.start, history.end, INTERVAL)
    async with PrometheusSource(history.prometheus.url, 10.0) as source:
        p99 = await source.counts(Metric(name="p99", preset="vllm-e2e-latency-p99"), window)
        http = await source.counts(Metric(name="http", preset="http-latency-p99"), window)
        errors = await source.counts(Metric(name="errors", preset="vllm-error-rate"), window)
        tgi = await source.counts(Metric(name="tgi", preset="tgi-error-rate"), window)
        triton = await source.counts(Metric(name="triton", preset="triton-first-response-p95"), window)
    group = next(g for g in history.exporter._groups.values() if g.labels[2:4] == ("healthy", CANARY))
    served = group.counters["tgi_request_count"]
    assert served > 0.95 * 40 * (HISTORY - WARM_AFTER + 60)
    for counts in (p99, http, errors, tgi, triton):
        assert counts.present and counts.error is None
        assert counts.total == pytest.approx(served, rel=0.01)
    assert errors.failed == pytest.approx(group.counters["tgi_request_failure"], rel=0.01, abs=1)
    assert [le for le, _ in p99.buckets][-1] == math.inf
    assert {le for le, _ in p99.buckets} - {math.inf} == set(VLLM_BUCKETS["vllm:e2e_request_latency_seconds"])
    assert len(http.buckets) == 85  # the default 15 % edges
    # Triton's edges are milliseconds in Prometheus (le="1.15" is 1.15 ms), seconds once read
    assert [le for le, _ in triton.buckets] == pytest.approx([le for le, _ in http.buckets], rel=1e-5)


def test_a_healthy_canary_is_never_failed_and_passes_every_preset(
    verdicts: dict[tuple[str, str], list[Measurement]],
) -> None:
    for preset in LATENCY + ERRORS:
        got = series(verdicts, "healthy", preset)
        assert "Failed" not in got and got[-1] == "Successful", (preset, got, verdicts[("healthy", preset)][-1].reason)


def test_twice_the_latency_fails_the_latency_presets_within_minutes_and_only_them(
    verdicts: dict[tuple[str, str], list[Measurement]],
) -> None:
    for preset in LATENCY:
        got = series(verdicts, "latency-2x", preset)
        assert got[1] == "Failed" and got[-1] == "Failed", (preset, got)
        reason = verdicts[("latency-2x", preset)][1].reason or ""
        assert reason.startswith("beyond the bound: ") and "a canary at 1.3x stable would have" in reason
    for preset in ERRORS:
        assert "Failed" not in series(verdicts, "latency-2x", preset), preset


def test_five_times_the_errors_fails_the_error_presets_and_only_them(
    verdicts: dict[tuple[str, str], list[Measurement]],
) -> None:
    for preset in ERRORS:
        got = series(verdicts, "errors-5x", preset)
        assert "Failed" in got[:4] and got[-1] == "Failed", (preset, got)
    for preset in LATENCY:
        assert "Failed" not in series(verdicts, "errors-5x", preset), preset


def test_a_real_but_harmless_shift_is_not_a_failure(verdicts: dict[tuple[str, str], list[Measurement]]) -> None:
    for preset in LATENCY + ERRORS:
        got = series(verdicts, "slightly-worse", preset)
        assert "Failed" not in got, (preset, got)
    assert series(verdicts, "slightly-worse", "http-latency-p99")[-1] == "Successful"


def test_a_regression_of_a_few_requests_fails_the_p99_on_fine_and_on_vllm_s_coarse_buckets(
    verdicts: dict[tuple[str, str], list[Measurement]],
) -> None:
    for preset in ("http-latency-p99", "vllm-e2e-latency-p99"):
        got = series(verdicts, "tail-only", preset)
        assert got[-1] == "Failed", (preset, got, verdicts[("tail-only", preset)][-1].reason)


def test_a_time_to_first_token_regression_fails_that_preset_alone(
    verdicts: dict[tuple[str, str], list[Measurement]],
) -> None:
    for preset in ("vllm-ttft-p95", "triton-first-response-p95"):
        assert series(verdicts, "ttft-only", preset)[-1] == "Failed", preset
    for preset in ("vllm-e2e-latency-p99", "http-latency-p99", "tgi-time-per-token-p95"):
        assert "Failed" not in series(verdicts, "ttft-only", preset), preset


async def test_without_a_live_stable_the_canary_is_held_to_stable_s_last_value(history: History) -> None:
    spec = spec_with(["http-latency-p99", "vllm-error-rate"], history.prometheus.url)
    at = datetime.fromtimestamp(history.end, UTC)
    reference = {"http-latency-p99": 2.4, "vllm-error-rate": 0.004}
    requests = [
        AnalysisRequest(region, CANARY, None, INTERVAL, stamp(history.warm), reference)
        for region in ("healthy", "latency-2x")
    ]
    async with PrometheusSource(history.prometheus.url, 10.0) as source:
        got = {(m.region, m.metric): m.verdict for m in await measure(spec, "llama", "ml", requests, source, at)}
    assert got[("healthy", "http-latency-p99")] == "Successful" and got[("healthy", "vllm-error-rate")] == "Successful"
    assert got[("latency-2x", "http-latency-p99")] == "Failed"


async def test_no_series_is_an_error_and_a_series_too_new_to_count_is_pending(history: History) -> None:
    spec = spec_with(["vllm-e2e-latency-p99", "vllm-error-rate"], history.prometheus.url)
    async with PrometheusSource(history.prometheus.url, 10.0) as source:
        at = datetime.fromtimestamp(history.end, UTC)
        missing = AnalysisRequest("no-such-region", CANARY, STABLE, INTERVAL, stamp(history.warm))
        lost = await measure(spec, "llama", "ml", [missing], source, at)
        # An analysis one interval old, of a canary whose pods only just began to serve: nothing to count yet.
        began = history.start + WARM_AFTER - 60
        new = AnalysisRequest("healthy", CANARY, STABLE, INTERVAL, stamp(began - INTERVAL))
        young = await measure(spec, "llama", "ml", [new], source, datetime.fromtimestamp(began, UTC))
    assert {(m.verdict, m.cause) for m in lost} == {("Inconclusive", "error")}
    assert all((m.reason or "").startswith("no data for the canary") for m in lost)
    assert {(m.verdict, m.cause) for m in young} == {("Inconclusive", "pending")}, [m.reason for m in young]
