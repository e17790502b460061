"""Rollout stories, each driven through the pure test world: what a user would see happen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bellwether.api.status import Verdict
from bellwether.rollout import decide
from bellwether.rollout.types import AnalysisRequest, ManualCommand
from bellwether.sim.engine_world import World
from support.engine import condition, deployed, make_spec, phase
from support.specs import revision

STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"analysis": {"duration": "1m"}},
    {"setWeight": 50},
    {"analysis": {"duration": "1m"}},
]


def test_first_revision_goes_straight_to_stable_everywhere() -> None:
    world = World(make_spec({"us-east": 2, "eu-west": 3}, steps=STEPS))
    first = world.step()
    assert {p.region: [(r.role, r.replicas, r.weight) for r in p.revisions] for p in first.regions} == {
        "us-east": [("stable", 2, 100)],
        "eu-west": [("stable", 3, 100)],
    }
    deployed(world)
    assert world.status.region_summary == "2/2"
    assert world.status.canary_revision is None
    assert world.status.history[0].revision == revision(world.spec)


def test_single_region_promote() -> None:
    world = deployed(World(make_spec({"us-east": 4}, steps=STEPS)))
    old = world.status.stable_revision
    world.change(version="v2")
    world.settle()
    assert phase(world) == "Healthy"
    assert world.status.stable_revision == revision(world.spec) != old
    assert world.pods["us-east"].keys() == {revision(world.spec)}
    weights = [d.status.canary_weight for d in world.decisions if d.status.canary_revision]
    assert sorted(set(weights)) == [25, 50, 100]
    assert [h.model for h in world.status.history] == ["v2", "v1"]
    assert any(e.reason == "Promoted" for d in world.decisions for e in d.events)


def test_rollback_at_step_3_reports_metric_region_value_and_bound() -> None:
    world = deployed(World(make_spec({"us-east": 4}, steps=[*STEPS, {"analysis": {"duration": "1m"}}])))
    stable = world.status.stable_revision
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 3)

    def judge(req: AnalysisRequest, _metric: str, _now: datetime) -> Verdict:
        return "Failed"

    world.judge = judge
    world.settle()
    assert phase(world) == "RolledBack"
    assert world.status.stable_revision == stable
    assert world.pods["us-east"].keys() == {stable}
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "AnalysisFailed")
    assert "error-rate" in message and "us-east" in message
    warnings = [e for d in world.decisions for e in d.events if e.reason == "RolledBack"]
    assert len(warnings) == 1 and warnings[0].type == "Warning"


def test_a_rolled_back_revision_is_not_retried_until_asked() -> None:
    world = deployed(World(make_spec({"us-east": 2}, steps=STEPS)))
    world.change(version="v2")
    world.judge = lambda req, metric, now: "Failed"
    world.settle()
    assert phase(world) == "RolledBack"
    for _ in range(30):
        world.step()
    assert world.status.canary_revision is None and phase(world) == "RolledBack"
    world.judge = lambda req, metric, now: "Successful"
    world.command = ManualCommand("retry", "c1")
    world.settle()
    assert phase(world) == "Healthy"
    assert world.status.stable_revision == revision(world.spec)


def test_three_regions_in_two_waves_failure_in_wave_2_reverts_wave_1() -> None:
    spec = make_spec({"us-east": 2, "eu-west": 2, "ap-south": 2}, steps=STEPS)
    world = deployed(World(spec))
    stable = world.status.stable_revision
    world.change(version="v2")
    world.judge = lambda req, metric, now: "Failed" if req.region == "ap-south" else "Successful"
    world.run_until(lambda w: w.status.wave == 1)
    canary = revision(world.spec)
    assert world.pods["us-east"].keys() >= {canary}
    assert world.status.regions[0].phase == "Promoted"
    world.settle()
    assert phase(world) == "RolledBack"
    for region in ("us-east", "eu-west", "ap-south"):
        assert world.pods[region].keys() == {stable}
        assert world.ready(region, stable) == 2
    assert "ap-south" in condition(world, "Degraded")[2]


def test_regions_of_a_wave_progress_together() -> None:
    world = deployed(World(make_spec({"a": 2, "b": 2}, waves=[["a", "b"]], steps=STEPS)))
    world.change(version="v2")
    world.capacity = {"b": 2}  # b's pool is full: its canary cannot start (maxSurge 25% of 2 = 1)
    for _ in range(20):
        world.step()
    assert world.status.step == 0, "wave must wait for region b"
    assert "b" in (world.status.message or "")


def test_max_surge_0_on_a_full_gpu_pool_never_exceeds_the_pool() -> None:
    world = deployed(World(make_spec({"us-east": 4}, steps=STEPS, max_surge="0"), capacity={"us-east": 4}))
    world.change(version="v2")
    stable = world.status.stable_revision
    seen_totals = []
    for _ in range(200):
        world.step()
        seen_totals.append(sum(p.desired for p in world.pods["us-east"].values()))
        if phase(world) == "Healthy":
            break
    assert phase(world) == "Healthy" and world.status.stable_revision != stable
    assert max(seen_totals) == 4


def test_no_free_gpu_rolls_back_within_two_cycles_naming_the_schedulers_reason() -> None:
    world = deployed(World(make_spec({"us-east": 4}, steps=STEPS, progress_deadline="10m"), capacity={"us-east": 4}))
    world.change(version="v2")
    started = world.now
    world.settle()
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "Unschedulable")
    assert "unschedulable" in message and "nvidia.com/gpu" in message
    assert (world.now - started).total_seconds() <= 3 * world.tick, "waited past two cycles"
    assert world.ready("us-east", world.status.stable_revision) == 4


def test_with_on_unschedulable_wait_no_free_gpu_rolls_back_at_the_progress_deadline() -> None:
    spec = make_spec({"us-east": 4}, steps=STEPS, progress_deadline="2m")
    spec = spec.model_copy(update={"rollout": spec.rollout.model_copy(update={"on_unschedulable": "wait"})})
    world = deployed(World(spec, capacity={"us-east": 4}))
    world.change(version="v2")
    started = world.now
    world.settle()
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "ProgressDeadlineExceeded")
    assert "unschedulable" in message and "nvidia.com/gpu" in message
    assert (world.now - started).total_seconds() >= 120


def test_never_ready_pods_roll_back_within_two_cycles_with_the_pod_problem() -> None:
    world = deployed(World(make_spec({"us-east": 4}, steps=STEPS, progress_deadline="10m")))
    world.change(version="v2")
    world.never_ready.add(revision(world.spec))
    started = world.now
    world.settle()
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "PodsFailing") and "ImagePullBackOff" in message
    assert (world.now - started).total_seconds() <= 3 * world.tick


def test_pause_until_promote() -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}]
    world = deployed(World(make_spec({"us-east": 4}, steps=steps)))
    world.change(version="v2")
    world.run_until(lambda w: phase(w) == "Paused")
    for _ in range(50):
        world.step()
    assert phase(world) == "Paused" and world.status.step == 1
    world.command = ManualCommand("promote", "p1")
    world.step()
    # Replaying the same command id changes nothing.
    world.command = ManualCommand("promote", "p1")
    world.step()
    assert world.status.step == 2
    world.settle()
    assert phase(world) == "Healthy"


def test_abort_returns_every_region_to_stable() -> None:
    world = deployed(World(make_spec({"a": 2, "b": 2}, steps=STEPS)))
    stable = world.status.stable_revision
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 1)
    world.command = ManualCommand("abort", "x")
    world.settle()
    assert phase(world) == "RolledBack"
    assert condition(world, "Degraded")[1] == "Aborted"
    assert all(world.pods[r].keys() == {stable} for r in ("a", "b"))


def test_inconclusive_past_the_limit_pauses_or_rolls_back() -> None:
    for on, want in (("pause", "Paused"), ("rollback", "RolledBack")):
        spec = make_spec({"a": 2}, steps=STEPS, analysis={"inconclusiveLimit": 1, "onInconclusive": on})
        world = deployed(World(spec))
        world.change(version="v2")
        world.judge = lambda req, metric, now: "Inconclusive"
        world.run_until(lambda w: phase(w) in ("Paused", "RolledBack"))
        assert phase(world) == want


def test_bake_failure_reverts_to_the_previous_revision_from_history() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=STEPS, bake_time="5m")))
    v1 = world.status.stable_revision
    world.change(version="v2")
    world.run_until(lambda w: w.status.progress.bake_started_at is not None)
    assert world.status.stable_revision == revision(world.spec)
    world.judge = lambda req, metric, now: "Failed"
    world.settle()
    assert phase(world) == "RolledBack"
    assert world.status.stable_revision == v1
    assert world.pods["a"].keys() == {v1} and world.ready("a", v1) == 2
    assert condition(world, "Degraded")[1] == "BakeFailed"


def test_bake_success_ends_healthy() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=STEPS, bake_time="2m")))
    world.change(version="v2")
    world.settle()
    assert phase(world) == "Healthy" and world.status.progress.bake_started_at is None


def test_replicas_only_change_just_scales() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=STEPS)))
    rev = world.status.stable_revision
    world.change(replicas={"a": 5})
    world.settle()
    assert world.status.stable_revision == rev and world.ready("a", rev) == 5
    assert not any(e.reason == "RolloutStarted" for d in world.decisions for e in d.events)


def test_spec_change_mid_rollout_starts_a_new_canary_from_stable() -> None:
    world = deployed(World(make_spec({"a": 4}, steps=STEPS)))
    v1 = world.status.stable_revision
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 2)
    world.change(version="v3")
    world.step()
    assert world.status.canary_revision == revision(world.spec) and world.status.step == 0
    world.settle()
    assert world.status.stable_revision == revision(world.spec)
    assert [h.model for h in world.status.history][:2] == ["v3", "v1"] and v1 in {
        h.revision for h in world.status.history
    }


def test_unreachable_region_blocks_progress_and_is_reported() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=STEPS)))
    world.change(version="v2")
    world.unreachable.add("a")
    for _ in range(20):
        world.step()
    assert world.status.step == 0
    assert world.status.regions[0].phase == "Unreachable"
    assert "unreachable" in (world.status.message or "") and "connection refused" in (world.status.message or "")
    world.unreachable.clear()
    world.settle()
    assert phase(world) == "Healthy"


def test_a_region_unreachable_past_region_timeout_fails_the_rollout() -> None:
    world = deployed(World(make_spec({"a": 2, "b": 2}, steps=STEPS, waves=[["a", "b"]])))
    world.change(version="v2")
    world.step()
    world.unreachable.add("b")
    lost_at = world.now
    world.run_until(lambda w: phase(w) == "RolledBack", limit=200)
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "RegionUnreachable") and "regionTimeout 10m" in message and "b (" in message
    assert 600 <= (world.now - lost_at).total_seconds() <= 600 + 2 * world.tick
    world.unreachable.clear()
    world.settle()  # back: the rollback reaches b too
    assert world.pods["b"].keys() == {world.status.stable_revision}


def test_restart_at_every_step_same_inputs_same_decision_and_replay_changes_nothing() -> None:
    world = deployed(World(make_spec({"a": 2, "b": 3}, steps=[*STEPS, {"pause": {"duration": "30s"}}])))
    world.change(version="v2")
    for _ in range(120):
        before = world.status
        obs = world.observe(world.measure())
        first = decide(world.spec, before, obs, world.now)
        assert decide(world.spec, before, obs, world.now) == first
        replay = decide(world.spec, first.status, obs, world.now)
        assert replay.regions == first.regions
        assert replay.status.model_dump(exclude={"conditions"}) == first.status.model_dump(exclude={"conditions"})
        world.step()
        if phase(world) == "Healthy":
            break
    assert phase(world) == "Healthy"


def test_a_region_that_cannot_be_seen_is_unknown_not_short() -> None:
    world = deployed(World(make_spec({"a": 2, "b": 2}, steps=STEPS, waves=[["a", "b"]])))
    world.unreachable.add("b")
    world.step()
    b = next(r for r in world.status.regions if r.name == "b")
    assert b.stable_ready is None and b.canary_ready is None and b.phase == "Unreachable"
    status, reason, message = condition(world, "Available")
    assert (status, reason) == ("Unknown", "RegionUnreachable") and "b" in message
