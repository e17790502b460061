"""A Kubernetes API server stand-in on aiohttp: enough of the real protocol for kopf and Bellwether.

It speaks HTTP like an API server: discovery, GET/LIST (label selectors)/WATCH (from a
resourceVersion), POST, PATCH (merge, strategic-as-merge, JSON patch, server-side apply with field
managers), DELETE with finalizers and deletionTimestamp, the status subresource, resourceVersion and
generation bumps on spec changes, optimistic concurrency (a `metadata.resourceVersion` in a patch is a
precondition), and garbage collection by ownerReferences. Tests read and change objects through its
methods, the way a controller or kubelet would; `controllers` plays kube-controller-manager, the
scheduler and the kubelets against it.

Deletion follows the API server and the garbage collector (kubernetes.io/docs/concepts/architecture/
garbage-collection, pkg/controller/garbagecollector): `propagationPolicy` Background (the default) removes
the object at once and its dependents after it; Foreground leaves it "deletion in progress", with a
`deletionTimestamp` and the `foregroundDeletion` finalizer, until every dependent blocking it
(`blockOwnerDeletion`) is gone; Orphan strips the dependents' owner references. A pod bound to a node is
deleted gracefully: it stays, terminating, for `pod_grace` seconds (or the request's
`gracePeriodSeconds`) until its kubelet finishes it; an unbound pod goes at once.

Namespaces follow the namespace controller (pkg/controller/namespace): a deleted namespace turns
Terminating (`deletionTimestamp`, `status.phase: Terminating`, the `kubernetes` finalizer in
`spec.finalizers`), refuses new content (403), and has every object in it deleted; it is removed once
nothing is left in it, however long the finalizers of what is left hold it.

Faults are injected at the HTTP level, where the operator would meet them: `Fault`s answer matching
requests with an error (409, 429 with Retry-After, 500), late, or not at all (the connection drops);
open watches can be cut and old resourceVersions expired (410 Gone); `on_write` sees every write
before it is served, which the crash tests use to kill the operator at a precise point.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml
from aiohttp import web

from bellwether.sim.standins import eviction, ownership
from bellwether.sim.standins.clock import now_text


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False  # has a status subresource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


CORE = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False),
    Resource("", "v1", "pods", "Pod", status=True),
    Resource("", "v1", "services", "Service", status=True),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "events", "Event"),
    Resource("", "v1", "nodes", "Node", namespaced=False, status=True),
    Resource("apps", "v1", "deployments", "Deployment", status=True),
    Resource("apps", "v1", "replicasets", "ReplicaSet", status=True),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", status=True),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False),
]
MODEL_DEPLOYMENTS = Resource("bellwether.dev", "v1alpha1", "modeldeployments", "ModelDeployment", status=True)
CLUSTER_ANALYSIS_TEMPLATES = Resource(
    "bellwether.dev", "v1alpha1", "clusteranalysistemplates", "ClusterAnalysisTemplate", namespaced=False
)
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", status=True)
VIRTUALSERVICES = Resource("networking.istio.io", "v1", "virtualservices", "VirtualService", status=True)
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", status=True)

Key = tuple[str, str | None, str]  # (plural, namespace, name)
# Apply bodies are YAML; libyaml parses them several times faster than PyYAML's pure-Python loader.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WRITES = ("POST", "PUT", "PATCH", "DELETE")
DROPPED = "Connection dropped"
FOREGROUND = "foregroundDeletion"  # the finalizer of an object whose dependents go first
MAX_GENERATED_NAME = 58  # generateName prefixes are cut to this, leaving room for 5 random characters


@dataclass
class Fault:
    """How the server (or the network before it) answers the requests this fault matches, instead of
    serving them: late (`delay`), with an error status, or by dropping the connection."""

    status: int = 0  # answer with this HTTP status (0: serve normally after the delay, unless `drop`)
    reason: str = ""
    message: str = ""
    retry_after: float | None = None  # seconds, sent as the Retry-After header
    delay: float = 0.0  # wait this long first (a slow server; longer than the client's timeout: a hang)
    drop: bool = False  # close the connection without an answer (the cluster is unreachable)
    method: str | None = None  # only requests with this HTTP method ("WRITE": any write)
    path: str = ""  # only requests whose path contains this
    watch: bool | None = None  # only watch requests (True), only other requests (False), or both (None)
    times: int | None = None  # how many requests it answers; None: until it is removed
    hits: int = 0

    def matches(self, request: web.Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method == "WRITE" and request.method not in WRITES:
            return False
        if self.method not in (None, "WRITE") and request.method != self.method:
            return False
        is_watch = request.query.get("watch") in ("true", "1")
        return self.path in request.path and (self.watch is None or self.watch == is_watch)


def _drop(request: web.Request) -> web.Response:
    """Close the connection under the client: it sees the server disconnect, with no answer."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500, reason=DROPPED)


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.headers = headers or {}


