"""The engine's stories (tests/unit/rollout and the Argo CD health check): their spec, and what they
read off `bellwether.sim.engine_world.World`."""

from __future__ import annotations

from typing import Any

from bellwether.api import ModelDeploymentSpec, parse_spec
from bellwether.sim.engine_world import World


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
) -> ModelDeploymentSpec:
    rollout: dict[str, Any] = {"maxSurge": max_surge, "bakeTime": bake_time, "progressDeadline": progress_deadline}
    if steps is not None:
        rollout["steps"] = steps
    if waves is not None:
        rollout["waves"] = waves
    traffic: dict[str, Any] = {"router": router}
    if router == "gatewayAPI":
        traffic["gatewayAPI"] = {"parentRefs": [{"name": "gw"}]}
    doc: dict[str, Any] = {
        "model": {"name": "llama", "version": version, "uri": "s3://models/llama"},
        "runtime": {
            "image": "vllm/vllm-openai:v1",
            "warmupSeconds": warmup_seconds,
            "resources": {"gpu": {"count": 1}},
        },
        "regions": [{"name": n, "replicas": r} for n, r in regions.items()],
        "traffic": traffic,
        "rollout": rollout,
        "analysis": {
            "prometheus": {"url": "http://prometheus:9090"},
            "interval": "30s",
            "failureLimit": 1,
            "metrics": [{"name": m, "query": "sum(x)", "max": 0.01} for m in metrics or ["error-rate"]],
        }
        | (analysis or {}),
    }
    return parse_spec(doc)


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
