"""Properties of a rollout in the simulated world over random specs and histories (issue 13): no
serving pod is replaced except by a new revision, no region ever holds more than replicas + maxSurge
pods, and a rolled-back revision has no endpoint left from the cycle after the decision on."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bellwether.api import ModelDeploymentSpec, parse, revision_of, template_of
from bellwether.sim.fleet import Behaviour
from bellwether.sim.play import next_revision, settle, start
from bellwether.sim.runner import Runner
from support.sim_invariants import over_cap, replaced_pods, rollback_leaks, untrue_shares

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"
REGIONS = ("us-east", "eu-west", "ap-south")
MAX_TICKS = 400


@st.composite
def specs(draw: st.DrawFn) -> ModelDeploymentSpec:
    doc: dict[str, Any] = yaml.safe_load(DEMO.read_text())
    spec = doc["spec"]
    n = draw(st.integers(1, 3))
    spec["regions"] = [
        {**region, "replicas": draw(st.integers(1, 8))} for region in spec["regions"] if region["name"] in REGIONS[:n]
    ]
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=n - 1))) if n > 1 else []
    bounds = [0, *cuts, n]
    spec["rollout"]["waves"] = [list(REGIONS[a:b]) for a, b in itertools.pairwise(bounds)]
    weights = sorted(draw(st.sets(st.sampled_from([5, 10, 25, 50, 75, 90]), min_size=1, max_size=3)))
    spec["rollout"]["steps"] = [s for w in weights for s in ({"setWeight": w}, {"analysis": {"duration": "1m"}})]
    spec["rollout"]["maxSurge"] = draw(st.sampled_from(["0", "1", "25%", "50%"]))
    spec["rollout"]["bakeTime"] = draw(st.sampled_from(["0s", "1m"]))
    return parse(doc).spec


# Three families of history, each its own test item, so the suite's workers share them instead of one
# worker running all of them at the end.
HISTORIES = {
    "healthy-or-regression": st.one_of(
        st.just(("healthy", None, 0)),
        st.tuples(st.just("regression"), st.sets(st.sampled_from(REGIONS), min_size=1), st.just(0)),
    ),
    "change-mid-rollout": st.tuples(st.just("change"), st.none(), st.integers(0, 30)),
    "abort-mid-rollout": st.tuples(st.just("abort"), st.none(), st.integers(0, 30)),
}


async def live_through(spec: ModelDeploymentSpec, history: tuple[str, Any, int], seed: int) -> Runner:
    """Deploy, roll out the next revision and do what the history says at its tick, until settled."""
    kind, regions, at = history
    runner = await start(spec, seed=seed)
    new = next_revision(spec)
    if kind == "regression":
        runner.world.fleet.behaviours[revision_of(template_of(new))] = Behaviour(
            latency_factor=2.0, regions=frozenset(regions)
        )
    runner.apply(new)
    for tick in range(MAX_TICKS):
        await runner.tick()
        if tick == at and kind == "change":
            runner.apply(next_revision(new))  # a spec change mid-rollout: a third revision
        elif tick == at and kind == "abort":
            runner.command("abort")
        elif tick > at and runner.settled():
            break
    await settle(runner)
    return runner


@pytest.mark.parametrize("family", HISTORIES)
@settings(max_examples=10, deadline=None, report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), spec=specs(), seed=st.integers(0, 3))
def test_pods_traffic_and_capacity_obey_the_decision(
    family: str, data: st.DataObject, spec: ModelDeploymentSpec, seed: int
) -> None:
    history = data.draw(HISTORIES[family], label="history")
    runner = asyncio.run(live_through(spec, history, seed))
    assert replaced_pods(runner) == []
    assert over_cap(runner, spec) == []
    assert rollback_leaks(runner) == []
    assert untrue_shares(runner) == []
