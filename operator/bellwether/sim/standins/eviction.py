"""The Eviction API of the API server stand-in: `POST pods/{name}/eviction` honouring
PodDisruptionBudgets, as `pkg/registry/core/pod/storage/eviction.go` does, with the disruption
controller's arithmetic (`pkg/controller/disruption`) computed at the moment of the request (a
controller that is never behind, so no DisruptedPods bookkeeping is needed).

- expected pods: the summed `spec.replicas` of the controllers (pod -> ReplicaSet -> Deployment)
  of the selected pods, with `maxUnavailable` or a percentage `minAvailable`; the number of selected
  pods with an integer `minAvailable`;
- desiredHealthy = expected - maxUnavailable (a percentage rounded up), or minAvailable;
  currentHealthy = selected pods that are Ready and not being deleted;
  disruptionsAllowed = currentHealthy - desiredHealthy, never below 0, and 0 while nothing is expected;
- Pending pods (not bound to a node) and pods being deleted go without a check; a pod two budgets
  select is refused with 500; a pod that is not Ready goes when its budget says
  `unhealthyPodEvictionPolicy: AlwaysAllow`, or when the budget is healthy; otherwise 429 while
  disruptionsAllowed is 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

Key = tuple[str, str | None, str]


def _selects(budget: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    wanted = ((budget.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    labels = pod["metadata"].get("labels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _scaled(value: int | str, total: int) -> int:
    if isinstance(value, int):
        return value
    return math.ceil(total * int(value.rstrip("%")) / 100)


def _controller(objects: Mapping[Key, dict[str, Any]], obj: Mapping[str, Any]) -> dict[str, Any] | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return next((o for o in objects.values() if o["metadata"].get("uid") == ref["uid"]), None)
    return None


def _scale(objects: Mapping[Key, dict[str, Any]], pods: list[dict[str, Any]]) -> int:
    """SUM over the pods' controllers of their scale: a ReplicaSet owned by a Deployment counts as it."""
    scales: dict[str, int] = {}
    for pod in pods:
        owner = _controller(objects, pod)
        top = _controller(objects, owner) if owner is not None else None
        found = top if top is not None and top.get("kind") == "Deployment" else owner
        if found is not None:
            scales[found["metadata"]["uid"]] = int((found.get("spec") or {}).get("replicas", 1))
    return sum(scales.values())


def status(objects: Mapping[Key, dict[str, Any]], budget: Mapping[str, Any]) -> tuple[int, int, int]:
    """(expected, desiredHealthy, currentHealthy) of a budget, as the disruption controller computes them."""
    namespace = budget["metadata"].get("namespace")
    pods = [o for (plural, ns, _), o in objects.items() if plural == "pods" and ns == namespace and _selects(budget, o)]
    healthy = sum(1 for p in pods if _ready(p) and not p["metadata"].get("deletionTimestamp"))
    spec = budget.get("spec") or {}
    if "maxUnavailable" in spec:
        expected = _scale(objects, pods)
        return expected, max(0, expected - _scaled(spec["maxUnavailable"], expected)), healthy
    minimum = spec.get("minAvailable", 0)
    if isinstance(minimum, int):
        return len(pods), minimum, healthy
    expected = _scale(objects, pods)
    return expected, _scaled(minimum, expected), healthy


def refusal(objects: Mapping[Key, dict[str, Any]], pod: Mapping[str, Any]) -> tuple[int, str, str] | None:
    """Why the eviction of `pod` is refused, as (code, reason, message); None when it may go."""
    if not (pod.get("spec") or {}).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
        return None
    namespace = pod["metadata"].get("namespace")
    budgets = [
        o
        for (plural, ns, _), o in objects.items()
        if plural == "poddisruptionbudgets" and ns == namespace and _selects(o, pod)
    ]
    if len(budgets) > 1:
        return (
            500,
            "InternalError",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        )
    if not budgets:
        return None
    budget = budgets[0]
    expected, desired, healthy = status(objects, budget)
    if not _ready(pod):
        if (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return None
        if healthy >= desired > 0:
            return None
    allowed = 0 if expected <= 0 else max(0, healthy - desired)
    if allowed == 0:
        return (
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget "
            f"{budget['metadata']['name']} needs {desired} healthy pods and has {healthy} currently",
        )
    return None
