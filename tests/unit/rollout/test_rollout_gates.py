"""Gates at each point of a rollout, through the pure test world: proceed, hold, fail, time out."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from bellwether.api.hooks import GateStatus
from bellwether.api.status import ModelDeploymentStatus
from bellwether.rollout import gates_due
from bellwether.rollout.types import GateOutcome, GateRequest, ManualCommand
from bellwether.sim.engine_world import T0, World
from support.engine import condition, deployed, events, make_spec, phase
from support.specs import revision

STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"analysis": {"duration": "1m"}}]


def gate(type_: str, **policy: str) -> dict[str, Any]:
    return {"name": f"{type_.lower()}-check", "type": type_, "webhook": {"url": "http://gate/check"}, **policy}


def world_with(*gates: dict[str, Any], regions: dict[str, int] | None = None, waves: Any = None) -> World:
    spec = make_spec(regions or {"us-east": 2}, steps=STEPS, gates=list(gates), waves=waves)
    world = deployed(World(spec))
    world.change(version="v2")
    return world


def answering(code: int | None, outcome: GateOutcome | None = None) -> Any:
    def keeper(_req: GateRequest, _now: datetime) -> tuple[GateOutcome, int | None]:
        return outcome or ("passed" if code is not None and code < 300 else "failed"), code

    return keeper


def canary_pods(world: World) -> int:
    canary = world.status.canary_revision
    return sum(len(r.get(canary or "", _Empty).started) for r in world.pods.values())


class _Empty:
    started: list[datetime] = []


def test_a_passing_pre_rollout_gate_is_asked_once_before_the_canary_gets_pods() -> None:
    world = world_with(gate("preRollout"))
    target = revision(world.spec)
    world.settle()
    assert phase(world) == "Healthy" and world.status.stable_revision == target
    asked = [r for _, r in world.gate_requests]
    assert [(r.type, r.revision, r.attempt) for r in asked] == [("preRollout", target, 1)]
    first_canary_pods = next(
        i
        for i, d in enumerate(world.decisions)
        if any(p.role == "canary" and p.replicas for r in d.regions for p in r.revisions)
    )
    passed_at = next(i for i, d in enumerate(world.decisions) if any(e.reason == "GatePassed" for e in d.events))
    assert passed_at <= first_canary_pods
    assert [e.phase for e in world.status.gates] == ["Passed"]


def test_a_pre_rollout_gate_answering_503_holds_the_canary_without_pods_and_is_asked_every_interval() -> None:
    world = world_with(gate("preRollout", interval="30s"))
    world.gatekeeper = answering(503)
    for _ in range(12):  # 120 s of 10 s decisions
        world.step()
    assert phase(world) == "Paused"
    assert canary_pods(world) == 0
    status, reason, message = condition(world, "Progressing")
    assert (status, reason) == ("True", "GateHeld")
    assert "preRollout gate prerollout-check holds: HTTP 503" in message
    times = [at for at, _ in world.gate_requests]
    assert len(times) >= 3
    assert all(b - a >= timedelta(seconds=30) for a, b in itertools.pairwise(times))
    assert len(events(world, "GateHeld")) == 1  # one Event while the answer stays the same
    world.gatekeeper = answering(200)
    world.settle()
    assert phase(world) == "Healthy" and world.status.stable_revision == revision(world.spec)


@pytest.mark.parametrize("kind", ["failure", "timeout"])
def test_a_pre_rollout_gate_with_the_fail_policy_rolls_the_canary_back(kind: str) -> None:
    if kind == "failure":
        world = world_with(gate("preRollout", onFailure="fail"))
        world.gatekeeper = answering(403)
    else:
        world = world_with(gate("preRollout", onTimeout="fail"))
        world.gatekeeper = answering(None, "timeout")
    stable = world.status.stable_revision
    world.settle()
    assert phase(world) == "RolledBack" and world.status.stable_revision == stable
    status, reason, message = condition(world, "Degraded")
    assert (status, reason) == ("True", "GateFailed")
    assert "preRollout gate prerollout-check failed" in message
    assert ("HTTP 403" in message) == (kind == "failure")
    assert canary_pods(world) == 0


def test_a_timeout_follows_on_timeout_not_on_failure() -> None:
    world = world_with(gate("preRollout", onFailure="fail", onTimeout="hold"))
    world.gatekeeper = answering(None, "timeout")
    for _ in range(6):
        world.step()
    assert phase(world) == "Paused" and world.status.gates[0].phase == "Held"


def test_confirm_promotion_is_asked_before_each_wave_is_promoted_with_the_canary_at_100_percent() -> None:
    world = world_with(gate("confirmPromotion"), regions={"us-east": 2, "eu-west": 2})
    held: list[int] = []

    def keeper(req: GateRequest, _now: datetime) -> tuple[GateOutcome, int | None]:
        if len(held) < 2 and req.wave == 0:
            held.append(req.wave)
            return "failed", 409
        return "passed", 200

    world.gatekeeper = keeper
    world.settle()
    assert phase(world) == "Healthy" and world.status.stable_revision == revision(world.spec)
    asked = [(r.wave, r.attempt) for _, r in world.gate_requests]
    assert asked == [(0, 1), (0, 2), (0, 3), (1, 1)]
    held_decisions = [d for d in world.decisions if d.status.phase == "Paused"]
    assert held_decisions and all(d.status.canary_weight == 100 and d.status.wave == 0 for d in held_decisions)
    assert not any(e.reason == "WavePromoted" for d in held_decisions for e in d.events)


def test_a_failing_confirm_promotion_gate_with_the_fail_policy_rolls_back_instead_of_promoting() -> None:
    world = world_with(gate("confirmPromotion", onFailure="fail"))
    world.gatekeeper = answering(500)
    world.settle()
    assert phase(world) == "RolledBack"
    assert condition(world, "Degraded")[1] == "GateFailed"
    assert not events(world, "Promoted")


def test_promote_opens_a_held_gate_and_nothing_else() -> None:
    world = world_with(gate("preRollout"))
    world.gatekeeper = answering(503)
    for _ in range(4):
        world.step()
    assert phase(world) == "Paused"
    world.command = ManualCommand("promote", "c1")
    world.step()
    assert world.status.gates[0].phase == "Passed" and "opened by user" in (world.status.gates[0].message or "")
    assert world.status.step == 0  # the first step is not skipped: only the gate opened
    world.settle()
    assert phase(world) == "Healthy"


def fail_analysis(world: World) -> None:
    world.judge = lambda req, metric, now: "Failed"


def test_post_rollback_gate_is_asked_after_a_rollback_and_held_until_it_answers_2xx() -> None:
    world = world_with(gate("postRollback", interval="30s"))
    bad = revision(world.spec)
    fail_analysis(world)
    world.gatekeeper = answering(502)
    world.settle()
    assert phase(world) == "RolledBack"
    for _ in range(10):
        world.step()
    asked = [r for _, r in world.gate_requests]
    assert asked and {(r.type, r.revision) for r in asked} == {("postRollback", bad)}
    assert len(asked) >= 3 and world.status.gates[-1].phase == "Held"
    world.gatekeeper = answering(200)
    for _ in range(4):
        world.step()
    assert world.status.gates[-1].phase == "Passed"
    count = len(world.gate_requests)
    for _ in range(10):
        world.step()
    assert len(world.gate_requests) == count  # a passed gate is not asked again


def test_post_rollback_gate_with_the_fail_policy_is_asked_once_and_reported() -> None:
    world = world_with(gate("postRollback", onFailure="fail"))
    fail_analysis(world)
    world.gatekeeper = answering(500)
    world.settle()
    for _ in range(10):
        world.step()
    assert len(world.gate_requests) == 1
    assert world.status.gates[-1].phase == "Failed"
    assert any("postRollback gate postrollback-check" in m and "HTTP 500" in m for m in events(world, "GateFailed"))
    assert phase(world) == "RolledBack"  # the rollback stands; nothing else changes


def test_no_gate_is_asked_without_gates_in_the_spec() -> None:
    world = world_with()
    world.settle()
    assert world.gate_requests == [] and world.status.gates == []


def test_a_held_entry_is_due_one_interval_after_its_last_answer() -> None:
    spec = make_spec({"us-east": 1}, steps=STEPS, gates=[gate("preRollout", interval="1m")])
    at = T0.isoformat()
    held = GateStatus(name="prerollout-check", type="preRollout", revision="r2", phase="Held", attempts=1, at=at)
    status = ModelDeploymentStatus(gates=[held])
    assert gates_due(spec, status, T0 + timedelta(seconds=59)) == []
    [req] = gates_due(spec, status, T0 + timedelta(seconds=60))
    assert (req.gate, req.revision, req.attempt) == ("prerollout-check", "r2", 2)
    waiting = held.model_copy(update={"phase": "Waiting", "at": None, "attempts": 0})
    assert len(gates_due(spec, ModelDeploymentStatus(gates=[waiting]), T0)) == 1
    gone = make_spec({"us-east": 1}, steps=STEPS)  # the gate left the spec: never asked again
    assert gates_due(gone, status, T0 + timedelta(hours=1)) == []


def test_a_pending_answer_is_asked_again_a_few_seconds_later_for_the_same_attempt() -> None:
    job = {"name": "evals", "type": "confirmPromotion", "job": {"image": "evals:1"}}
    world = world_with(job)
    answers: list[GateOutcome] = ["pending", "pending", "pending", "passed"]

    def keeper(_req: GateRequest, _now: datetime) -> tuple[GateOutcome, int | None]:
        return answers.pop(0) if answers else "passed", None

    world.gatekeeper = keeper
    world.settle()
    assert phase(world) == "Healthy"
    asked = world.gate_requests
    assert [r.attempt for _, r in asked] == [1, 1, 1, 1]  # pending: the same Job, not a new one
    assert all(b - a >= timedelta(seconds=5) for (a, _), (b, _) in itertools.pairwise(asked))
    waiting = [d for d in world.decisions if d.status.gates and d.status.gates[0].phase == "Waiting"]
    assert waiting and all(d.status.phase == "Progressing" for d in waiting)  # running is not held
    assert not events(world, "GateHeld")


def test_a_retried_revision_asks_its_gates_again() -> None:
    world = world_with(gate("preRollout"), gate("confirmPromotion", onFailure="fail") | {"name": "confirm"})
    target = revision(world.spec)
    world.gatekeeper = lambda req, now: ("failed", 500) if req.type == "confirmPromotion" else ("passed", 200)
    world.settle()
    assert phase(world) == "RolledBack"
    first = [(r.type, r.revision) for _, r in world.gate_requests]
    assert first == [("preRollout", target), ("confirmPromotion", target)]
    world.gatekeeper = answering(200)
    world.command = ManualCommand("retry", "c1")
    world.settle()
    assert phase(world) == "Healthy" and world.status.stable_revision == target
    assert [(r.type, r.attempt) for _, r in world.gate_requests[2:]] == [("preRollout", 1), ("confirmPromotion", 1)]
