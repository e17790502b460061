"""The judge against a real Prometheus scraping a simulated fleet live: the per-interval path (a number
per interval from `query_range`, what a query of the user's gets, and the benchmark's Mann-Whitney
judge on the presets), escaping, errors, an outage, and `bellwether check`. The request-level path
is tested on backfilled history (test_analysis_requests.py), where it does not wait for traffic.

One exporter serves every scenario at once (each in its own "region"), so one wait covers them all.
Intervals are 5 s against 1 s scrapes: five samples a window, so a loaded machine that delays a
scrape or two still leaves a rate to compute (3 s windows did not).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bellwether.analysis.measure import measure, measure_per_interval
from bellwether.analysis.presets import PRESETS
from bellwether.analysis.prometheus import PrometheusSource
from bellwether.api import Measurement, ModelDeploymentSpec, parse
from bellwether.rollout.types import AnalysisRequest
from bellwether.sim.exporter import FleetExporter
from bellwether.sim.fleet import Behaviour
from support.promserver import Prometheus, start_prometheus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vllm-single-region.yaml"
INTERVAL = 5.0
DATA_SECONDS = 30.0  # six intervals of history for every scenario
STABLE, CANARY = "5d1e88f0aa", "7c9f2a1bbb"
LATENCY_PRESETS = [n for n, p in PRESETS.items() if p.kind == "latency"]
ERROR_PRESETS = [n for n, p in PRESETS.items() if p.kind == "error-rate"]

SCENARIOS: dict[str, Behaviour | None] = {
    "healthy": Behaviour(),
    "latency-2x": Behaviour(latency_factor=2.0),
    "errors-5x": Behaviour(error_factor=5.0),
    "slightly-worse": Behaviour(latency_factor=1.08),
    "warm-up-spike": Behaviour(spike_factor=5.0, spike_seconds=12.0),
    "no-traffic": None,
}


def spec_with(metrics: list[dict[str, Any]], url: str) -> ModelDeploymentSpec:
    md = yaml.safe_load(EXAMPLE.read_text())
    md["spec"]["analysis"].update(
        {"prometheus": {"url": url, "timeout": "5s"}, "interval": f"{INTERVAL:g}s", "metrics": metrics}
    )
    return parse(md).spec


ALL_PRESETS = [{"name": name, "preset": name} for name in PRESETS]


@pytest.fixture(scope="module")
def started(fleet: FleetExporter, prometheus: Prometheus) -> Iterator[datetime]:
    """Every scenario serving; yields when the canaries went live, once there are DATA_SECONDS of data."""
    for region, behaviour in SCENARIOS.items():
        fleet.serve(region, STABLE, "stable", rps=150)
        rps = 0 if behaviour is None else 120 if behaviour.error_factor > 1 else 60  # errors are rarer events
        fleet.serve(region, CANARY, "canary", behaviour or Behaviour(), rps=rps)
    fleet.serve("escaping", STABLE, "stable", namespace='team"a\\b', rps=50)
    began = datetime.now(UTC)
    time.sleep(DATA_SECONDS)
    yield began


async def judged(
    spec: ModelDeploymentSpec,
    region: str,
    warm_until: datetime,
    *,
    namespace: str = "ml",
    url: str = "",
    per_interval: bool = True,
) -> dict[str, Measurement]:
    request = AnalysisRequest(region, CANARY, STABLE, INTERVAL, warm_until.isoformat())
    judge = measure_per_interval if per_interval else measure
    async with PrometheusSource(url or spec.analysis.prometheus.url, 5.0) as source:  # type: ignore[union-attr]
        results = await judge(spec, "llama", namespace, [request], source, datetime.now(UTC))
    return {m.metric: m for m in results}


def verdicts(results: dict[str, Measurement]) -> dict[str, str]:
    return {name: m.verdict for name, m in results.items()}


async def test_a_healthy_canary_passes_every_preset(started: datetime, prometheus: Prometheus) -> None:
    results = await judged(spec_with(ALL_PRESETS, prometheus.url), "healthy", started)
    assert verdicts(results) == dict.fromkeys(PRESETS, "Successful"), {n: m.reason for n, m in results.items()}
    p99 = results["vllm-e2e-latency-p99"]
    assert p99.value is not None and p99.baseline is not None and 1.5 < p99.baseline < 4.0
    assert p99.bound == "<= 1.3x stable" and (p99.reason or "").endswith("intervals)")


async def test_twice_the_latency_fails_the_latency_presets_only(started: datetime, prometheus: Prometheus) -> None:
    results = await judged(spec_with(ALL_PRESETS, prometheus.url), "latency-2x", started)
    assert {n for n, v in verdicts(results).items() if v == "Failed"} == set(LATENCY_PRESETS), {
        n: m.reason for n, m in results.items()
    }
    reason = results["vllm-e2e-latency-p99"].reason or ""
    assert "x stable" in reason and "Mann-Whitney" in reason
    assert all(results[n].verdict == "Successful" for n in ERROR_PRESETS)


async def test_five_times_the_errors_fails_the_error_presets_only(started: datetime, prometheus: Prometheus) -> None:
    results = await judged(spec_with(ALL_PRESETS, prometheus.url), "errors-5x", started)
    assert {n for n, v in verdicts(results).items() if v == "Failed"} == set(ERROR_PRESETS), {
        n: m.reason for n, m in results.items()
    }


async def test_slightly_worse_but_within_bounds_passes(started: datetime, prometheus: Prometheus) -> None:
    results = await judged(spec_with(ALL_PRESETS, prometheus.url), "slightly-worse", started)
    assert set(verdicts(results).values()) == {"Successful"}, {n: m.reason for n, m in results.items()}


async def test_a_warm_up_spike_is_ignored_and_then_judged_healthy(started: datetime, prometheus: Prometheus) -> None:
    spec = spec_with(ALL_PRESETS[:1], prometheus.url)
    for per_interval in (True, False):
        during = await judged(
            spec, "warm-up-spike", datetime.now(UTC) + timedelta(seconds=30), per_interval=per_interval
        )
        warming = during["vllm-e2e-latency-p99"]
        assert (warming.verdict, warming.cause) == ("Inconclusive", "pending") and "warming up" in (
            warming.reason or ""
        )
    after = await judged(spec, "warm-up-spike", started + timedelta(seconds=15))
    assert after["vllm-e2e-latency-p99"].verdict == "Successful", after["vllm-e2e-latency-p99"].reason


async def test_no_traffic_or_no_series_is_inconclusive_never_successful(
    started: datetime, prometheus: Prometheus
) -> None:
    spec = spec_with(ALL_PRESETS, prometheus.url)
    idle = await judged(spec, "no-traffic", started)
    assert set(verdicts(idle).values()) == {"Inconclusive"}, {n: m.reason for n, m in idle.items()}
    missing = await judged(spec, "no-such-region", started)
    assert set(verdicts(missing).values()) == {"Inconclusive"}
    assert all((m.reason or "").startswith("no data for the canary") for m in missing.values())
    # On the requests: histograms that exist but count no requests are too few to judge (pending), with
    # how many it has and needs; series that do not exist are an error (an idle vLLM has no status codes).
    quiet = await judged(spec, "no-traffic", started, per_interval=False)
    assert set(verdicts(quiet).values()) == {"Inconclusive"}
    histograms = {n: m for n, m in quiet.items() if PRESETS[n].counts is not None and PRESETS[n].counts.buckets}
    assert {(m.verdict, m.cause) for m in histograms.values()} == {("Inconclusive", "pending")}
    assert all((m.reason or "").startswith("too few requests to conclude: 0 canary") for m in histograms.values()), {
        n: m.reason for n, m in histograms.items()
    }
    lost = await judged(spec, "no-such-region", started, per_interval=False)
    assert {(m.verdict, m.cause) for m in lost.values()} == {("Inconclusive", "error")}


async def test_a_custom_query_with_a_hostile_namespace_is_escaped(started: datetime, prometheus: Prometheus) -> None:
    query = 'sum(rate(tgi_request_count{namespace="{{namespace}}",region="{{region}}",revision="{{revision}}"}[{{interval}}]))'
    spec = spec_with([{"name": "throughput", "query": query, "min": 1}], prometheus.url)
    # the namespace's quote and backslash are matched literally: the query finds exactly that series
    odd = await judged(spec, "escaping", started, namespace='team"a\\b')
    assert odd["throughput"].reason != "no data for the canary" and odd["throughput"].verdict != "Failed"
    request = AnalysisRequest("escaping", STABLE, STABLE, INTERVAL, started.isoformat())
    async with PrometheusSource(prometheus.url, 5.0) as source:
        (same,) = await measure(spec, "llama", 'team"a\\b', [request], source, datetime.now(UTC))
    assert same.verdict == "Successful" and same.value is not None and same.value > 10
    # a namespace that tries to close the matcher and add `or vector(1)` just matches nothing
    hostile = 'ml"} or vector(100) or up{x="'
    attack = await judged(spec, "healthy", started, namespace=hostile)
    assert attack["throughput"].verdict == "Inconclusive"
    assert (attack["throughput"].reason or "").startswith("no data for the canary")


async def test_a_session_shared_by_every_cycle_stays_open_and_reuses_its_connections(
    started: datetime, prometheus: Prometheus
) -> None:
    # The operator hands every cycle's source one session: five cycles of four concurrent queries
    # (two metrics, canary and stable) open no more connections than one cycle does.
    created = 0

    async def count(*_: object) -> None:
        nonlocal created
        created += 1

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(count)
    spec = spec_with(ALL_PRESETS[:2], prometheus.url)
    request = AnalysisRequest("healthy", CANARY, STABLE, INTERVAL, started.isoformat())
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        for _ in range(5):
            async with PrometheusSource(prometheus.url, 5.0, session=session) as source:
                results = await measure_per_interval(spec, "llama", "ml", [request], source, datetime.now(UTC))
            assert {m.verdict for m in results} == {"Successful"}, [m.reason for m in results]
            assert source.queries == 4
        assert not session.closed
    assert 1 <= created <= 4


async def test_a_query_returning_many_series_is_an_error_saying_how_to_fix_it(
    started: datetime, prometheus: Prometheus
) -> None:
    query = 'rate(tgi_request_count{namespace="{{namespace}}"}[{{interval}}])'
    spec = spec_with([{"name": "per-pod", "query": query, "max": 1000}], prometheus.url)
    result = (await judged(spec, "healthy", started))["per-pod"]
    assert result.verdict == "Inconclusive"
    assert "series" in (result.reason or "") and "sum(" in (result.reason or "")


async def test_prometheus_stopped_mid_analysis_is_inconclusive(
    started: datetime, fleet: FleetExporter, tmp_path: Path
) -> None:
    own = start_prometheus(tmp_path, [fleet.port])
    spec = spec_with(ALL_PRESETS[:3], own.url)
    try:
        before = await judged(spec, "healthy", started)
        assert not any("unreachable" in (m.reason or "") for m in before.values())
    finally:
        own.stop()
    for per_interval in (True, False):
        after = await judged(spec, "healthy", started, per_interval=per_interval)
        assert {(m.verdict, m.cause) for m in after.values()} == {("Inconclusive", "error")}
        assert all("unreachable" in (m.reason or "") and own.url in (m.reason or "") for m in after.values())


def test_bellwether_check_tells_which_queries_return_data_which_are_empty_and_which_fail(
    started: datetime, prometheus: Prometheus, tmp_path: Path
) -> None:
    md = yaml.safe_load(EXAMPLE.read_text())
    md["metadata"]["name"] = "llama"
    md["spec"]["regions"][0]["name"] = "healthy"
    md["spec"]["analysis"]["metrics"] = [
        {"name": "p99", "preset": "vllm-e2e-latency-p99"},
        {"name": "typo", "query": 'sum(rate(tgi_request_cuont{region="{{region}}"}[{{interval}}]))', "max": 1},
        {"name": "broken", "query": 'sum(rate(tgi_request_count{region="{{region}}"}[{{interval}}])', "max": 1},
    ]
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(md))
    result = subprocess.run(
        ["bellwether", "check", "-f", str(path), "--prometheus", prometheus.url, "--revision", STABLE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:3] == ["ok", "p99", "healthy"] for line in lines), result.stdout
    assert any(line.split()[:2] == ["EMPTY", "typo"] for line in lines), result.stdout
    broken = next(line for line in lines if line.split()[:2] == ["ERROR", "broken"])
    assert "Prometheus refused the query (bad_data)" in broken
    assert "1 returned data, 1 empty, 1 failed" in result.stdout


def test_bellwether_check_warns_when_the_interval_is_shorter_than_four_scrapes(
    started: datetime, prometheus: Prometheus, tmp_path: Path
) -> None:
    """The conftest's Prometheus scrapes every second: a 2s `{{interval}}` is two scrapes, 4s is enough."""
    md = yaml.safe_load(EXAMPLE.read_text())
    md["metadata"]["name"] = "llama"
    md["spec"]["regions"][0]["name"] = "healthy"
    md["spec"]["analysis"]["metrics"] = [{"name": "p99", "preset": "vllm-e2e-latency-p99"}]
    outputs = {}
    for interval in ("2s", "4s"):
        md["spec"]["analysis"]["interval"] = interval
        path = tmp_path / f"md-{interval}.yaml"
        path.write_text(yaml.safe_dump(md))
        result = subprocess.run(
            ["bellwether", "check", "-f", str(path), "--prometheus", prometheus.url, "--revision", STABLE],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode in (0, 3), result.stderr
        outputs[interval] = result.stdout
    assert (
        "warning: {{interval}} is 2s, shorter than 4 scrape intervals of 1s (the slowest of the 1 target(s) "
        "the query's labels match)" in outputs["2s"]
    ), outputs["2s"]
    assert "warning" not in outputs["4s"] and "scrape intervals unknown" not in outputs["4s"], outputs["4s"]
