"""Applying a region's plan and observing what came of it.

Apply is level-based and idempotent: server-side apply of every rendered object (field manager
`bellwether`), pod labels for the `replicas` router's serving membership, and deletion of our objects
in the region that the plan no longer lists. Only objects labelled as this ModelDeployment's in this
region are ever deleted. The order keeps two promises at every moment, not only at the end:
traffic moves first (Services, then routes and serving labels: pods join the serving Service before
others leave it), so no request goes to a pod about to be removed and no region serves with fewer pods; then Deployments shrink and go, and only then do others grow, so the region never
holds more pods than `replicas + maxSurge` asked for.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from bellwether.clusters.client import KINDS, ApiError, KubeClient, path_for
from bellwether.render import names
from bellwether.render.autoscaler import KIND as HPA
from bellwether.render.autoscaler import REPLICAS_MANAGER, Claim
from bellwether.render.routers import ROUTE_KINDS, ROUTERS
from bellwether.render.serving import PodView, Seen, pod_view, serving_patch
from bellwether.rollout.types import RegionObservation, RevisionPods

# Waiting reasons that mean a pod will not become ready by itself.
STUCK = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


# Budgets are applied with the routes, before any Deployment changes: a region starting a canary is
# protected from evictions before its first canary pod is asked for. Pruned with the Services, after
# their Deployments are gone.
BUDGET = "PodDisruptionBudget"
SERVICES, TRAFFIC, UNSERVE, SHRINK, PRUNE_DEPLOYMENTS, GROW, PRUNE_REST = range(7)


def _seen(obj: Mapping[str, Any], observed: RegionObservation | None) -> RevisionPods | None:
    return observed.pods.get(obj["metadata"]["labels"].get(names.REVISION, "")) if observed is not None else None


def _replicas(obj: Mapping[str, Any], claim: Claim | None, pods: RevisionPods | None) -> int:
    """The count a Deployment is applied with: its claim's, its own, or (left to the autoscaler) as seen."""
    if claim is not None:
        return claim.replicas
    if "replicas" not in obj["spec"]:
        return pods.desired if pods is not None else 1
    return int(obj["spec"]["replicas"])


def _apply_order(obj: Mapping[str, Any], observed: RegionObservation | None, claim: Claim | None = None) -> int:
    """Services, then routes and budgets (traffic), then Deployments that shrink, then those that grow or stay."""
    if obj["kind"] == "Service":
        return SERVICES
    if obj["kind"] != "Deployment":
        return TRAFFIC
    pods = _seen(obj, observed)
    return SHRINK if pods is not None and _replicas(obj, claim, pods) < pods.desired else GROW


# Unchanged objects are re-applied at least this often, so drift (an edit, a deletion by hand) is
# undone; sooner when the observation shows a Deployment missing or scaled by someone else.
RESYNC_SECONDS = 300.0


