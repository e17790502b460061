"""A simulated Kubernetes cluster with GPU nodes: the controllers that decide what a rollout does to
pods, GPUs and traffic, modelled on the real ones so the simulator punishes what a real cluster would.

It accepts the objects the operator applies (Deployments, Services and routes from
`bellwether.render`) and runs, to a fixed point after every change:

- the Deployment controller (`pkg/controller/deployment`): a Deployment's pods belong to the
  ReplicaSet of its current pod template (a hash of `spec.template`, like `pod-template-hash`). A
  template change rolls the Deployment per `spec.strategy`: RollingUpdate (maxSurge rounded up,
  maxUnavailable down, defaults 25%/25%, `NewRSNewReplicas` and `reconcileOldReplicaSets`) or
  Recreate (old pods gone first). A new ReplicaSet's pods are new pods: new names and uids, and the
  model loads again. A replica change while several ReplicaSets are active is a scaling event
  (`sync`): the only active one takes the new count, or they share it in proportion;
- the ReplicaSet controller: pod counts follow replicas; a scale-down deletes like
  `controller.ActivePodsWithRanks`: unscheduled first, then not ready, then the lower
  `controller.kubernetes.io/pod-deletion-cost`, then doubled up on a node, then the most recently
  ready and the newest (on the log2 scale of LogarithmicScaleDown, ties broken by uid);
- the scheduler: a Pending pod goes to a node whose labels match its `nodeSelector` and with enough
  free `nvidia.com/gpu` (CPU and memory are not modelled: on GPU nodes the GPUs run out first);
- the kubelet: a pod is Ready `load_seconds` after it is scheduled (the model load);
- endpoints: a Service's endpoints are the live, ready pods whose labels match its selector. With the
  `replicas` router the traffic split is the serving Service's endpoints by revision (pods have their
  template's labels plus what the operator sets on them); with a route it is the route's weights.

Deletion is immediate (no grace period: a deleted pod leaves the endpoints and frees its GPUs at
once). Pods keep their history (labels, scheduled, ready, deleted) so metrics and traffic over a past
window can be answered.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from bellwether.api.units import resolve_int_or_percent
from bellwether.render import names
from bellwether.render.routers import ROUTE_KINDS as ROUTE_KIND_ROUTERS
from bellwether.render.serving import SERVING_COST, PodView
from bellwether.rollout.types import RegionObservation, RevisionPods

GPU = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
DEPLOYMENT_LABEL = names.DEPLOYMENT
REVISION_LABEL = names.REVISION
ROLE_LABEL = names.ROLE
SERVING_LABEL = names.SERVING
DELETION_COST = names.DELETION_COST
TEMPLATE_HASH_LABEL = "pod-template-hash"
ROUTE_KINDS = tuple(ROUTE_KIND_ROUTERS)
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes' generated names (no vowels)
_MAX_PASSES = 1000  # controller passes per reconcile; a fixed point comes long before
_T = TypeVar("_T")


@dataclass
class Node:
    name: str
    gpus: int
    labels: dict[str, str] = field(default_factory=dict)
    used: int = 0
    unschedulable: bool = False  # cordoned (`spec.unschedulable`): the scheduler places no new pod here

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
    uid: str = ""
    replica_set: str = ""  # the ReplicaSet's name; its pod template's hash is in the labels
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    label_history: list[tuple[float, dict[str, str]]] = field(default_factory=list)  # (since, labels)
    node: str | None = None
    scheduled: float | None = None
    ready_at: float | None = None
    deleted: float | None = None

    def alive(self, t: float) -> bool:
        return self.created <= t and (self.deleted is None or t < self.deleted)

    def ready(self, t: float) -> bool:
        return self.ready_at is not None and self.ready_at <= t and (self.deleted is None or t < self.deleted)

    def labels_at(self, t: float) -> dict[str, str]:
        """The pod's labels at time `t` (the operator relabels pods; the Service saw them as they were)."""
        for since, labels in reversed(self.label_history):
            if since <= t:
                return labels
        return self.labels

    def serving(self, t: float | None = None) -> bool:
        labels = self.labels if t is None else self.labels_at(t)
        return labels.get(SERVING_LABEL) == "true"

    @property
    def deletion_cost(self) -> int:
        try:
            return int(self.annotations.get(DELETION_COST, "0"))
        except ValueError:
            return 0


