"""Helpers of the webhook tests: a small spec to roll out and a rollout of its next revision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bellwether.api import ModelDeploymentSpec, parse, revision_of, template_of
from bellwether.sim.play import next_revision
from bellwether.sim.runner import Runner
from bellwether.sim.scenarios import CATALOG

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"


def small_spec(**spec: Any) -> ModelDeploymentSpec:
    """The demo's model in one region with a short rollout, plus `spec` (e.g. notifications, gates)."""
    doc = yaml.safe_load(DEMO.read_text())
    doc["spec"]["regions"] = doc["spec"]["regions"][:1]
    doc["spec"]["rollout"].update(
        {"waves": [["us-east"]], "steps": [{"setWeight": 50}, {"analysis": {"duration": "1m"}}], "bakeTime": "0s"}
    )
    gates = spec.pop("gates", None)
    if gates is not None:
        doc["spec"]["rollout"]["gates"] = gates
    doc["spec"].update(spec)
    return parse(doc).spec


def roll_out(runner: Runner, scenario: str = "healthy") -> str:
    """Apply the next revision of the runner's spec, behaving as `scenario` says; its revision."""
    new = next_revision(runner.spec)
    revision = revision_of(template_of(new))
    runner.world.fleet.behaviours[revision] = CATALOG[scenario].behaviour_for(new)
    runner.apply(new)
    return revision
