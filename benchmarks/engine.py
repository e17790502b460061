"""Decisions per second and cost per decision of the rollout engine, for 1, 3, 10 and the most regions the API allows x 20 steps.

Each figure is the mean over a whole rollout replayed decision by decision (every status and
observation precomputed), so only `decide` and `analysis_due` are timed.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus, parse_spec
from bellwether.api.spec import MAX_REGIONS
from bellwether.rollout import analysis_due, decide
from bellwether.rollout.types import Observations
from bellwether.sim.engine_world import World


def twenty_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for weight in (5, 10, 20, 30, 40, 50, 60, 70, 80, 90):
        steps += [{"setWeight": weight}, {"analysis": {"duration": "30s"}}]
    return steps


def rollout_spec(regions: list[str]) -> ModelDeploymentSpec:
    """Four pods in each region, the first region a wave of its own, one metric judged every 30s."""
    return parse_spec(
        {
            "model": {"name": "llama", "version": "v1", "uri": "s3://models/llama"},
            "runtime": {"image": "vllm/vllm-openai:v1", "warmupSeconds": 0, "resources": {"gpu": {"count": 1}}},
            "regions": [{"name": name, "replicas": 4} for name in regions],
            "traffic": {"router": "replicas"},
            "rollout": {
                "maxSurge": "25%",
                "bakeTime": "0s",
                "progressDeadline": "10m",
                "steps": twenty_steps(),
                "waves": [regions[:1], regions[1:]] if len(regions) > 1 else [regions],
            },
            "analysis": {
                "prometheus": {"url": "http://prometheus:9090"},
                "interval": "30s",
                "failureLimit": 1,
                "metrics": [{"name": "error-rate", "query": "sum(x)", "max": 0.01}],
            },
        }
    )


def recorded(regions: int) -> tuple[ModelDeploymentSpec, list[tuple[ModelDeploymentStatus, Observations, datetime]]]:
    world = World(rollout_spec([f"r{i}" for i in range(regions)]), tick=15.0)
    world.settle(limit=100)
    world.change(version="v2")
    inputs = []
    for _ in range(2000):
        inputs.append((world.status, world.observe(world.measure()), world.now))
        world.step()
        if world.status.phase == "Healthy":
            break
    return world.spec, inputs


def main() -> None:
    print(f"{'regions':>8} {'decisions':>10} {'per decision':>14} {'decisions/s':>12}")
    for regions in (1, 3, 10, MAX_REGIONS):
        spec, inputs = recorded(regions)
        rounds = max(1, 2000 // (len(inputs) * regions))
        start = time.perf_counter()
        for _ in range(rounds):
            for status, obs, now in inputs:
                analysis_due(spec, status, now)
                decide(spec, status, obs, now)
        spent = time.perf_counter() - start
        n = rounds * len(inputs)
        print(f"{regions:>8} {len(inputs):>10} {spent / n * 1e3:>11.3f} ms {n / spent:>12.0f}")


if __name__ == "__main__":
    main()
