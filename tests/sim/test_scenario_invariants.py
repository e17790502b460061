"""Every scenario of the catalog on examples/demo.yaml, checked against what issue 13 found on a real
cluster: pods and GPUs within replicas + maxSurge, a rolled-back revision out of traffic within an
interval, and a promotion that keeps the pods which served."""

from __future__ import annotations

import pytest

from bellwether.api import ModelDeploymentSpec
from bellwether.sim.play import Outcome, next_revision, roll, start
from bellwether.sim.runner import Runner
from bellwether.sim.scenarios import CATALOG
from support.sim_invariants import cap, lost_served_pods, over_cap, replaced_pods, untrue_shares

SEED = 3
_played: dict[str, tuple[Runner, Outcome]] = {}


async def played(spec: ModelDeploymentSpec, name: str) -> tuple[Runner, Outcome]:
    """The scenario played once per test session (virtual time; the checks below share the run)."""
    if name not in _played:
        scenario = CATALOG[name]
        runner = await start(spec, seed=SEED, scenario=scenario)
        _played[name] = (runner, await roll(runner, next_revision(spec), scenario, SEED))
    return _played[name]


@pytest.mark.parametrize("name", sorted(CATALOG))
async def test_pods_and_gpus_stay_within_replicas_plus_surge(demo_spec: ModelDeploymentSpec, name: str) -> None:
    runner, outcome = await played(demo_spec, name)
    gpus = demo_spec.runtime.resources.gpu.count if demo_spec.runtime.resources.gpu else 0
    for region in demo_spec.regions:
        limit = cap(demo_spec, region.name)
        assert outcome.pod_peak[region.name] <= limit, (region.name, outcome.pod_peak)
        assert outcome.gpu_peak[region.name] <= limit * gpus, (region.name, outcome.gpu_peak)
    assert over_cap(runner, demo_spec) == []


@pytest.mark.parametrize("name", sorted(CATALOG))
async def test_a_rolled_back_revision_has_no_traffic_an_interval_later(
    demo_spec: ModelDeploymentSpec, name: str
) -> None:
    _, outcome = await played(demo_spec, name)
    if outcome.rolled_back_at is None:
        return  # promoted, or paused: nothing was rolled back
    after = outcome.rolled_back_at + outcome.interval
    for region, points in outcome.traffic.items():
        holding = [p for p in points if p["at"] <= after][-1:] + [p for p in points if p["at"] > after]
        assert all(p["achieved"].get(outcome.revision, 0) == 0 for p in holding), (region, holding)


@pytest.mark.parametrize("name", sorted(CATALOG))
async def test_no_revision_ever_has_its_pods_replaced(demo_spec: ModelDeploymentSpec, name: str) -> None:
    runner, outcome = await played(demo_spec, name)
    assert replaced_pods(runner) == []
    if outcome.result == "promoted":
        assert lost_served_pods(runner, outcome.revision) == []


@pytest.mark.parametrize("name", sorted(CATALOG))
async def test_the_outcome_reports_traffic_as_achieved_next_to_the_weight_asked(
    demo_spec: ModelDeploymentSpec, name: str
) -> None:
    _, outcome = await played(demo_spec, name)
    doc = outcome.as_dict()
    assert set(doc["traffic"]) == set(doc["pod_peak"]) == set(doc["gpu_peak"]) == {r.name for r in demo_spec.regions}
    for points in doc["traffic"].values():
        assert points and all(set(p) == {"at", "achieved", "requested"} for p in points)
        assert [p["at"] for p in points] == sorted(p["at"] for p in points)
        if outcome.result in ("promoted", "rolled-back"):
            winner = outcome.revision if outcome.result == "promoted" else outcome.previous_revision
            assert points[-1]["achieved"] == {winner: 100}


@pytest.mark.parametrize("name", sorted(CATALOG))
async def test_the_share_reported_is_the_share_the_endpoints_give(demo_spec: ModelDeploymentSpec, name: str) -> None:
    runner, _ = await played(demo_spec, name)
    assert untrue_shares(runner) == []
