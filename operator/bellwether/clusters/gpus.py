"""The GPUs a cluster has free for one revision's pods: each node's allocatable less what the pods bound
to it request, on the nodes those pods may run on.

Read only before a surge (`rollout.capacity`): one list of nodes and one of the pods that hold
resources, with the field selector kube-scheduler's own informer uses for assigned pods. Read again
once CACHE_SECONDS old, or once REREAD_SECONDS old when the operator has written to the cluster since
(its own surges take GPUs); so many ModelDeployments surging at once cost a read a second, not each. A cluster that refuses
either (403: the installation is not granted nodes, or pods in every namespace) is not asked again for
FORBIDDEN_SECONDS; the check is off there, and the log says so once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bellwether.clusters.client import ApiError, KubeClient

log = logging.getLogger("bellwether")

CACHE_SECONDS = 10.0
REREAD_SECONDS = 2.0
FORBIDDEN_SECONDS = 600.0
ASSIGNED = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


@dataclass
class _View:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    read_at: float = -1e18
    forbidden_until: float = -1e18


_views: weakref.WeakKeyDictionary[KubeClient, _View] = weakref.WeakKeyDictionary()


async def free_gpus(client: KubeClient, pod: Mapping[str, Any], resource: str) -> tuple[int, ...] | None:
    """Free `resource` on each node a pod with spec `pod` may run on; None when the cluster will not say."""
    view = _views.setdefault(client, _View())
    async with view.lock:
        now = time.monotonic()
        if now < view.forbidden_until:
            return None
        age = now - view.read_at
        if age >= CACHE_SECONDS or (client.changed_at >= view.read_at and age >= REREAD_SECONDS):
            try:
                # resourceVersion 0: served from the API server's watch cache, as informers' lists are
                nodes = await client.request("list", "/api/v1/nodes", params={"resourceVersion": "0"}) or {}
                assigned = {"fieldSelector": ASSIGNED, "resourceVersion": "0"}
                pods = await client.request("list", "/api/v1/pods", params=assigned) or {}
            except ApiError as e:
                if e.status not in (401, 403):
                    raise
                view.forbidden_until = now + FORBIDDEN_SECONDS
                log.info("cluster %s: free GPUs are not checked before surges (%s %s)", client.cluster, e.status, e)
                return None
            view.nodes, view.pods, view.read_at = nodes.get("items", []), pods.get("items", []), now
    used: dict[str, int] = {}
    for p in view.pods:
        node = (p.get("spec") or {}).get("nodeName")
        if node and not p["metadata"].get("deletionTimestamp"):  # a pod being deleted frees its GPUs soon
            used[node] = used.get(node, 0) + requested(p.get("spec") or {}, resource)
    return tuple(
        max(0, allocatable(n, resource) - used.get(n["metadata"]["name"], 0)) for n in view.nodes if may_run(n, pod)
    )


def allocatable(node: Mapping[str, Any], resource: str) -> int:
    value = ((node.get("status") or {}).get("allocatable") or {}).get(resource, "0")
    try:
        return int(value)
    except ValueError:  # extended resources are whole numbers; anything else offers none
        return 0


def requested(pod: Mapping[str, Any], resource: str) -> int:
    """What the scheduler counts: the containers' sum, or the largest init container if larger. For an
    extended resource a request defaults to its limit."""

    def of(container: Mapping[str, Any]) -> int:
        res = container.get("resources") or {}
        value = (res.get("requests") or {}).get(resource, (res.get("limits") or {}).get(resource, 0))
        try:
            return int(value)
        except ValueError:
            return 0

    running = sum(of(c) for c in pod.get("containers") or [])
    return max([running, *(of(c) for c in pod.get("initContainers") or [])])


def may_run(node: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Ready, not cordoned, its labels matching the pod's nodeSelector, its blocking taints tolerated."""
    status, meta = node.get("status") or {}, node.get("metadata") or {}
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []):
        return False
    labels = meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod.get("nodeSelector") or {}).items()):
        return False
    tolerations = pod.get("tolerations") or []
    return all(tolerated(t, tolerations) for t in (node.get("spec") or {}).get("taints") or [])


def tolerated(taint: Mapping[str, Any], tolerations: Sequence[Mapping[str, Any]]) -> bool:
    """Kubernetes' toleration rules; a PreferNoSchedule taint never keeps a pod off."""
    effect = taint.get("effect")
    if effect not in BLOCKING_EFFECTS:
        return True
    for t in tolerations:
        if t.get("effect") and t["effect"] != effect:
            continue
        key = t.get("key") or ""
        if t.get("operator", "Equal") == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False
