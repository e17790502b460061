"""One rollout cycle for one ModelDeployment: observe every region, analyse, decide, apply, write status.

No kopf here: the kopf daemon in `operator.py` calls `reconcile` and posts the events it returns. The
cycle reads the object fresh from the API server (never a cached body), computes the new status in
full, and writes it in a single patch that is skipped when nothing changed.

Decide, record, then act. The status patch carries the resourceVersion the cycle read: if anyone
changed the object meanwhile (the user's spec, a command, another operator replica's status), the write
is refused with 409 and the cycle ends there, applying nothing and posting no Event; the next cycle,
soon after, decides from a fresh read. So two replicas acting at once never both take a step, and a
plan decided on a stale status or spec is never applied over a newer one. A crash between the write
and the apply leaves status ahead of the clusters, which the next cycle (level-based) catches up with.

Failures to apply are reported by the next cycle's status write (one write per cycle), which comes
soon after a failure; until then they are kept in memory, where losing them on a restart costs nothing:
the first cycle after it tries again.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import random
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import ValidationError

from bellwether import rollout
from bellwether.analysis.measure import measure
from bellwether.analysis.prometheus import PrometheusSource
from bellwether.api import (
    API_VERSION,
    KIND,
    Measurement,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    SpecError,
    dump,
    parse_spec,
)
from bellwether.api.spec import Region
from bellwether.api.units import parse_duration
from bellwether.clusters import (
    ApiError,
    ClusterConfigError,
    Clusters,
    KubeClient,
    RouteNotInstalled,
    Seen,
    apply_region,
    delete_region,
    observe_region,
)
from bellwether.clusters.region import ROUTE_KINDS, ensure_kind_served
from bellwether.handlers import metrics
from bellwether.handlers.status import COMMAND_ANNOTATION, invalid_spec, merge_patch, read_command, with_errors
from bellwether.render import objects_for_region, region_namespace
from bellwether.render.serving import PodView, serving_changes
from bellwether.rollout.types import AnalysisRequest, Decision, Event, Observations, RegionObservation, RegionPlan

log = logging.getLogger("bellwether")
CLUSTER_ERRORS = (ApiError, ClusterConfigError, RouteNotInstalled)


@dataclass
class Context:
    """What every cycle shares: the clusters and how long to wait at most between cycles."""

    clusters: Clusters
    max_requeue: float = 30.0
    # one connection pool for every cycle's Prometheus queries; None: a pool per cycle
    prometheus: aiohttp.ClientSession | None = None
    # (namespace, name) -> region -> why its last apply failed; reported by the next status write
    apply_errors: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # (namespace, name) -> (the spec as read, as parsed): a spec changes far less often than cycles run
    specs: dict[tuple[str, str], tuple[dict[str, Any], ModelDeploymentSpec]] = field(default_factory=dict)

    def parse(self, namespace: str, name: str, raw: dict[str, Any]) -> ModelDeploymentSpec:
        """parse_spec, reusing the last result while the spec reads the same (a dict comparison costs a
        small part of validating it again)."""
        cached = self.specs.get((namespace, name))
        if cached is not None and cached[0] == raw:
            return cached[1]
        spec = parse_spec(raw)  # a SpecError leaves the cache as it was
        self.specs[(namespace, name)] = (raw, spec)
        return spec

    def forget(self, namespace: str, name: str) -> None:
        self.apply_errors.pop((namespace, name), None)
        self.specs.pop((namespace, name), None)


@dataclass(frozen=True)
class Outcome:
    events: tuple[Event, ...] = ()
    requeue_after: float = 30.0
    status_patched: bool = False
    errors: dict[str, str] = field(default_factory=dict)


def _iso(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_reference(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
        "namespace": meta["namespace"],  # removed by apply_region; only a same-namespace owner is valid
    }


async def _observe(
    ctx: Context, name: str, namespace: str, spec: ModelDeploymentSpec, region: Region
) -> tuple[Seen, KubeClient | None]:
    """What the region looks like, and the client that saw it: the cycle applies its plan through the
    same client, so a kubeconfig Secret changed meanwhile never sends the plan to another cluster."""
    try:
        client = await ctx.clusters.for_region(namespace, region)
        route_kind = ROUTE_KINDS.get(spec.traffic.router)
        if route_kind:
            await ensure_kind_served(client, route_kind, region.name)
        seen = await observe_region(
            client,
            name=name,
            region=region.name,
            namespace=region_namespace(namespace, spec, region.name),
            router=spec.traffic.router,
        )
        return seen, client
    except CLUSTER_ERRORS as e:
        return Seen(RegionObservation(region.name, reachable=False, error=_why(region.name, e))), None


def _why(region: str, error: Exception) -> str:
    if isinstance(error, ApiError):
        if error.status == 0:
            return f"region {region}: cluster unreachable: {error.message}"
        return f"region {region}: {error.verb} failed: {error.status} {error.reason}: {error.message}"
    return str(error)


async def _bearer_token(ctx: Context, namespace: str, spec: ModelDeploymentSpec) -> str | None:
    assert spec.analysis is not None
    ref = spec.analysis.prometheus.bearer_token_secret
    if ref is None:
        return None
    secret = await ctx.clusters.secret(namespace, ref.name)
    data = (secret or {}).get("data") or {}
    if ref.key not in data:
        log.warning("bearer token Secret %s/%s key %s not found; querying without it", namespace, ref.name, ref.key)
        return None
    return base64.b64decode(data[ref.key]).decode().strip()


async def _measure(
    ctx: Context,
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    requests: Sequence[AnalysisRequest],
    now: datetime,
) -> tuple[Measurement, ...]:
    if not requests or spec.analysis is None:
        return ()
    prom = spec.analysis.prometheus
    token = await _bearer_token(ctx, namespace, spec)
    async with PrometheusSource(prom.url, parse_duration(prom.timeout), token, ctx.prometheus) as source:
        results = await measure(spec, name, namespace, requests, source, now)
    for m in results:
        metrics.ANALYSIS_VERDICTS.labels(metric=m.metric, verdict=m.verdict).inc()
    return results


def _count(namespace: str, old: ModelDeploymentStatus, new: ModelDeploymentStatus) -> None:
    if new.canary_revision and new.canary_revision != old.canary_revision:
        metrics.ROLLOUTS_STARTED.labels(namespace=namespace).inc()
    if (
        new.stable_revision
        and new.stable_revision != old.stable_revision
        and old.canary_revision == new.stable_revision
    ):
        metrics.ROLLOUTS_PROMOTED.labels(namespace=namespace).inc()
    if new.phase == "RolledBack" and old.phase != "RolledBack":
        degraded = next((c for c in new.conditions if c.type == "Degraded"), None)
        metrics.ROLLOUTS_ROLLED_BACK.labels(
            namespace=namespace, reason=degraded.reason if degraded else "Unknown"
        ).inc()


CONFLICT_REQUEUE = 0.5  # seconds: after a refused status write, decide again from a fresh read soon
ERROR_REQUEUE = 1.0  # seconds: after an apply failed (or stopped failing), report it soon
REQUEUE_JITTER = 0.1  # share of the periodic re-check's wait taken off at random


class StaleRead(Exception):
    """The object changed after this cycle read it; its decision must not be recorded."""


async def _write_status(home: KubeClient, obj: dict[str, Any], new: ModelDeploymentStatus) -> bool:
    patch = merge_patch(obj.get("status") or {}, dump(new))
    if patch is None:
        return False
    try:
        await home.merge_patch(
            "ModelDeployment",
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            {"status": patch},
            subresource="status",
            resource_version=obj["metadata"].get("resourceVersion"),
        )
    except ApiError as e:
        if e.status == 409:
            raise StaleRead(e.message) from e
        raise
    return True


# A cycle at least this long, during which the process computed at least this share of the time, was
# slowed by the operator's own load (cycles crowding its one core), not by a slow server.
CROWDED_SECONDS = 1.0
CROWDED_SHARE = 0.9


def crowded_backoff(took: float, computed: float) -> float:
    """Extra wait after a cycle slowed by a saturated operator: a random part of the time it took.

    Cycles due together (a sync that changed every ModelDeployment at once) stay due together one
    interval later, and the next, crowding the core each time. Each one slowed by the crowd moves a
    random amount later, so the crowd thins out within a few intervals; a cycle that waited on a slow
    server while the process idled keeps its schedule."""
    if took < CROWDED_SECONDS or computed < CROWDED_SHARE * took:
        return 0.0
    return random.uniform(0.0, took)


async def reconcile(ctx: Context, namespace: str, name: str, now: datetime | None = None) -> Outcome:
    """One cycle; its `requeue_after` counts from the cycle's start."""
    started, cpu = time.monotonic(), time.process_time()
    try:
        outcome = await _reconcile(ctx, namespace, name, now or datetime.now(UTC))
    except StaleRead as e:
        log.info("%s/%s changed during the cycle (%s); deciding again", namespace, name, e)
        outcome = Outcome(requeue_after=min(CONFLICT_REQUEUE, ctx.max_requeue))
    finally:
        took = time.monotonic() - started
        metrics.RECONCILE_SECONDS.observe(took)
    backoff = crowded_backoff(took, time.process_time() - cpu)
    return dataclasses.replace(outcome, requeue_after=outcome.requeue_after + backoff) if backoff else outcome


