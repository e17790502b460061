"""Node drains in the simulated world: the Eviction API honouring PodDisruptionBudgets, and
`kubectl drain` on top of it.

Modelled on the real parts:

- the disruption controller (`pkg/controller/disruption`): a budget's expected pods are the summed
  `replicas` of the Deployments owning the pods it selects (with `maxUnavailable` or a percentage
  `minAvailable`), or the number of pods (an integer `minAvailable`); desiredHealthy is expected -
  maxUnavailable (a percentage rounded up), or minAvailable; currentHealthy counts the ready pods;
  disruptionsAllowed = currentHealthy - desiredHealthy, never below 0, and 0 while nothing is expected;
- the eviction subresource (`pkg/registry/core/pod/storage/eviction.go`): a pod not yet scheduled
  (Pending) is deleted without a budget check; a pod two budgets select is refused (500); a pod
  that is not ready is deleted when its budget says `unhealthyPodEvictionPolicy: AlwaysAllow`, or
  (IfHealthyBudget, the default) when the budget is healthy; otherwise an eviction is refused with
  429 while disruptionsAllowed is 0;
- `kubectl drain`: cordon the node, then evict every pod on it, retrying each refused eviction
  every 5 seconds until none is left.

Deletion is immediate in the simulator, so the controller's DisruptedPods bookkeeping (pods allowed
to go but not gone yet) is not needed: the next check already sees the pod gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bellwether.api.units import resolve_int_or_percent
from bellwether.sim.cluster import Cluster, Pod

BUDGET = "PodDisruptionBudget"
RETRY_SECONDS = 5.0  # kubectl drain waits this long before retrying a refused eviction


class Refused(Exception):
    """The Eviction API said no: 429 (the budget allows no disruption now) or 500 (two budgets)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class BudgetStatus:
    """A PodDisruptionBudget's status as the disruption controller computes it."""

    expected: int
    desired_healthy: int
    current_healthy: int

    @property
    def disruptions_allowed(self) -> int:
        if self.expected <= 0:
            return 0
        return max(0, self.current_healthy - self.desired_healthy)


def _selects(budget: Mapping[str, Any], pod: Pod) -> bool:
    wanted = ((budget.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return bool(wanted) and all(pod.labels.get(k) == v for k, v in wanted.items())


def budgets_of(cluster: Cluster, pod: Pod) -> list[Mapping[str, Any]]:
    return [o for (kind, _), o in sorted(cluster.objects.items()) if kind == BUDGET and _selects(o, pod)]


def budget_status(cluster: Cluster, budget: Mapping[str, Any]) -> BudgetStatus:
    t = cluster.now()
    pods = [p for p in cluster.pods if p.deleted is None and _selects(budget, p)]
    healthy = sum(p.ready(t) for p in pods)
    spec = budget.get("spec") or {}
    scale = sum(d.replicas for name, d in cluster.deployments.items() if any(p.deployment == name for p in pods))
    if "maxUnavailable" in spec:
        unavailable = resolve_int_or_percent(str(spec["maxUnavailable"]), scale, round_up=True)
        return BudgetStatus(scale, max(0, scale - unavailable), healthy)
    minimum = spec.get("minAvailable", 0)
    if isinstance(minimum, int):
        return BudgetStatus(len(pods), minimum, healthy)
    return BudgetStatus(scale, resolve_int_or_percent(str(minimum), scale, round_up=True), healthy)


def evict(cluster: Cluster, pod_name: str) -> None:
    """POST pods/{name}/eviction: the pod is deleted, or Refused says why not."""
    pod = next((p for p in cluster.pods if p.name == pod_name and p.deleted is None), None)
    if pod is None:
        raise KeyError(f"pod {pod_name} not found in region {cluster.region}")
    if pod.node is not None:
        _check_budgets(cluster, pod)
    cluster.delete_pod(pod_name)


def _check_budgets(cluster: Cluster, pod: Pod) -> None:
    found = budgets_of(cluster, pod)
    if len(found) > 1:
        raise Refused(
            500, "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        )
    if not found:
        return
    budget = found[0]
    status = budget_status(cluster, budget)
    if not pod.ready(cluster.now()):
        if (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return
        if status.current_healthy >= status.desired_healthy > 0:
            return
    if status.disruptions_allowed == 0:
        name = budget["metadata"]["name"]
        raise Refused(
            429,
            "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget "
            f"{name} needs {status.desired_healthy} healthy pods and has {status.current_healthy} currently",
        )


@dataclass
class Drain:
    """`kubectl drain NODE` in progress. Call `attempt` as time goes on; it evicts what it may."""

    cluster: Cluster
    node: str
    evicted: list[tuple[float, str]] = field(default_factory=list)  # (when, pod)
    refused: list[tuple[float, str, int]] = field(default_factory=list)  # (when, pod, status)
    _next: float = 0.0

    def __post_init__(self) -> None:
        self.cluster.nodes[self.node].unschedulable = True  # kubectl cordon
        self._next = self.cluster.now()

    def pods(self) -> list[Pod]:
        return sorted((p for p in self.cluster.pods if p.node == self.node and p.deleted is None), key=lambda p: p.name)

    @property
    def done(self) -> bool:
        return not self.pods()

    def attempt(self) -> bool:
        """Evict every pod left on the node, one at a time, if the retry interval has passed; True once
        the node is empty."""
        t = self.cluster.now()
        if t < self._next:
            return self.done
        for pod in self.pods():
            try:
                evict(self.cluster, pod.name)
            except Refused as e:
                self.refused.append((t, pod.name, e.code))
            else:
                self.evicted.append((t, pod.name))
        self._next = t + RETRY_SECONDS
        return self.done
