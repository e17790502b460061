"""The world of `operator_scale.py`: API server stand-ins that stay cheap with thousands of objects, and
a kubelet stand-in that reacts to changes instead of polling.

The stand-in of the operator tests (`bellwether.sim.standins.apiserver`) scans every object on each LIST and
keeps every version of every object for watches; with 3,000 ModelDeployments that would make the
stand-in, not the operator, the thing being measured. Here LISTs go through a label index, and only
kinds someone watches are kept for watches. The HTTP protocol the operator sees is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from bellwether.sim.standins.apiserver import ApiServer, Key, Resource, matches

LabelKey = tuple[str, str | None, str, str]  # (plural, namespace, label, value)


def equalities(selector: str | None) -> list[tuple[str, str]]:
    """The `label=value` terms of a selector (the ones an index can answer)."""
    out = []
    for term in filter(None, (selector or "").split(",")):
        if "!=" not in term and "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            out.append((k, v))
    return out


class IndexedObjects(dict[Key, dict[str, Any]]):
    """The stand-in's object store, also indexed by kind and namespace, and by every label."""

    def __init__(self) -> None:
        super().__init__()
        self.by_kind: dict[tuple[str, str | None], set[Key]] = defaultdict(set)
        self.by_label: dict[LabelKey, set[Key]] = defaultdict(set)

    def _entries(self, key: Key, obj: dict[str, Any]) -> Iterable[LabelKey]:
        plural, namespace, _ = key
        for k, v in (obj.get("metadata", {}).get("labels") or {}).items():
            yield (plural, namespace, k, v)

    def __setitem__(self, key: Key, obj: dict[str, Any]) -> None:
        if key in self:
            self._forget(key)
        super().__setitem__(key, obj)
        self.by_kind[key[:2]].add(key)
        for entry in self._entries(key, obj):
            self.by_label[entry].add(key)

    def _forget(self, key: Key) -> None:
        self.by_kind[key[:2]].discard(key)
        for entry in self._entries(key, self[key]):
            self.by_label[entry].discard(key)

    def pop(self, key: Key, *default: Any) -> Any:
        if key in self:
            self._forget(key)
        return super().pop(key, *default)

    def __delitem__(self, key: Key) -> None:
        self._forget(key)
        super().__delitem__(key)

    def select(self, plural: str, namespace: str, selector: str | None) -> list[dict[str, Any]]:
        candidates = self.by_kind[(plural, namespace)]
        for k, v in equalities(selector):
            found = self.by_label.get((plural, namespace, k, v), set())
            if len(found) < len(candidates):
                candidates = found
        return [self[key] for key in candidates if matches(self[key]["metadata"].get("labels") or {}, selector)]


Listener = Callable[["ScaleApiServer", str, dict[str, Any]], None]


class ScaleApiServer(ApiServer):
    """The operator tests' API server stand-in with indexed LISTs; only `watched` kinds are kept for
    watches, and `listener` hears of every change (for the kubelet stand-in)."""

    def __init__(self, name: str, resources: list[Resource], watched: Iterable[str] = ()) -> None:
        super().__init__(name, resources=resources, objects=IndexedObjects())
        self.watched = frozenset(watched)
        self.listener: Listener | None = None
        self.answered: list[int] = []  # the HTTP status of each answer, in the order of `requests`

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = await super()._handle(request)
        self.answered.append(response.status)
        return response

    def _select(self, res: Resource, namespace: str | None, selector: str | None) -> list[dict[str, Any]]:
        if namespace is None or not isinstance(self.objects, IndexedObjects):
            return super()._select(res, namespace, selector)
        return self.objects.select(res.plural, namespace, selector)

    async def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        if self.listener is not None:
            self.listener(self, kind, obj)
        if obj.get("kind") in self.watched:
            await super()._emit(kind, obj)


def pod(dep: dict[str, Any], index: int) -> dict[str, Any]:
    """A running, ready pod of a Deployment, about the size of a real pod's metadata and status."""
    meta = dep["metadata"]
    resources = dep["spec"]["template"]["spec"]["containers"][0].get("resources") or {}
    return {
        "metadata": {
            "name": f"{meta['name']}-{index}",
            "namespace": meta["namespace"],
            "labels": dict(dep["spec"]["template"]["metadata"]["labels"]),
        },
        "spec": {
            "nodeName": f"gpu-node-{index}",
            "containers": [{"name": "server", "image": "vllm/vllm-openai", "resources": resources}],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": t, "status": "True"} for t in ("PodScheduled", "Initialized", "Ready")],
            "containerStatuses": [
                {"name": "server", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": "now"}}}
            ],
        },
    }


def gpu_node(index: int, product: str, gpus: int) -> dict[str, Any]:
    """A Ready GPU node that the pods of `pod` run on (`gpu-node-<index>`)."""
    name = f"gpu-node-{index}"
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "nvidia.com/gpu.product": product}},
        "spec": {},
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


class EventKubelet:
    """The Deployment controller and kubelets of every cluster: shortly after a Deployment changes, it
    has `replicas` ready pods. Driven by the stand-ins' change notices, so its cost follows the number
    of changes, not the number of objects."""

    def __init__(self, *servers: ScaleApiServer, delay: float = 0.5) -> None:
        self.delay = delay
        self.servers = {server.name: server for server in servers}
        self.pending: set[tuple[str, str, str]] = set()  # (server name, namespace, Deployment name)
        self._task: asyncio.Task[None] | None = None
        for server in servers:
            server.listener = self._notice

    def _notice(self, server: ScaleApiServer, kind: str, obj: dict[str, Any]) -> None:
        if obj.get("kind") != "Deployment":
            return
        if kind == "DELETED":
            self.pending.add((server.name, obj["metadata"]["namespace"], obj["metadata"]["name"]))
            return
        want = int(obj["spec"].get("replicas", 1))
        status = obj.get("status") or {}
        if status.get("readyReplicas") != want or status.get("replicas") != want:
            self.pending.add((server.name, obj["metadata"]["namespace"], obj["metadata"]["name"]))

    async def _settle(self, server: ScaleApiServer, namespace: str, name: str) -> None:
        dep = server.get("deployments", namespace, name)
        want = 0 if dep is None else int(dep["spec"].get("replicas", 1))
        for i in range(want):
            assert dep is not None
            if server.get("pods", namespace, f"{name}-{i}") is None:
                await server.put("pods", pod(dep, i))
        i = want
        while server.get("pods", namespace, f"{name}-{i}") is not None:
            await server.delete("pods", namespace, f"{name}-{i}")
            i += 1
        if dep is None:
            return
        ready = {"replicas": want, "readyReplicas": want, "availableReplicas": want, "updatedReplicas": want}
        with contextlib.suppress(KeyError):
            await server.patch("deployments", namespace, name, {"status": ready})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.delay)
            batch, self.pending = self.pending, set()
            for server, namespace, name in batch:
                await self._settle(self.servers[server], namespace, name)

    def __enter__(self) -> EventKubelet:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