async def _reconcile(ctx: Context, namespace: str, name: str, now: datetime) -> Outcome:
    home = await ctx.clusters.home()
    obj = await home.get("ModelDeployment", namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        ctx.forget(namespace, name)
        return Outcome(requeue_after=ctx.max_requeue)
    generation = int(obj["metadata"].get("generation", 1))
    try:
        old = ModelDeploymentStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        log.warning("status of %s/%s is unreadable; starting from an empty status", namespace, name)
        old = ModelDeploymentStatus()
    try:
        spec = ctx.parse(namespace, name, obj.get("spec") or {})
    except SpecError as e:
        patched = await _write_status(home, obj, invalid_spec(old, e.problems, generation, _iso(now)))
        event = Event("Warning", "InvalidSpec", "; ".join(e.problems))
        return Outcome(events=(event,) if patched else (), requeue_after=ctx.max_requeue, status_patched=patched)

    seen = await asyncio.gather(*(_observe(ctx, name, namespace, spec, r) for r in spec.regions))
    regions = [found.observation for found, _ in seen]
    observed = {r.name: r for r in regions}
    pods = {found.observation.name: found.pods for found, _ in seen}
    clients = {found.observation.name: client for found, client in seen if client is not None}
    command = read_command(obj["metadata"].get("annotations") or {})
    decision = await _decide(ctx, name, namespace, spec, old, Observations(generation, observed, (), command), now)

    unseen = {r.name: r.error or "unreachable" for r in regions if not r.reachable}
    reported = {**ctx.apply_errors.get((namespace, name), {}), **unseen}
    new = with_errors(decision.status, reported, generation, _iso(now))
    try:
        patched = await _write_status(home, obj, new)  # StaleRead here: nothing is applied
    except ApiError as e:
        if not _too_large(e):
            raise
        return await _refused_for_size(home, obj, old, e, generation, now)
    _count(namespace, old, new)
    metrics.record_traffic(namespace, name, [(r.name, r.weight, r.share) for r in new.regions])

    failed = await _apply(obj, spec, decision.regions, observed, pods, clients)
    if failed:
        ctx.apply_errors[(namespace, name)] = failed
    else:
        ctx.apply_errors.pop((namespace, name), None)
    if command is not None and new.progress.last_command == command.id:
        # Consumed (now or in an earlier cycle): remove it so it is never applied twice.
        await home.merge_patch(
            "ModelDeployment", namespace, name, {"metadata": {"annotations": {COMMAND_ANNOTATION: None}}}
        )
    requeue = min(max(decision.requeue_after, 0.1), ctx.max_requeue)
    if decision.requeue_after > ctx.max_requeue:
        # Nothing is due: the periodic re-check. Up to 10% early, at random, so objects that started
        # together (every one of them, after an operator restart) spread out instead of staying in step.
        requeue *= random.uniform(1 - REQUEUE_JITTER, 1.0)
    if failed.keys() != reported.keys() - unseen.keys():  # status must learn of new or fixed failures
        requeue = min(requeue, ERROR_REQUEUE)
    errors = {**unseen, **failed}
    return Outcome(events=decision.events, requeue_after=requeue, status_patched=patched, errors=errors)


def _too_large(error: ApiError) -> bool:
    """The API server (or etcd behind it) refused a write for the object's size."""
    text = error.message.lower()
    return error.status in (413, 422, 500) and any(
        words in text for words in ("too large", "may not be more than", "exceeds the maximum", "too long")
    )


async def _refused_for_size(
    home: KubeClient, obj: dict[str, Any], old: ModelDeploymentStatus, error: ApiError, generation: int, now: datetime
) -> Outcome:
    """Never a silent stall: a status the server refuses for size is replaced by one condition saying so
    (small enough to fit), nothing is applied, and the cycle is tried again later."""
    message = f"status could not be written, the object is too large: {error.message[:500]}; nothing applied"
    small = old.model_copy(update={"analysis": [], "message": message})
    degraded = rollout.degraded(small, "ObjectTooLarge", message, generation, _iso(now))
    log.error("%s/%s: %s", obj["metadata"]["namespace"], obj["metadata"]["name"], message)
    try:
        patched = await _write_status(home, obj, degraded)
    except ApiError as e:
        log.error("the smaller status was refused too: %s", e)
        patched = False
    return Outcome(events=(Event("Warning", "ObjectTooLarge", message),), requeue_after=60.0, status_patched=patched)


async def _decide(
    ctx: Context,
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    old: ModelDeploymentStatus,
    obs: Observations,
    now: datetime,
) -> Decision:
    """Measure what is due and decide; a failure of either (a bug: the schema refuses what the engine
    cannot run) still ends in a decision, so status says so and progressDeadline keeps counting."""
    try:
        requests = rollout.analysis_due(spec, old, now)
        measurements = await _measure(ctx, name, namespace, spec, requests, now)
        return rollout.decide(spec, old, dataclasses.replace(obs, measurements=measurements), now)
    except CLUSTER_ERRORS:
        raise
    except Exception as e:  # the last line of defence: never a cycle that fails silently, over and over
        log.exception("the rollout cycle of %s/%s failed", namespace, name)
        return rollout.after_failure(spec, old, obs, now, _failure(e))


def _failure(error: Exception) -> str:
    """The exception and where it was raised, for status and an Event: enough to report the bug."""
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno} ({where.name})" if where else ""
    return f"{type(error).__name__}: {error}{at}"


