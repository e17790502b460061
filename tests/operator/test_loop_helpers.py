"""The loop's pure helpers: command parsing, the one status patch, errors made visible."""

from __future__ import annotations

import json
import random

import pytest

from bellwether.api import Condition, ModelDeploymentStatus, RegionStatus
from bellwether.cycle import crowded_backoff
from bellwether.handlers.status import merge_patch
from bellwether.rollout.commands import COMMAND_ANNOTATION, read_command
from bellwether.rollout.conditions import with_errors
from bellwether.rollout.types import ManualCommand


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (json.dumps({"action": "promote-full", "id": "a1"}), ManualCommand("promote-full", "a1")),
        (json.dumps({"action": "abort", "id": "b2"}), ManualCommand("abort", "b2")),
        (json.dumps({"action": "explode", "id": "c3"}), None),  # unknown action
        (json.dumps({"action": "pause"}), None),  # no id: could not be consumed exactly once
        ("pause", None),  # not JSON
        ("", None),
    ],
)
def test_the_command_annotation_is_read_only_when_well_formed(annotation: str, expected: ManualCommand | None) -> None:
    assert read_command({COMMAND_ANNOTATION: annotation}) == expected


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({"phase": "Healthy"}, {"phase": "Healthy"}, None),
        ({"phase": "Healthy", "canaryRevision": "abc"}, {"phase": "Healthy"}, {"canaryRevision": None}),
        (
            {"progress": {"failures": 1, "successes": 2}},
            {"progress": {"failures": 2, "successes": 2}},
            {"progress": {"failures": 2}},
        ),
        (
            {"regions": [{"name": "a"}]},
            {"regions": [{"name": "a"}, {"name": "b"}]},
            {"regions": [{"name": "a"}, {"name": "b"}]},
        ),
        ({}, {"phase": "Pending"}, {"phase": "Pending"}),
    ],
)
def test_the_status_patch_turns_the_old_status_into_the_new_one(old: dict, new: dict, patch: dict | None) -> None:  # type: ignore[type-arg]
    assert merge_patch(old, new) == patch
    if patch is not None:
        from bellwether.sim.standins.apiserver import merge

        assert merge(old, patch) == new  # applying it as the API server does gives exactly the new status


def test_region_errors_become_a_condition_and_a_region_message_once() -> None:
    status = ModelDeploymentStatus(regions=[RegionStatus(name="eu-west")])
    error = "region eu-west: Secret ml/eu-west-kubeconfig not found; create it"
    out = with_errors(status, {"eu-west": error}, generation=3, now="2026-11-22T18:00:00Z")
    degraded = [c for c in out.conditions if c.type == "Degraded"]
    assert len(degraded) == 1 and degraded[0].status == "True" and error in degraded[0].message
    assert degraded[0].observed_generation == 3
    assert out.regions[0].message == error
    # The next cycle with the same error keeps the transition time: no churn in status.
    again = with_errors(out, {"eu-west": error}, generation=3, now="2026-11-22T18:05:00Z")
    assert again == out


def test_an_error_the_engine_already_reported_is_not_repeated() -> None:
    error = "region eu-west: cluster unreachable: connection refused"
    engine = Condition(type="Degraded", status="True", reason="RegionUnreachable", message=f"waiting: {error}")
    status = ModelDeploymentStatus(conditions=[engine])
    assert with_errors(status, {"eu-west": error}, 1, "2026-11-22T18:00:00Z").conditions == [engine]


def test_the_condition_goes_away_when_the_region_is_fixed() -> None:
    error = "region eu-west: Secret ml/eu-west-kubeconfig not found; create it"
    broken = with_errors(ModelDeploymentStatus(), {"eu-west": error}, 1, "2026-11-22T18:00:00Z")
    assert [c.type for c in with_errors(broken, {}, 1, "2026-11-22T18:01:00Z").conditions] == []


def test_only_cycles_slowed_by_a_saturated_operator_move_later_each_by_its_own_amount() -> None:
    rng = random.Random(7)
    # A long cycle during which the process computed nearly all the time: the core was crowded
    crowded = [crowded_backoff(took=1.5, computed=1.45, rng=rng) for _ in range(50)]
    assert all(0.0 <= b <= 1.5 for b in crowded), crowded
    assert len({round(b, 6) for b in crowded}) > 40, "cycles due together must not move together"
    # A long cycle that waited on a slow server while the process idled keeps its schedule, as does a
    # short one however busy the process was
    assert crowded_backoff(took=1.5, computed=0.2, rng=rng) == 0.0
    assert crowded_backoff(took=0.3, computed=0.3, rng=rng) == 0.0