@dataclass(frozen=True)
class Strategy:
    """A Deployment's `spec.strategy`, with Kubernetes' defaults."""

    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    max_surge: str = "25%"
    max_unavailable: str = "25%"

    def resolve(self, replicas: int) -> tuple[int, int]:
        """(surge, unavailable) pods, like `ResolveFenceposts`: surge rounds up, unavailable down, and
        both zero means one unavailable (a rollout must be able to progress)."""
        surge = resolve_int_or_percent(self.max_surge, replicas, round_up=True)
        unavailable = resolve_int_or_percent(self.max_unavailable, replicas, round_up=False)
        return (surge, 1) if surge == 0 and unavailable == 0 else (surge, unavailable)


@dataclass
class ReplicaSet:
    name: str
    template_hash: str
    labels: dict[str, str]  # the pod template's labels, given to every pod it creates
    gpus: int
    node_selector: dict[str, str]
    created: float
    replicas: int = 0
    desired: int = (
        0  # the Deployment's replicas when it last sized this set (`deployment.kubernetes.io/desired-replicas`)
    )


@dataclass
class DeploymentState:
    """What the cluster keeps of an applied Deployment: the fields the simulated controllers act on."""

    name: str
    owner: str  # the ModelDeployment, from the bellwether.dev/deployment label
    revision: str
    role: str
    replicas: int
    gpus: int
    node_selector: dict[str, str]
    template_hash: str = ""
    template_labels: dict[str, str] = field(default_factory=dict)
    strategy: Strategy = field(default_factory=Strategy)
    replica_sets: dict[str, ReplicaSet] = field(default_factory=dict)  # by template hash, oldest first


def _gpu_limit(pod_spec: Mapping[str, Any]) -> int:
    total = 0
    for c in pod_spec.get("containers", []):
        limits = c.get("resources", {}).get("limits", {})
        total += int(str(limits.get(GPU, 0)))
    return total


def _safe(digest: bytes, n: int) -> str:
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:n])


def template_hash(template: Mapping[str, Any]) -> str:
    """A stable hash of a pod template: what names a Deployment's ReplicaSet. Any change to the
    template (a label, the image, a node selector) is a new ReplicaSet, hence new pods."""
    return _safe(hashlib.sha256(json.dumps(template, sort_keys=True, default=str).encode()).digest(), 10)


def strategy_of(spec: Mapping[str, Any]) -> Strategy:
    given = spec.get("strategy") or {}
    if given.get("type") == "Recreate":
        return Strategy("Recreate")
    rolling = given.get("rollingUpdate") or {}
    return Strategy("RollingUpdate", str(rolling.get("maxSurge", "25%")), str(rolling.get("maxUnavailable", "25%")))


def deployment_state(obj: Mapping[str, Any]) -> DeploymentState:
    meta = obj["metadata"]
    template = obj["spec"]["template"]
    template_labels = dict(template.get("metadata", {}).get("labels", {}))
    labels = {**meta.get("labels", {}), **template_labels}
    pod_spec = template["spec"]
    return DeploymentState(
        name=meta["name"],
        owner=labels.get(DEPLOYMENT_LABEL, ""),
        revision=labels.get(REVISION_LABEL, ""),
        role=labels.get(ROLE_LABEL, ""),
        replicas=int(obj["spec"].get("replicas", 1)),
        gpus=_gpu_limit(pod_spec),
        node_selector=dict(pod_spec.get("nodeSelector", {})),
        template_hash=template_hash(template),
        template_labels=template_labels,
        strategy=strategy_of(obj["spec"]),
    )


