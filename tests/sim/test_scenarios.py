"""Each named scenario, at a fixed seed, through the operator's engine, renderer and judge: the
outcome a user would see (promoted or rolled back, why, which regions it reached)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bellwether.api import ModelDeploymentSpec, parse
from bellwether.sim.play import Outcome, least_time, play
from bellwether.sim.scenarios import CATALOG

SEED = 3
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"


async def run(spec: ModelDeploymentSpec, scenario: str) -> Outcome:
    return await play(spec, scenario, seed=SEED)


@pytest.mark.parametrize("name", ["healthy", "warm-up-spike"])
async def test_a_healthy_revision_is_promoted_everywhere(demo_spec: ModelDeploymentSpec, name: str) -> None:
    outcome = await run(demo_spec, name)
    assert outcome.result == "promoted"
    assert outcome.regions_touched == ["us-east", "eu-west", "ap-south"]
    assert outcome.promoted_at is not None
    assert not any(e.kind == "event" and e.data.get("type") == "Warning" for e in outcome.timeline)
    # The benchmark's floor is one: no rollout of this spec gets there sooner.
    assert outcome.promoted_at - outcome.applied_at >= least_time(demo_spec)


@pytest.mark.parametrize(
    ("name", "metric"),
    [("latency-regression", ("latency", "ttft")), ("slow-burn", ("latency", "ttft"))],
)
async def test_a_regression_is_rolled_back_in_the_first_wave(
    demo_spec: ModelDeploymentSpec, name: str, metric: tuple[str, ...]
) -> None:
    outcome = await run(demo_spec, name)
    assert outcome.result == "rolled-back"
    # a latency regression may be caught first by p99 or by time to first token: both are latencies
    assert outcome.reason is not None and any(m in outcome.reason for m in metric) and "us-east" in outcome.reason
    assert outcome.regions_touched == ["us-east"]  # the first wave alone: the others never saw it


async def test_three_times_the_errors_is_rolled_back_everywhere_it_reached(demo_spec: ModelDeploymentSpec) -> None:
    # 3x a 0.4 % error rate is 1.2 %, just past the preset's default bound (2x stable floored at 0.5 %),
    # and a 10 % canary sees a handful of errors per interval: the evidence may only be conclusive in a
    # later wave or in bake time, with more traffic. Wherever it is caught, every region is reverted.
    outcome = await run(demo_spec, "error-spike")
    assert outcome.result == "rolled-back"
    assert outcome.reason is not None and "error-rate" in outcome.reason
    full = {r.name: r.replicas for r in demo_spec.regions}
    touched = set(outcome.regions_touched)
    assert {n: s.get(outcome.previous_revision, 0) for n, s in outcome.serving.items() if n in touched} == {
        n: full[n] for n in touched
    }
    assert all(s.get(outcome.revision, 0) == 0 for s in outcome.serving.values())


async def test_a_regression_in_one_late_region_reverts_the_regions_already_promoted(
    demo_spec: ModelDeploymentSpec,
) -> None:
    outcome = await run(demo_spec, "region-specific-regression")
    assert outcome.result == "rolled-back"
    assert outcome.reason is not None and "ap-south" in outcome.reason
    assert set(outcome.regions_touched) == {"us-east", "eu-west", "ap-south"}
    # Every region, including the already promoted first wave, serves the previous revision again.
    full = {r.name: r.replicas for r in demo_spec.regions}
    assert {n: s.get(outcome.previous_revision, 0) for n, s in outcome.serving.items()} == full
    assert all(s.get(outcome.revision, 0) == 0 for s in outcome.serving.values())


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("no-data", ("no data", "Inconclusive", "inconclusive")),
        ("prometheus-outage", ("Prometheus", "unreachable", "inconclusive", "Inconclusive")),
    ],
)
async def test_without_measurements_it_never_promotes(
    demo_spec: ModelDeploymentSpec, name: str, words: tuple[str, ...]
) -> None:
    outcome = await run(demo_spec, name)
    assert outcome.result in ("paused", "rolled-back")
    assert outcome.promoted_at is None
    assert outcome.reason is not None and any(w in outcome.reason for w in words)


async def test_a_surge_on_a_full_gpu_pool_fails_the_step_and_keeps_stable_serving(
    demo_spec: ModelDeploymentSpec,
) -> None:
    outcome = await run(demo_spec, "gpu-shortage")
    assert outcome.result != "promoted"
    assert any(e.kind == "pods" and "nvidia.com/gpu" in e.message for e in outcome.timeline)
    # told before the surge: a Warning as the canary's pod is asked for, before the scheduler reports it
    warned = [e for e in outcome.timeline if e.kind == "event" and e.data.get("reason") == "InsufficientGPUs"]
    pending = next(e for e in outcome.timeline if e.kind == "pods")
    assert len(warned) == 1 and warned[0].at < pending.at
    assert warned[0].message.startswith("Warning InsufficientGPUs: us-east: the surge asks for 1 new canary pod")
    assert "room for 0" in warned[0].message
    assert outcome.reason is not None
    assert outcome.serving["us-east"][outcome.previous_revision] == 4
    assert outcome.gpu_peak["us-east"] <= outcome.gpu_capacity["us-east"]


async def test_max_surge_zero_rolls_out_on_a_full_gpu_pool(demo_spec: ModelDeploymentSpec) -> None:
    swap = demo_spec.model_copy(update={"rollout": demo_spec.rollout.model_copy(update={"max_surge": "0"})})
    outcome = await run(swap, "gpu-shortage")
    assert outcome.result == "promoted"
    # each new pod takes the GPUs of a stable pod the same step removes: nothing to warn about
    assert not any(e.kind == "event" and e.data.get("reason") == "InsufficientGPUs" for e in outcome.timeline)
    assert outcome.serving["us-east"] == {outcome.revision: 4}
    assert outcome.gpu_peak["us-east"] == outcome.gpu_capacity["us-east"] == 4


def test_every_scenario_is_covered() -> None:
    assert set(CATALOG) == {
        "healthy",
        "latency-regression",
        "error-spike",
        "slow-burn",
        "warm-up-spike",
        "no-data",
        "prometheus-outage",
        "gpu-shortage",
        "region-specific-regression",
        # the judges' benchmark world (benchmarks/decision_quality.py); invariants in test_scenario_invariants
        "load-surge",
        "stable-degrading",
        "harmless-1.1x",
        "low-traffic",
        "heavy-tails",
        "tail-regression",
        "ttft-regression",
        "errors-4x",
        "heavy-tailed-regression",
    }


async def test_a_canary_paused_as_inconclusive_is_still_judged_and_rolled_back_on_failure() -> None:
    # Thirty seconds of analysis with no room for an inconclusive window: 4x the errors pauses the step
    # before its evidence is conclusive. The canary serves on while paused, and is judged meanwhile.
    doc = yaml.safe_load(DEMO.read_text())
    doc["spec"]["rollout"]["steps"] = [{"setWeight": 10}, {"analysis": {"duration": "30s"}}]
    doc["spec"]["analysis"]["inconclusiveLimit"] = 0
    outcome = await run(parse(doc).spec, "errors-4x")
    phases = [e.data["to"] for e in outcome.timeline if e.kind == "phase" and e.at >= outcome.applied_at]
    assert "Paused" in phases, "the step paused first"
    assert outcome.result == "rolled-back" and phases[-1] == "RolledBack"
    assert outcome.reason is not None and "error-rate" in outcome.reason
