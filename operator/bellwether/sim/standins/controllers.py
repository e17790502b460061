"""What a real control plane does with the objects the operator writes, against an API server stand-in:
the Deployment, ReplicaSet and EndpointSlice controllers, the scheduler (with optional GPU nodes) and
the kubelets. The garbage collector lives in the stand-in itself (`apiserver`).

Modelled on the upstream controllers (kubernetes/kubernetes), step for step where it matters here:

- Deployment (pkg/controller/deployment: deployment_controller.go, rolling.go, recreate.go, sync.go,
  util/deployment_util.go): one ReplicaSet per distinct pod template, named `<deployment>-<hash>`, the
  hash (FNV-32a of the template, safe-encoded like `rand.SafeEncodeString`) added as the
  `pod-template-hash` label to its selector, template and pods. A scaling event (`desired-replicas`
  annotation differs) scales the one active ReplicaSet, or all of them proportionally; otherwise a
  template change rolls by `spec.strategy`: RollingUpdate in steps of `NewRSNewReplicas` (at most
  `replicas + maxSurge` in the ReplicaSets' sizes) and `reconcileOldReplicaSets` (never below
  `replicas - maxUnavailable` available; unhealthy old pods first), with `ResolveFenceposts` (maxSurge
  rounds up, maxUnavailable down, defaults 25%/25%, both 0 -> maxUnavailable 1); Recreate scales the
  old ones to 0 and waits until none of their pods runs. Status from the ReplicaSets like
  `calculateStatus` (replicas / updated / ready / available actual counts, unavailable = the sizes
  asked for minus available), with the Available and Progressing conditions.
- ReplicaSet (pkg/controller/replicaset/replica_set.go, pkg/controller/controller_utils.go): keeps
  `spec.replicas` active (not terminating, not finished) pods, creating them from the template (labels,
  annotations, spec; a controller owner reference that blocks owner deletion) and deleting the first
  of `ActivePodsWithRanks`: unassigned, then Pending < Unknown < Running, then not ready, then lower
  `controller.kubernetes.io/pod-deletion-cost`, then more pods of the same owner on the node, then
  ready for a shorter time, then more restarts, then newer (times compared on the logarithmic scale of
  LogarithmicScaleDown, ties by uid).
- Scheduler: a pod goes only to a node whose labels match its nodeSelector (NodeAffinity) and whose
  NoSchedule/NoExecute taints it tolerates (TaintToleration), with enough free `nvidia.com/gpu`
  (NodeResourcesFit); pods no node takes stay Pending with PodScheduled=False, reason Unschedulable,
  "0/2 nodes are available: 2 Insufficient nvidia.com/gpu." (other filters' counts first, as upstream
  lists them); the others go to the node with the most free GPUs (LeastAllocated). Nodes are Ready,
  labelled with their GPU product, and tainted `nvidia.com/gpu=present:NoSchedule` when the pool says
  so (as GKE taints GPU nodes). No pool: one node, unlimited.
- Kubelet: a bound pod runs at once (phase Running, a pod IP, containers started, not ready) and is
  Ready `delay` seconds after it was bound, unless its cluster is held; a terminating pod is finished
  once its grace period is over.
- EndpointSlice (pkg/controller/endpointslice, staging/src/k8s.io/endpointslice): for every Service
  with a selector, one slice labelled `kubernetes.io/service-name` and managed-by the controller, with
  every selected pod that has an IP and has not finished (`ShouldPodBeInEndpoints`, terminating
  included) and its conditions as `podToEndpoint` sets them: serving = pod Ready, terminating =
  deletionTimestamp set, ready = serving and not terminating. Selector-less Services are left to whoever
  writes their slices.

Every round (the `Kubelet` runs one each 0.1 s) each controller takes its objects in the order they last
changed, as its work queue would get them: a ReplicaSet scaled down before another is scaled up loses
its pod first.

Pods the controllers did not create and that came with a status of their own (a test playing the
kubelet for them) are left alone by the scheduler and the kubelet.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bellwether.sim.standins.apiserver import ApiError, ApiServer
from bellwether.sim.standins.clock import epoch, now_text

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
GPU = "nvidia.com/gpu"
SKIPPED_ANNOTATIONS = {REVISION, DESIRED, MAX_REPLICAS, "kubectl.kubernetes.io/last-applied-configuration"}
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}
DEFAULT_PROGRESS_DEADLINE = 600
DEFAULT_HISTORY_LIMIT = 10


@dataclass(frozen=True)
class GpuPool:
    """`nodes` nodes with `per_node` nvidia.com/gpu each, labelled `product`; `tainted`: with the taint
    nvidia.com/gpu=present:NoSchedule, so only pods that tolerate it land there."""

    nodes: int
    per_node: int
    product: str = "NVIDIA-H100-80GB-HBM3"
    tainted: bool = False


# -- small helpers ----------------------------------------------------------------------------------------


def _with_conditions(
    conditions: dict[str, dict[str, Any]], updates: list[tuple[str, str, str, str]], now: str
) -> dict[str, dict[str, Any]]:
    """A Deployment's conditions by type after `updates` (type, status, reason, message): an unchanged
    condition keeps its times, except that progress refreshes its lastUpdateTime (SetDeploymentCondition)."""
    for kind, value, reason, message in updates:
        current = conditions.get(kind)
        same = current is not None and current.get("status") == value and current.get("reason") == reason
        if same and reason != "ReplicaSetUpdated":  # only progress refreshes an unchanged condition
            continue
        since = current["lastTransitionTime"] if current and current.get("status") == value else now
        conditions[kind] = {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": message,
            "lastUpdateTime": now,
            "lastTransitionTime": since,
        }
    return conditions


def _endpoint(pod: dict[str, Any]) -> dict[str, Any]:
    """A pod as an EndpointSlice endpoint, its conditions as `podToEndpoint` sets them."""
    serving = is_ready(pod)
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    return {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {"ready": serving and not terminating, "serving": serving, "terminating": terminating},
        "nodeName": pod["spec"].get("nodeName"),
        "targetRef": {
            "kind": "Pod",
            "namespace": pod["metadata"]["namespace"],
            "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"],
        },
    }


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = total * int(value[:-1]) / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value)


def fenceposts(dep: dict[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a Deployment, resolved against its replicas (ResolveFenceposts)."""
    strategy = dep["spec"].get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    replicas = replicas_of(dep)
    surge = int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def replicas_of(obj: dict[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def template_hash(template: dict[str, Any], collisions: int | None = None) -> str:
    """controller.ComputeHash: FNV-32a of the pod template (here its canonical JSON), safe-encoded."""
    value = 0x811C9DC5
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collisions is not None:
        data += struct.pack("<I", collisions) + b"\0\0\0\0"
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in str(value))


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    labels = (out.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
    return out


def controller_uid(obj: dict[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def is_ready(pod: dict[str, Any]) -> bool:
    ready = condition(pod, "Ready")
    return ready is not None and ready.get("status") == "True"


def terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_active(pod: dict[str, Any]) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    return not terminal(pod) and not pod["metadata"].get("deletionTimestamp")


def is_available(pod: dict[str, Any], min_ready: int, now: float) -> bool:
    if not is_ready(pod):
        return False
    if min_ready <= 0:
        return True
    since = epoch((condition(pod, "Ready") or {}).get("lastTransitionTime"))
    return since is not None and since + min_ready <= now


def gpus_of(pod: dict[str, Any]) -> int:
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        wanted = (resources.get("requests") or {}).get(GPU, (resources.get("limits") or {}).get(GPU, 0))
        total += int(wanted)
    return total


def deletion_cost(pod: dict[str, Any]) -> int:
    try:
        return int((pod["metadata"].get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        return 0


def _log_rank(then: float, now: float) -> int:
    elapsed = (now - then) * 1e9
    return int(math.log2(elapsed)) if elapsed > 0 else -1


def deletion_order(pods: list[dict[str, Any]], related: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`pods` sorted the way a ReplicaSet picks the ones to delete first (controller.ActivePodsWithRanks
    with the rank of getPodsRankedByRelatedPodsOnSameNode)."""
    on_node: dict[str, int] = {}
    for pod in related:
        if is_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    now = time.time()

    def rank(pod: dict[str, Any]) -> int:
        return on_node.get((pod.get("spec") or {}).get("nodeName") or "", 0)

    def ready_since(pod: dict[str, Any]) -> float | None:
        return epoch((condition(pod, "Ready") or {}).get("lastTransitionTime")) if is_ready(pod) else None

    def restarts(pod: dict[str, Any]) -> int:
        return max(
            (int(c.get("restartCount", 0)) for c in (pod.get("status") or {}).get("containerStatuses") or []), default=0
        )

    def by_age(a: float | None, b: float | None, ua: str, ub: str) -> int:
        if a == b:
            return 0
        if a is None or b is None:  # empty time first
            return -1 if a is None else 1
        diff = _log_rank(a, now) - _log_rank(b, now)
        if diff == 0:
            return -1 if ua < ub else 1
        return -1 if diff < 0 else 1

    def less(a: dict[str, Any], b: dict[str, Any]) -> int:
        na, nb = (a.get("spec") or {}).get("nodeName") or "", (b.get("spec") or {}).get("nodeName") or ""
        if na != nb and (not na or not nb):
            return -1 if not na else 1
        pa = PHASE_ORDER.get((a.get("status") or {}).get("phase", "Pending"), 0)
        pb = PHASE_ORDER.get((b.get("status") or {}).get("phase", "Pending"), 0)
        if pa != pb:
            return -1 if pa < pb else 1
        if is_ready(a) != is_ready(b):
            return -1 if not is_ready(a) else 1
        if deletion_cost(a) != deletion_cost(b):
            return -1 if deletion_cost(a) < deletion_cost(b) else 1
        if rank(a) != rank(b):
            return -1 if rank(a) > rank(b) else 1
        ua, ub = a["metadata"]["uid"], b["metadata"]["uid"]
        if is_ready(a) and is_ready(b):
            found = by_age(ready_since(a), ready_since(b), ua, ub)
            if found:
                return found
        if restarts(a) != restarts(b):
            return -1 if restarts(a) > restarts(b) else 1
        return by_age(
            epoch(a["metadata"].get("creationTimestamp")), epoch(b["metadata"].get("creationTimestamp")), ua, ub
        )

    return sorted(pods, key=functools.cmp_to_key(less))


# -- one cluster's control plane ----------------------------------------------------------------------------


@dataclass
class ControlPlane:
    """The controllers, scheduler and kubelets of one cluster (one API server stand-in)."""

    server: ApiServer
    pool: GpuPool | None = None
    bound_at: dict[str, float] = field(default_factory=dict)  # pod uid -> when it was bound to a node
    _ips: int = 0

    def _queue(self, plural: str) -> list[dict[str, Any]]:
        """Objects in the order a work queue gets them: the one changed first, first."""
        return sorted(self.server.list(plural), key=lambda o: int(o["metadata"]["resourceVersion"]))

    async def step(self, delay: float, hold: bool) -> None:
        for dep in self._queue("deployments"):
            await self._guard(self.sync_deployment(dep))
        pods = self.server.list("pods")
        for rs in self._queue("replicasets"):
            await self._guard(self.manage_replicas(rs, pods))
        await self._guard(self.schedule())
        await self._guard(self.run_pods(delay, hold))
        pods = self.server.list("pods")
        for rs in self.server.list("replicasets"):
            await self._guard(self.replicaset_status(rs, pods))
        for dep in self.server.list("deployments"):
            await self._guard(self.deployment_status(dep))
        pods = self.server.list("pods")
        slices = self.server.list("endpointslices")
        for svc in self.server.list("services"):
            await self._guard(self.sync_endpoints(svc, pods, slices))

    @staticmethod
    async def _guard(work: Any) -> None:
        """Objects change under a controller (the operator writes meanwhile): like a controller, give up
        on this object for this round and see it again on the next."""
        with contextlib.suppress(KeyError, ApiError):
            await work

    # -- Deployment controller ------------------------------------------------------------------------

    def _owned(self, plural: str, owner: dict[str, Any]) -> list[dict[str, Any]]:
        ns, uid = owner["metadata"].get("namespace"), owner["metadata"]["uid"]
        return [o for o in self.server.list(plural, ns) if controller_uid(o) == uid]

    def _by_creation(self, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def key(o: dict[str, Any]) -> tuple[float, str]:
            return (self.server.born.get(o["metadata"]["uid"], 0.0), o["metadata"]["name"])

        return sorted(objs, key=key)

    def _split(self, dep: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(new ReplicaSet, old ones) of a Deployment: the new one has its pod template (FindNewReplicaSet)."""
        rss = self._by_creation(self._owned("replicasets", dep))
        want = dep["spec"].get("template") or {}
        new = next((rs for rs in rss if without_hash(rs["spec"]["template"]) == want), None)
        return new, [rs for rs in rss if rs is not new]

    async def sync_deployment(self, dep: dict[str, Any]) -> None:
        if dep["metadata"].get("deletionTimestamp") or dep["spec"].get("paused"):
            return  # syncStatusOnly
        new, olds = self._split(dep)
        want = replicas_of(dep)
        active = [rs for rs in [*olds, new] if rs is not None and replicas_of(rs) > 0]
        desired = [(rs["metadata"].get("annotations") or {}).get(DESIRED) for rs in active]
        if any(d is not None and int(d) != want for d in desired):
            await self._scale(dep, new, olds)
            return
        if (dep["spec"].get("strategy") or {}).get("type") == "Recreate":
            await self._recreate(dep, new, olds)
            return
        if new is None:
            new = await self._create_replicaset(dep, olds)
            if new is None:
                return
        all_rss = [*olds, new]
        if await self._reconcile_new(dep, new, all_rss):
            return
        if await self._reconcile_old(dep, new, [rs for rs in olds if replicas_of(rs) > 0], all_rss):
            return
        await self._cleanup(dep, olds)

    async def _create_replicaset(self, dep: dict[str, Any], olds: list[dict[str, Any]]) -> dict[str, Any] | None:
        meta = dep["metadata"]
        collisions = (dep.get("status") or {}).get("collisionCount")
        pod_hash = template_hash(dep["spec"].get("template") or {}, collisions)
        template = copy.deepcopy(dep["spec"].get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(dep["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        revision = 1 + max((int((rs["metadata"].get("annotations") or {}).get(REVISION, 0)) for rs in olds), default=0)
        surge, _ = fenceposts(dep)
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in SKIPPED_ANNOTATIONS}
        annotations |= {
            REVISION: str(revision),
            DESIRED: str(replicas_of(dep)),
            MAX_REPLICAS: str(replicas_of(dep) + surge),
        }
        if (dep["spec"].get("strategy") or {}).get("type") == "Recreate":
            replicas = replicas_of(dep)
        else:
            replicas = self._new_rs_replicas(dep, 0, olds)
        rs = {
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": annotations,
                "ownerReferences": [owner_ref(dep)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int(dep["spec"].get("minReadySeconds", 0)),
                "selector": selector,
                "template": template,
            },
        }
        try:
            created = await self.server.put("replicasets", rs)
        except ApiError as e:
            if e.code != 409:
                raise
            # A ReplicaSet of that name that is not this Deployment's (e.g. one of a deleted Deployment of
            # the same name, still being deleted): a hash collision, resolved with a new hash next round.
            status = {"collisionCount": int(collisions or 0) + 1}
            await self.server.patch("deployments", meta["namespace"], meta["name"], {"status": status})
            return None
        progressing = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated"}
        progressing["message"] = f'Created new replica set "{created["metadata"]["name"]}"'
        await self._set_condition(dep, progressing)
        await self.server.patch(
            "deployments", meta["namespace"], meta["name"], {"metadata": {"annotations": {REVISION: str(revision)}}}
        )
        return created

    def _new_rs_replicas(self, dep: dict[str, Any], new_size: int, others: list[dict[str, Any]]) -> int:
        """deploymentutil.NewRSNewReplicas for RollingUpdate."""
        surge, _ = fenceposts(dep)
        want = replicas_of(dep)
        current = new_size + sum(replicas_of(rs) for rs in others)
        if current >= want + surge:
            return new_size
        return new_size + min(want + surge - current, want - new_size)

    async def _resize(self, dep: dict[str, Any], rs: dict[str, Any], size: int) -> bool:
        """scaleReplicaSet: the size and the desired/max-replicas annotations."""
        surge, _ = fenceposts(dep)
        annotations = {DESIRED: str(replicas_of(dep)), MAX_REPLICAS: str(replicas_of(dep) + surge)}
        current = rs["metadata"].get("annotations") or {}
        if replicas_of(rs) == size and all(current.get(k) == v for k, v in annotations.items()):
            return False
        meta = rs["metadata"]
        patch = {"metadata": {"annotations": annotations}, "spec": {"replicas": max(0, size)}}
        await self.server.patch("replicasets", meta["namespace"], meta["name"], patch)
        return replicas_of(rs) != size

    async def _reconcile_new(self, dep: dict[str, Any], new: dict[str, Any], all_rss: list[dict[str, Any]]) -> bool:
        want = replicas_of(dep)
        size = replicas_of(new)
        if size == want:
            return False
        if size > want:
            return await self._resize(dep, new, want)
        others = [rs for rs in all_rss if rs is not new]
        return await self._resize(dep, new, self._new_rs_replicas(dep, size, others))

    async def _reconcile_old(
        self, dep: dict[str, Any], new: dict[str, Any], olds: list[dict[str, Any]], all_rss: list[dict[str, Any]]
    ) -> bool:
        """rolling.go reconcileOldReplicaSets: unhealthy old pods first, then as many as availability allows."""
        if not olds:
            return False
        all_pods = sum(replicas_of(rs) for rs in all_rss)
        _, max_unavailable = fenceposts(dep)
        min_available = replicas_of(dep) - max_unavailable
        new_unavailable = replicas_of(new) - int((new.get("status") or {}).get("availableReplicas") or 0)
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        scaled = 0
        sizes = {rs["metadata"]["uid"]: replicas_of(rs) for rs in all_rss}
        for rs in self._by_creation(olds):  # cleanupUnhealthyReplicas
            if scaled >= max_scaled_down:
                break
            available = int((rs.get("status") or {}).get("availableReplicas") or 0)
            size = sizes[rs["metadata"]["uid"]]
            if size == 0 or size == available:
                continue
            down = min(max_scaled_down - scaled, size - available)
            await self._resize(dep, rs, size - down)
            sizes[rs["metadata"]["uid"]] = size - down
            scaled += down
        available = sum(int((rs.get("status") or {}).get("availableReplicas") or 0) for rs in all_rss)
        if available > min_available:  # scaleDownOldReplicaSetsForRollingUpdate
            budget = available - min_available
            done = 0
            for rs in self._by_creation(olds):
                size = sizes[rs["metadata"]["uid"]]
                if done >= budget:
                    break
                if size == 0:
                    continue
                down = min(size, budget - done)
                await self._resize(dep, rs, size - down)
                done += down
            scaled += done
        return scaled > 0

    async def _recreate(self, dep: dict[str, Any], new: dict[str, Any] | None, olds: list[dict[str, Any]]) -> None:
        """recreate.go: every old pod gone before the new ReplicaSet gets any."""
        scaled = False
        for rs in olds:
            if replicas_of(rs) > 0:
                scaled = await self._resize(dep, rs, 0) or scaled
        if scaled:
            return
        old_uids = {rs["metadata"]["uid"] for rs in olds}
        if any(int((rs.get("status") or {}).get("replicas") or 0) for rs in olds):
            return
        for pod in self.server.list("pods", dep["metadata"]["namespace"]):
            if controller_uid(pod) in old_uids and not terminal(pod):
                return  # oldPodsRunning (terminating ones too)
        if new is None:
            await self._create_replicaset(dep, olds)
        elif replicas_of(new) != replicas_of(dep):
            await self._resize(dep, new, replicas_of(dep))

    async def _scale(self, dep: dict[str, Any], new: dict[str, Any] | None, olds: list[dict[str, Any]]) -> None:
        """sync.go scale: a scaling event goes to the one active ReplicaSet, or proportionally to all."""
        want = replicas_of(dep)
        ordered = [rs for rs in [new, *reversed(self._by_creation(olds))] if rs is not None]
        active = [rs for rs in ordered if replicas_of(rs) > 0]
        if len(active) <= 1:
            target = active[0] if active else (ordered[0] if ordered else None)
            if target is not None:
                await self._resize(dep, target, want)
            return
        if new is not None and self._saturated(dep, new):
            for rs in active:
                if rs is not new:
                    await self._resize(dep, rs, 0)
            return
        if (dep["spec"].get("strategy") or {}).get("type") == "Recreate":
            return
        surge, _ = fenceposts(dep)
        allowed = want + surge if want > 0 else 0
        to_add = allowed - sum(replicas_of(rs) for rs in active)
        born = self.server.born

        def key(rs: dict[str, Any]) -> tuple[int, float]:
            age = born.get(rs["metadata"]["uid"], 0.0)
            return (-replicas_of(rs), -age if to_add > 0 else age)  # larger first; newer (up) / older (down)

        active.sort(key=key)
        added = 0
        sizes: dict[str, int] = {}
        for rs in active:
            proportion = self._proportion(dep, rs, to_add, added) if to_add else 0
            sizes[rs["metadata"]["uid"]] = replicas_of(rs) + proportion
            added += proportion
        for i, rs in enumerate(active):
            size = sizes[rs["metadata"]["uid"]]
            if i == 0 and to_add:
                size = max(0, size + to_add - added)
            await self._resize(dep, rs, size)

    def _saturated(self, dep: dict[str, Any], rs: dict[str, Any]) -> bool:
        desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
        want = replicas_of(dep)
        available = int((rs.get("status") or {}).get("availableReplicas") or 0)
        return desired is not None and int(desired) == want == replicas_of(rs) == available

    def _proportion(self, dep: dict[str, Any], rs: dict[str, Any], to_add: int, added: int) -> int:
        """deploymentutil.GetProportion."""
        if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        surge, _ = fenceposts(dep)
        if replicas_of(dep) == 0:
            fraction = -replicas_of(rs)
        else:
            annotated = (rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS)
            base = int(annotated) if annotated else int((dep.get("status") or {}).get("replicas") or 0)
            size = replicas_of(rs) * (replicas_of(dep) + surge) / base if base else replicas_of(rs)
            fraction = math.floor(size + 0.5) - replicas_of(rs)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    async def _cleanup(self, dep: dict[str, Any], olds: list[dict[str, Any]]) -> None:
        """cleanupDeployment: keep `revisionHistoryLimit` old ReplicaSets that have no pods."""
        limit = int(dep["spec"].get("revisionHistoryLimit", DEFAULT_HISTORY_LIMIT))
        extra = len(olds) - limit
        for rs in self._by_creation(olds)[: max(0, extra)]:
            if replicas_of(rs) == 0 and not int((rs.get("status") or {}).get("replicas") or 0):
                await self.server.delete("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])

    async def deployment_status(self, dep: dict[str, Any]) -> None:
        """sync.go calculateStatus and progress.go syncRolloutStatus."""
        new, olds = self._split(dep)
        all_rss = [rs for rs in [*olds, new] if rs is not None]

        def total(key: str, rss: list[dict[str, Any]]) -> int:
            return sum(int((rs.get("status") or {}).get(key) or 0) for rs in rss)

        available = total("availableReplicas", all_rss)
        asked = sum(replicas_of(rs) for rs in all_rss)
        old = dep.get("status") or {}
        status: dict[str, Any] = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": total("replicas", all_rss),
            "updatedReplicas": total("replicas", [new] if new else []),
            "readyReplicas": total("readyReplicas", all_rss),
            "availableReplicas": available,
            "unavailableReplicas": max(0, asked - available),
        }
        if old.get("collisionCount") is not None:
            status["collisionCount"] = old["collisionCount"]
        conditions = {c["type"]: c for c in old.get("conditions") or []}
        _, max_unavailable = fenceposts(dep)
        if available >= replicas_of(dep) - max_unavailable:
            found = ("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            found = (
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        updates = [found]
        want = replicas_of(dep)
        complete = status["updatedReplicas"] == want == status["replicas"] == available
        name = new["metadata"]["name"] if new else ""
        if new is not None and complete:
            updates.append(
                ("Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.')
            )
        elif new is not None and self._progressed(old, status):
            updates.append(("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.'))
        elif new is not None and self._timed_out(dep, conditions.get("Progressing")):
            updates.append(
                ("Progressing", "False", "ProgressDeadlineExceeded", f'ReplicaSet "{name}" has timed out progressing.')
            )
        status["conditions"] = list(_with_conditions(conditions, updates, now_text()).values())
        if status != old:
            meta = dep["metadata"]
            await self.server.patch("deployments", meta["namespace"], meta["name"], {"status": status})

    @staticmethod
    def _progressed(old: dict[str, Any], new: dict[str, Any]) -> bool:
        """deploymentutil.DeploymentProgressing."""
        old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
        new_old = new["replicas"] - new["updatedReplicas"]
        return bool(
            new["updatedReplicas"] > int(old.get("updatedReplicas") or 0)
            or new_old < old_old
            or new["readyReplicas"] > int(old.get("readyReplicas") or 0)
            or new["availableReplicas"] > int(old.get("availableReplicas") or 0)
        )

    @staticmethod
    def _timed_out(dep: dict[str, Any], progressing: dict[str, Any] | None) -> bool:
        if progressing is None or progressing.get("reason") == "NewReplicaSetAvailable":
            return False
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            return True
        deadline = int(dep["spec"].get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE))
        since = epoch(progressing.get("lastUpdateTime"))
        return since is not None and since + deadline < time.time()

    async def _set_condition(self, dep: dict[str, Any], found: dict[str, Any]) -> None:
        latest = self.server.get("deployments", dep["metadata"]["namespace"], dep["metadata"]["name"])
        if latest is None:
            return
        now = now_text()
        conditions = [c for c in (latest.get("status") or {}).get("conditions") or [] if c["type"] != found["type"]]
        conditions.append({**found, "lastUpdateTime": now, "lastTransitionTime": now})
        await self.server.patch(
            "deployments",
            latest["metadata"]["namespace"],
            latest["metadata"]["name"],
            {"status": {"conditions": conditions}},
        )

    # -- ReplicaSet controller ------------------------------------------------------------------------

    async def manage_replicas(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            return
        uid, ns = rs["metadata"]["uid"], rs["metadata"]["namespace"]
        mine = [p for p in pods if controller_uid(p) == uid and p["metadata"].get("namespace") == ns]
        active = [p for p in mine if is_active(p)]
        diff = len(active) - replicas_of(rs)
        if diff < 0:
            template = rs["spec"]["template"]
            for _ in range(-diff):
                pod = {
                    "metadata": {
                        "generateName": f"{rs['metadata']['name']}-",
                        "namespace": ns,
                        "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                        "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                        "ownerReferences": [owner_ref(rs)],
                    },
                    "spec": copy.deepcopy(template.get("spec") or {}),
                }
                if not pod["metadata"]["annotations"]:
                    del pod["metadata"]["annotations"]
                await self.server.put("pods", pod)
        elif diff > 0:
            siblings = self._siblings(rs)
            related = [p for p in pods if controller_uid(p) in siblings]
            for pod in deletion_order(active, related)[:diff]:
                await self.server.delete("pods", ns, pod["metadata"]["name"])

    def _siblings(self, rs: dict[str, Any]) -> set[str]:
        """The uids of the ReplicaSets with the same owner (getIndirectlyRelatedPods)."""
        owner = controller_uid(rs)
        if owner is None:
            return {rs["metadata"]["uid"]}
        ns = rs["metadata"]["namespace"]
        return {o["metadata"]["uid"] for o in self.server.list("replicasets", ns) if controller_uid(o) == owner}

    async def replicaset_status(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        uid = rs["metadata"]["uid"]
        active = [p for p in pods if controller_uid(p) == uid and is_active(p)]
        labels = (rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
        now = time.time()
        min_ready = int(rs["spec"].get("minReadySeconds", 0))
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items()) for p in active
            ),
            "readyReplicas": sum(is_ready(p) for p in active),
            "availableReplicas": sum(is_available(p, min_ready, now) for p in active),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if status != rs.get("status"):
            meta = rs["metadata"]
            await self.server.patch("replicasets", meta["namespace"], meta["name"], {"status": status})

    # -- scheduler and kubelets -------------------------------------------------------------------------

    def nodes(self) -> dict[str, int | None]:
        """Node name -> GPUs it has (None: no limit)."""
        if self.pool is None:
            return {f"{self.server.name}-node-0": None}
        return {f"{self.server.name}-gpu-node-{i}": self.pool.per_node for i in range(self.pool.nodes)}

    @staticmethod
    def managed(pod: dict[str, Any]) -> bool:
        """Pods this control plane runs: a ReplicaSet's, or any created with no status of its own."""
        refs = pod["metadata"].get("ownerReferences") or []
        return any(r.get("kind") == "ReplicaSet" for r in refs) or not (pod.get("status") or {}).get("phase", "")

    async def _ensure_nodes(self) -> None:
        if self.pool is None or not any(r.plural == "nodes" for r in self.server.resources):
            return
        for name, gpus in self.nodes().items():
            if self.server.get("nodes", None, name) is None:
                capacity = {GPU: str(gpus), "cpu": "96", "memory": "1000Gi", "pods": "110"}
                labels = {"kubernetes.io/hostname": name, "nvidia.com/gpu.product": self.pool.product}
                node: dict[str, Any] = {"metadata": {"name": name, "labels": labels}, "spec": {}}
                if self.pool.tainted:
                    node["spec"]["taints"] = [{"key": GPU, "value": "present", "effect": "NoSchedule"}]
                ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastTransitionTime": now_text()}
                node["status"] = {"capacity": capacity, "allocatable": capacity, "conditions": [ready]}
                await self.server.put("nodes", node)

    async def schedule(self) -> None:
        await self._ensure_nodes()
        pods = self.server.list("pods")
        used: dict[str, int] = {}
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node and not terminal(pod):  # terminating pods hold their GPUs until they are gone
                used[node] = used.get(node, 0) + gpus_of(pod)
        nodes = self.nodes()
        born = self.server.born
        waiting = [p for p in pods if self.managed(p) and not (p.get("spec") or {}).get("nodeName") and is_active(p)]
        for pod in sorted(waiting, key=lambda p: born.get(p["metadata"]["uid"], 0.0)):
            need = gpus_of(pod)
            unmatched, untolerated, open_ = self._filter(pod, list(nodes))
            free = {n: (None if nodes[n] is None else nodes[n] - used.get(n, 0)) for n in open_}  # type: ignore[operator]
            fits = [n for n, left in free.items() if left is None or left >= need]
            meta = pod["metadata"]
            if not fits:
                why = [
                    f"{len(unmatched)} node(s) didn't match Pod's node affinity/selector" if unmatched else "",
                    f"{len(untolerated)} node(s) had untolerated taint {{{GPU}: present}}" if untolerated else "",
                    f"{len(open_)} Insufficient {GPU}" if open_ else "",
                ]
                message = f"0/{len(nodes)} nodes are available: {', '.join(w for w in why if w)}."
                unscheduled = {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                }
                current = condition(pod, "PodScheduled")
                if current is None or current.get("message") != message:
                    unscheduled["lastTransitionTime"] = now_text()
                    status = {"phase": "Pending", "conditions": [unscheduled]}
                    await self.server.patch("pods", meta["namespace"], meta["name"], {"status": status})
                continue
            node = max(fits, key=lambda n: (math.inf if free[n] is None else free[n], [-ord(c) for c in n]))
            used[node] = used.get(node, 0) + need
            await self.server.patch("pods", meta["namespace"], meta["name"], {"spec": {"nodeName": node}})
            self.bound_at[meta["uid"]] = time.monotonic()
            scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_text()}
            await self.server.patch(
                "pods", meta["namespace"], meta["name"], {"status": {"phase": "Pending", "conditions": [scheduled]}}
            )

    def _filter(self, pod: dict[str, Any], names: list[str]) -> tuple[list[str], list[str], list[str]]:
        """Nodes whose labels miss the pod's nodeSelector, those whose GPU taint it does not tolerate, and
        the rest: the scheduler's NodeAffinity and TaintToleration filters, for the labels and the one
        taint these nodes carry. No pool: its one node takes any pod."""
        if self.pool is None:
            return [], [], names
        spec = pod.get("spec") or {}
        wanted = spec.get("nodeSelector") or {}
        tolerates = any(
            t.get("operator") == "Exists"
            and t.get("key") in (None, "", GPU)
            and t.get("effect") in (None, "", "NoSchedule")
            for t in spec.get("tolerations") or []
        )
        unmatched, untolerated, open_ = [], [], []
        for name in names:
            node = self.server.get("nodes", None, name) or {}
            labels = node.get("metadata", {}).get("labels") or {}
            if any(labels.get(k) != v for k, v in wanted.items()):
                unmatched.append(name)
            elif (node.get("spec") or {}).get("taints") and not tolerates:
                untolerated.append(name)
            else:
                open_.append(name)
        return unmatched, untolerated, open_

    def _ip(self) -> str:
        self._ips += 1
        return f"10.244.{self._ips // 250}.{self._ips % 250 + 2}"

    async def run_pods(self, delay: float, hold: bool) -> None:
        now = time.monotonic()
        for key, until in list(self.server.grace_until.items()):
            if until <= now:
                await self.server.finish(*key)
        for pod in self.server.list("pods"):
            node = (pod.get("spec") or {}).get("nodeName")
            if not node or not self.managed(pod) or terminal(pod):
                continue
            meta, status = pod["metadata"], pod.get("status") or {}
            bound = self.bound_at.setdefault(meta["uid"], now)
            containers = (pod.get("spec") or {}).get("containers") or []
            stamp = now_text()
            due = not hold and not meta.get("deletionTimestamp") and now - bound >= delay
            if status.get("phase") != "Running":  # the containers start (and are ready at once with no delay)
                ip = self._ip()
                started = {
                    "phase": "Running",
                    "hostIP": "192.168.0.1",
                    "podIP": ip,
                    "podIPs": [{"ip": ip}],
                    "startTime": stamp,
                    "conditions": self._conditions(due, stamp),
                    "containerStatuses": [self._container(c, due, stamp) for c in containers],
                }
                await self.server.patch("pods", meta["namespace"], meta["name"], {"status": started})
            elif not is_ready(pod) and due:
                scheduled = condition(pod, "PodScheduled") or {}
                ready = {
                    "conditions": self._conditions(True, stamp, scheduled.get("lastTransitionTime")),
                    "containerStatuses": [
                        self._container(c, True, status.get("startTime") or stamp) for c in containers
                    ],
                }
                await self.server.patch("pods", meta["namespace"], meta["name"], {"status": ready})

    @staticmethod
    def _conditions(ready: bool, stamp: str, scheduled: str | None = None) -> list[dict[str, Any]]:
        value = "True" if ready else "False"
        extra = {} if ready else {"reason": "ContainersNotReady", "message": "containers with unready status: [server]"}
        return [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": scheduled or stamp},
            {"type": "Initialized", "status": "True", "lastTransitionTime": scheduled or stamp},
            {"type": "ContainersReady", "status": value, "lastTransitionTime": stamp, **extra},
            {"type": "Ready", "status": value, "lastTransitionTime": stamp, **extra},
        ]

    @staticmethod
    def _container(container: dict[str, Any], ready: bool, started: str) -> dict[str, Any]:
        return {
            "name": container.get("name", ""),
            "image": container.get("image", ""),
            "imageID": "",
            "ready": ready,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": started}},
        }

    # -- EndpointSlice controller -----------------------------------------------------------------------

    async def sync_endpoints(
        self, svc: dict[str, Any], pods: list[dict[str, Any]], slices: list[dict[str, Any]]
    ) -> None:
        meta = svc["metadata"]
        ns, name = meta["namespace"], meta["name"]
        ours = [
            s
            for s in slices
            if s["metadata"].get("namespace") == ns
            and (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name
            and (s["metadata"].get("labels") or {}).get(MANAGED_BY) == SLICE_CONTROLLER
        ]
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector or meta.get("deletionTimestamp"):
            for s in ours:
                await self.server.delete("endpointslices", ns, s["metadata"]["name"])
            return
        chosen = [
            p
            for p in pods
            if p["metadata"].get("namespace") == ns
            and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            and not terminal(p)
            and (p.get("status") or {}).get("podIP")
        ]
        endpoints = [_endpoint(pod) for pod in sorted(chosen, key=lambda p: p["metadata"]["name"])]
        ports = [self._port(p, chosen) for p in (svc.get("spec") or {}).get("ports") or []]
        labels = {**(meta.get("labels") or {}), SERVICE_NAME: name, MANAGED_BY: SLICE_CONTROLLER}
        body = {"addressType": "IPv4", "endpoints": endpoints, "ports": ports}
        if not ours:
            new = {
                "metadata": {
                    "generateName": f"{name}-",
                    "namespace": ns,
                    "labels": labels,
                    "ownerReferences": [owner_ref(svc)],
                }
            }
            await self.server.put("endpointslices", {**new, **body})
            return
        first, *extra = ours
        for s in extra:
            await self.server.delete("endpointslices", ns, s["metadata"]["name"])
        if any(first.get(k) != v for k, v in body.items()) or first["metadata"].get("labels") != labels:
            await self.server.patch(
                "endpointslices", ns, first["metadata"]["name"], {"metadata": {"labels": labels}, **body}
            )

    @staticmethod
    def _port(port: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, str):  # a named port: the number the pods give it
            found = [
                cp.get("containerPort")
                for p in pods
                for c in (p.get("spec") or {}).get("containers") or []
                for cp in c.get("ports") or []
                if cp.get("name") == target
            ]
            target = found[0] if found else None
        out = {"name": port.get("name", ""), "protocol": port.get("protocol", "TCP")}
        return out if target is None else {**out, "port": int(target)}
