"""Autoscaled regions: the replica maths with live counts, and who owns which count in each plan.

The region's autoscaler keeps the stable Deployment's replicas; the observation carries them as
`RevisionPods.desired`. The weight maths uses that live count (never the spec's minReplicas), the plan
leaves stable's count to the autoscaler during a step, and holds it only where a hand-over needs it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bellwether.api import (
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Progress,
    RegionStatus,
    Template,
    parse_spec,
)
from bellwether.rollout.live import live_replicas, needed
from bellwether.rollout.plans import region_plan
from bellwether.rollout.replicas import autoscaled_canary, canary_beside, share_of
from bellwether.rollout.types import ManualCommand, Observations, RegionObservation, RevisionPods
from bellwether.sim.engine_world import World
from support.specs import revision

STEPS: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {"duration": "1m"}}, {"setWeight": 50}]


def autoscaled_spec(
    *, version: str = "v1", min_replicas: int = 2, max_replicas: int = 20, steps: list[dict[str, Any]] = STEPS
) -> ModelDeploymentSpec:
    metric = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "vllm:num_requests_waiting"},
            "target": {"type": "AverageValue", "averageValue": 5},
        },
    }
    return parse_spec(
        {
            "model": {"name": "llama", "version": version, "uri": "s3://models/llama"},
            "runtime": {"image": "vllm/vllm-openai:v1", "warmupSeconds": 0, "resources": {"gpu": {"count": 1}}},
            "regions": [
                {
                    "name": "a",
                    "autoscaling": {"minReplicas": min_replicas, "maxReplicas": max_replicas, "metrics": [metric]},
                }
            ],
            "rollout": {"maxSurge": "25%", "bakeTime": "0s", "steps": steps},
            "analysis": {
                "prometheus": {"url": "http://prometheus:9090"},
                "metrics": [{"name": "error-rate", "query": "sum(x)", "max": 0.01}],
            },
        }
    )


SPEC = autoscaled_spec()
TEMPLATE = Template(model=SPEC.model, runtime=SPEC.runtime)


def status(weight: int, *, step: int = 0, wave: int = 0, remembered: int | None = None) -> ModelDeploymentStatus:
    regions = [RegionStatus(name="a", replicas=remembered)] if remembered is not None else []
    return ModelDeploymentStatus(
        stable_revision="old",
        canary_revision="new",
        canary_weight=weight,
        step=step,
        wave=wave,
        regions=regions,
        history=[HistoryEntry(revision="old", model="1", promoted_at="2026-01-01T00:00:00Z", template=TEMPLATE)],
        progress=Progress(canary_template=TEMPLATE),
    )


def seen(**pods: tuple[int, int]) -> Observations:
    """Observations of region a: revision -> (desired, ready)."""
    revs = {rev: RevisionPods(desired=d, ready=r) for rev, (d, r) in pods.items()}
    return Observations(1, {"a": RegionObservation("a", pods=revs)})


@pytest.mark.parametrize(
    ("stable", "weight", "canary"),
    [(4, 10, 1), (9, 10, 1), (4, 25, 1), (8, 25, 3), (16, 25, 5), (4, 50, 4), (7, 50, 7), (3, 75, 9), (4, 0, 0)],
)
def test_the_canary_beside_the_live_count_takes_the_closest_share_to_the_weight(
    stable: int, weight: int, canary: int
) -> None:
    assert canary_beside(stable, weight) == canary
    share = share_of(stable, canary)
    others = [share_of(stable, c) for c in range(1, 3 * stable + 3)]
    assert abs(share - weight) <= min(abs(s - weight) for s in others) or weight == 0


@pytest.mark.parametrize(
    ("stable_live", "stable_ready", "canary_ready", "expected"),
    [
        (8, 8, 0, 2),  # the surge room beside 8 ready pods: 2
        (8, 8, 2, 3),  # the whole share once there is room
        (16, 8, 3, 3),  # the autoscaler doubled stable, its pods still loading: no room yet, nothing taken away
        (16, 16, 3, 5),  # ... ready: the canary follows the live count to keep 25%
        (4, 4, 3, 1),  # the autoscaler shrank stable (less load): the canary follows
    ],
)
def test_the_canary_follows_the_live_count_within_the_surge_cap(
    stable_live: int, stable_ready: int, canary_ready: int, expected: int
) -> None:
    count = autoscaled_canary(stable_live, 25, "25%", stable_ready, canary_ready)
    assert count == expected
    # never more pods than the ready ones plus maxSurge of them, unless ready canary pods are kept
    assert stable_live + count <= max(
        stable_ready + canary_ready + -(-(stable_ready + canary_ready) // 4), stable_live + canary_ready
    )


def test_during_a_step_stable_is_left_to_the_autoscaler_and_the_canary_sized_from_its_live_count() -> None:
    plan = region_plan(SPEC, status(25), seen(old=(16, 16), new=(3, 3)), "a")
    by = {r.revision: r for r in plan.revisions}
    assert by["old"].autoscaled and by["old"].replicas == 16  # what the autoscaler keeps, not minReplicas 2
    assert not by["new"].autoscaled and by["new"].replicas == 5
    assert by["new"].weight == share_of(16, 3)  # every ready pod serves
    assert by["old"].serving is None and by["new"].serving is None
    assert plan.autoscaler == "old"
    assert live_replicas(SPEC, status(25), seen(old=(16, 16), new=(3, 3)), "a") == 19


def test_at_weight_100_stable_is_held_and_gives_a_pod_per_ready_canary_pod_with_the_autoscaler_held() -> None:
    # The last step is over: the canary takes the region's live count remembered in status (10).
    st = status(100, step=len(STEPS), remembered=10)
    plan = region_plan(SPEC, st, seen(old=(8, 8), new=(4, 4)), "a")
    by = {r.revision: r for r in plan.revisions}
    assert live_replicas(SPEC, st, seen(old=(8, 8), new=(4, 4)), "a") == 10
    assert not by["old"].autoscaled and by["old"].replicas == 6  # 10 - 4 ready canary pods
    assert by["new"].replicas <= 10 and by["new"].replicas + by["old"].replicas <= 8 + 4 + 3
    assert plan.autoscaler is None  # held: its minimum would put the given-up pods back


def test_the_autoscaler_moves_to_the_new_revision_once_it_runs_the_live_count() -> None:
    st = status(0).model_copy(update={"stable_revision": "new", "canary_revision": None, "canary_weight": 0})
    st = st.model_copy(update={"history": [*st.history, st.history[0].model_copy(update={"revision": "new"})]})
    st = st.model_copy(update={"regions": [RegionStatus(name="a", replicas=10)]})
    plan = region_plan(SPEC, st, seen(new=(10, 10)), "a")
    (only,) = plan.revisions
    assert only.revision == "new" and only.autoscaled and only.replicas == 10
    assert plan.autoscaler == "new"


def test_the_first_deploy_asks_for_min_replicas_and_the_autoscaler_takes_it_from_there() -> None:
    st = status(0).model_copy(update={"canary_revision": None})
    first = region_plan(SPEC, st, seen(), "a")
    assert [(r.revision, r.replicas, r.autoscaled) for r in first.revisions] == [("old", 2, False)]
    assert first.autoscaler == "old"
    later = region_plan(SPEC, st, seen(old=(6, 6)), "a")
    assert [(r.replicas, r.autoscaled) for r in later.revisions] == [(6, True)]
    # At rest the region serves in full with its minimum ready: a scale-up under way is not a fault.
    assert needed(SPEC, st, seen(old=(6, 2)), "a") == 2


def advance_autoscaler(world: World, region: str, rev: str, count: int) -> None:
    """What an HPA does between two decisions: the Deployment's count, and pods for it."""
    pods = world.pods[region][rev]
    pods.desired = count
    del pods.started[count:]
    while len(pods.started) < count:
        pods.started.append(world.now)


