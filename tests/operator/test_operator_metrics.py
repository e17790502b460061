"""The operator's per-ModelDeployment gauges, read from its real registry after real cycles: the phase
and conditions as kube-state-metrics shows them, the last verdict, values and bounds of each metric in each region,
and every series gone when the object is deleted (another object's left alone)."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bellwether.api.crd import crd
from bellwether.clusters import Clusters
from bellwether.handlers import metrics
from bellwether.handlers.reconcile import Context, cleanup, reconcile
from bellwether.sim.standins.apiserver import ApiServer
from bellwether.sim.standins.kubelet import Kubelet
from bellwether.sim.standins.prometheus import PrometheusStandIn, labels_in
from support.operator_world import model_deployment
from support.specs import NAME, NAMESPACE

PHASES = {"Pending", "Progressing", "Paused", "Healthy", "Degraded", "RolledBack"}


def k(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def series(name: str, md: str = NAME) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric family for one ModelDeployment, by their other labels."""
    text = generate_latest(REGISTRY).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels.get("name") == md and s.labels.get("namespace") == NAMESPACE:
                out[tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("namespace", "name")))] = s.value
    return out


@pytest.fixture
async def bad() -> AsyncIterator[tuple[dict[tuple[str, str], float], str]]:
    rates: dict[tuple[str, str], float] = {}

    def error_rate(query: str) -> float:
        labels = labels_in(query)
        return rates.get((labels.get("region", ""), labels.get("revision", "")), 0.001)

    prometheus = PrometheusStandIn(error_rate)
    url = await prometheus.start()
    yield rates, url
    await prometheus.stop()


@pytest.fixture
async def ctx(home: ApiServer, tmp_path: Path) -> AsyncIterator[Context]:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(home.kubeconfig(NAMESPACE)))
    await home.put("namespaces", {"metadata": {"name": NAMESPACE}})
    await home.put("customresourcedefinitions", crd())
    async with aiohttp.ClientSession() as session:
        yield Context(Clusters(session, kubeconfig=str(path), secret_ttl=0), prometheus=session)


def one_region(url: str, version: str, name: str = NAME) -> dict[str, Any]:
    md = model_deployment(url, version)
    md["metadata"]["name"] = name
    md["spec"]["regions"] = md["spec"]["regions"][:1]
    md["spec"]["rollout"]["waves"] = [["us-east"]]
    md["spec"]["analysis"]["metrics"][0]["baseline"] = {"maxRatio": 2, "minValue": 0.01}
    return md


