"""Properties over random specs, verdict sequences and fault points (abort, spec change, outage)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bellwether.api import ModelDeploymentStatus
from bellwether.api.status import Verdict
from bellwether.rollout.clock import parse
from bellwether.rollout.replicas import surge_count
from bellwether.rollout.types import AnalysisRequest, ManualCommand
from bellwether.sim.engine_world import WARMING, World
from support.engine import make_spec

MAX_DECISIONS = 600


@st.composite
def steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    weights = sorted(draw(st.sets(st.integers(1, 100), min_size=1, max_size=3)))
    out: list[dict[str, Any]] = []
    for w in weights:
        out.append({"setWeight": w})
        kind = draw(st.sampled_from(["analysis", "pause", "none"]))
        if kind == "analysis":
            out.append({"analysis": {"duration": draw(st.sampled_from(["30s", "1m"]))}})
        elif kind == "pause":
            out.append({"pause": {"duration": "20s"}})
    return out


scenario = st.fixed_dictionaries(
    {
        "replicas": st.lists(st.integers(1, 5), min_size=1, max_size=3),
        "steps": steps(),
        "max_surge": st.sampled_from(["0", "1", "25%"]),
        "bake": st.sampled_from(["0s", "1m"]),
        "warmup": st.sampled_from([0, 40]),
        "verdicts": st.lists(st.sampled_from(["Successful", "Successful", "Failed", "Inconclusive"]), max_size=40),
        "abort_at": st.none() | st.integers(0, 40),
        "change_at": st.none() | st.integers(0, 40),
        "outage": st.none() | st.tuples(st.integers(0, 30), st.integers(1, 10)),
    }
)


def assert_passed_only_on_evidence(world: World, previous: ModelDeploymentStatus) -> None:
    """An analysis step left by itself (no command in these runs but abort) had a Successful
    measurement of every metric in every region of its wave since the step began."""
    now, steps = world.status, world.spec.rollout.steps
    canary = previous.canary_revision
    if canary is None or previous.step >= len(steps) or steps[previous.step].analysis is None:
        return
    moved_on = now.canary_revision == canary and (now.wave, now.step) != (previous.wave, previous.step)
    if not (moved_on or (now.canary_revision is None and now.stable_revision == canary)):
        return
    began = parse(previous.progress.step_started_at or "")
    seen = {(m.metric, m.region) for m in world.measured if m.verdict == "Successful" and parse(m.at) >= began}
    assert world.spec.analysis is not None
    wave = world.spec.waves()[previous.wave]
    assert {(m.name, r) for m in world.spec.analysis.metrics for r in wave} <= seen, "passed without evidence"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario)
def test_every_rollout_ends_healthy_or_rolled_back_and_never_runs_short(s: dict[str, Any]) -> None:
    names = ["r0", "r1", "r2"][: len(s["replicas"])]
    replicas = dict(zip(names, s["replicas"], strict=True))
    spec = make_spec(
        replicas,
        steps=s["steps"],
        max_surge=s["max_surge"],
        bake_time=s["bake"],
        analysis={"onInconclusive": "rollback", "inconclusiveLimit": 2},
        warmup_seconds=s["warmup"],
    )
    verdicts: list[Verdict] = list(s["verdicts"])

    def judge(_req: AnalysisRequest, _metric: str, _now: datetime) -> Verdict:
        return verdicts.pop(0) if verdicts else "Successful"

    gpu_pool = {n: r for n, r in replicas.items()} if s["max_surge"] == "0" else {}
    world = World(spec, capacity=gpu_pool)
    world.settle()
    world.change(version="v2")
    world.judge = judge
    world.check_replay = True
    stable = world.status.stable_revision
    rolled_back = False
    for i in range(MAX_DECISIONS):
        if s["abort_at"] == i:
            world.command = ManualCommand("abort", "abort-1")
        if s["change_at"] == i:
            world.change(version="v3")  # a new spec mid-rollout (or after it ended)
        outage = s["outage"]
        world.unreachable = {names[-1]} if outage and outage[0] <= i < outage[0] + outage[1] else set()
        before = {n: set(world.pods[n]) for n in names}
        previous = world.status
        world.step()
        assert_passed_only_on_evidence(world, previous)
        decision = world.decisions[-1]
        rolled_back = rolled_back or world.status.progress.rolled_back_revision is not None
        bad = world.status.progress.rolled_back_revision
        for name, want in replicas.items():
            pods = world.pods[name]
            total_ready = sum(world.ready(name, rev) for rev in pods)
            cap = want + surge_count(s["max_surge"], want)
            if name not in world.unreachable:
                assert sum(p.desired for p in pods.values()) <= cap, f"{name}: more than {cap} pods at decision {i}"
            plan = next(p for p in decision.regions if p.region == name)
            if bad is not None:
                # A rolled-back revision leaves traffic at once, in every region it reached.
                assert all(r.weight == 0 and r.serving in (0, None) for r in plan.revisions if r.revision == bad)
                assert all(r.serving != 0 or r.weight == 0 for r in plan.revisions)
            if s["max_surge"] != "0" and not rolled_back:
                # Until something is rolled back (which takes the bad revision's pods away at once, even
                # where stable's are still starting), ready pods never fall below the region's replicas.
                assert total_ready >= want, f"{name}: {total_ready} ready < {want} at decision {i}"
                if stable in before[name] and stable not in pods:
                    assert total_ready >= want, "stable removed before its replacement was ready"
        quiet = world.status.progress.draining_revision is None and world.status.progress.bake_started_at is None
        if quiet and world.status.phase in ("Healthy", "RolledBack") and not world.unreachable:
            break
    else:
        raise AssertionError(f"not finished: {world.status.phase} {world.status.message}")
    assert not [m for m in world.measured if m.reason == WARMING], "a window overlapped warm-up"
    served = world.status.stable_revision
    assert served is not None
    for name, want in replicas.items():
        assert world.pods[name].keys() == {served}
        assert world.ready(name, served) == want