def _log_rank(age: float) -> int:
    """LogarithmicScaleDown's bucket of an age: int(log2(nanoseconds)), -1 for none."""
    return int(math.log2(age * 1e9)) if age > 0 else -1


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


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
        # owner -> (since, weights by revision, or None once no route is applied)
        self.route_history: dict[str, list[tuple[float, dict[str, int] | None]]] = {}
        # owner -> (since, the serving Service's selector, or None once it is deleted)
        self.serving_history: dict[str, list[tuple[float, dict[str, str] | None]]] = {}
        self.unreachable = False
        self._ids = itertools.count(1)
        self._by_name: dict[str, Pod] = {}

    # -- the API a client sees ------------------------------------------------------------------

    def apply(self, objects: Iterable[Mapping[str, Any]], owner: str | None = None) -> None:
        """Server-side apply of a set of objects; with `owner`, that owner's Deployments, Services and
        routes not in the set are deleted (the plan says a revision not listed is to be removed)."""
        self._reachable()
        keep: set[tuple[str, str]] = set()
        for obj in objects:
            kind, name = obj["kind"], obj["metadata"]["name"]
            self.applied.append((self.now(), kind, name))
            keep.add((kind, name))
            if kind == "Deployment":
                self._apply_deployment(obj)
            else:
                self.objects[(kind, name)] = dict(obj)
        if owner is not None:
            self._prune(owner, keep)
        self._record_traffic_objects()
        self.reconcile()

    def delete_deployment(self, name: str) -> None:
        """Delete a Deployment; its ReplicaSets and pods go with it (garbage collection)."""
        self.deployments.pop(name, None)
        for pod in [p for p in self.pods if p.deployment == name and p.deleted is None]:
            self._delete(pod)
        self.reconcile()

    def delete_pod(self, pod_name: str) -> None:
        """Delete one pod (what an allowed eviction ends in); its ReplicaSet creates a replacement."""
        self._reachable()
        pod = self._by_name.get(pod_name)
        if pod is None or pod.deleted is not None:
            raise KeyError(f"pod {pod_name} not found in region {self.region}")
        self._delete(pod)
        self.reconcile()

    def set_serving(self, pod_name: str, serve: bool) -> None:
        """What the operator does to a pod with the `replicas` router: label it into the serving
        Service (and make it the last a ReplicaSet deletes), or take it out."""
        self._reachable()
        pod = self._by_name.get(pod_name)
        if pod is None or pod.deleted is not None:
            raise KeyError(f"pod {pod_name} not found in region {self.region}")
        labels, annotations = dict(pod.labels), dict(pod.annotations)
        if serve:
            labels[SERVING_LABEL] = "true"
            annotations[DELETION_COST] = SERVING_COST
        else:
            labels.pop(SERVING_LABEL, None)
            annotations.pop(DELETION_COST, None)
        pod.annotations = annotations
        if labels != pod.labels:
            pod.labels = labels
            pod.label_history.append((self.now(), dict(labels)))

    def gpu_capacity(self) -> int:
        return sum(n.gpus for n in self.nodes.values())

    def gpus_in_use(self) -> int:
        return sum(n.used for n in self.nodes.values())

    def free_gpus(self, node_selector: Mapping[str, str]) -> tuple[int, ...]:
        """Free GPUs on each node a pod with `node_selector` may be placed on (not cordoned)."""
        self._reachable()
        return tuple(n.free for n in self.nodes.values() if not n.unschedulable and _matches(n.labels, node_selector))

    def _reachable(self) -> None:
        if self.unreachable:
            raise ConnectionError(f"cluster of region {self.region} is unreachable")

    def _apply_deployment(self, obj: Mapping[str, Any]) -> None:
        state = deployment_state(obj)
        previous = self.deployments.get(state.name)
        if previous is not None:
            state.replica_sets = previous.replica_sets  # the same Deployment: its ReplicaSets stay
            if "replicas" not in obj["spec"]:
                state.replicas = previous.replicas  # an apply without replicas leaves them to their owner
        self.deployments[state.name] = state

    def scale(self, name: str, replicas: int) -> None:
        """A write to a Deployment's scale subresource (what an autoscaler does): replicas alone."""
        self._reachable()
        if name not in self.deployments:
            raise KeyError(f"deployment {name} not found in region {self.region}")
        self.deployments[name].replicas = replicas
        self.reconcile()

    def _prune(self, owner: str, keep: set[tuple[str, str]]) -> None:
        for name in [n for n, d in self.deployments.items() if d.owner == owner and ("Deployment", n) not in keep]:
            self.delete_deployment(name)
        for key in [k for k, o in self.objects.items() if _owner_of(o) == owner and k not in keep]:
            del self.objects[key]

    def _record_traffic_objects(self) -> None:
        """Remember each owner's route weights and serving selector as they change, so traffic at any
        past moment can be answered."""
        t = self.now()
        owners = {_owner_of(o) for o in self.objects.values()} | set(self.route_history) | set(self.serving_history)
        for owner in sorted(o for o in owners if o is not None):
            route = self._route_weights(owner)
            history = self.route_history.setdefault(owner, [])
            if (history[-1][1] if history else None) != route:
                history.append((t, route))
            selector = self._serving_selector(owner)
            served = self.serving_history.setdefault(owner, [])
            if (served[-1][1] if served else None) != selector:
                served.append((t, selector))

    # -- the controllers ------------------------------------------------------------------------

    def reconcile(self) -> None:
        """The Deployment controller, the ReplicaSet controller and the scheduler, until nothing
        changes: what a real cluster reaches a few hundred milliseconds after a change."""
        t = self.now()
        for _ in range(_MAX_PASSES):
            changed = False
            for d in list(self.deployments.values()):
                changed |= self._sync_deployment(d, t)
            for d in list(self.deployments.values()):
                for rs in list(d.replica_sets.values()):
                    changed |= self._sync_replica_set(d, rs, t)
            changed |= self._schedule_pending(t)
            if not changed:
                return

    def next_event(self, after: float, until: float) -> float | None:
        """The first moment in (after, until] a pod becomes ready: the controllers react to it."""
        times = [
            p.ready_at
            for p in self.pods
            if p.deleted is None and p.ready_at is not None and after < p.ready_at <= until
        ]
        return min(times, default=None)

    def _sync_deployment(self, d: DeploymentState, t: float) -> bool:
        new = d.replica_sets.get(d.template_hash)
        active = [rs for rs in d.replica_sets.values() if rs.replicas > 0]
        if any(rs.desired != d.replicas for rs in active):
            return self._scale(d, new, active)
        if d.strategy.type == "Recreate":
            return self._recreate(d, new, t)
        return self._rolling(d, new, t)

    def _size(self, d: DeploymentState, rs: ReplicaSet, replicas: int) -> bool:
        changed = rs.replicas != replicas or rs.desired != d.replicas
        rs.replicas, rs.desired = replicas, d.replicas
        return changed

    def _new_replica_set(self, d: DeploymentState, t: float) -> ReplicaSet:
        rs = ReplicaSet(
            name=f"{d.name}-{d.template_hash}",
            template_hash=d.template_hash,
            labels=dict(d.template_labels),
            gpus=d.gpus,
            node_selector=dict(d.node_selector),
            created=t,
            desired=d.replicas,
        )
        d.replica_sets[d.template_hash] = rs
        return rs

    def _scale(self, d: DeploymentState, new: ReplicaSet | None, active: list[ReplicaSet]) -> bool:
        """A replica change (`sync`): one active ReplicaSet takes it whole, or the active ones share the
        new total (replicas + surge while rolling) in proportion, the newest taking the remainder."""
        only = active[0] if len(active) == 1 else new if not active else None
        if only is not None:
            return self._size(d, only, d.replicas)
        if not active:
            return False
        surge = d.strategy.resolve(d.replicas)[0] if d.strategy.type == "RollingUpdate" else 0
        allowed = d.replicas + surge if d.replicas > 0 else 0
        current = sum(rs.replicas for rs in active)
        sizes = [rs.replicas * allowed // current for rs in active]
        sizes[-1] += allowed - sum(sizes)
        changed = False
        for rs, size in zip(active, sizes, strict=True):
            changed |= self._size(d, rs, size)
        return changed

    def _rolling(self, d: DeploymentState, new: ReplicaSet | None, t: float) -> bool:
        """`rolloutRolling`: scale the new ReplicaSet up within replicas + maxSurge, else the old ones
        down while replicas - maxUnavailable stay available."""
        surge, unavailable = d.strategy.resolve(d.replicas)
        if new is None:
            new = self._new_replica_set(d, t)
        if new.replicas > d.replicas:
            return self._size(d, new, d.replicas)
        if new.replicas < d.replicas:
            total = sum(rs.replicas for rs in d.replica_sets.values())
            up = min(d.replicas + surge - total, d.replicas - new.replicas)
            if up > 0:
                return self._size(d, new, new.replicas + up)
        return self._scale_down_old(d, new, unavailable, t)

    def _scale_down_old(self, d: DeploymentState, new: ReplicaSet, unavailable: int, t: float) -> bool:
        """`reconcileOldReplicaSets`: unhealthy old pods first, then old ones beyond minAvailable."""
        old = [rs for rs in d.replica_sets.values() if rs is not new and rs.replicas > 0]
        if not old:
            return False
        total = sum(rs.replicas for rs in d.replica_sets.values())
        min_available = d.replicas - unavailable
        budget = total - min_available - (new.replicas - self._available(new, t))
        if budget <= 0:
            return False
        done = 0
        for rs in old:  # oldest first
            unhealthy = rs.replicas - self._available(rs, t)
            n = min(budget - done, max(0, unhealthy))
            if n > 0:
                self._size(d, rs, rs.replicas - n)
                done += n
        available = sum(self._available(rs, t) for rs in d.replica_sets.values())
        todo = available - min_available
        for rs in old:
            n = min(rs.replicas, todo)
            if n > 0:
                self._size(d, rs, rs.replicas - n)
                todo -= n
                done += n
        return done > 0

    def _recreate(self, d: DeploymentState, new: ReplicaSet | None, t: float) -> bool:
        """`rolloutRecreate`: every old pod is gone before the new ReplicaSet gets any."""
        old = [rs for rs in d.replica_sets.values() if rs is not new]
        if any(rs.replicas > 0 for rs in old):
            return any([self._size(d, rs, 0) for rs in old if rs.replicas > 0])
        if any(p.replica_set in {rs.name for rs in old} for p in self._live(d.name)):
            return False
        return self._size(d, new or self._new_replica_set(d, t), d.replicas)

    def _available(self, rs: ReplicaSet, t: float) -> int:
        return sum(1 for p in self.pods if p.replica_set == rs.name and p.ready(t))

    def _sync_replica_set(self, d: DeploymentState, rs: ReplicaSet, t: float) -> bool:
        live = [p for p in self.pods if p.replica_set == rs.name and p.deleted is None]
        if len(live) < rs.replicas:
            for _ in range(rs.replicas - len(live)):
                self._create_pod(d, rs, t)
            return True
        if len(live) > rs.replicas:
            for pod in self._deletion_order(d, live, t)[: len(live) - rs.replicas]:
                self._delete(pod)
            return True
        return False

    def _create_pod(self, d: DeploymentState, rs: ReplicaSet, t: float) -> Pod:
        n = next(self._ids)
        uid = str(uuid.UUID(bytes=hashlib.sha256(f"{self.region}/{n}".encode()).digest()[:16], version=4))
        name = f"{rs.name}-"[:58] + _safe(hashlib.sha256(uid.encode()).digest(), 5)  # like generateName
        while name in self._by_name:
            name = name[:-5] + _safe(hashlib.sha256(name.encode()).digest(), 5)
        labels = {**rs.labels, TEMPLATE_HASH_LABEL: rs.template_hash}
        pod = Pod(
            name,
            d.owner,
            d.name,
            d.revision,
            rs.gpus,
            dict(rs.node_selector),
            created=t,
            uid=uid,
            replica_set=rs.name,
            labels=labels,
            label_history=[(t, dict(labels))],
        )
        self.pods.append(pod)
        self._by_name[name] = pod
        return pod

    def _deletion_order(self, d: DeploymentState, pods: list[Pod], t: float) -> list[Pod]:
        """The pods a ReplicaSet deletes first, as `controller.ActivePodsWithRanks` sorts them."""
        on_node: dict[str | None, int] = {}
        for p in self._live(d.name):
            on_node[p.node] = on_node.get(p.node, 0) + 1

        def cmp(a: Pod, b: Pod) -> int:
            return _deletion_cmp(a, b, on_node, t)

        return sorted(pods, key=functools.cmp_to_key(cmp))

    def _schedule_pending(self, t: float) -> bool:
        placed = False
        for pod in self.pods:
            if pod.deleted is None and pod.node is None:
                placed |= self._schedule(pod, t)
        return placed

    def _schedule(self, pod: Pod, t: float) -> bool:
        for node in sorted(self.nodes.values(), key=lambda n: (n.free, n.name)):  # bin-pack: fullest first
            if not node.unschedulable and node.free >= pod.gpus and _matches(node.labels, pod.node_selector):
                node.used += pod.gpus
                pod.node, pod.scheduled = node.name, t
                pod.ready_at = t + self.load_seconds(pod.revision)
                return True
        return False

    def _delete(self, pod: Pod) -> None:
        pod.deleted = self.now()
        if pod.node is not None:
            self.nodes[pod.node].used -= pod.gpus

    def _live(self, deployment: str) -> list[Pod]:
        return [p for p in self.pods if p.deployment == deployment and p.deleted is None]

    # -- what an observer sees ------------------------------------------------------------------

    def unschedulable_reason(self, pod: Pod) -> str:
        matching = [n for n in self.nodes.values() if _matches(n.labels, pod.node_selector)]
        if not matching:
            selector = ",".join(f"{k}={v}" for k, v in sorted(pod.node_selector.items()))
            return f"0/{len(self.nodes)} nodes match node selector {selector}"
        open_ = [n for n in matching if not n.unschedulable]
        cordoned = f"{len(matching) - len(open_)} matching nodes are unschedulable (cordoned)"
        if not open_:
            return f"0/{len(self.nodes)} nodes are available: {cordoned}"
        also = f", {cordoned}" if len(open_) < len(matching) else ""
        return (
            f"0/{len(self.nodes)} nodes are available: {len(open_)} matching nodes have too few free {GPU} "
            f"(pod needs {pod.gpus}, most free {max(n.free for n in open_)}){also}"
        )

    def ready_pods(self, owner: str, t: float) -> dict[str, list[Pod]]:
        """Ready pods by revision at any past or present time `t`."""
        out: dict[str, list[Pod]] = {}
        for p in self.pods:
            if p.owner == owner and p.ready(t):
                out.setdefault(p.revision, []).append(p)
        return out

    def live_pods(self, owner: str, t: float) -> list[Pod]:
        """Pods that exist at `t` (Pending ones too): what `maxSurge` caps."""
        return [p for p in self.pods if p.owner == owner and p.alive(t)]

    def pod_views(self, owner: str) -> list[PodView]:
        """The owner's live pods as the operator's serving choice sees them."""
        t = self.now()
        return [
            PodView(p.name, p.revision, p.ready(t), p.serving(), f"{p.created:016.3f}")
            for p in self.pods
            if p.owner == owner and p.deleted is None
        ]

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
                serving=sum(1 for p in live if p.ready(t) and p.serving()),
            )
        return RegionObservation(self.region, pods=pods, weights=self.weights(owner, t))

    # -- traffic ----------------------------------------------------------------------------------

    def route_at(self, owner: str, t: float) -> dict[str, int] | None:
        """The route's weights by revision at `t`, None when no route was applied."""
        return _at(self.route_history.get(owner, []), t)

    def endpoints(self, owner: str, t: float) -> list[Pod]:
        """The serving Service's endpoints at `t`: live, ready pods its selector matched then."""
        selector = _at(self.serving_history.get(owner, []), t)
        if selector is None:
            return []
        return [p for p in self.pods if p.owner == owner and p.ready(t) and _matches(p.labels_at(t), selector)]

    def serving_pods(self, owner: str, t: float) -> dict[str, list[Pod]]:
        """The pods receiving requests at `t`, by revision: a routed revision's ready pods (its Service's
        endpoints), else the serving Service's endpoints."""
        route = self.route_at(owner, t)
        if route is not None:
            ready = self.ready_pods(owner, t)
            return {r: ready[r] for r, w in route.items() if w > 0 and r in ready}
        out: dict[str, list[Pod]] = {}
        for p in self.endpoints(owner, t):
            out.setdefault(p.revision, []).append(p)
        return out

    def shares(self, owner: str, t: float) -> dict[str, float]:
        """Each revision's fraction of the region's requests at `t`: the route's weights, or with the
        `replicas` router its part of the serving Service's endpoints (requests spread evenly)."""
        route = self.route_at(owner, t)
        if route is not None:
            total = sum(route.values())
            return {r: w / total for r, w in route.items()} if total else {}
        counts: dict[str, int] = {}
        for p in self.endpoints(owner, t):
            counts[p.revision] = counts.get(p.revision, 0) + 1
        n = sum(counts.values())
        return {r: c / n for r, c in counts.items()}

    def weights(self, owner: str, t: float) -> dict[str, int]:
        """The achieved split in percent by revision at `t`: a route's weights if one was applied, else
        each revision's share of the serving Service's endpoints."""
        route = self.route_at(owner, t)
        if route is not None:
            return dict(route)
        return {r: round(100 * s) for r, s in self.shares(owner, t).items()}

    def _serving_selector(self, owner: str) -> dict[str, str] | None:
        """The selector of the owner's serving Service: the Service labelled with the owner but with no
        revision (`<name>-<region>`)."""
        for (kind, _), obj in self.objects.items():
            labels = obj.get("metadata", {}).get("labels", {})
            if kind == "Service" and labels.get(DEPLOYMENT_LABEL) == owner and REVISION_LABEL not in labels:
                return dict(obj.get("spec", {}).get("selector") or {})
        return None

    def _route_weights(self, owner: str) -> dict[str, int] | None:
        services = {
            name: obj.get("spec", {}).get("selector", {}).get(REVISION_LABEL)
            for (kind, name), obj in self.objects.items()
            if kind == "Service"
        }
        for (kind, _), obj in self.objects.items():
            if kind not in ROUTE_KINDS or _owner_of(obj) != owner:
                continue
            if kind == "HTTPRoute":
                refs = [b for rule in obj["spec"].get("rules", []) for b in rule.get("backendRefs", [])]
                return {str(services.get(b["name"])): int(b.get("weight", 1)) for b in refs if services.get(b["name"])}
            routes = [d for h in obj["spec"].get("http", []) for d in h.get("route", [])]
            out: dict[str, int] = {}
            for d in routes:
                host = d["destination"]["host"].split(".")[0]
                if services.get(host):
                    out[str(services[host])] = int(d.get("weight", 0))
            return out
        return None


