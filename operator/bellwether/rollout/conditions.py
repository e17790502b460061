"""Kubernetes-style conditions: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from bellwether.api import Condition, ModelDeploymentStatus, RegionStatus
from bellwether.api.reasons import Reason
from bellwether.api.status import ConditionType


def set_condition(
    conditions: list[Condition],
    type_: ConditionType,
    status: Literal["True", "False", "Unknown"],
    reason: Reason,
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
    status: ModelDeploymentStatus, reason: Reason, message: str, generation: int, now: str
) -> ModelDeploymentStatus:
    """`status` with Degraded=True for `reason`: what the operator could not do, in people's words."""
    return status.model_copy(
        update={
            "conditions": set_condition(list(status.conditions), "Degraded", "True", reason, message, now, generation)
        }
    )


CLUSTER_ERROR = "ClusterError"


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


INVALID_WORDS: dict[Reason, str] = {
    "InvalidSpec": "invalid spec",
    "InvalidAnalysisTemplate": "analysis templates unusable",
}


def invalid_spec(
    status: ModelDeploymentStatus,
    problems: list[str],
    generation: int,
    now: str,
    reason: Reason = "InvalidSpec",
) -> ModelDeploymentStatus:
    """A spec the schema let through but the operator cannot act on (or whose ClusterAnalysisTemplates
    it cannot resolve): say why, change nothing else."""
    message = f"{INVALID_WORDS.get(reason, 'invalid spec')}, nothing applied: " + "; ".join(problems)
    conditions = [c for c in status.conditions if c.type != "Degraded"]
    previous = next((c for c in status.conditions if c.type == "Degraded"), None)
    since = previous.last_transition_time if previous and previous.reason == reason else now
    conditions.append(
        Condition(
            type="Degraded",
            status="True",
            reason=reason,
            message=message,
            last_transition_time=since,
            observed_generation=generation,
        )
    )
    return status.model_copy(update={"conditions": conditions, "message": message})
