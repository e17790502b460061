"""Traffic and capacity as the engine plans them: shares that are true, a surge that is a cap, and a
rolled-back revision that leaves traffic at once."""

from __future__ import annotations

from bellwether.rollout.replicas import surge_count
from bellwether.rollout.types import RegionPlan, RevisionPlan
from bellwether.sim.engine_world import World
from support.engine import deployed, make_spec
from support.specs import revision

STEPS = [{"setWeight": 10}, {"analysis": {"duration": "1m"}}, {"setWeight": 50}, {"analysis": {"duration": "1m"}}]
WAVES = [["us-east"], ["eu-west"]]


def plan_of(world: World, region: str) -> RegionPlan:
    return next(p for p in world.decisions[-1].regions if p.region == region)


def rev_in(plan: RegionPlan, revision: str | None) -> RevisionPlan | None:
    return next((r for r in plan.revisions if r.revision == revision), None)


def test_status_reports_the_share_the_pods_give_next_to_the_requested_weight() -> None:
    world = deployed(World(make_spec({"us-east": 4, "eu-west": 2}, steps=STEPS, waves=[["us-east", "eu-west"]])))
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 1 and w.ready("eu-west", revision(w.spec)) == 1)
    world.step()
    regions = {r.name: r for r in world.status.regions}
    # 10% cannot be had with 4 or 2 replicas: 4 stable + 1 canary serve 20%, 2 + 1 serve 33%.
    assert (regions["us-east"].weight, regions["us-east"].share) == (10, 20)
    assert (regions["eu-west"].weight, regions["eu-west"].share) == (10, 33)
    assert world.status.canary_weight == 10 and world.status.canary_share == "20-33%"
    canary = rev_in(plan_of(world, "us-east"), revision(world.spec))
    assert canary is not None and (canary.serving, canary.weight) == (1, 20)


def test_pods_never_exceed_replicas_plus_surge_at_any_step() -> None:
    for surge in ("1", "25%", "50%"):
        world = deployed(World(make_spec({"us-east": 4}, steps=STEPS, max_surge=surge)))
        world.change(version="v2")
        world.settle()
        cap = 4 + surge_count(surge, 4)
        for decision in world.decisions:
            assert sum(r.replicas for r in decision.regions[0].revisions) <= cap, surge


def test_a_rollback_takes_the_bad_revision_out_of_traffic_at_once_even_in_promoted_waves() -> None:
    world = deployed(World(make_spec({"us-east": 2, "eu-west": 2}, steps=STEPS, waves=WAVES)))
    stable = world.status.stable_revision
    world.change(version="v2")
    bad = revision(world.spec)
    world.judge = lambda req, metric, now: "Failed" if req.region == "eu-west" else "Successful"
    world.run_until(lambda w: w.status.phase == "RolledBack")
    for region in ("us-east", "eu-west"):
        plan = plan_of(world, region)
        assert rev_in(plan, bad) is None, f"{bad} still planned in {region}"
        kept = rev_in(plan, stable)
        assert kept is not None and (kept.replicas, kept.weight, kept.serving) == (2, 100, None)
    # us-east had been promoted: its stable pods are starting again, and status says so.
    east = next(r for r in world.status.regions if r.name == "us-east")
    assert east.replicas == 2 and (east.stable_ready or 0) < 2 and east.share == 0


def test_when_stable_ready_keeps_the_bad_revision_covering_what_stable_lacks() -> None:
    spec = make_spec({"us-east": 2, "eu-west": 2}, steps=STEPS, waves=WAVES)
    spec = spec.model_copy(update={"rollout": spec.rollout.model_copy(update={"rollback_traffic": "whenStableReady"})})
    world = deployed(World(spec))
    stable = world.status.stable_revision
    world.change(version="v2")
    world.spec = world.spec.model_copy(update={"rollout": spec.rollout})
    bad = revision(world.spec)
    world.judge = lambda req, metric, now: "Failed" if req.region == "eu-west" else "Successful"
    world.run_until(lambda w: w.status.phase == "RolledBack")
    east = plan_of(world, "us-east")
    covering = rev_in(east, bad)
    # Stable has no ready pod in promoted us-east yet: the bad revision serves there until it has.
    assert covering is not None and covering.serving == 2 and covering.weight == 100
    assert sum(r.replicas for r in east.revisions) <= 2 + surge_count("25%", 2)
    world.settle()
    assert world.pods["us-east"].keys() == {stable} and world.ready("us-east", stable) == 2


def test_a_revision_replaced_mid_rollout_keeps_serving_until_stable_is_back() -> None:
    world = deployed(World(make_spec({"us-east": 2, "eu-west": 2}, steps=STEPS, waves=WAVES)))
    world.change(version="v2")
    v2 = revision(world.spec)
    world.run_until(lambda w: w.status.wave == 1)
    world.change(version="v3")
    world.step()
    east = plan_of(world, "us-east")
    # v2 had all of promoted us-east; it is not known bad, so it serves until stable's pods are ready.
    v2_plan = rev_in(east, v2)
    assert v2_plan is not None and v2_plan.weight > 0
    assert sum(r.replicas for r in east.revisions) <= 3
    world.settle()
    assert world.status.stable_revision == revision(world.spec)
