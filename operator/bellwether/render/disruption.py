"""The PodDisruptionBudget of one revision in one region.

A budget gates only the Eviction API (`kubectl drain`, node upgrades, the cluster autoscaler);
Bellwether's own scale-downs and the Deployment controller delete pods directly, so no budget ever
holds a rollout or a rollback back.

`maxUnavailable` rather than `minAvailable`: the disruption controller resolves it against the
Deployment's own `replicas` (desiredHealthy = replicas - maxUnavailable), so the budget follows every
step's replica count without being rewritten, and a revision scaled to 0 asks for nothing. While a
region runs two revisions (a canary, or a rollback handing back to stable) the default is 0: an
eviction is allowed only when the revision has more ready pods than its Deployment asks for, so a
drain waits for the region's rollout to end instead of taking capacity the step relies on.

`unhealthyPodEvictionPolicy: AlwaysAllow`: a pod that is not ready serves nothing, so evicting it
costs no capacity; the default (IfHealthyBudget) would let a crash-looping pod block a drain.
"""

from __future__ import annotations

from typing import Any

from bellwether.api.spec import Disruption, ModelDeploymentSpec
from bellwether.api.units import resolve_int_or_percent
from bellwether.render import names
from bellwether.rollout.types import RegionPlan, RevisionPlan


def int_or_percent(value: str) -> int | str:
    """The wire form of an IntOrString: `2` as a number, `25%` as a string (a bare "2" is invalid)."""
    return value if value.endswith("%") else int(value)


def max_unavailable(disruption: Disruption, plan: RegionPlan) -> str:
    """The budget every revision of the region gets under `plan`."""
    rolling = len(plan.revisions) > 1
    return disruption.max_unavailable_during_rollout if rolling else disruption.max_unavailable


def disruption_budget(name: str, namespace: str, region: str, plan: RevisionPlan, limit: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": names.revision_name(name, region, plan.revision),
            "namespace": namespace,
            "labels": names.revision_labels(name, region, plan.revision, plan.role),
        },
        "spec": {
            "selector": {"matchLabels": names.pod_selector(name, region, plan.revision)},
            "maxUnavailable": int_or_percent(limit),
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def budget_notes(spec: ModelDeploymentSpec) -> list[str]:
    """What the budgets will do to node drains that a person may not expect (`bellwether validate`)."""
    disruption = spec.disruption
    if not disruption.budget:
        return []
    notes = []
    for region in spec.regions:
        size = region.size  # an autoscaled region at its minimum: the fewest pods a drain meets
        allowed = resolve_int_or_percent(disruption.max_unavailable, size, round_up=True)
        if size and allowed == 0:
            notes.append(
                f"disruption.maxUnavailable {disruption.max_unavailable} allows no eviction in {region.name}: "
                "node drains there wait for as long as the revision serves"
            )
        elif size and allowed >= size:
            notes.append(
                f"disruption.maxUnavailable {disruption.max_unavailable} lets a drain evict all {size} "
                f"pod(s) of {region.name} at once: the region serves nothing until they load again"
            )
    return notes
