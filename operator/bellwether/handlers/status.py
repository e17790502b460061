"""Pure helpers for the loop: reading the command annotation, diffing status, surfacing errors.

Kept apart from the I/O so they can be tested as plain functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, get_args

from bellwether.api import Condition, ModelDeploymentStatus, RegionStatus
from bellwether.rollout.types import CommandAction, ManualCommand

COMMAND_ANNOTATION = "bellwether.dev/command"
ACTIONS = set(get_args(CommandAction))
CLUSTER_ERROR = "ClusterError"


def read_command(annotations: Mapping[str, str]) -> ManualCommand | None:
    """The manual command in the annotation, if it is well-formed; a malformed one is ignored."""
    raw = annotations.get(COMMAND_ANNOTATION)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("action") not in ACTIONS or not isinstance(data.get("id"), str):
        return None
    return ManualCommand(action=data["action"], id=data["id"])


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch turning `old` into `new` (None = nothing to change)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None if old == new else new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            sub = merge_patch(old[key], value)
            patch[key] = sub if isinstance(old[key], dict) and isinstance(value, dict) else value
    return patch or None


def with_errors(
    status: ModelDeploymentStatus, errors: Mapping[str, str], generation: int, now: str
) -> ModelDeploymentStatus:
    """Make sure every region error is visible in status: on the region and in a Degraded condition.
    With no errors, a condition this function added before is removed again."""
    if not errors:
        kept = [c for c in status.conditions if not (c.type == "Degraded" and c.reason == CLUSTER_ERROR)]
        return status if len(kept) == len(status.conditions) else status.model_copy(update={"conditions": kept})
    regions = list(status.regions)
    for name, error in errors.items():
        found = next((i for i, r in enumerate(regions) if r.name == name), None)
        if found is None:
            regions.append(RegionStatus(name=name, message=error))
        elif error not in (regions[found].message or ""):
            regions[found] = regions[found].model_copy(update={"message": error})
    text = "; ".join(errors[name] for name in sorted(errors))
    conditions = list(status.conditions)
    # Only a Degraded condition counts as reporting it: Progressing may name the region while it
    # waits, but users and Argo CD look for the problem in Degraded.
    degraded = [c for c in conditions if c.type == "Degraded" and c.status == "True"]
    mentioned = any(all(e in (c.message or "") for e in errors.values()) for c in degraded)
    if not mentioned:
        previous = next((c for c in conditions if c.type == "Degraded"), None)
        changed = previous is None or previous.status != "True" or previous.reason != CLUSTER_ERROR
        conditions = [c for c in conditions if c.type != "Degraded"]
        conditions.append(
            Condition(
                type="Degraded",
                status="True",
                reason=CLUSTER_ERROR,
                message=text,
                last_transition_time=now if changed or previous is None else previous.last_transition_time,
                observed_generation=generation,
            )
        )
    return status.model_copy(update={"regions": regions, "conditions": conditions})


def invalid_spec(
    status: ModelDeploymentStatus, problems: list[str], generation: int, now: str
) -> ModelDeploymentStatus:
    """A spec the schema let through but the operator cannot act on: say why, change nothing else."""
    message = "invalid spec, nothing applied: " + "; ".join(problems)
    conditions = [c for c in status.conditions if c.type != "Degraded"]
    previous = next((c for c in status.conditions if c.type == "Degraded"), None)
    since = previous.last_transition_time if previous and previous.reason == "InvalidSpec" else now
    conditions.append(
        Condition(
            type="Degraded",
            status="True",
            reason="InvalidSpec",
            message=message,
            last_transition_time=since,
            observed_generation=generation,
        )
    )
    return status.model_copy(update={"conditions": conditions, "message": message})
