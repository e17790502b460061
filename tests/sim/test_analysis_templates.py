"""ClusterAnalysisTemplates through the operator's own cycle, in the simulated world: the home port
reads them every cycle, a missing one stops everything with a condition naming it (the stable revision
keeps serving), and the canary is judged on the template's metrics, as edited, without a new rollout."""

from __future__ import annotations

from typing import Any

from bellwether.api import ModelDeploymentSpec, dump, parse_spec
from bellwether.sim.play import next_revision, roll, settle
from bellwether.sim.runner import Runner
from bellwether.sim.scenarios import CATALOG
from bellwether.sim.source import SimMetricSource
from bellwether.sim.world import World

LATENCY = [
    {"name": "p99-latency", "preset": "vllm-e2e-latency-p99"},
    {"name": "ttft-p95", "preset": "vllm-ttft-p95"},
]


def fleet_slo(*metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "ClusterAnalysisTemplate",
        "metadata": {"name": "fleet-slo"},
        "spec": {"metrics": list(metrics or LATENCY)},
    }


def naming_the_template(demo: ModelDeploymentSpec) -> ModelDeploymentSpec:
    """The demo with its latency metrics moved into the template; the error rate stays inline."""
    raw = dump(demo)
    raw["analysis"]["metrics"] = [m for m in raw["analysis"]["metrics"] if m["name"] == "error-rate"]
    raw["analysis"]["templates"] = [{"name": "fleet-slo"}]
    return parse_spec(raw)


def runner_for(spec: ModelDeploymentSpec, *templates: dict[str, Any]) -> Runner:
    world = World.for_spec(spec, seed=3)
    runner = Runner(world, SimMetricSource(world), spec)
    for template in templates:
        runner.home.put_template(template)
    return runner


def degraded(runner: Runner) -> tuple[str, str] | None:
    found = next((c for c in runner.status.conditions if c.type == "Degraded" and c.status == "True"), None)
    return (found.reason, found.message or "") if found else None


def pods(runner: Runner) -> dict[str, dict[str, int]]:
    """Live pods by region and revision, Pending ones too."""
    return {
        n: {r: p.desired for r, p in c.observe(runner.owner).pods.items()} for n, c in runner.world.clusters.items()
    }


async def test_a_missing_template_applies_nothing_and_says_which_until_it_exists(
    demo_spec: ModelDeploymentSpec,
) -> None:
    # Given a ModelDeployment naming a template that no one has applied yet
    runner = runner_for(naming_the_template(demo_spec))
    # When the operator runs a few cycles
    outcomes = [await runner.tick() for _ in range(3)]
    # Then nothing is deployed, and status and an Event name the template
    assert all(not c.pods for c in runner.world.clusters.values())
    reason, message = degraded(runner) or ("", "")
    assert reason == "InvalidAnalysisTemplate"
    assert "ClusterAnalysisTemplate 'fleet-slo' not found" in message and "nothing applied" in message
    assert any(e.reason == "InvalidAnalysisTemplate" for o in outcomes for e in o.events)
    # When the template is applied, the next cycles deploy and the condition clears
    runner.home.put_template(fleet_slo())
    await settle(runner)
    assert runner.status.phase == "Healthy" and degraded(runner) is None


async def test_the_canary_is_judged_on_the_templates_metrics_and_rolled_back_by_them(
    demo_spec: ModelDeploymentSpec,
) -> None:
    # Given the demo whose latency bounds come from the template, deployed
    spec = naming_the_template(demo_spec)
    runner = runner_for(spec, fleet_slo())
    await settle(runner)
    # When a revision slower than its bounds rolls out
    outcome = await roll(runner, next_revision(spec), CATALOG["latency-regression"], seed=3)
    # Then the template's metrics (and the inline one) were measured, and a template metric rolled it back
    measured = {m.metric for _, m in runner.measurements}
    assert measured == {"p99-latency", "ttft-p95", "error-rate"}
    assert outcome.result == "rolled-back"
    assert outcome.reason is not None and any(name in outcome.reason for name in ("p99-latency", "ttft-p95"))


async def test_a_template_edited_mid_rollout_is_measured_from_the_next_cycle_without_a_new_rollout(
    demo_spec: ModelDeploymentSpec,
) -> None:
    spec = naming_the_template(demo_spec)
    runner = runner_for(spec, fleet_slo(LATENCY[0]))
    await settle(runner)
    # Given a rollout in progress, judged on the template's one metric
    runner.apply(next_revision(spec))
    await runner.run(lambda r: len({m.metric for _, m in r.measurements}) >= 2, 600)
    canary, restarts = runner.status.canary_revision, _events(runner, "RolloutRestarted")
    assert canary is not None and {m.metric for _, m in runner.measurements} == {"p99-latency", "error-rate"}
    # When the template gains a metric
    runner.home.put_template(fleet_slo(*LATENCY))
    before = len(runner.measurements)
    await runner.run(lambda r: any(m.metric == "ttft-p95" for _, m in r.measurements[before:]), 300)
    # Then the new metric is measured, in the same rollout of the same canary
    assert any(m.metric == "ttft-p95" for _, m in runner.measurements[before:])
    assert runner.status.canary_revision == canary and _events(runner, "RolloutRestarted") == restarts


async def test_a_template_deleted_mid_rollout_freezes_the_rollout_with_stable_serving(
    demo_spec: ModelDeploymentSpec,
) -> None:
    spec = naming_the_template(demo_spec)
    runner = runner_for(spec, fleet_slo())
    await settle(runner)
    stable = runner.status.stable_revision
    runner.apply(next_revision(spec))
    await runner.run(lambda r: r.status.canary_revision is not None and r.status.canary_weight > 0, 600)
    # Given a canary serving part of the traffic, when the template is deleted
    runner.home.delete_template("fleet-slo")
    await runner.tick()
    frozen, status = pods(runner), runner.status
    for _ in range(10):
        await runner.tick()
    # Then nothing changes: no pod added or removed, the stable revision keeps serving, status says why
    assert pods(runner) == frozen
    assert all(stable in c.weights(runner.owner, runner.elapsed) for c in runner.world.clusters.values())
    assert (degraded(runner) or ("",))[0] == "InvalidAnalysisTemplate"
    assert (runner.status.step, runner.status.canary_weight) == (status.step, status.canary_weight)
    # When it is back, the rollout goes on from where it stood (to the end or to a later judgment)
    runner.home.put_template(fleet_slo())
    await settle(runner)
    assert (degraded(runner) or ("",))[0] != "InvalidAnalysisTemplate"
    assert (runner.status.wave, runner.status.step) > (status.wave, status.step) or runner.status.phase == "Healthy"


def _events(runner: Runner, reason: str) -> int:
    return sum(1 for e in runner.timeline if e.kind == "event" and e.data.get("reason") == reason)
