"""The Argo CD health check, run by a real Lua interpreter on ModelDeployment statuses.

Argo CD evaluates custom health checks with a Lua 5.1 interpreter, so every case runs under Lua 5.1
and under the newest Lua as well. Hand-written statuses are validated by the status model first, so the
Lua can only be tested against fields the operator really writes; statuses produced by the rollout
engine itself are fed through the same script at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import lupa
import lupa.lua51
import pytest

from bellwether.api import ModelDeploymentStatus, dump
from bellwether.api.status import Phase
from bellwether.rollout.types import ManualCommand
from bellwether.sim.engine_world import World
from support.engine import make_spec

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (ROOT / "deploy" / "argocd" / "health.lua").read_text()
RUNTIMES: dict[str, Callable[[], Any]] = {"lua5.1": lupa.lua51.LuaRuntime, "lua-newest": lupa.LuaRuntime}


def health(obj: dict[str, Any], runtime: str = "lua5.1") -> tuple[str, str]:
    """What Argo CD would show for `obj`: the script sees it as the global `obj` and returns `hs`."""
    lua = RUNTIMES[runtime]()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(SCRIPT)
    return str(hs["status"]), str(hs["message"])


def mdep(status: dict[str, Any] | None, generation: int = 4, *, validate: bool = True) -> dict[str, Any]:
    if status is not None and validate:
        ModelDeploymentStatus.model_validate(status)  # the fixture uses real status fields only
    obj: dict[str, Any] = {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "llama-chat", "namespace": "ml", "generation": generation},
        "spec": {"model": {"name": "llama-3.1-8b-instruct", "version": "2026-11-20"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def cond(type_: str, status: str, reason: str, message: str = "", generation: int | None = 4) -> dict[str, Any]:
    c: dict[str, Any] = {"type": type_, "status": status, "reason": reason, "message": message}
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def settled(phase: str, message: str, *conditions: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"observedGeneration": 4, "phase": phase, "message": message, "conditions": list(conditions), **fields}


HEALTHY_CONDITIONS = (
    cond("Available", "True", "AllRegionsServing"),
    cond("Progressing", "False", "Complete"),
    cond("Degraded", "False", "Healthy"),
)
ANALYSIS_FAILED = "p99-latency in eu-west: 4.1 > 1.5x stable (2.6); 2 failed > failureLimit 1"

CASES: dict[str, tuple[dict[str, Any] | None, int, str, list[str]]] = {
    # name: (status, metadata.generation, Argo CD health, words the message must contain)
    "no status yet": (None, 1, "Progressing", ["waiting for the Bellwether operator"]),
    "empty status": ({}, 1, "Progressing", ["waiting for the Bellwether operator"]),
    "pending": (settled("Pending", "waiting for 7c9f2a1b pods in us-east"), 4, "Progressing", ["waiting for 7c9f"]),
    "first deploy in progress": (
        settled("Progressing", "waiting for 7c9f2a1b pods in us-east, eu-west", stableRevision="7c9f2a1b"),
        4,
        "Progressing",
        ["waiting for 7c9f2a1b pods"],
    ),
    "canary analysing": (
        settled(
            "Progressing",
            "step 2/5 in us-east: analysis 3/10 measurements successful",
            cond("Progressing", "True", "RolloutInProgress", "step 2/5 in us-east"),
            stableRevision="7c9f2a1b",
            canaryRevision="5d1e88f0",
            canaryWeight=10,
            step=1,
        ),
        4,
        "Progressing",
        ["step 2/5 in us-east: analysis 3/10"],
    ),
    "baking after promotion": (
        settled(
            "Progressing",
            "baking 5d1e88f0: 4 successful, 0 failed measurements",
            stableRevision="5d1e88f0",
            progress={"bakeStartedAt": "2026-11-20T10:00:00Z", "previousRevision": "7c9f2a1b"},
        ),
        4,
        "Progressing",
        ["baking 5d1e88f0"],
    ),
    "healthy": (
        settled("Healthy", "7c9f2a1b serving in every region", *HEALTHY_CONDITIONS, stableRevision="7c9f2a1b"),
        4,
        "Healthy",
        ["7c9f2a1b serving in every region"],
    ),
    "healthy but a newer spec not yet observed": (
        settled("Healthy", "7c9f2a1b serving in every region", *HEALTHY_CONDITIONS, stableRevision="7c9f2a1b"),
        5,
        "Progressing",
        ["generation 5", "generation 4"],
    ),
    "paused by a person": (
        settled(
            "Paused",
            "step 2/5 in us-east: paused",
            cond("Progressing", "True", "Paused", "step 2/5 in us-east: paused"),
            canaryRevision="5d1e88f0",
            progress={"pausedByUser": True},
        ),
        4,
        "Suspended",
        ["step 2/5 in us-east: paused", "`kubectl bellwether resume llama-chat -n ml`"],
    ),
    "paused by inconclusive analysis": (
        settled(
            "Paused",
            "step 2/5 in us-east: paused",
            cond("Progressing", "True", "InconclusiveAnalysis", "5 inconclusive measurements > inconclusiveLimit 4"),
            canaryRevision="5d1e88f0",
            progress={
                "pausedReason": "InconclusiveAnalysis",
                "pausedMessage": "5 inconclusive measurements > inconclusiveLimit 4 (no data for the canary)",
            },
        ),
        4,
        "Suspended",
        ["InconclusiveAnalysis: 5 inconclusive measurements", "no data for the canary", "resume llama-chat"],
    ),
    "paused at a pause step without a duration": (
        settled("Paused", "step 4/5 in us-east: paused", canaryRevision="5d1e88f0", step=3),
        4,
        "Suspended",
        ["step 4/5 in us-east: paused", "`kubectl bellwether promote llama-chat -n ml`"],
    ),
    "rolled back by analysis": (
        settled(
            "RolledBack",
            f"rolled back 5d1e88f0: {ANALYSIS_FAILED}",
            cond("Progressing", "False", "RolledBack"),
            cond("Degraded", "True", "AnalysisFailed", ANALYSIS_FAILED),
            stableRevision="7c9f2a1b",
        ),
        4,
        "Degraded",
        [f"AnalysisFailed: {ANALYSIS_FAILED}", "`kubectl bellwether retry llama-chat -n ml`"],
    ),
    "rolled back, no condition written": (
        settled("RolledBack", "rolled back 5d1e88f0: aborted by user", stableRevision="7c9f2a1b"),
        4,
        "Degraded",
        ["rolled back 5d1e88f0: aborted by user", "retry llama-chat"],
    ),
    "rolled back, then the spec changed": (
        settled(
            "RolledBack",
            f"rolled back 5d1e88f0: {ANALYSIS_FAILED}",
            cond("Degraded", "True", "AnalysisFailed", ANALYSIS_FAILED, generation=4),
        ),
        5,
        "Progressing",
        ["generation 5"],
    ),
    "degraded phase": (settled("Degraded", "serving short in eu-west"), 4, "Degraded", ["serving short in eu-west"]),
    "degraded condition while progressing": (
        settled(
            "Progressing",
            "step 2/5 in us-east, eu-west: canary at 10%",
            cond("Progressing", "True", "RolloutInProgress"),
            cond("Degraded", "True", "ClusterError", "region eu-west: cluster unreachable: connection refused"),
            canaryRevision="5d1e88f0",
        ),
        4,
        "Degraded",
        ["ClusterError: region eu-west: cluster unreachable: connection refused"],
    ),
    "degraded condition without a generation": (
        settled(
            "Healthy",
            "7c9f2a1b serving in every region",
            cond("Degraded", "True", "ClusterError", "region eu-west: Secret ml/eu-west not found", generation=None),
        ),
        4,
        "Degraded",
        ["ClusterError: region eu-west: Secret ml/eu-west not found"],
    ),
    "new spec refused before it was observed": (
        settled(
            "Healthy",
            "invalid spec, nothing applied: spec.regions[1].name: duplicate",
            cond(
                "Degraded", "True", "InvalidSpec", "invalid spec, nothing applied: spec.regions[1].name: duplicate", 5
            ),
        ),
        5,
        "Degraded",
        ["InvalidSpec: invalid spec, nothing applied"],
    ),
    "a spec refused before any status": (
        {"conditions": [cond("Degraded", "True", "InvalidSpec", "invalid spec, nothing applied: bad", 1)]},
        1,
        "Degraded",
        ["InvalidSpec: invalid spec, nothing applied: bad"],
    ),
    "degraded condition of an older spec": (
        settled(
            "Healthy",
            "7c9f2a1b serving in every region",
            cond("Degraded", "True", "ClusterError", "region eu-west: cluster unreachable", generation=3),
        ),
        4,
        "Healthy",
        ["7c9f2a1b serving in every region"],
    ),
    "healthy without a message": (
        {"observedGeneration": 4, "phase": "Healthy"},
        4,
        "Healthy",
        ["phase Healthy"],
    ),
}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", CASES)
def test_health_of_each_status(case: str, runtime: str) -> None:
    status, generation, expected, words = CASES[case]
    got, message = health(mdep(status, generation), runtime)
    assert got == expected, message
    for word in words:
        assert word in message


def test_every_phase_maps_to_the_health_design_md_names() -> None:
    # docs/argocd.md: Healthy; Progressing = Pending/Progressing; Suspended = Paused; Degraded = Degraded/RolledBack.
    expected = {
        "Pending": "Progressing",
        "Progressing": "Progressing",
        "Paused": "Suspended",
        "Healthy": "Healthy",
        "Degraded": "Degraded",
        "RolledBack": "Degraded",
    }
    assert set(expected) == set(get_args(Phase))
    for phase, want in expected.items():
        assert health(mdep({"observedGeneration": 4, "phase": phase}))[0] == want, phase


def test_a_phase_the_script_does_not_know_is_unknown_not_healthy() -> None:
    # e.g. a newer operator's phase, read by the check of an older chart
    obj = mdep({"observedGeneration": 4, "phase": "Exploded"}, 4, validate=False)
    assert health(obj) == ("Unknown", "unknown phase Exploded")


def test_a_paused_rollout_names_the_way_on_in_the_namespace_it_lives_in() -> None:
    obj = mdep({"observedGeneration": 1, "phase": "Paused", "progress": {"pausedByUser": True}}, 1)
    del obj["metadata"]["namespace"]
    assert health(obj)[1].endswith("`kubectl bellwether resume llama-chat` to continue")


# Statuses written by the rollout engine itself, driven through the pure test world of the engine's tests.

STEPS: list[dict[str, Any]] = [{"setWeight": 25}, {"analysis": {"duration": "1m"}}, {"setWeight": 50}]


def engine_health(world: World) -> tuple[str, str]:
    return health(mdep(dump(world.status), world.generation))


def deployed(**spec: Any) -> World:
    world = World(make_spec({"us-east": 2, "eu-west": 2}, steps=spec.pop("steps", STEPS), **spec))
    world.settle()
    return world


def test_engine_statuses_from_first_deploy_to_healthy() -> None:
    world = World(make_spec({"us-east": 2, "eu-west": 2}, steps=STEPS))
    assert engine_health(world) == ("Progressing", "waiting for the Bellwether operator to pick up the ModelDeployment")
    world.step()
    assert world.status.phase == "Progressing"
    assert engine_health(world)[0] == "Progressing"
    world.settle()
    assert world.status.phase == "Healthy"
    assert engine_health(world) == ("Healthy", world.status.message)


def test_engine_statuses_of_a_canary_a_new_spec_and_a_pause() -> None:
    world = deployed()
    world.change(version="v2")
    assert engine_health(world) == (
        "Progressing",
        "waiting for the operator to act on generation 2 (status describes generation 1)",
    )
    world.run_until(lambda w: w.status.canary_revision is not None and w.status.canary_weight == 25)
    status, message = engine_health(world)
    assert (status, message) == ("Progressing", world.status.message)
    world.command = ManualCommand("pause", "c1")
    world.step()
    assert world.status.phase == "Paused"
    status, message = engine_health(world)
    assert status == "Suspended"
    assert message.endswith("`kubectl bellwether resume llama-chat -n ml` to continue")


def test_engine_status_at_a_pause_step_asks_for_promote() -> None:
    world = deployed(steps=[{"setWeight": 25}, {"pause": {}}])
    world.change(version="v2")
    world.run_until(lambda w: w.status.phase == "Paused")
    status, message = engine_health(world)
    assert status == "Suspended"
    assert message.endswith("`kubectl bellwether promote llama-chat -n ml` to continue")


def test_engine_status_of_a_rollback_is_degraded_with_the_failed_metric() -> None:
    world = deployed()
    world.judge = lambda req, metric, now: "Failed"
    world.change(version="v2")
    world.run_until(lambda w: w.status.phase == "RolledBack")
    status, message = engine_health(world)
    assert status == "Degraded"
    assert message.startswith("AnalysisFailed: ")
    assert "error-rate" in message and "failureLimit 1" in message
    assert "`kubectl bellwether retry llama-chat -n ml`" in message


def test_engine_status_of_inconclusive_analysis_with_the_pause_policy_is_suspended() -> None:
    world = deployed(analysis={"inconclusiveLimit": 1, "onInconclusive": "pause"})
    world.judge = lambda req, metric, now: "Inconclusive"
    world.change(version="v2")
    world.run_until(lambda w: w.status.phase == "Paused")
    status, message = engine_health(world)
    assert status == "Suspended"
    assert "resume llama-chat -n ml" in message
    reason = world.status.progress.paused_reason
    assert reason is not None and message.startswith(f"{reason}: ")


def test_engine_status_of_a_serving_revision_that_lost_a_region_is_degraded_until_it_is_back() -> None:
    world = deployed()
    world.unreachable.add("eu-west")
    world.step()
    assert world.status.phase == "Degraded"
    assert engine_health(world) == ("Degraded", "RegionUnreachable: degraded: eu-west unreachable (connection refused)")
    world.unreachable.clear()
    world.settle()
    assert engine_health(world) == ("Healthy", world.status.message)
