"""The phase is derived in one place (rollout/phases.py) from what a decision left in status."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from bellwether.api.status import Phase
from bellwether.rollout.phases import WHEN
from bellwether.rollout.types import ManualCommand
from bellwether.sim.engine_world import World
from support.engine import make_spec

CONCEPTS = Path(__file__).resolve().parents[3] / "docs" / "concepts.md"


def test_every_phase_is_documented_exactly_as_the_engine_defines_it() -> None:
    assert set(WHEN) == set(get_args(Phase))
    rows = dict(re.findall(r"^\| `(\w+)` \| (.*) \|$", CONCEPTS.read_text().split("## Phases and conditions")[1], re.M))
    assert {phase: rows.get(phase) for phase in WHEN} == dict(WHEN)


def test_the_phase_follows_the_facts_through_holds_commands_and_a_rollback() -> None:
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    world = World(make_spec({"a": 4}, steps=steps))
    world.settle()
    assert world.status.phase == "Healthy"
    world.change(version="v2")
    world.run_until(lambda w: w.status.step == 1)
    assert world.status.phase == "Paused"  # held at a pause without a duration, nobody paused it
    assert not world.status.progress.paused_by_user
    world.command = ManualCommand("promote", "c1")
    world.step()
    assert world.status.phase == "Progressing"
    world.command = ManualCommand("pause", "c2")
    world.step()
    assert (world.status.phase, world.status.progress.paused_by_user) == ("Paused", True)
    world.command = ManualCommand("resume", "c3")
    world.step()
    assert not world.status.progress.paused_by_user
    assert world.status.phase == ("Paused" if world.status.step == 3 else "Progressing")  # held at the next pause
    world.run_until(lambda w: w.status.step == 3)
    assert world.status.phase == "Paused"
    world.command = ManualCommand("abort", "c4")
    world.step()
    assert world.status.phase == "RolledBack" and world.status.canary_revision is None
