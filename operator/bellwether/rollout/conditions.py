"""Kubernetes-style conditions: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

from typing import Literal

from bellwether.api import Condition, ModelDeploymentStatus
from bellwether.api.status import ConditionType


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: Literal["True", "False", "Unknown"],
    reason: str,
    message: str,
    now: str,
    generation: int,
) -> list[Condition]:
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:32768],
        last_transition_time=since,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type_] + [new]


def degraded(
    status: ModelDeploymentStatus, reason: str, message: str, generation: int, now: str
) -> ModelDeploymentStatus:
    """`status` with Degraded=True for `reason`: what the operator could not do, in people's words."""
    return status.model_copy(
        update={
            "conditions": set_condition(list(status.conditions), "Degraded", "True", reason, message, now, generation)
        }
    )
