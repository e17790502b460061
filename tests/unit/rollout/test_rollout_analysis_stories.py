"""Analysis stories: warm-up, evidence, inconclusive pauses, bake without a live baseline, Degraded.

Each is driven through the pure test world and checks what a user would see: phases, conditions,
messages, events, and what the engine asks the measuring side for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bellwether.api.status import Verdict
from bellwether.api.units import parse_duration
from bellwether.rollout import analysis_due
from bellwether.rollout.types import AnalysisRequest, ManualCommand
from bellwether.sim.engine_world import WARMING, World
from support.engine import condition, deployed, events, make_spec, phase
from support.specs import revision

ONE_ANALYSIS: list[dict[str, Any]] = [{"setWeight": 50}, {"analysis": {"duration": "1m"}}]
NO_DATA = "no data for the canary: the query returned no series"


def no_data(_req: AnalysisRequest, _metric: str, _now: datetime) -> tuple[Verdict, str]:
    return "Inconclusive", NO_DATA


def at(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def test_warm_up_does_not_count_against_the_inconclusive_limit() -> None:
    # Two minutes of model loading, four inconclusive measurements tolerated: warm-up alone would be
    # eight windows per analysis step if it were measured.
    steps: list[dict[str, Any]] = [*ONE_ANALYSIS, {"setWeight": 75}, {"analysis": {"duration": "1m"}}]
    world = deployed(World(make_spec({"a": 2}, steps=steps, warmup_seconds=120)))
    world.change(version="v2")
    world.settle()
    assert phase(world) == "Healthy" and world.status.stable_revision == revision(world.spec)
    assert not any(d.status.phase == "Paused" for d in world.decisions)
    assert world.requests, "the canary was measured"
    assert not [m for m in world.measured if m.reason == WARMING], "no window overlapped warm-up"
    # A step cannot pass on time spent warming up: each analysis step lasted warm-up + duration.
    for step in (1, 3):
        during = [i for i, d in enumerate(world.decisions) if d.status.canary_revision and d.status.step == step]
        began = at(world.decisions[during[0]].status.progress.step_started_at)
        ended = at(world.decisions[during[-1] + 1].status.progress.step_started_at)
        assert (ended - began).total_seconds() >= 120 + 60


def test_the_first_window_is_asked_for_one_interval_after_warm_up() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS, warmup_seconds=120)))
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 1)
    began = at(world.status.progress.step_started_at)
    assert analysis_due(world.spec, world.status, began + timedelta(seconds=149)) == []
    (request,) = analysis_due(world.spec, world.status, began + timedelta(seconds=150))
    assert at(request.warmup_until) == began + timedelta(seconds=120)
    assert "warming up" in (world.status.message or "")


def test_a_canary_with_no_data_never_promotes_and_pauses_naming_what_lacked_evidence() -> None:
    # Every measurement inconclusive, fewer than the limit within the step's minute: it used to pass.
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS, analysis={"inconclusiveLimit": 4})))
    world.change(version="v2")
    world.judge = no_data
    world.run_until(lambda w: w.status.step == 1)
    began = at(world.status.progress.step_started_at)
    world.run_until(lambda w: w.now - began > timedelta(minutes=1, seconds=20))
    assert phase(world) == "Progressing" and world.status.step == 1, "the duration is over, the evidence is not"
    assert "duration over but no evidence" in (world.status.message or "")
    assert 1 < world.decisions[-1].requeue_after <= 30, "waiting for the next measurement, not spinning"
    world.run_until(lambda w: phase(w) == "Paused")
    assert all(d.status.step <= 1 and d.status.canary_weight <= 50 for d in world.decisions)
    assert world.status.stable_revision != revision(world.spec)
    status, reason, message = condition(world, "Progressing")
    assert (status, reason) == ("True", "InconclusiveAnalysis")
    assert "no evidence" in message and "error-rate in a" in message and NO_DATA in message
    assert "inconclusiveLimit 4" in message
    assert world.status.progress.paused_by_user is False
    assert world.status.progress.paused_reason == "InconclusiveAnalysis"
    assert condition(world, "Degraded")[0] == "False"
    assert len(events(world, "InconclusiveAnalysis")) == 1
    # Paused: nothing moves until someone acts, but the canary still serves, so it is still judged
    # (a failure would roll it back; see the background analysis stories).
    asked, where = len(world.requests), (world.status.wave, world.status.step, world.status.canary_weight)
    for _ in range(30):
        world.step()
    assert phase(world) == "Paused" and (world.status.wave, world.status.step, world.status.canary_weight) == where
    assert len(world.requests) > asked


def test_only_the_series_without_evidence_is_named() -> None:
    # Two regions in one wave, two metrics; the latency query returns nothing in b.
    spec = make_spec(
        {"a": 2, "b": 2},
        steps=ONE_ANALYSIS,
        waves=[["a", "b"]],
        metrics=["error-rate", "latency"],
        analysis={"inconclusiveLimit": 2, "onInconclusive": "rollback"},
    )
    world = deployed(World(spec))
    stable = world.status.stable_revision
    world.change(version="v2")

    def judge(req: AnalysisRequest, metric: str, _now: datetime) -> Verdict | tuple[Verdict, str]:
        return no_data(req, metric, _now) if (req.region, metric) == ("b", "latency") else "Successful"

    world.judge = judge
    world.settle()
    assert phase(world) == "RolledBack" and world.status.stable_revision == stable
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "AnalysisInconclusive")
    assert "no evidence" in message and "latency in b" in message
    assert "error-rate in" not in message and "latency in a" not in message


def test_a_step_past_its_duration_waits_for_evidence_then_passes() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS, analysis={"inconclusiveLimit": 4})))
    world.change(version="v2")
    verdicts: list[Verdict] = ["Inconclusive", "Inconclusive", "Inconclusive"]
    world.judge = lambda req, metric, now: verdicts.pop(0) if verdicts else "Successful"
    world.settle()
    assert phase(world) == "Healthy" and world.status.stable_revision == revision(world.spec)
    analysing = [d.status for d in world.decisions if d.status.canary_revision and d.status.step == 1]
    began = at(analysing[0].progress.step_started_at)
    passed = next(d.status for d in world.decisions if d.status.canary_revision and d.status.step == 2)
    assert (at(passed.progress.step_started_at) - began).total_seconds() >= 4 * 30, "passed on the 4th window"


def test_resume_after_an_inconclusive_pause_measures_again_from_zero() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS, analysis={"inconclusiveLimit": 1})))
    world.change(version="v2")
    world.judge = no_data
    world.run_until(lambda w: phase(w) == "Paused")
    assert world.status.progress.inconclusives == 2
    world.judge = lambda req, metric, now: "Successful"
    world.command = ManualCommand("resume", "r1")
    world.step()
    assert phase(world) == "Progressing" and world.status.progress.inconclusives == 0
    assert world.status.progress.paused_reason is None and world.status.step == 1
    asked = len(world.requests)
    world.settle()
    assert len(world.requests) > asked, "analysis continued"
    assert phase(world) == "Healthy" and world.status.stable_revision == revision(world.spec)


def test_a_paused_analysis_step_is_judged_once_an_interval_and_a_failure_rolls_it_back() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS, analysis={"inconclusiveLimit": 1})))
    world.change(version="v2")
    world.judge = no_data
    world.run_until(lambda w: phase(w) == "Paused")
    asked = len(world.requests)
    paused_at = world.now
    world.run_until(lambda w: (w.now - paused_at).total_seconds() >= 300)
    # Judged in the background: each window is recorded, so the next is asked an interval later,
    # not every cycle (30 s interval, 5 m paused: ten windows, not sixty).
    assert 8 <= len(world.requests) - asked <= 11
    assert phase(world) == "Paused"
    world.judge = lambda req, metric, now: "Failed"
    world.run_until(lambda w: phase(w) == "RolledBack", limit=30)
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "AnalysisFailed") and "outside an analysis step" in message


def test_a_region_where_the_canary_holds_every_serving_pod_is_judged_against_stables_last_values() -> None:
    # One replica, no surge: the canary's pod replaces stable's, whatever the weight asks.
    world = deployed(World(make_spec({"a": 1}, steps=ONE_ANALYSIS, max_surge="0")))
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 1 and bool(w.requests))
    assert [r.share for r in world.status.regions] == [100]
    assert {r.stable_revision for r in world.requests} == {None}


def test_a_persons_pause_reads_differently_from_an_inconclusive_one() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS)))
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 1)
    world.command = ManualCommand("pause", "p1")
    world.step()
    assert phase(world) == "Paused" and world.status.progress.paused_by_user is True
    assert world.status.progress.paused_reason is None
    assert condition(world, "Progressing")[1] == "Paused"


def test_bake_compares_with_stables_last_value_when_stable_has_no_pods() -> None:
    world = deployed(World(make_spec({"a": 2, "b": 2}, steps=ONE_ANALYSIS, bake_time="8m")))
    v1 = world.status.stable_revision
    world.stable_values = {"error-rate": 0.004}
    world.change(version="v2")
    world.settle()
    assert phase(world) == "Healthy" and world.status.stable_revision == revision(world.spec)
    canary = [r for r in world.requests if r.stable_revision is not None]
    baking = [r for r in world.requests if r.stable_revision is None]
    assert {r.stable_revision for r in canary} == {v1} and all(not r.reference for r in canary)
    # Sixteen bake windows per region: more than status keeps, yet the reference is never lost.
    assert len([r for r in baking if r.region == "a"]) >= 16
    assert all(r.canary_revision == revision(world.spec) for r in baking)
    assert all(dict(r.reference) == {"error-rate": 0.004} for r in baking)
    assert {m.baseline for m in world.status.analysis} == {0.004}


def test_bake_never_compares_with_a_value_from_an_earlier_rollout() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS, bake_time="1m")))
    world.stable_values = {"error-rate": 0.004}
    world.change(version="v2")
    world.settle()
    assert {dict(r.reference).get("error-rate") for r in world.requests if r.stable_revision is None} == {0.004}
    # v3's steps never measure stable, so its bake knows no stable value: 0.004 was v1's.
    world.spec = make_spec({"a": 2}, version="v3", steps=[{"setWeight": 50}], bake_time="1m")
    world.generation += 1
    asked = len(world.requests)
    world.settle()
    v3 = revision(world.spec)
    assert world.status.stable_revision == v3
    assert [dict(r.reference) for r in world.requests[asked:] if r.canary_revision == v3] == [{}] * 2


def test_a_bake_without_evidence_reverts_to_the_previous_revision() -> None:
    spec = make_spec(
        {"a": 2}, steps=ONE_ANALYSIS, bake_time="2m", analysis={"inconclusiveLimit": 3, "onInconclusive": "rollback"}
    )
    world = deployed(World(spec))
    v1 = world.status.stable_revision
    world.change(version="v2")
    world.run_until(lambda w: w.status.progress.bake_started_at is not None)
    world.judge = no_data
    world.settle()
    assert phase(world) == "RolledBack" and world.status.stable_revision == v1
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "BakeInconclusive")
    assert "no evidence" in message and "error-rate in a" in message
    assert world.pods["a"].keys() == {v1}


def test_an_inconclusive_bake_pauses_and_resumes() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS, bake_time="2m", analysis={"inconclusiveLimit": 1})))
    world.change(version="v2")
    world.run_until(lambda w: w.status.progress.bake_started_at is not None)
    world.judge = no_data
    world.run_until(lambda w: phase(w) == "Paused")
    assert condition(world, "Progressing")[1] == "InconclusiveAnalysis"
    assert "baking" in (world.status.message or "") and "no evidence" in (world.status.message or "")
    world.judge = lambda req, metric, now: "Successful"
    world.command = ManualCommand("resume", "r1")
    world.settle()
    assert phase(world) == "Healthy" and world.status.stable_revision == revision(world.spec)
    assert events(world, "BakeSucceeded")


def test_a_stable_revision_that_loses_replicas_is_degraded_until_they_are_back() -> None:
    world = deployed(World(make_spec({"a": 2, "b": 2}, steps=ONE_ANALYSIS)))
    rev = world.status.stable_revision
    assert rev is not None
    world.pods["a"][rev].started.pop()  # a node died; Kubernetes starts a replacement
    world.step()
    assert phase(world) == "Degraded"
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "ReplicasUnavailable") and f"a has 1/2 ready replicas of {rev}" in message
    assert condition(world, "Available")[0] == "False"
    assert [r.phase for r in world.status.regions] == ["Progressing", "Healthy"]
    world.settle()
    assert phase(world) == "Healthy" and condition(world, "Degraded")[:2] == ("False", "Healthy")


def test_an_unreachable_region_outside_a_rollout_is_degraded_and_named() -> None:
    world = deployed(World(make_spec({"a": 2, "b": 2}, steps=ONE_ANALYSIS)))
    world.unreachable.add("b")
    world.step()
    assert phase(world) == "Degraded"
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "RegionUnreachable") and "b unreachable (connection refused)" in message
    assert "connection refused" in (world.status.message or "")
    world.unreachable.clear()
    world.step()
    assert phase(world) == "Healthy"


def test_deploying_and_scaling_are_progressing_not_degraded() -> None:
    world = World(make_spec({"a": 2}, steps=ONE_ANALYSIS))
    world.settle()
    world.change(replicas={"a": 4})
    world.settle()
    assert phase(world) == "Healthy"
    assert not any(d.status.phase == "Degraded" for d in world.decisions)


def test_a_resume_after_the_duration_ran_out_needs_the_full_duration_of_evidence_again() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS, analysis={"inconclusiveLimit": 1})))
    world.change(version="v2")
    world.judge = no_data
    world.run_until(lambda w: phase(w) == "Paused")
    world.run_until(lambda w: w.now > at(w.status.progress.step_started_at) + timedelta(minutes=10), limit=200)
    world.judge = lambda req, metric, now: "Successful"
    world.command = ManualCommand("resume", "r1")
    resumed = world.now
    world.run_until(lambda w: w.status.step != 1 or w.status.canary_revision is None)
    passed = world.now - timedelta(seconds=world.tick)  # the decision that moved on
    duration = ONE_ANALYSIS[1]["analysis"]["duration"]
    assert (passed - resumed).total_seconds() >= parse_duration(duration), "passed on less than a full analysis"


def test_a_canary_is_judged_while_it_serves_outside_analysis_steps_and_rolled_back_on_failure() -> None:
    steps = [{"setWeight": 50}, {"pause": {}}, {"analysis": {"duration": "1m"}}]
    world = deployed(World(make_spec({"a": 2}, steps=steps, analysis={"failureLimit": 1})))
    stable = world.status.stable_revision
    world.change(version="v2")
    world.run_until(lambda w: phase(w) == "Paused")  # the pause step: waiting for a person
    world.judge = lambda req, metric, now: "Failed"
    world.run_until(lambda w: phase(w) == "RolledBack", limit=20)
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "AnalysisFailed") and "outside an analysis step" in message
    assert world.status.stable_revision == stable


def test_a_promoted_wave_is_judged_until_the_rollout_ends() -> None:
    spec = make_spec({"a": 2, "b": 2}, steps=ONE_ANALYSIS, waves=[["a"], ["b"]], analysis={"failureLimit": 0})
    world = deployed(World(spec))
    world.change(version="v2")
    world.run_until(lambda w: w.status.wave == 1)
    world.judge = lambda req, metric, now: "Failed" if req.region == "a" else "Successful"
    world.run_until(lambda w: phase(w) == "RolledBack", limit=30)
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "AnalysisFailed") and "in a " in message and "promoted wave" in message
    judged = [r for r in world.requests if r.region == "a" and r.canary_revision == revision(world.spec)]
    assert judged and judged[-1].stable_revision is None, "alone in a: against stable's last values"


def test_min_duration_passes_a_step_early_once_every_metric_is_conclusively_within_bounds() -> None:
    steps = [{"setWeight": 50}, {"analysis": {"duration": "10m", "minDuration": "1m"}}]
    world = deployed(World(make_spec({"a": 2}, steps=steps)))
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 1)
    began = at(world.status.progress.step_started_at)
    world.run_until(lambda w: w.status.step != 1 or w.status.canary_revision is None)
    took = (world.now - began).total_seconds()
    assert 60 <= took <= 60 + 3 * 30, f"{took}s: minDuration 1m, measurements every 30s"


def test_pending_measurements_never_pause_but_count_once_the_analysis_ran_twice_its_duration() -> None:
    world = deployed(World(make_spec({"a": 2}, steps=ONE_ANALYSIS, analysis={"inconclusiveLimit": 0})))
    world.change(version="v2")
    world.judge = lambda req, metric, now: ("Inconclusive", "too few requests: 12 of 400 needed", "pending")
    world.run_until(lambda w: w.status.step == 1)
    began = at(world.status.progress.step_started_at)
    world.run_until(lambda w: w.now - began > timedelta(seconds=90))
    assert phase(world) == "Progressing" and world.status.progress.inconclusives == 0, "pending is not an error"
    world.run_until(lambda w: phase(w) == "Paused", limit=20)
    assert world.now - began >= timedelta(minutes=2), "counted only once the analysis ran twice its duration"
    assert "too few requests" in (world.status.message or "")