def test_a_rollout_through_an_autoscaled_region_follows_the_autoscaler_and_rolls_back_without_a_dip() -> None:
    world = World(autoscaled_spec(), judge=lambda *_: "Successful")
    world.settle()
    old = revision(world.spec)
    advance_autoscaler(world, "a", old, 6)  # load rose before the rollout
    world.run_until(lambda w: w.ready("a", old) == 6)
    world.spec = autoscaled_spec(version="v2")
    world.generation += 1
    new = revision(world.spec)
    world.run_until(lambda w: w.status.step == 1 and w.ready("a", new) > 0)
    first = world.pods["a"][new].desired
    advance_autoscaler(world, "a", old, 12)  # the autoscaler doubles stable mid-step
    world.run_until(lambda w: w.ready("a", old) == 12 and w.pods["a"][new].desired > first, limit=50)
    assert world.status.canary_weight == 25
    least = world.ready("a", old) + world.ready("a", new)
    # The user aborts: stable goes back to the live count before the canary's pods are gone.
    world.command = ManualCommand("abort", "x")
    stable_ready = world.ready("a", old)
    for _ in range(60):
        world.step()
        assert world.ready("a", old) >= stable_ready  # stable never gives a pod up on the way back
        stable_ready = world.ready("a", old)
    assert world.status.phase == "RolledBack" and new not in world.pods["a"]
    # Stable alone now carries what both served (the canary's share included), and the autoscaler has it.
    assert world.ready("a", old) >= least
    assert world.decisions[-1].regions[0].autoscaler == old and world.decisions[-1].regions[0].revisions[0].autoscaled