def owner_uids(obj: dict[str, Any], blocking: bool = False) -> set[str]:
    """The uids of an object's owners (only those it keeps from being deleted first, with `blocking`)."""
    refs = obj["metadata"].get("ownerReferences") or []
    return {r["uid"] for r in refs if r.get("uid") and (not blocking or r.get("blockOwnerDeletion"))}


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if op["op"] == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op["value"]:
                raise ApiError(422, "Invalid", f"test failed at {op['path']}")
        elif op["op"] == "add" and isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), op["value"])
        elif isinstance(parent, list):
            parent[int(last)] = op["value"]
        elif op["op"] in ("add", "replace"):
            parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
    return doc


def _unown(obj: Any, previous: Any, current: Any, others: list[Any] | None = None) -> Any:
    """Drop fields a manager applied before but no longer applies (server-side apply's removal rule),
    unless another applier applies them too (shared ownership: the field stays, owned by the others)."""
    if not isinstance(obj, dict) or not isinstance(previous, dict):
        return obj
    out = dict(obj)
    others = [o for o in others or [] if isinstance(o, dict)]
    for k, v in previous.items():
        if not isinstance(current, dict) or k not in current:
            if not any(k in o for o in others):
                out.pop(k, None)
        elif isinstance(v, dict):
            out[k] = _unown(out.get(k), v, current[k], [o.get(k) for o in others])
    return out


