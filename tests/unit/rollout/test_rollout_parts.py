"""The engine's parts a caller relies on directly: replica maths, analysis scheduling, requeue, conditions."""

from __future__ import annotations

import doctest
from datetime import datetime, timedelta
from typing import Any

import bellwether.rollout.replicas as replicas_module
from bellwether.api import Measurement, ModelDeploymentStatus, Progress
from bellwether.api.status import MAX_MEASUREMENTS_PER_SERIES
from bellwether.rollout import after_failure, analysis_due, decide
from bellwether.rollout.replicas import split
from bellwether.rollout.types import Observations
from bellwether.sim.engine_world import World
from support.engine import make_spec
from support.specs import revision

STEPS: list[dict[str, Any]] = [{"setWeight": 25}, {"analysis": {"duration": "2m"}}, {"setWeight": 50}]


def test_replica_maths_worked_examples_hold() -> None:
    result = doctest.testmod(replicas_module)
    assert result.attempted >= 10 and result.failed == 0


def test_max_surge_zero_never_raises_the_total() -> None:
    for replicas in range(0, 12):
        for weight in range(0, 101, 5):
            stable, canary = split(replicas, weight, "0")
            assert stable + canary == replicas
            assert canary >= (1 if weight and replicas else 0)


def test_analysis_is_due_every_interval_in_the_wave_regions_only() -> None:
    world = World(make_spec({"a": 2, "b": 2}, steps=STEPS))
    world.settle()
    assert analysis_due(world.spec, world.status, world.now) == []
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 1)
    started = datetime.fromisoformat(world.status.progress.step_started_at or "")
    # The first window is a whole interval of the step: nothing is measured at its very start.
    assert analysis_due(world.spec, world.status, started + timedelta(seconds=29)) == []
    world.now = started + timedelta(seconds=30)
    due = analysis_due(world.spec, world.status, world.now)
    assert [(r.region, r.canary_revision, r.stable_revision) for r in due] == [
        ("a", revision(world.spec), world.status.stable_revision)
    ]
    world.step()  # measured now
    assert analysis_due(world.spec, world.status, world.now + timedelta(seconds=10)) == []
    assert len(analysis_due(world.spec, world.status, world.now + timedelta(seconds=20))) == 1


def test_requeue_is_short_while_waiting_on_pods_and_the_interval_during_analysis() -> None:
    world = World(make_spec({"a": 2}, steps=STEPS))
    world.settle()
    assert world.decisions[-1].requeue_after >= 60
    world.change(version="v2")
    assert world.step().requeue_after <= 5
    world.run_until(lambda w: w.status.step == 1)
    assert world.decisions[-1].requeue_after == 30


def test_route_router_puts_the_step_weight_on_the_route_once_canary_pods_are_ready() -> None:
    world = World(make_spec({"a": 4}, steps=STEPS, router="gatewayAPI"))
    world.settle()
    world.change(version="v2")
    first = world.step()
    assert [(r.role, r.weight) for r in first.regions[0].revisions] == [("canary", 0), ("stable", 100)]
    world.run_until(lambda w: w.status.step == 1)
    plan = world.decisions[-1].regions[0]
    # 1 canary + 3 stable pods carry 25/75 (stable gives up the pod its ready canary replaced).
    assert [(r.role, r.replicas, r.weight) for r in plan.revisions] == [("canary", 1, 25), ("stable", 3, 75)]


def test_condition_transition_time_moves_only_when_the_status_flips() -> None:
    world = World(make_spec({"a": 2}, steps=STEPS))
    world.settle()
    available = next(c for c in world.status.conditions if c.type == "Available")
    for _ in range(5):
        world.step()
    again = next(c for c in world.status.conditions if c.type == "Available")
    assert again.status == "True" and again.last_transition_time == available.last_transition_time
    assert again.observed_generation == world.generation


def test_status_keeps_a_bounded_number_of_measurements_per_series() -> None:
    world = World(make_spec({"a": 2}, steps=[{"setWeight": 25}, {"analysis": {"duration": "60m"}}]))
    world.settle()
    world.change(version="v2")
    for _ in range(200):
        world.step()
    assert world.status.step == 1
    assert len(world.status.analysis) == MAX_MEASUREMENTS_PER_SERIES
    assert "analysis" in (world.status.message or "")


def test_the_decided_status_is_a_plain_frozen_status() -> None:
    world = World(make_spec({"a": 2}, steps=STEPS))
    status = world.step().status
    assert type(status) is ModelDeploymentStatus and type(status.progress) is Progress
    assert ModelDeploymentStatus.model_validate(status.model_dump()) == status


def test_decide_reads_no_clock_the_same_inputs_give_the_same_decision() -> None:
    world = World(make_spec({"a": 2, "b": 1}, steps=STEPS))
    world.settle()
    world.change(version="v2")
    obs = world.observe()
    assert decide(world.spec, world.status, obs, world.now) == decide(world.spec, world.status, obs, world.now)


def test_measurement_times_in_z_form_count_like_any_other() -> None:
    world = World(make_spec({"a": 2}, steps=STEPS))
    world.settle()
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 1)
    status = world.status
    for i in range(2):
        at = (world.now + timedelta(seconds=30 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        failed = Measurement(metric="error-rate", region="a", verdict="Failed", value=0.2, bound="<= 0.01", at=at)
        obs = Observations(world.generation, world.observe().regions, (failed,))
        status = decide(world.spec, status, obs, world.now + timedelta(seconds=30 * i)).status
    assert status.phase == "RolledBack"
    degraded = next(c for c in status.conditions if c.type == "Degraded")
    assert "measured 0.2, bound <= 0.01" in degraded.message


def test_a_cycle_that_cannot_decide_says_so_and_rolls_back_past_the_progress_deadline() -> None:
    world = World(make_spec({"a": 2}, steps=STEPS, progress_deadline="10m"))
    world.settle()
    world.change(version="v2")
    world.step()
    canary = world.status.canary_revision
    early = after_failure(world.spec, world.status, world.observe(), world.now, "ZeroDivisionError: x")
    degraded = next(c for c in early.status.conditions if c.type == "Degraded")
    assert (degraded.status, degraded.reason) == ("True", "CycleFailed") and "ZeroDivisionError" in degraded.message
    assert early.regions == () and early.status.canary_revision == canary  # nothing applied, nothing decided
    assert [e.reason for e in early.events] == ["CycleFailed"]
    late = after_failure(world.spec, world.status, world.observe(), world.now + timedelta(minutes=11), "boom")
    assert late.status.phase == "RolledBack" and late.status.canary_revision is None
    assert all(r.revision != canary for plan in late.regions for r in plan.revisions)
    assert "progressDeadline 10m exceeded" in (late.status.message or "")
