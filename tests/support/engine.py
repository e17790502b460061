"""The engine's stories (tests/unit/rollout and the Argo CD health check): their spec, and what they
read off `bellwether.sim.engine_world.World`."""

from __future__ import annotations

from typing import Any

from bellwether.api import ModelDeploymentSpec
from bellwether.sim.engine_world import World
from support.specs import spec


def make_spec(
    regions: dict[str, int],
    *,
    version: str = "v1",
    steps: list[dict[str, Any]] | None = None,
    waves: list[list[str]] | None = None,
    max_surge: str = "25%",
    analysis: dict[str, Any] | None = None,
    bake_time: str = "0s",
    progress_deadline: str = "10m",
    router: str = "replicas",
    warmup_seconds: int = 0,
    metrics: list[str] | None = None,
    gates: list[dict[str, Any]] | None = None,
) -> ModelDeploymentSpec:
    """One metric judged every 30s, no bake time, one model URI for every version; `analysis` fields
    replace the default analysis's one by one."""
    rollout: dict[str, Any] = {"maxSurge": max_surge, "bakeTime": bake_time, "progressDeadline": progress_deadline}
    if steps is not None:
        rollout["steps"] = steps
    if waves is not None:
        rollout["waves"] = waves
    if gates is not None:
        rollout["gates"] = gates
    judged: dict[str, Any] = {
        "prometheus": {"url": "http://prometheus:9090"},
        "interval": "30s",
        "failureLimit": 1,
        "metrics": [{"name": m, "query": "sum(x)", "max": 0.01} for m in metrics or ["error-rate"]],
    }
    return spec(
        regions,
        version=version,
        uri="s3://models/llama",
        runtime={"image": "vllm/vllm-openai:v1", "warmupSeconds": warmup_seconds},
        router=router,
        rollout=rollout,
        analysis=judged | (analysis or {}),
    )


def deployed(world: World) -> World:
    """The story's starting point: the first revision serving everywhere."""
    world.settle()
    assert world.status.phase == "Healthy"
    return world


def phase(world: World) -> str:
    return world.status.phase


def condition(world: World, kind: str) -> tuple[str, str, str]:
    """(status, reason, message) of a condition, as `kubectl describe` shows it."""
    c = next(c for c in world.status.conditions if c.type == kind)
    return c.status, c.reason, c.message


def events(world: World, reason: str) -> list[str]:
    return [e.message for d in world.decisions for e in d.events if e.reason == reason]
