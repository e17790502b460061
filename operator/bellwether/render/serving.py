"""Which pods receive traffic with the `replicas` router: the pod labels that carry a plan's split.

The serving Service selects pods labelled `bellwether.dev/serving=true`, so Kubernetes keeps doing
what it does well (an unready or terminating pod leaves the endpoints at once) while Bellwether alone
decides membership. The label is on pods, never in a pod template: a template change would make the
Deployment controller replace every pod. Pure: the operator and the simulator turn the same plan and
the same pods into the same label changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bellwether.render import names
from bellwether.rollout.types import RegionObservation, RegionPlan

SERVING_COST = "100"  # pod-deletion-cost of a serving pod; pods without traffic have the default 0


@dataclass(frozen=True)
class PodView:
    """What the choice needs of one live (not terminating) pod."""

    name: str
    revision: str
    ready: bool
    serving: bool  # labelled serving now
    created: str  # creationTimestamp (RFC 3339 sorts as text) or any sortable stand-in


@dataclass(frozen=True)
class Seen:
    """A region as observed: what the engine is told, and the pods the serving choice is made from."""

    observation: RegionObservation
    pods: tuple[PodView, ...] = ()


def serving_changes(plan: RegionPlan, pods: Sequence[PodView]) -> dict[str, bool]:
    """Pod name -> whether it must serve, for the pods whose label has to change.

    A revision with `serving=None` serves with every pod, ready or not (it is alone: a pod that
    becomes ready joins by itself). Otherwise the first `serving` ready pods serve: those serving
    already first (membership moves as little as possible), then the oldest. Pods of revisions the
    plan does not list serve nowhere.
    """
    planned = {r.revision: r for r in plan.revisions}
    want: dict[str, bool] = {}
    by_revision: dict[str, list[PodView]] = {}
    for pod in pods:
        by_revision.setdefault(pod.revision, []).append(pod)
    for revision, group in by_revision.items():
        rev = planned.get(revision)
        if rev is None:
            want.update((p.name, False) for p in group)
            continue
        if rev.serving is None:
            want.update((p.name, True) for p in group)
            continue
        ready = sorted((p for p in group if p.ready), key=lambda p: (not p.serving, p.created, p.name))
        chosen = {p.name for p in ready[: max(0, rev.serving)]}
        want.update((p.name, p.name in chosen) for p in group)
    current = {p.name: p.serving for p in pods}
    return {name: serve for name, serve in want.items() if current[name] != serve}


def serving_patch(serve: bool) -> dict[str, Any]:
    """The merge patch that puts a pod in (or takes it out of) the serving Service."""
    return {
        "metadata": {
            "labels": {names.SERVING: "true" if serve else None},
            "annotations": {names.DELETION_COST: SERVING_COST if serve else None},
        }
    }


def pod_view(pod: Mapping[str, Any]) -> PodView | None:
    """A Kubernetes Pod as the choice sees it; None for a terminating pod or one of no revision."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    revision = labels.get(names.REVISION)
    if not revision or meta.get("deletionTimestamp"):
        return None
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return PodView(
        name=meta["name"],
        revision=revision,
        ready=ready,
        serving=labels.get(names.SERVING) == "true",
        created=str(meta.get("creationTimestamp") or ""),
    )