def test_a_promoted_wave_gives_its_autoscaler_to_the_canary_once_stable_is_gone() -> None:
    st = status(100, wave=1, remembered=10)  # region a is in wave 0: promoted, the canary at 100%
    two_waves = SPEC.model_copy(update={"regions": [SPEC.regions[0], SPEC.regions[0].model_copy(update={"name": "b"})]})
    handing = region_plan(two_waves, st, seen(old=(2, 2), new=(10, 8)), "a")
    assert handing.autoscaler is None  # stable still there: Bellwether holds both counts
    alone = region_plan(two_waves, st, seen(new=(13, 13)), "a")
    (canary,) = alone.revisions
    assert canary.autoscaled and canary.replicas == 13  # the HPA scaled it past the 10 it was given
    assert alone.autoscaler == "new"
    assert live_replicas(two_waves, st, seen(new=(13, 13)), "a") == 13


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    moves=st.lists(st.tuples(st.integers(0, 40), st.integers(2, 20)), max_size=6),
    verdict=st.sampled_from(["Successful", "Failed"]),
)
def test_whatever_the_autoscaler_does_the_rollout_ends_and_bellwether_never_shrinks_a_serving_stable_mid_step(
    moves: list[tuple[int, int]], verdict: str
) -> None:
    """The HPA moves stable at random moments; the engine never lowers stable's count itself during a
    step (only the autoscaler does), never asks the canary for more than the surge room beside what is
    ready (ready canary pods apart), and the run always ends: promoted, or rolled back on a failure."""
    judged = [{"setWeight": 25}, {"analysis": {"duration": "1m"}}, {"setWeight": 50}]
    world = World(autoscaled_spec(steps=judged), judge=lambda *_: verdict, start_seconds=10.0)  # type: ignore[arg-type, return-value]
    world.settle()
    old = revision(world.spec)
    world.spec = autoscaled_spec(version="v2", steps=judged)
    world.generation += 1
    new = revision(world.spec)
    at = dict(moves)
    checked = 0
    for i in range(400):
        if i in at and old in world.pods.get("a", {}):
            advance_autoscaler(world, "a", old, at[i])
        before = world.pods["a"][old].desired if old in world.pods["a"] else None
        ready = world.ready("a", old) + world.ready("a", new)
        canary_ready = world.ready("a", new)
        decision = world.step()
        plan = decision.regions[0]
        by = {r.revision: r for r in plan.revisions}
        stepping = 0 < decision.status.canary_weight < 100 and decision.status.canary_revision == new
        if stepping and old in by and before is not None:
            assert by[old].autoscaled and by[old].replicas == before
            room = ready + -(-max(ready, 1) * 25 // 100) - before
            assert by[new].replicas <= max(canary_ready, room)
            checked += 1
        st_ = world.status
        if (
            st_.canary_revision is None
            and st_.progress.draining_revision is None
            and st_.phase in ("Healthy", "RolledBack")
        ):
            break
    assert checked > 0  # the canary did run beside an autoscaled stable
    assert world.status.phase in ("Healthy", "RolledBack")
    assert world.status.stable_revision == (new if verdict == "Successful" else old)