async def cycles_until(ctx: Context, what: Callable[[], bool], name: str = NAME, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, f"not reached within {timeout}s"
        await reconcile(ctx, NAMESPACE, name)
        await asyncio.sleep(0.2)


def phase(home: ApiServer, name: str = NAME) -> str:
    return str(((home.get("modeldeployments", NAMESPACE, name) or {}).get("status") or {}).get("phase"))


async def test_gauges_follow_the_rollout_and_leave_with_the_object(
    home: ApiServer, ctx: Context, bad: tuple[dict[tuple[str, str], float], str]
) -> None:
    rates, url = bad
    with Kubelet(home):
        # Given v1 Healthy, and another ModelDeployment beside it
        await home.put("modeldeployments", copy.deepcopy(one_region(url, "v1")))
        await home.put("modeldeployments", copy.deepcopy(one_region(url, "v1", name="other")))
        await cycles_until(ctx, lambda: phase(home) == "Healthy")
        await cycles_until(ctx, lambda: phase(home, "other") == "Healthy", name="other")
        # Then one phase series per phase, 1 for the current one
        assert series("bellwether_rollout_phase") == {k(phase=p): float(p == "Healthy") for p in PHASES}

        # When v2 rolls out and its error rate is within the bounds
        v2 = one_region(url, "v2")
        await home.patch("modeldeployments", NAMESPACE, NAME, {"spec": v2["spec"]})
        await cycles_until(ctx, lambda: series("bellwether_analysis_verdict") != {})
        await cycles_until(ctx, lambda: 1.0 in series("bellwether_analysis_verdict").values())
        key = k(metric="error-rate", region="us-east")
        assert series("bellwether_rollout_phase")[k(phase="Progressing")] == 1.0
        assert series("bellwether_canary_weight_percent") == {k(region="us-east"): 50.0}
        assert series("bellwether_canary_share_percent")[k(region="us-east")] > 0
        values = series("bellwether_analysis_value")
        assert values[k(metric="error-rate", region="us-east", role="canary")] == pytest.approx(0.001)
        # the tighter of max 0.05 and 2x stable floored at 0.01
        assert series("bellwether_analysis_bound") == {
            k(metric="error-rate", region="us-east", kind="max"): pytest.approx(0.02)
        }

        # When it goes far past them
        status = home.get("modeldeployments", NAMESPACE, NAME) or {}
        rates[("us-east", status["status"]["canaryRevision"])] = 0.4
        await cycles_until(ctx, lambda: phase(home) == "RolledBack")
        # Then the verdict reads Failed, with the value that failed, and the phase RolledBack alone
        assert series("bellwether_analysis_verdict") == {key: -1.0}
        assert series("bellwether_analysis_value")[
            k(metric="error-rate", region="us-east", role="canary")
        ] == pytest.approx(0.4)
        assert [p for (((_, p),), v) in series("bellwether_rollout_phase").items() if v == 1.0] == ["RolledBack"]
        assert series("bellwether_rollout_condition")[k(condition="Degraded", status="True")] == 1.0

        # When the ModelDeployment is deleted
        obj = home.get("modeldeployments", NAMESPACE, NAME) or {}
        await cleanup(ctx, obj)
    # Then none of its series is left, and the other's are untouched
    for gauge in ("phase", "verdict", "value", "bound"):
        family = f"bellwether_rollout_{gauge}" if gauge == "phase" else f"bellwether_analysis_{gauge}"
        assert series(family) == {}, family
    assert series("bellwether_canary_weight_percent") == {}
    assert series("bellwether_rollout_condition") == {}
    assert series("bellwether_rollout_phase", "other")[k(phase="Healthy")] == 1.0
    metrics.forget(NAMESPACE, "other")
    assert series("bellwether_rollout_phase", "other") == {}


async def test_a_spec_refused_at_parse_time_shows_as_degraded(
    home: ApiServer, ctx: Context, bad: tuple[dict[tuple[str, str], float], str]
) -> None:
    md = one_region(bad[1], "v1", name="typo")
    md["spec"]["rollout"]["waves"] = [["us-east"], ["us-eats"]]  # the schema lets it through, the parser does not
    await home.put("modeldeployments", md)
    await reconcile(ctx, NAMESPACE, "typo")
    # The phase stays as it was (nothing was done); the Degraded condition says the spec is refused.
    assert series("bellwether_rollout_phase", "typo")[k(phase=phase(home, "typo"))] == 1.0
    conditions = series("bellwether_rollout_condition", "typo")
    assert conditions[k(condition="Degraded", status="True")] == 1.0
    assert conditions[k(condition="Degraded", status="False")] == 0.0
    metrics.forget(NAMESPACE, "typo")


def test_a_verdict_is_one_of_three_numbers_and_a_bound_needs_stable_for_its_ratio() -> None:
    from bellwether.api.spec import Metric

    assert metrics.VERDICT_VALUES == {"Successful": 1.0, "Inconclusive": 0.0, "Failed": -1.0}
    preset = Metric(name="p99", preset="vllm-e2e-latency-p99")  # the preset's default: 1.3x stable
    assert metrics.bounds(preset, 2.0) == {"max": pytest.approx(2.6)}
    assert metrics.bounds(preset, None) == {}
    both = Metric(name="errors", query="sum(x)", max=0.01, min=0.0001, baseline={"maxRatio": 2})
    assert metrics.bounds(both, 0.001) == {"max": 0.002, "min": 0.0001}
    assert metrics.bounds(both, 0.1) == {"max": 0.01, "min": 0.0001}
