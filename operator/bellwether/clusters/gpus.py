"""The GPUs a cluster has free for one revision's pods: each node's allocatable less what the pods bound
to it request, on the nodes those pods may run on.

Read only before a surge (`rollout.capacity`): one list of nodes and one of the pods that hold
resources, with the field selector kube-scheduler's own informer uses for assigned pods. Read again
once CACHE_SECONDS old, or once REREAD_SECONDS old when the operator has written to the cluster since
(its own surges take GPUs); so many ModelDeployments surging at once share a read every few seconds.
A cluster that refuses either (403: the installation is not granted nodes, or pods in every namespace)
is not asked again for FORBIDDEN_SECONDS (then asked again: permissions may have been granted since);
the check is off there meanwhile, and the log says so once.
"""

from __future__ import annotations

import asyncio
import logging
import math
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
    """One cluster's nodes and the GPUs its pods hold, as last read; one read in flight at a time."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    used: dict[str, dict[str, int]] = field(default_factory=dict)  # resource -> node -> held, from `pods`
    read_at: float = -math.inf
    forbidden_until: float = -math.inf
    refused: bool = False  # said once in the log; later refusals at debug level
    reading: asyncio.Future[None] | None = None

    def held(self, resource: str) -> dict[str, int]:
        if resource not in self.used:
            used: dict[str, int] = {}
            for p in self.pods:
                node = (p.get("spec") or {}).get("nodeName")
                if node and not p["metadata"].get("deletionTimestamp"):  # a pod being deleted frees its GPUs soon
                    used[node] = used.get(node, 0) + requested(p.get("spec") or {}, resource)
            self.used[resource] = used
        return self.used[resource]


_views: weakref.WeakKeyDictionary[KubeClient, _View] = weakref.WeakKeyDictionary()


async def free_gpus(client: KubeClient, pod: Mapping[str, Any], resource: str) -> tuple[int, ...] | None:
    """Free `resource` on each node a pod with spec `pod` may run on; None when the cluster will not say.
    Callers that find the view stale together wait for one read (the first starts it), not each its own."""
    view = _views.setdefault(client, _View())
    now = time.monotonic()
    if now < view.forbidden_until:
        return None
    age = now - view.read_at
    if age >= CACHE_SECONDS or (client.changed_at >= view.read_at and age >= REREAD_SECONDS):
        if view.reading is None or view.reading.done():
            view.reading = asyncio.ensure_future(_read(client, view, now))
        await asyncio.shield(view.reading)
    if view.read_at == -math.inf or time.monotonic() < view.forbidden_until:
        return None
    held = view.held(resource)
    return tuple(
        max(0, allocatable(n, resource) - held.get(n["metadata"]["name"], 0)) for n in view.nodes if may_run(n, pod)
    )


async def _read(client: KubeClient, view: _View, now: float) -> None:
    """Both lists at once; resourceVersion 0 serves them from the API server's watch cache, as
    informers' lists are. A failure keeps the last view (a refusal turns the check off for a while)."""
    assigned = {"fieldSelector": ASSIGNED, "resourceVersion": "0"}
    try:
        nodes, pods = await asyncio.gather(
            client.request("list", "/api/v1/nodes", params={"resourceVersion": "0"}),
            client.request("list", "/api/v1/pods", params=assigned),
        )
    except ApiError as e:
        if e.status in (401, 403):
            view.forbidden_until = now + FORBIDDEN_SECONDS
            say = log.debug if view.refused else log.info
            say("cluster %s: free GPUs are not checked before surges (%s %s)", client.cluster, e.status, e)
            view.refused = True
        else:
            log.warning("cluster %s: could not count its free GPUs: %s", client.cluster, e)
        return
    view.nodes, view.pods, view.used = (nodes or {}).get("items", []), (pods or {}).get("items", []), {}
    view.read_at = now


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
