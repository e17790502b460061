"""A simulated Kubernetes cluster with GPU nodes: enough of the scheduler and the Deployment
controller to show what a rollout does to a GPU pool.

It accepts the same rendered objects the operator applies (Deployment dicts from
`bellwether.render`), creates one pod per replica, and places each pod on a node whose labels match
its `nodeSelector` and which still has enough free `nvidia.com/gpu`; otherwise the pod stays Pending,
exactly the situation `maxSurge: 0` exists for. CPU and memory are not modelled: on GPU nodes the
GPUs run out first. Pods keep their history (scheduled, ready, deleted times) so metrics over a past
window can be answered.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bellwether.rollout.types import RegionObservation, RevisionPods

GPU = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
DEPLOYMENT_LABEL = "bellwether.dev/deployment"
REVISION_LABEL = "bellwether.dev/revision"
ROLE_LABEL = "bellwether.dev/role"


@dataclass
class Node:
    name: str
    gpus: int
    labels: dict[str, str] = field(default_factory=dict)
    used: int = 0

    @property
    def free(self) -> int:
        return self.gpus - self.used


@dataclass
class Pod:
    name: str
    owner: str  # the ModelDeployment
    deployment: str
    revision: str
    gpus: int
    node_selector: dict[str, str]
    created: float
    node: str | None = None
    scheduled: float | None = None
    ready_at: float | None = None
    deleted: float | None = None

    def alive(self, t: float) -> bool:
        return self.created <= t and (self.deleted is None or t < self.deleted)

    def ready(self, t: float) -> bool:
        return self.ready_at is not None and self.ready_at <= t and (self.deleted is None or t < self.deleted)


@dataclass
class DeploymentState:
    """What the cluster keeps of an applied Deployment: the fields the simulated controller acts on."""

    name: str
    owner: str  # the ModelDeployment, from the bellwether.dev/deployment label
    revision: str
    role: str
    replicas: int
    gpus: int
    node_selector: dict[str, str]


def _gpu_limit(pod_spec: Mapping[str, Any]) -> int:
    total = 0
    for c in pod_spec.get("containers", []):
        limits = c.get("resources", {}).get("limits", {})
        total += int(str(limits.get(GPU, 0)))
    return total


def deployment_state(obj: Mapping[str, Any]) -> DeploymentState:
    meta = obj["metadata"]
    labels = {**meta.get("labels", {}), **obj["spec"]["template"]["metadata"].get("labels", {})}
    pod_spec = obj["spec"]["template"]["spec"]
    return DeploymentState(
        name=meta["name"],
        owner=labels.get(DEPLOYMENT_LABEL, ""),
        revision=labels.get(REVISION_LABEL, ""),
        role=labels.get(ROLE_LABEL, ""),
        replicas=int(obj["spec"].get("replicas", 1)),
        gpus=_gpu_limit(pod_spec),
        node_selector=dict(pod_spec.get("nodeSelector", {})),
    )


class Cluster:
    """One region's cluster. `now` is the shared virtual clock's elapsed seconds."""

    def __init__(
        self,
        region: str,
        nodes: Iterable[Node],
        now: Callable[[], float],
        load_seconds: Callable[[str], float] = lambda revision: 0.0,
    ) -> None:
        self.region = region
        self.nodes = {n.name: n for n in nodes}
        self.now = now
        self.load_seconds = load_seconds  # model load time of a revision: scheduled -> Ready
        self.deployments: dict[str, DeploymentState] = {}
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}  # everything else applied: Services, routes
        self.pods: list[Pod] = []
        self.applied: list[tuple[float, str, str]] = []  # (time, kind, name): an audit of what was applied
        self.route_history: dict[str, list[tuple[float, dict[str, int]]]] = {}  # owner -> (since, weights)
        self.unreachable = False
        self._ids = itertools.count(1)

    # -- the API a client sees ------------------------------------------------------------------

    def apply(self, objects: Iterable[Mapping[str, Any]], owner: str | None = None) -> None:
        """Server-side apply of a set of objects; with `owner`, that owner's Deployments not in the set
        are deleted (the plan says a revision not listed is to be removed)."""
        if self.unreachable:
            raise ConnectionError(f"cluster of region {self.region} is unreachable")
        keep: set[str] = set()
        for obj in objects:
            kind, name = obj["kind"], obj["metadata"]["name"]
            self.applied.append((self.now(), kind, name))
            if kind == "Deployment":
                self.deployments[name] = deployment_state(obj)
                keep.add(name)
            else:
                self.objects[(kind, name)] = dict(obj)
        if owner is not None:
            route = self._route_weights(owner)
            history = self.route_history.setdefault(owner, [])
            if route is not None and (not history or history[-1][1] != route):
                history.append((self.now(), route))
            for name in [n for n, d in self.deployments.items() if d.owner == owner and n not in keep]:
                self.delete_deployment(name)
        self.reconcile()

    def delete_deployment(self, name: str) -> None:
        self.deployments.pop(name, None)
        for pod in self._live(name):
            self._delete(pod)
        self.reconcile()

    def gpu_capacity(self) -> int:
        return sum(n.gpus for n in self.nodes.values())

    def gpus_in_use(self) -> int:
        return sum(n.used for n in self.nodes.values())

    # -- the controllers ------------------------------------------------------------------------

    def reconcile(self) -> None:
        """The Deployment controller then the scheduler: pod counts follow replicas, Pending pods get
        placed where a node matches and has the GPUs."""
        t = self.now()
        for d in self.deployments.values():
            live = self._live(d.name)
            for _ in range(d.replicas - len(live)):
                self.pods.append(
                    Pod(
                        f"{d.name}-{next(self._ids)}",
                        d.owner,
                        d.name,
                        d.revision,
                        d.gpus,
                        dict(d.node_selector),
                        created=t,
                    )
                )
            if len(live) > d.replicas:
                # Like a ReplicaSet: remove unscheduled pods first, then not-ready ones, then the newest.
                order = sorted(live, key=lambda p: (p.node is not None, p.ready(t), -p.created))
                for pod in order[: len(live) - d.replicas]:
                    self._delete(pod)
        for pod in self.pods:
            if pod.deleted is None and pod.node is None:
                self._schedule(pod, t)

    def _schedule(self, pod: Pod, t: float) -> None:
        for node in sorted(self.nodes.values(), key=lambda n: (n.free, n.name)):  # bin-pack: fullest first
            if node.free >= pod.gpus and all(node.labels.get(k) == v for k, v in pod.node_selector.items()):
                node.used += pod.gpus
                pod.node, pod.scheduled = node.name, t
                pod.ready_at = t + self.load_seconds(pod.revision)
                return

    def _delete(self, pod: Pod) -> None:
        pod.deleted = self.now()
        if pod.node is not None:
            self.nodes[pod.node].used -= pod.gpus

    def _live(self, deployment: str) -> list[Pod]:
        return [p for p in self.pods if p.deployment == deployment and p.deleted is None]

    # -- what an observer sees ------------------------------------------------------------------

    def unschedulable_reason(self, pod: Pod) -> str:
        matching = [n for n in self.nodes.values() if all(n.labels.get(k) == v for k, v in pod.node_selector.items())]
        if not matching:
            selector = ",".join(f"{k}={v}" for k, v in sorted(pod.node_selector.items()))
            return f"0/{len(self.nodes)} nodes match node selector {selector}"
        return (
            f"0/{len(self.nodes)} nodes are available: {len(matching)} matching nodes have too few free {GPU} "
            f"(pod needs {pod.gpus}, most free {max(n.free for n in matching)})"
        )

    def ready_pods(self, owner: str, t: float) -> dict[str, list[Pod]]:
        """Ready pods by revision at any past or present time `t`."""
        out: dict[str, list[Pod]] = {}
        for p in self.pods:
            if p.owner == owner and p.ready(t):
                out.setdefault(p.revision, []).append(p)
        return out

    def observe(self, owner: str) -> RegionObservation:
        """What the operator's observer would report for one ModelDeployment in this region."""
        if self.unreachable:
            return RegionObservation(self.region, reachable=False, error="connection refused")
        t = self.now()
        pods: dict[str, RevisionPods] = {}
        for d in self.deployments.values():
            if d.owner != owner:
                continue
            live = self._live(d.name)
            pending = [p for p in live if p.node is None]
            ready = sum(p.ready(t) for p in live)
            pods[d.revision] = RevisionPods(
                desired=d.replicas,
                ready=ready,
                unschedulable=len(pending),
                unavailable=max(0, d.replicas - ready),
                problem=self.unschedulable_reason(pending[0]) if pending else None,
            )
        return RegionObservation(self.region, pods=pods, weights=self.weights(owner, t))

    def weights(self, owner: str, t: float) -> dict[str, int]:
        """Traffic share by revision: a route's weights if one was applied, else by ready pods (the
        `replicas` router: a Service spreads requests evenly over ready endpoints)."""
        routes = [w for since, w in self.route_history.get(owner, []) if since <= t]
        if routes:
            return routes[-1]
        ready = {r: len(pods) for r, pods in self.ready_pods(owner, t).items()}
        total = sum(ready.values())
        return {r: round(100 * n / total) for r, n in ready.items()} if total else {}

    def _route_weights(self, owner: str) -> dict[str, int] | None:
        services = {
            name: obj.get("spec", {}).get("selector", {}).get(REVISION_LABEL)
            for (kind, name), obj in self.objects.items()
            if kind == "Service"
        }
        for (kind, _), obj in self.objects.items():
            if obj.get("metadata", {}).get("labels", {}).get(DEPLOYMENT_LABEL) != owner:
                continue
            if kind == "HTTPRoute":
                refs = [b for rule in obj["spec"].get("rules", []) for b in rule.get("backendRefs", [])]
                return {str(services.get(b["name"])): int(b.get("weight", 1)) for b in refs if services.get(b["name"])}
            if kind == "VirtualService":
                routes = [d for h in obj["spec"].get("http", []) for d in h.get("route", [])]
                out: dict[str, int] = {}
                for d in routes:
                    host = d["destination"]["host"].split(".")[0]
                    if services.get(host):
                        out[str(services[host])] = int(d.get("weight", 0))
                return out
        return None