def matches(labels: dict[str, str], selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


# The fields a field selector may name, beyond metadata.name and metadata.namespace (every kind):
# the pod fields kube-apiserver's pod strategy indexes (pkg/registry/core/pod/strategy.go ToSelectableFields)
# and a node's spec.unschedulable. Absent fields read as "".
SELECTABLE = {
    "pods": {
        "spec.nodeName": ("spec", "nodeName"),
        "spec.restartPolicy": ("spec", "restartPolicy"),
        "spec.schedulerName": ("spec", "schedulerName"),
        "spec.serviceAccountName": ("spec", "serviceAccountName"),
        "status.phase": ("status", "phase"),
        "status.podIP": ("status", "podIP"),
        "status.nominatedNodeName": ("status", "nominatedNodeName"),
    },
    "nodes": {"spec.unschedulable": ("spec", "unschedulable")},
}


def field_selected(obj: dict[str, Any], plural: str, selector: str | None) -> bool:
    """Whether `obj` matches a field selector: `=`, `==` and `!=` terms only, on selectable fields; any
    other term is refused as the API server refuses it (400)."""
    if not selector:
        return True
    fields = {
        "metadata.name": obj["metadata"].get("name", ""),
        "metadata.namespace": obj["metadata"].get("namespace", ""),
    }
    for label, (part, key) in SELECTABLE.get(plural, {}).items():
        value = (obj.get(part) or {}).get(key)
        fields[label] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    for term in selector.split(","):
        label = term.split("!=", 1)[0] if "!=" in term else term.split("=", 1)[0]
        if "=" not in term:
            raise ApiError(400, "BadRequest", f'invalid selector: "{selector}"; can\'t understand "{term}"')
        if label not in fields:
            raise ApiError(400, "BadRequest", f"field label not supported: {label}")
    return matches(fields, selector)


@dataclass
class ApiServer:
    name: str
    resources: list[Resource] = field(default_factory=lambda: [*CORE, MODEL_DEPLOYMENTS, CLUSTER_ANALYSIS_TEMPLATES])
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    applied: dict[tuple[Key, str], Any] = field(default_factory=dict)  # (object, manager) -> last applied
    owners: dict[Key, dict[ownership.Path, str]] = field(default_factory=dict)  # field -> its last writer
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, content type)
    answers: list[tuple[float, str, str, int]] = field(default_factory=list)  # (loop time, method, path, status)
    url: str = ""
    _log: list[tuple[int, str, dict[str, Any], float]] = field(default_factory=list)  # (rv, type, object, when)
    _rv: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last_rv: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    _watches: set[asyncio.Task[Any]] = field(default_factory=set)
    faults: list[Fault] = field(default_factory=list)
    # Called with (method, path) before a write is served; returning False drops the request unserved.
    on_write: Callable[[str, str], bool] | None = None
    expired_before: int = 0  # watches from a resourceVersion older than this get 410 Gone
    running: ClassVar[builtins.list[ApiServer]] = []  # every stand-in started and not yet stopped
    pod_grace: float = 0.0  # seconds a deleted pod bound to a node stays terminating (0: gone at once)
    born: dict[str, float] = field(default_factory=dict)  # uid -> when it was created (time.monotonic)
    grace_until: dict[Key, float] = field(default_factory=dict)  # terminating pod -> when its kubelet ends it

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        ApiServer.running.append(self)
        return self.url

    async def stop(self) -> None:
        """Stop serving; open watch streams end at once (a real server would close them too)."""
        for task in list(self._watches):
            task.cancel()
        if self in ApiServer.running:
            ApiServer.running.remove(self)
        if self._runner is not None:
            await self._runner.cleanup()

    def drop_watches(self) -> None:
        """End every open watch stream, as an API server restart or a load balancer's idle cut does."""
        for task in list(self._watches):
            task.cancel()

    def expire_history(self) -> None:
        """Forget the change history: watches resuming from an earlier resourceVersion get 410 Gone
        and must list again (what etcd compaction does)."""
        self.expired_before = self._last_rv + 1

    def changes(self, plural: str) -> list[tuple[int, str, dict[str, Any]]]:
        """Every change to objects of `plural`, in order: (resourceVersion, ADDED|MODIFIED|DELETED, object)."""
        kind = self.resource(plural).kind
        return [(rv, t, o) for rv, t, o, _ in self._log if o.get("kind") == kind]

    def history(self, *plurals: str) -> builtins.list[tuple[float, int, str, dict[str, Any]]]:
        """Every change to objects of these kinds, in order, with when it happened (time.monotonic, the
        clock every stand-in shares, so histories of two clusters can be put side by side):
        (when, resourceVersion, ADDED|MODIFIED|DELETED, object)."""
        kinds = {self.resource(p).kind for p in plurals}
        return [(at, rv, t, o) for rv, t, o, at in self._log if o.get("kind") in kinds]

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "secret-token"}}],
            "contexts": [
                {"name": self.name, "context": {"cluster": self.name, "user": "tester", "namespace": namespace}}
            ],
            "current-context": self.name,
        }

    # -- what tests (acting as controllers and kubelets) use ---------------------------------------

    def resource(self, plural: str) -> Resource:
        for r in self.resources:
            if r.plural == plural:
                return r
        raise KeyError(plural)

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, namespace, name))

    def list(self, plural: str, namespace: str | None = None, selector: str | None = None) -> list[dict[str, Any]]:
        return [
            o
            for (p, ns, _), o in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
            if p == plural and (namespace is None or ns == namespace)
            if matches(o["metadata"].get("labels") or {}, selector)
        ]

    async def put(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        res = self.resource(plural)
        return await self._create(res, obj["metadata"].get("namespace") if res.namespaced else None, obj)

    async def patch(self, plural: str, namespace: str | None, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A merge patch as a controller would send it; `status` goes through the status subresource."""
        res = self.resource(plural)
        status = patch.pop("status", None)
        out = self.objects[(plural, namespace, name)]
        if patch:
            key = (plural, namespace, name)
            ownership.record(self.owners.setdefault(key, {}), patch, "kube-controller-manager")
            out = await self._update(res, key, lambda o: merge(o, patch), sub="")
        if status is not None:
            out = await self._update(res, (plural, namespace, name), lambda o: merge(o, {"status": status}), "status")
        return out

    async def delete(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
        grace: float | None = None,
    ) -> None:
        await self._delete(self.resource(plural), (plural, namespace, name), propagation, grace)

    async def finish(self, plural: str, namespace: str | None, name: str) -> None:
        """What a kubelet does once a terminating pod's containers stopped: the pod is removed."""
        key = (plural, namespace, name)
        if key in self.objects:
            await self._remove(key)

    # -- state changes ------------------------------------------------------------------------------

    async def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        async with self._changed:
            rv = int(obj["metadata"]["resourceVersion"])
            self._log.append((rv, kind, copy.deepcopy(obj), time.monotonic()))
            self._changed.notify_all()

    def _bump(self, obj: dict[str, Any]) -> None:
        self._last_rv = next(self._rv)
        obj["metadata"]["resourceVersion"] = str(self._last_rv)

    async def _create(self, res: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", "metadata.name: Required value")
            meta["name"] = meta["generateName"][:MAX_GENERATED_NAME] + uuid.uuid4().hex[:5]
        key = (res.plural, namespace, meta["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f'{res.plural} "{meta["name"]}" already exists')
        if namespace:
            meta["namespace"] = namespace
            home = self.objects.get(("namespaces", None, namespace))
            if home is not None and home["metadata"].get("deletionTimestamp"):
                message = f"unable to create new content in namespace {namespace} because it is being terminated"
                raise ApiError(403, "Forbidden", f'{res.plural} "{meta["name"]}" is forbidden: {message}')
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=now_text())
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        self._bump(obj)
        self.objects[key] = obj
        self.born[meta["uid"]] = time.monotonic()
        await self._emit("ADDED", obj)
        return obj

    async def _update(self, res: Resource, key: Key, change: Any, sub: str) -> dict[str, Any]:
        old = self.objects[key]
        new: dict[str, Any] = change(copy.deepcopy(old))
        if res.status and sub == "status":  # the status subresource changes status only
            new = {**copy.deepcopy(old), "status": new.get("status")}
            if new["status"] is None:
                new.pop("status")
        elif res.status:  # the main resource never changes status
            new = {k: v for k, v in new.items() if k != "status"}
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        for immutable in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp"):
            if immutable in old["metadata"]:
                new["metadata"][immutable] = old["metadata"][immutable]
        if old.get("metadata", {}).get("deletionTimestamp") is None:
            new["metadata"].pop("deletionTimestamp", None)
        if new == old:
            return old
        spec_old = {k: v for k, v in old.items() if k not in ("metadata", "status")}
        spec_new = {k: v for k, v in new.items() if k not in ("metadata", "status")}
        if spec_old != spec_new:
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        self._bump(new)
        self.objects[key] = new
        gone = new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers")
        if gone and key not in self.grace_until:  # a terminating pod stays until its kubelet ends it
            await self._remove(key)
        else:
            await self._emit("MODIFIED", new)
        return new

    async def _delete(
        self, res: Resource, key: Key, propagation: str = "Background", grace: float | None = None
    ) -> dict[str, Any]:
        obj = self.objects.get(key)
        if obj is None:
            raise ApiError(404, "NotFound", f'{res.plural} "{key[2]}" not found')
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):  # already being deleted: a pod's grace may only get shorter
            if key in self.grace_until and grace is not None:
                self.grace_until[key] = min(self.grace_until[key], time.monotonic() + grace)
                if grace <= 0:
                    await self._remove(key)
            return obj
        if res.plural == "namespaces":
            return await self._terminate(key)
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Orphan":
            await self._orphan(meta["uid"])
        elif propagation == "Foreground" and self._dependents(meta["uid"]) and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        grace = self.pod_grace if grace is None else grace
        graceful = res.plural == "pods" and grace > 0 and (obj.get("spec") or {}).get("nodeName")
        terminal = (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if not finalizers and not (graceful and not terminal):
            await self._remove(key)
            return obj
        obj = copy.deepcopy(obj)
        obj["metadata"]["deletionTimestamp"] = now_text(grace if graceful else 0.0)
        if graceful:
            obj["metadata"]["deletionGracePeriodSeconds"] = int(grace) if float(grace).is_integer() else grace
            self.grace_until[key] = time.monotonic() + grace
        if finalizers:
            obj["metadata"]["finalizers"] = finalizers
        self._bump(obj)
        self.objects[key] = obj
        await self._emit("MODIFIED", obj)
        if FOREGROUND in finalizers:  # the garbage collector deletes the dependents first
            for child_key in self._dependents(meta["uid"]):
                child = self.objects.get(child_key)
                if child is not None and not child["metadata"].get("deletionTimestamp"):
                    policy = "Foreground" if self._dependents(child["metadata"]["uid"]) else "Background"
                    await self._delete(self.resource(child_key[0]), child_key, policy)
            await self._release(key)
        return self.objects.get(key, obj)

    async def _terminate(self, key: Key) -> dict[str, Any]:
        """A namespace deleted: Terminating, its content deleted, gone once it is empty."""
        obj = copy.deepcopy(self.objects[key])
        obj["metadata"]["deletionTimestamp"] = now_text()
        obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        obj["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}
        self._bump(obj)
        self.objects[key] = obj
        await self._emit("MODIFIED", obj)
        for inside in [k for k in self.objects if k[1] == key[2]]:  # namespaces have no namespace
            if inside in self.objects and not self.objects[inside]["metadata"].get("deletionTimestamp"):
                await self._delete(self.resource(inside[0]), inside)
        await self._empty(key[2])
        return self.objects.get(key, obj)

    async def _empty(self, namespace: str) -> None:
        """The namespace controller's last step: a Terminating namespace with nothing left goes."""
        key = ("namespaces", None, namespace)
        ns = self.objects.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if not any(k[1] == namespace for k in self.objects):
            await self._remove(key)

    def _dependents(self, uid: str, blocking: bool = False) -> builtins.list[Key]:
        return [k for k, o in self.objects.items() if uid in owner_uids(o, blocking)]

    async def _orphan(self, uid: str) -> None:
        for child_key in self._dependents(uid):
            child = copy.deepcopy(self.objects[child_key])
            refs = [r for r in child["metadata"]["ownerReferences"] if r.get("uid") != uid]
            child["metadata"]["ownerReferences"] = refs
            if not refs:
                child["metadata"].pop("ownerReferences")
            self._bump(child)
            self.objects[child_key] = child
            await self._emit("MODIFIED", child)

    async def _release(self, key: Key) -> None:
        """Foreground deletion: once no dependent blocks the owner any more, its finalizer goes."""
        obj = self.objects.get(key)
        if obj is None or FOREGROUND not in (obj["metadata"].get("finalizers") or []):
            return
        if self._dependents(obj["metadata"]["uid"], blocking=True):
            return
        obj = copy.deepcopy(obj)
        obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != FOREGROUND]
        if not obj["metadata"]["finalizers"]:
            obj["metadata"].pop("finalizers")
            self.objects[key] = obj
            await self._remove(key)
            return
        self._bump(obj)
        self.objects[key] = obj
        await self._emit("MODIFIED", obj)

    async def _remove(self, key: Key) -> None:
        obj = self.objects.pop(key)
        self.applied = {k: v for k, v in self.applied.items() if k[0] != key}
        self.owners.pop(key, None)
        self.grace_until.pop(key, None)
        self._bump(obj)
        await self._emit("DELETED", obj)
        uid = obj["metadata"]["uid"]
        for child_key in self._dependents(uid):  # the garbage collector: dependents left with no owner
            child = self.objects.get(child_key)
            if child is None:
                continue
            alive = {o["metadata"]["uid"] for o in self.objects.values()} & owner_uids(child)
            if not alive:
                policy = "Foreground" if FOREGROUND in (child["metadata"].get("finalizers") or []) else "Background"
                await self._delete(self.resource(child_key[0]), child_key, policy)
        for owner_key, owner in list(self.objects.items()):  # owners waiting for their dependents
            if owner["metadata"]["uid"] in owner_uids(obj):
                await self._release(owner_key)
        if key[1] is not None:
            await self._empty(key[1])

    # -- HTTP -----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, request.content_type))
        response = await self._answer(request)
        status = 0 if response.reason == DROPPED else response.status  # 0: no answer reached the client
        self.answers.append((asyncio.get_running_loop().time(), request.method, request.path, status))
        return response

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            fault = next((f for f in self.faults if f.matches(request)), None)
            if fault is not None:
                fault.hits += 1
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.drop:
                    return _drop(request)
                if fault.status:
                    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                    raise ApiError(fault.status, fault.reason or "InternalError", fault.message, headers)
            writing = request.method in WRITES and self.on_write is not None
            if writing and not self.on_write(request.method, request.path):  # type: ignore[misc]
                return _drop(request)
            return await self._route(request)
        except ApiError as e:
            body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
            body |= {"message": e.message, "reason": e.reason, "code": e.code}
            return web.json_response(body, status=e.code, headers=e.headers)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return web.json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0-standin"})
        if parts == ["api"]:
            return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
        if parts == ["apis"]:
            return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()})
        if parts[:1] == ["api"]:
            group, version, rest = "", parts[1] if len(parts) > 1 else "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 2:
            if len(parts) == 2:
                found = [g for g in self._groups() if g["name"] == parts[1]]
                if not found:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **found[0]})
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        served = [r for r in self.resources if r.group == group and r.version == version]
        if not served:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return web.json_response(self._resource_list(group, version, served))
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        res = next((r for r in served if r.plural == rest[0]), None)
        if res is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not res.namespaced and namespace is not None:
            raise ApiError(404, "NotFound", f"{res.plural} is cluster-scoped")
        if len(rest) == 1:
            return await self._collection(request, res, namespace)
        return await self._object(request, res, (res.plural, namespace, rest[1]), rest[2] if len(rest) > 2 else "")

    async def _collection(self, request: web.Request, res: Resource, namespace: str | None) -> web.StreamResponse:
        """GET (list or watch) and POST on a collection."""
        if request.method == "GET":
            if request.query.get("watch") in ("true", "1"):
                return await self._watch(request, res, namespace)
            items = self._select(res, namespace, request.query.get("labelSelector"))
            by_field = request.query.get("fieldSelector")
            items = [o for o in items if field_selected(o, res.plural, by_field)]
            return web.json_response(
                {
                    "kind": f"{res.kind}List",
                    "apiVersion": res.api_version,
                    "metadata": {"resourceVersion": str(self._last_rv)},
                    "items": items,
                }
            )
        if request.method == "POST":
            return web.json_response(await self._create(res, namespace, await request.json()), status=201)
        raise ApiError(405, "MethodNotAllowed", request.method)

    async def _object(self, request: web.Request, res: Resource, key: Key, sub: str) -> web.StreamResponse:
        """GET, DELETE, PATCH on one object (or a subresource of it), and a pod's eviction."""
        name = key[2]
        if request.method == "POST" and res.plural == "pods" and sub == "eviction":
            return web.json_response(await self._evict(key), status=201)
        if request.method == "GET":
            if key not in self.objects:
                raise ApiError(404, "NotFound", f'{res.plural} "{name}" not found')
            return web.json_response(self.objects[key])
        if request.method == "DELETE":
            options = json.loads(await request.text() or "{}")
            propagation = request.query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
            grace = request.query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
            deleted = await self._delete(res, key, propagation, None if grace is None else float(grace))
            return web.json_response(deleted)
        if request.method == "PATCH":
            return web.json_response(await self._patch(request, res, key, sub))
        raise ApiError(405, "MethodNotAllowed", request.method)

    async def _evict(self, key: Key) -> dict[str, Any]:
        """POST pods/{name}/eviction: delete the pod unless its disruption budget refuses (`eviction.py`)."""
        pod = self.objects.get(key)
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{key[2]}" not found')
        refused = eviction.refusal(self.objects, pod)
        if refused is not None:
            raise ApiError(*refused)
        await self._delete(self.resource("pods"), key)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    async def _patch(self, request: web.Request, res: Resource, key: Key, sub: str) -> dict[str, Any]:
        ctype = request.content_type
        raw = await request.text()
        if ctype == "application/apply-patch+yaml":
            manager = request.query.get("fieldManager")
            if not manager:
                raise ApiError(422, "Invalid", "fieldManager is required for apply requests")
            body = yaml.load(raw, Loader=SAFE_LOADER)
            if body.get("kind") != res.kind or body.get("apiVersion") != res.api_version:
                raise ApiError(400, "BadRequest", "apply: apiVersion/kind do not match the URL")
            if body.get("metadata", {}).get("name") != key[2]:
                raise ApiError(400, "BadRequest", "apply: metadata.name does not match the URL")
            body = {k: v for k, v in body.items() if k != "status"} if not sub else body
            owners = self.owners.setdefault(key, {})
            if key in self.objects and request.query.get("force") != "true":
                taken = ownership.conflicts(self.objects[key], body, owners, manager)
                if taken:
                    raise ApiError(409, "Conflict", f"Apply failed with {len(taken)} conflict(s): {', '.join(taken)}")
            ownership.record(owners, body, manager)
            previous = self.applied.get((key, manager))
            self.applied[(key, manager)] = copy.deepcopy(body)
            entry = {"manager": manager, "operation": "Apply", "apiVersion": res.api_version, "fieldsType": "FieldsV1"}
            if key not in self.objects:
                created = merge({}, body)
                created.setdefault("metadata", {})["managedFields"] = [entry]
                return await self._create(res, key[1], created)

            others = [b for (k, m), b in self.applied.items() if k == key and m != manager]

            def apply(obj: dict[str, Any]) -> dict[str, Any]:
                out: dict[str, Any] = merge(_unown(obj, previous, body, others), body)
                fields = [f for f in out["metadata"].get("managedFields") or [] if f.get("manager") != manager]
                out["metadata"]["managedFields"] = [*fields, entry]
                return out

            return await self._update(res, key, apply, sub)
        if key not in self.objects:
            raise ApiError(404, "NotFound", f'{res.plural} "{key[2]}" not found')
        patch = json.loads(raw)
        expected = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
        if expected is not None and expected != self.objects[key]["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {res.plural}.{res.group} "{key[2]}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if isinstance(patch, dict) and not sub:
                manager = request.query.get("fieldManager") or "unknown"
                ownership.record(self.owners.setdefault(key, {}), patch, manager)
            return await self._update(res, key, lambda o: merge(o, patch), sub)
        if ctype == "application/json-patch+json":
            return await self._update(res, key, lambda o: json_patch(o, patch), sub)
        raise ApiError(415, "UnsupportedMediaType", ctype)

    def _select(self, res: Resource, namespace: str | None, selector: str | None) -> builtins.list[dict[str, Any]]:
        return [
            o
            for (p, ns, _), o in self.objects.items()
            if p == res.plural and (namespace is None or ns == namespace)
            if matches(o["metadata"].get("labels") or {}, selector)
        ]

    async def _watch(self, request: web.Request, res: Resource, namespace: str | None) -> web.StreamResponse:
        selector = request.query.get("labelSelector")
        by_field = request.query.get("fieldSelector")
        field_selected({"metadata": {}}, res.plural, by_field)  # refused before the stream starts
        since = request.query.get("resourceVersion")
        timeout = float(request.query.get("timeoutSeconds", "300"))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)

        def wanted(obj: dict[str, Any]) -> bool:
            ok_kind = obj.get("kind") == res.kind
            ok_ns = namespace is None or obj["metadata"].get("namespace") == namespace
            ok_fields = field_selected(obj, res.plural, by_field)
            return ok_kind and ok_ns and ok_fields and matches(obj["metadata"].get("labels") or {}, selector)

        async def events() -> AsyncIterator[tuple[str, dict[str, Any]]]:
            if since not in (None, "", "0") and int(since) < self.expired_before:
                gone = f"too old resource version: {since} ({self.expired_before})"
                status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
                yield "ERROR", status | {"message": gone, "reason": "Expired", "code": 410}
                return
            if since in (None, "", "0"):
                for o in self._select(res, namespace, selector):
                    if field_selected(o, res.plural, by_field):
                        yield "ADDED", o
                seen = self._last_rv
            else:
                seen = int(since)
            position = 0
            while True:
                while position < len(self._log):
                    rv, kind, obj, _ = self._log[position]
                    position += 1
                    if rv > seen and wanted(obj):
                        yield kind, obj
                async with self._changed:
                    await self._changed.wait_for(lambda: len(self._log) > position)  # noqa: B023

        async def pump() -> None:
            async for kind, obj in events():
                await resp.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        task = asyncio.ensure_future(asyncio.wait_for(pump(), timeout))
        self._watches.add(task)
        try:
            with contextlib.suppress(TimeoutError, ConnectionResetError, asyncio.CancelledError):
                await task
        finally:
            self._watches.discard(task)
        return resp

    def _groups(self) -> builtins.list[dict[str, Any]]:
        groups: dict[str, list[str]] = {}
        for r in self.resources:
            if r.group and r.version not in groups.setdefault(r.group, []):
                groups[r.group].append(r.version)
        return [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            }
            for g, vs in groups.items()
        ]

    def _resource_list(self, group: str, version: str, served: builtins.list[Resource]) -> dict[str, Any]:
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        items: list[dict[str, Any]] = []
        for r in served:
            base = {"singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind}
            items.append({"name": r.plural, **base, "verbs": verbs})
            if r.status:
                items.append({"name": f"{r.plural}/status", **base, "verbs": ["get", "patch", "update"]})
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}