async def _apply(
    obj: dict[str, Any],
    spec: ModelDeploymentSpec,
    plans: Sequence[RegionPlan],
    observed: Mapping[str, RegionObservation],
    pods: Mapping[str, Sequence[PodView]],
    clients: Mapping[str, KubeClient],
) -> dict[str, str]:
    """Apply each region's plan through the client that observed it, all regions at once (a slow one
    delays no other); regions we could not see (no client) are left alone. Returns why each failure failed."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    owner = owner_reference(obj)
    routed_by_pods = spec.traffic.router == "replicas"

    async def one(plan: RegionPlan, client: KubeClient) -> str | None:
        region = spec.region(plan.region)
        try:
            await apply_region(
                client,
                objects_for_region(name, namespace, spec, plan),
                name=name,
                region=plan.region,
                namespace=region_namespace(namespace, spec, plan.region),
                router=spec.traffic.router,
                owner=owner if region.cluster is None else None,
                observed=observed.get(plan.region),
                serving=serving_changes(plan, pods.get(plan.region, ())) if routed_by_pods else None,
            )
        except CLUSTER_ERRORS as e:
            why = _why(plan.region, e)
            log.warning("applying %s/%s in %s failed: %s", namespace, name, plan.region, why)
            return why
        return None

    reached = [(plan, clients[plan.region]) for plan in plans if plan.region in clients]
    results = await asyncio.gather(*(one(plan, client) for plan, client in reached))
    return {plan.region: why for (plan, _), why in zip(reached, results, strict=True) if why is not None}


async def cleanup(ctx: Context, obj: dict[str, Any]) -> list[str]:
    """Delete this ModelDeployment's objects in regions that owner references cannot reach (other
    clusters, other namespaces). Returns the regions that could not be cleaned up."""
    meta = obj["metadata"]
    ctx.forget(meta["namespace"], meta["name"])
    regions = [r.get("name", "") for r in (obj.get("status") or {}).get("regions") or []]
    metrics.forget_traffic(meta["namespace"], meta["name"], regions)
    try:
        spec = parse_spec(obj.get("spec") or {})
    except SpecError:
        return []  # nothing was ever applied for a spec that never parsed
    failed: list[str] = []
    for region in spec.regions:
        ns = region_namespace(meta["namespace"], spec, region.name)
        if region.cluster is None and ns == meta["namespace"]:
            continue  # the garbage collector follows the owner references
        try:
            client = await ctx.clusters.for_region(meta["namespace"], region)
            await delete_region(client, name=meta["name"], region=region.name, namespace=ns)
        except CLUSTER_ERRORS as e:
            log.warning("cleaning up region %s of %s/%s failed: %s", region.name, meta["namespace"], meta["name"], e)
            failed.append(region.name)
    return failed
