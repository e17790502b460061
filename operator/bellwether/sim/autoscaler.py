"""The HorizontalPodAutoscaler controller of a simulated cluster (`pkg/controller/podautoscaler`).

Every `SYNC_SECONDS` each HPA applied to the cluster scales the Deployment its `scaleTargetRef` names:
- the metric is a load signal per ready pod of the target: the requests the region sends to the
  target's revision (its share of the region's endpoints or route) over its ready pods, against what
  one pod serves at the metric's target (`per_pod`). A pod at its target reads 1.0;
- desired = ceil(ready pods x usage ratio), unchanged while the ratio is within the 10% tolerance;
- scale-up is bounded per period like the default policies (at most double, or 4 pods more);
- scale-down takes the highest recommendation of the stabilisation window (default 300 s, or the
  HPA's `behavior.scaleDown.stabilizationWindowSeconds`), so a brief dip in load removes nothing;
- the result stays within [minReplicas, maxReplicas]; a target scaled to 0 is left alone, and a
  target that does not exist is skipped (the real controller reports FailedGetScale).

Only the count changes (the scale subresource): never the pod template, so no pod is replaced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bellwether.sim.cluster import Cluster

SYNC_SECONDS = 15.0  # --horizontal-pod-autoscaler-sync-period
TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
DOWN_WINDOW = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
KIND = "HorizontalPodAutoscaler"

# (owner, revision, t) -> requests per second the region sends to that revision at t
Load = Callable[[str, str, float], float]


@dataclass
class Autoscaler:
    """The HPA controller of one cluster."""

    cluster: Cluster
    load: Load
    per_pod: float  # requests per second one pod serves at the metric's target
    last_sync: float = -math.inf
    recommendations: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # by HPA name
    scaled: list[tuple[float, str, int, int]] = field(default_factory=list)  # (t, deployment, from, to)

    def next_sync(self, after: float, until: float) -> float | None:
        """The first sync in (after, until]."""
        due = max(self.last_sync + SYNC_SECONDS, after + 1e-9)
        due = math.ceil(due / SYNC_SECONDS) * SYNC_SECONDS
        return due if due <= until else None

    def sync(self, t: float) -> None:
        if t < self.last_sync + SYNC_SECONDS or self.cluster.unreachable:
            return
        self.last_sync = t
        present = {name: obj for (kind, name), obj in sorted(self.cluster.objects.items()) if kind == KIND}
        for gone in set(self.recommendations) - set(present):
            del self.recommendations[gone]  # a deleted HPA's history goes with it
        for name, obj in present.items():
            self._sync_one(name, obj, t)

    def _sync_one(self, name: str, hpa: Mapping[str, Any], t: float) -> None:
        spec = hpa["spec"]
        target = self.cluster.deployments.get(spec["scaleTargetRef"]["name"])
        if target is None or target.replicas == 0:
            return
        current = target.replicas
        ready = [p for p in self.cluster.live_pods(target.owner, t) if p.deployment == target.name and p.ready(t)]
        if not ready:
            return  # no metrics yet: the controller waits
        ratio = self.load(target.owner, target.revision, t) / (len(ready) * self.per_pod)
        wanted = current if abs(ratio - 1.0) <= TOLERANCE else math.ceil(len(ready) * ratio)
        wanted = max(int(spec.get("minReplicas", 1)), min(int(spec["maxReplicas"]), wanted))
        wanted = self._stabilised(name, spec, wanted, current, t)
        if wanted != current:
            self.scaled.append((t, target.name, current, wanted))
            self.cluster.scale(target.name, wanted)

    def _stabilised(self, name: str, spec: Mapping[str, Any], wanted: int, current: int, t: float) -> int:
        window = _down_window(spec)
        history = [(at, n) for at, n in self.recommendations.get(name, []) if at > t - window]
        history.append((t, wanted))
        self.recommendations[name] = history
        if wanted < current:
            return min(current, max(n for _, n in history))
        return min(wanted, max(2 * current, current + 4))


def _down_window(spec: Mapping[str, Any]) -> float:
    down = ((spec.get("behavior") or {}).get("scaleDown") or {}).get("stabilizationWindowSeconds")
    return float(down) if down is not None else DOWN_WINDOW


def region_load(cluster: Cluster, demand: Mapping[str, float]) -> Load:
    """The load signal of a region: its demand split as its endpoints (or route) split it at `t`."""

    def load(owner: str, revision: str, t: float) -> float:
        return demand.get(cluster.region, 0.0) * cluster.shares(owner, t).get(revision, 0.0)

    return load
