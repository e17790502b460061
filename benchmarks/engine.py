"""Decisions per second and cost per decision of the rollout engine, for 1, 3, 10 and 32 regions (the API allows at most 32) x 20 steps.

Each figure is the mean over a whole rollout replayed decision by decision (every status and
observation precomputed), so only `decide` and `analysis_due` are timed.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit" / "rollout"))

from world import World, make_spec

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus
from bellwether.rollout import analysis_due, decide
from bellwether.rollout.types import Observations


def twenty_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for weight in (5, 10, 20, 30, 40, 50, 60, 70, 80, 90):
        steps += [{"setWeight": weight}, {"analysis": {"duration": "30s"}}]
    return steps


def recorded(regions: int) -> tuple[ModelDeploymentSpec, list[tuple[ModelDeploymentStatus, Observations, datetime]]]:
    names = [f"r{i}" for i in range(regions)]
    waves = [names[:1], names[1:]] if regions > 1 else [names]
    world = World(make_spec(dict.fromkeys(names, 4), steps=twenty_steps(), waves=waves), tick=15.0)
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
    for regions in (1, 3, 10, 32):
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