def _owner_of(obj: Mapping[str, Any]) -> str | None:
    label: str | None = obj.get("metadata", {}).get("labels", {}).get(DEPLOYMENT_LABEL)
    return label


def _at(history: list[tuple[float, _T]], t: float) -> _T | None:
    found: _T | None = None
    for since, value in history:
        if since > t:
            break
        found = value
    return found


def _deletion_cmp(a: Pod, b: Pod, on_node: Mapping[str | None, int], t: float) -> int:
    """`ActivePodsWithRanks.Less` as a comparison: negative when `a` is deleted before `b`."""
    keys: list[tuple[Any, Any]] = [
        (a.node is not None, b.node is not None),  # unscheduled first
        (a.ready(t), b.ready(t)),  # then not ready
        (a.deletion_cost, b.deletion_cost),  # then the lower deletion cost
        (-on_node.get(a.node, 0), -on_node.get(b.node, 0)),  # then doubled up on a node
    ]
    for x, y in keys:
        if x != y:
            return -1 if x < y else 1
    if a.ready(t) and b.ready(t) and a.ready_at != b.ready_at:  # then the most recently ready
        ra, rb = _log_rank(t - (a.ready_at or t)), _log_rank(t - (b.ready_at or t))
        return (ra - rb) or (-1 if a.uid < b.uid else 1)
    if a.created != b.created:  # then the newest
        ca, cb = _log_rank(t - a.created), _log_rank(t - b.created)
        return (ca - cb) or (-1 if a.uid < b.uid else 1)
    return 0