def resync_slot(selector: str, at: float) -> int:
    """Which RESYNC_SECONDS-long period `at` falls in, for one ModelDeployment's region: objects last
    applied in an earlier one are re-applied.

    Each region's periods start at an offset of their own, spread over RESYNC_SECONDS, so the re-applies
    of many ModelDeployments come steadily, a few at a time, however close together they were applied
    (every one of them when the operator starts, or a GitOps sync that changes all of them)."""
    offset = RESYNC_SECONDS * zlib.crc32(selector.encode()) / 2**32
    return int((at + offset) // RESYNC_SECONDS)


class RouteNotInstalled(Exception):
    """The router's CRD is missing in a region's cluster; nothing was applied there."""


async def ensure_kind_served(client: KubeClient, kind: str, region: str) -> None:
    """Fail before touching anything when a route kind is not served (its CRD is not installed)."""
    if kind in client.served_kinds:
        return
    prefix, plural = KINDS[kind]
    found = await client.request("get", prefix, not_found_ok=True)
    served = {r.get("name") for r in (found or {}).get("resources", [])}
    if plural not in served:
        raise RouteNotInstalled(
            f"region {region}: {kind} is not served by the cluster; install {ROUTE_KINDS[kind].install} "
            f"or use traffic.router: replicas"
        )
    client.served_kinds.add(kind)


def _digest(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


async def apply_region(
    client: KubeClient,
    objects: Sequence[dict[str, Any]],
    *,
    name: str,
    region: str,
    namespace: str,
    router: str,
    observed: RegionObservation | None = None,
    serving: Mapping[str, bool] | None = None,
    claims: Mapping[str, Claim] | None = None,
    autoscaled: bool = False,
) -> int:
    """Make the region look like `objects`, with `serving` (pod name -> in the serving Service or not)
    as its traffic membership; returns how many objects were applied, patched or deleted.

    In an autoscaled region (`autoscaled`; `claims` by Deployment name, see `render.autoscaler`) the
    replica counts are written apart from the rest, and our HorizontalPodAutoscaler is pruned like
    the other objects; it is pruned too where the observation shows the region was autoscaled before.

    Objects applied unchanged in the current
    `resync_slot` are skipped (steady state costs no writes) unless `observed` shows their Deployment
    missing or resized.
    """
    route_kind = ROUTERS[router].route_kind
    if route_kind and any(o["kind"] == route_kind for o in objects):
        await ensure_kind_served(client, route_kind, region)
    now = time.monotonic()
    _forget_stale(client, now)
    selector = names.owner_selector(name, region)
    slot = resync_slot(selector, now)
    stages = _writes(client, objects, observed, claims, selector, slot, now)
    for pod, serve in (serving or {}).items():
        # Make before break: pods join the serving Service before others leave it, so a region never
        # serves with fewer pods while membership moves.
        stage = TRAFFIC if serve else UNSERVE
        stages[stage].append(functools.partial(client.merge_patch, "Pod", namespace, pod, serving_patch(serve)))
    changed = sum(map(len, stages.values()))
    if changed:
        client.listed_pods.pop(f"{namespace}/{selector}", None)  # what it listed may change now
        client.changed_at = now
    keep = frozenset((o["kind"], o["metadata"]["name"]) for o in objects)
    last_prune = client.pruned.get(selector)
    if changed or last_prune is None or last_prune[0] != keep or resync_slot(selector, last_prune[1]) != slot:
        removed: list[int] = []

        async def prune(kinds: list[str]) -> None:
            removed.append(await _prune(client, kinds, namespace, selector, keep))

        stages[PRUNE_DEPLOYMENTS].append(functools.partial(prune, ["Deployment"]))
        hpa = [HPA] if autoscaled or (observed is not None and observed.autoscaled) else []
        rest = ["Service", BUDGET] + ([route_kind] if route_kind else []) + hpa
        stages[PRUNE_REST].append(functools.partial(prune, rest))
        await _run_stages(stages)
        client.pruned[selector] = (keep, now)
        if sum(removed):
            client.changed_at = now
        return changed + sum(removed)
    await _run_stages(stages)
    return changed


Stages = dict[int, list[Callable[[], Awaitable[Any]]]]


def _writes(
    client: KubeClient,
    objects: Sequence[dict[str, Any]],
    observed: RegionObservation | None,
    claims: Mapping[str, Claim] | None,
    selector: str,
    slot: int,
    now: float,
) -> Stages:
    """The applies this region needs, by stage: objects changed since their last apply in this resync
    slot, or whose Deployment the observation shows missing or resized."""
    stages: Stages = {stage: [] for stage in range(PRUNE_REST + 1)}
    for obj in objects:
        path = path_for(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        digest = _digest(obj)
        last = client.applied.get(path)
        fresh = last is not None and last[0] == digest and resync_slot(selector, last[1]) == slot
        if not fresh or _drifted(obj, observed):
            claim = (claims or {}).get(obj["metadata"]["name"]) if obj["kind"] == "Deployment" else None
            write = functools.partial(_apply_one, client, obj, path, digest, now)
            if claim is not None:
                exists = _seen(obj, observed) is not None
                write = functools.partial(_apply_claimed, client, obj, path, digest, now, claim, exists)
            stages[_apply_order(obj, observed, claim)].append(write)
    return stages


async def _apply_one(client: KubeClient, obj: dict[str, Any], path: str, digest: str, now: float) -> None:
    client.applied.pop(path, None)
    await client.apply(obj)
    client.applied[path] = (digest, now)


async def _apply_claimed(
    client: KubeClient,
    obj: dict[str, Any],
    path: str,
    digest: str,
    now: float,
    claim: Claim,
    exists: bool,
) -> None:
    """A Deployment of an autoscaled region: its replicas under their own manager, the rest without them.

    An existing Deployment gets its count claimed first, so the main apply that leaves `replicas` out
    never resets it to 1; a new one is created with its count (no pod too many or too few on the way)
    and the count is claimed right after. A claim that is not forced conflicts when the autoscaler
    has moved the count since it was seen: the autoscaler owns it then, which is what was wanted."""
    client.applied.pop(path, None)
    if exists:
        await _claim(client, obj, claim)
        await client.apply({**obj, "spec": {k: v for k, v in obj["spec"].items() if k != "replicas"}})
    else:
        await client.apply({**obj, "spec": {**obj["spec"], "replicas": claim.replicas}})
        await _claim(client, obj, claim)
    client.applied[path] = (digest, now)


async def _claim(client: KubeClient, obj: Mapping[str, Any], claim: Claim) -> None:
    meta = obj["metadata"]
    scale = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": claim.replicas},
    }
    try:
        await client.apply(scale, force=claim.force, manager=REPLICAS_MANAGER)
    except ApiError as e:
        if claim.force or e.status != 409:
            raise


async def _run_stages(stages: Mapping[int, Sequence[Callable[[], Awaitable[Any]]]]) -> None:
    """One stage at a time (a failure stops the stages after it); within a stage the writes do not
    depend on each other, so they go together."""
    for stage in sorted(stages):
        if stages[stage]:
            await asyncio.gather(*(write() for write in stages[stage]))


def _forget_stale(client: KubeClient, now: float) -> None:
    """Drop what is past resync (never used again: deleted objects, deleted ModelDeployments).

    Once per RESYNC_SECONDS per client, not per apply: the memory holds every object of every
    ModelDeployment in the cluster, and a sweep per apply made each cycle cost O(objects)."""
    if now - client.swept < RESYNC_SECONDS:
        return
    client.applied = {p: entry for p, entry in client.applied.items() if now - entry[1] < RESYNC_SECONDS}
    client.pruned = {s: entry for s, entry in client.pruned.items() if now - entry[1] < RESYNC_SECONDS}
    client.listed_pods = {k: entry for k, entry in client.listed_pods.items() if now - entry[2] < RESYNC_SECONDS}
    client.swept = now


def _drifted(obj: Mapping[str, Any], observed: RegionObservation | None) -> bool:
    """Whether the observation contradicts a Deployment we applied (gone, or scaled by someone else)."""
    if obj["kind"] != "Deployment" or observed is None:
        return False
    pods = observed.pods.get(obj["metadata"]["labels"].get(names.REVISION, ""))
    if "replicas" not in obj["spec"]:
        return pods is None  # its autoscaler owns the count: any count is not drift
    return pods is None or pods.desired != obj["spec"].get("replicas", 1)


async def delete_region(client: KubeClient, *, name: str, region: str, namespace: str) -> int:
    """Remove everything of this ModelDeployment in the region (the finalizer's job for remote ones)."""
    kinds = ["HTTPRoute", "VirtualService", HPA, "Service", BUDGET, "Deployment"]
    return await _prune(client, kinds, namespace, names.owner_selector(name, region), set())


async def _prune(
    client: KubeClient, kinds: Sequence[str], namespace: str, selector: str, keep: AbstractSet[tuple[str, str]]
) -> int:
    """Delete our objects of `kinds` not in `keep`: listed all at once, deleted kind by kind in order."""

    async def listed(kind: str) -> list[dict[str, Any]]:
        try:
            return await client.list(kind, namespace, selector)
        except ApiError as e:
            if e.status == 404 and (kind in ROUTE_KINDS or kind == HPA):
                return []  # a kind that is not served has nothing of ours
            if e.status == 403 and kind == HPA:
                return []  # an identity never allowed HPAs (no autoscaled region here) never created one
            raise

    found = await asyncio.gather(*(listed(kind) for kind in kinds))
    removed = 0
    for kind, objects in zip(kinds, found, strict=True):
        for obj in objects:
            if (kind, obj["metadata"]["name"]) not in keep and not obj["metadata"].get("deletionTimestamp"):
                await client.delete(kind, namespace, obj["metadata"]["name"])
                client.applied.pop(path_for(kind, namespace, obj["metadata"]["name"]), None)
                removed += 1
    return removed


RESTART_STORM = 3  # restarts of a container that is still not ready: it will not get better by itself


def _pod_problem(pod: Mapping[str, Any]) -> tuple[bool, str | None]:
    """(unschedulable, problem) of one pod: the scheduler's message, a container stuck waiting
    (image pull, crash loop, bad config), killed for memory, or restarting again and again."""
    status = pod.get("status") or {}
    if status.get("phase") == "Pending":
        for cond in status.get("conditions") or []:
            unscheduled = cond.get("type") == "PodScheduled" and cond.get("status") == "False"
            if unscheduled and cond.get("reason") == "Unschedulable":
                return True, cond.get("message") or "Unschedulable"
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        restarts = int(cs.get("restartCount") or 0)
        if last.get("reason") == "OOMKilled" and not cs.get("ready"):
            return False, f"OOMKilled: container {cs.get('name')} exceeded its memory limit ({restarts} restarts)"
        if waiting.get("reason") in STUCK:
            message = waiting.get("message") or ""
            return False, f"{waiting['reason']}: {message}".rstrip(": ")
        if restarts >= RESTART_STORM and not cs.get("ready"):
            code = f", last exit code {last['exitCode']}" if "exitCode" in last else ""
            return False, f"container {cs.get('name')} restarted {restarts} times{code}"
    return False, None


def _deployment_problem(dep: Mapping[str, Any]) -> str | None:
    for cond in (dep.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return f"ReplicaFailure: {cond.get('message', '')}"
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return f"ProgressDeadlineExceeded: {cond.get('message', '')}"
    return None


def _settled(dep: Mapping[str, Any]) -> bool:
    """Its status is current and every replica it wants exists and is ready: no pod is pending or stuck."""
    meta, status = dep["metadata"], dep.get("status") or {}
    if int(status.get("observedGeneration", meta.get("generation", 0))) < int(meta.get("generation", 0)):
        return False
    desired = int((dep.get("spec") or {}).get("replicas", 1))
    ready, total = int(status.get("readyReplicas") or 0), int(status.get("replicas") or 0)
    return desired == ready == total and not status.get("unavailableReplicas")


async def observe_region(client: KubeClient, *, name: str, region: str, namespace: str, router: str) -> Seen:
    """Ready / serving / unavailable / unschedulable replicas per revision, problems, current weights."""
    selector = names.owner_selector(name, region)
    deployments = await client.list("Deployment", namespace, selector)
    route = ROUTERS[router]
    route_kind = route.route_kind
    pods = await _pods(client, namespace, selector, deployments, routed=route_kind is not None)
    views = tuple(v for v in map(pod_view, pods) if v is not None)
    by_name: dict[str, str] = {}
    revisions: dict[str, RevisionPods] = {}
    for dep in deployments:
        revision = dep["metadata"].get("labels", {}).get(names.REVISION)
        if not revision or dep["metadata"].get("deletionTimestamp"):
            continue
        by_name[dep["metadata"]["name"]] = revision
        revisions[revision] = _revision_pods(dep, revision, pods, views)
    weights: dict[str, int] = {}
    if route_kind:
        try:
            found = await client.get(route_kind, namespace, names.serving_name(name, region))
        except ApiError as e:
            if e.status != 404:
                raise
            found = None
        if found is not None:
            weights = route.weights(found, by_name)
    else:
        total = sum(p.serving for p in revisions.values())
        if total:
            weights = {rev: round(100 * p.serving / total) for rev, p in revisions.items() if p.serving}
    terminating = sum(1 for pod in pods if pod["metadata"].get("deletionTimestamp"))
    autoscaled = any((d["metadata"].get("annotations") or {}).get(names.AUTOSCALED) for d in deployments)
    observation = RegionObservation(
        region, reachable=True, pods=revisions, weights=weights, terminating=terminating, autoscaled=autoscaled
    )
    return Seen(observation, views)


async def _pods(
    client: KubeClient, namespace: str, selector: str, deployments: Sequence[Mapping[str, Any]], *, routed: bool
) -> list[dict[str, Any]]:
    """The region's pods, read only when they can say something the Deployments do not.

    With a route, pods only tell why replicas are missing: when every Deployment has all it wants
    ready, they are not read (half the reads of a steady region). The replicas router needs them,
    since which pods serve is decided pod by pod; but only we change their serving labels, and any
    other change to them (a pod gone, restarted, no longer ready) changes a Deployment's status and
    so its resourceVersion. So a steady region (every Deployment settled, every pod ready and none
    terminating, nothing written there since) reuses its last list until a Deployment changes or
    RESYNC_SECONDS pass."""
    settled = all(map(_settled, deployments))
    if routed and settled:
        return []
    key = f"{namespace}/{selector}"
    versions = tuple(sorted((d["metadata"]["name"], str(d["metadata"].get("resourceVersion"))) for d in deployments))
    now = time.monotonic()
    last = client.listed_pods.get(key)
    if settled and last is not None and last[0] == versions and now - last[2] < RESYNC_SECONDS:
        return last[1]
    pods = await client.list("Pod", namespace, selector)
    steady = settled and all(_pod_steady(p) for p in pods)
    if steady:
        client.listed_pods[key] = (versions, pods, now)
    else:
        client.listed_pods.pop(key, None)
    return pods


def _pod_steady(pod: Mapping[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    view = pod_view(pod)
    return view is not None and view.ready


def _revision_pods(
    dep: Mapping[str, Any], revision: str, pods: Sequence[Mapping[str, Any]], views: Sequence[PodView]
) -> RevisionPods:
    desired = int((dep.get("spec") or {}).get("replicas", 1))
    status = dep.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    unavailable = int(status.get("unavailableReplicas") or max(0, desired - ready))
    unschedulable = 0
    problem = _deployment_problem(dep)
    for pod in pods:
        labels = pod["metadata"].get("labels", {})
        if labels.get(names.REVISION) != revision or pod["metadata"].get("deletionTimestamp"):
            continue
        stuck, why = _pod_problem(pod)
        unschedulable += stuck
        problem = problem or why
    serving = sum(1 for v in views if v.revision == revision and v.ready and v.serving)
    return RevisionPods(
        desired=desired,
        ready=ready,
        unschedulable=unschedulable,
        unavailable=unavailable,
        problem=problem,
        serving=serving,
    )
