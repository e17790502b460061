"""The cycle's ports on Kubernetes and Prometheus, and `reconcile`: one cycle as the kopf daemon runs it.

No kopf here: the daemon in `operator.py` calls `reconcile` and posts the events it returns. The cycle
itself (what is observed, decided, written and applied, in which order) is `bellwether.cycle`, shared
with the simulator; this module only says how to read and write the objects: the home cluster's
ModelDeployment (read fresh, never a cached body; status written in one guarded merge patch, skipped
when nothing changed), each region through the client that observed it (so a kubeconfig Secret changed
mid-cycle never sends a plan to another cluster), and Prometheus through one shared connection pool.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bellwether import cycle
from bellwether.analysis.measure import measure
from bellwether.analysis.prometheus import PrometheusSource
from bellwether.api import (
    Measurement,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    SpecError,
    Template,
    dump,
    parse_spec,
)
from bellwether.api.base import KeyRef
from bellwether.api.hooks import Gate
from bellwether.api.spec import Region
from bellwether.api.templates import TEMPLATE_KIND, TemplateProblem
from bellwether.api.units import parse_duration
from bellwether.clusters import (
    ApiError,
    ClusterConfigError,
    Clusters,
    KubeClient,
    RouteNotInstalled,
    apply_region,
    delete_region,
    observe_region,
)
from bellwether.clusters.gpus import free_gpus
from bellwether.clusters.jobs import run_gate_job
from bellwether.clusters.region import ensure_kind_served
from bellwether.handlers import metrics
from bellwether.handlers.status import merge_patch
from bellwether.hooks import Notifier, Resolve, SecretError, webhook_gates
from bellwether.render import region_namespace
from bellwether.render.autoscaler import replica_claims
from bellwether.render.jobs import gate_job, gate_region
from bellwether.render.routers import router_of
from bellwether.render.serving import Seen
from bellwether.render.workload import GPU, pod_spec
from bellwether.rollout.commands import COMMAND_ANNOTATION
from bellwether.rollout.types import (
    AnalysisRequest,
    GateOutcome,
    GateRequest,
    GateResult,
    GpuRoom,
    RegionObservation,
    RegionPlan,
)

log = logging.getLogger("bellwether")
CLUSTER_ERRORS = (ApiError, ClusterConfigError, RouteNotInstalled)
MAX_CYCLES = 32
Outcome = cycle.Outcome


@dataclass
class Context:
    """What every cycle shares: the clusters, how long to wait at most between cycles, the memory."""

    clusters: Clusters
    max_requeue: float = 30.0
    # one connection pool for every cycle's Prometheus queries; None: a pool per cycle
    prometheus: aiohttp.ClientSession | None = None
    memory: cycle.Memory = field(default_factory=cycle.Memory)
    rng: random.Random = field(default_factory=random.Random)  # jitter of the waits, for every cycle
    # Cycles in flight at once. One event loop runs them all: past a few dozen, more only means each
    # takes longer and its requests time out. Beyond the bound a cycle waits its turn, so an overloaded
    # operator runs every ModelDeployment less often instead of failing them all.
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CYCLES))
    # gates and notifications: one pool for the webhooks (None: a pool per cycle's gates); the notifier
    # delivers in the background (None: no notifications)
    webhooks: aiohttp.ClientSession | None = None
    notifier: Notifier | None = None

    def forget(self, namespace: str, name: str) -> None:
        self.memory.forget(namespace, name)


class KubeHome:
    """The home cluster's ModelDeployments."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await (await self.ctx.clusters.home()).get("ModelDeployment", namespace, name)

    async def write_status(self, obj: Mapping[str, Any], status: ModelDeploymentStatus) -> bool:
        patch = merge_patch(obj.get("status") or {}, dump(status))
        if patch is None:
            return False
        home = await self.ctx.clusters.home()
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
                raise cycle.StaleRead(e.message) from e
            if _too_large(e):
                raise cycle.TooLarge(e.message) from e
            raise
        return True

    async def consume_command(self, namespace: str, name: str) -> None:
        home = await self.ctx.clusters.home()
        await home.merge_patch(
            "ModelDeployment", namespace, name, {"metadata": {"annotations": {COMMAND_ANNOTATION: None}}}
        )

    async def read_template(self, name: str) -> dict[str, Any] | None:
        """Read afresh, like the ModelDeployment: one GET per referenced template per cycle. A template
        that cannot be read (RBAC not upgraded, API server trouble) stops the cycle with a condition
        naming it, as a missing one does: no rollout step without its metrics."""
        try:
            return await (await self.ctx.clusters.home()).get(TEMPLATE_KIND, None, name)
        except ApiError as e:
            raise TemplateProblem(
                [f"spec.analysis.templates: {TEMPLATE_KIND} {name!r} could not be read: {e.status} {e.message}"]
            ) from e


def _too_large(error: ApiError) -> bool:
    """The API server (or etcd behind it) refused a write for the object's size."""
    text = error.message.lower()
    return error.status in (413, 422, 500) and any(
        words in text for words in ("too large", "may not be more than", "exceeds the maximum", "too long")
    )


class KubeRegions:
    """Each region's cluster; a region is applied to through the client that observed it this cycle."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.clients: dict[str, KubeClient] = {}

    async def observe(self, obj: Mapping[str, Any], spec: ModelDeploymentSpec, region: Region) -> Seen:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            client = await self.ctx.clusters.for_region(namespace, region)
            route_kind = router_of(spec).route_kind
            if route_kind:
                await ensure_kind_served(client, route_kind, region.name)
            seen = await observe_region(
                client,
                name=name,
                region=region.name,
                namespace=region_namespace(namespace, spec, region.name),
                router=spec.traffic.router,
            )
        except CLUSTER_ERRORS as e:
            return Seen(RegionObservation(region.name, reachable=False, error=_why(region.name, e)))
        self.clients[region.name] = client
        return seen

    async def apply(
        self,
        obj: Mapping[str, Any],
        spec: ModelDeploymentSpec,
        plan: RegionPlan,
        objects: Sequence[dict[str, Any]],
        serving: Mapping[str, bool] | None,
        observed: Seen,
    ) -> str | None:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            await apply_region(
                self.clients[plan.region],
                objects,
                name=name,
                region=plan.region,
                namespace=region_namespace(namespace, spec, plan.region),
                router=spec.traffic.router,
                observed=observed.observation,
                serving=serving,
                claims=replica_claims(name, spec, plan, observed.observation),
                autoscaled=spec.region(plan.region).autoscaling is not None,
            )
        except CLUSTER_ERRORS as e:
            why = _why(plan.region, e)
            log.warning("applying %s/%s in %s failed: %s", namespace, name, plan.region, why)
            return why
        return None

    async def gpu_room(self, region: Region, template: Template) -> GpuRoom | None:
        """The GPUs free for `template`'s pods in a region observed this cycle (see clusters.gpus)."""
        gpu = template.runtime.resources.gpu
        client = self.clients.get(region.name)
        if gpu is None or client is None:
            return None
        free = await free_gpus(client, pod_spec(template, region.node_selector), GPU)
        return GpuRoom(GPU, gpu.count, free) if free is not None else None


def _why(region: str, error: Exception) -> str:
    if isinstance(error, ApiError):
        if error.status == 0:
            return f"region {region}: cluster unreachable: {error.message}"
        return f"region {region}: {error.verb} failed: {error.status} {error.reason}: {error.message}"
    return str(error)


def prometheus_judge(ctx: Context, home_namespace: str) -> cycle.Measure:
    """The judge on a real Prometheus (one shared connection pool), with the spec's bearer token."""

    async def judge(
        spec: ModelDeploymentSpec, name: str, namespace: str, requests: Sequence[AnalysisRequest], now: datetime
    ) -> tuple[Measurement, ...]:
        assert spec.analysis is not None
        prom = spec.analysis.prometheus
        token = await _bearer_token(ctx, home_namespace, spec)
        async with PrometheusSource(prom.url, parse_duration(prom.timeout), token, ctx.prometheus) as source:
            results = await measure(spec, name, namespace, requests, source, now)
        for m in results:
            metrics.ANALYSIS_VERDICTS.labels(metric=m.metric, verdict=m.verdict).inc()
        return results

    return judge


async def _bearer_token(ctx: Context, namespace: str, spec: ModelDeploymentSpec) -> str | None:
    """The token named in the spec; a Secret that cannot be read means querying without one (the
    queries then fail as inconclusive, which status shows), never a failed cycle."""
    assert spec.analysis is not None
    ref = spec.analysis.prometheus.bearer_token_secret
    if ref is None:
        return None
    try:
        secret = await ctx.clusters.secret(namespace, ref.name)
    except CLUSTER_ERRORS as e:
        log.warning("bearer token Secret %s/%s could not be read (%s); querying without it", namespace, ref.name, e)
        return None
    data = (secret or {}).get("data") or {}
    if ref.key not in data:
        log.warning("bearer token Secret %s/%s key %s not found; querying without it", namespace, ref.name, ref.key)
        return None
    return base64.b64decode(data[ref.key]).decode().strip()


def secret_resolver(clusters: Clusters) -> Resolve:
    """A webhook's Secret values, read through the clusters' cache (a changed Secret is seen within
    its TTL); what is missing is named, a value never."""

    async def resolve(namespace: str, ref: KeyRef) -> str:
        try:
            secret = await clusters.secret(namespace, ref.name)
        except CLUSTER_ERRORS as e:
            why = f"{e.status} {e.reason}" if isinstance(e, ApiError) else type(e).__name__
            raise SecretError(f"Secret {namespace}/{ref.name} could not be read: {why}") from None
        if secret is None:
            raise SecretError(f"Secret {namespace}/{ref.name} not found")
        data = secret.get("data") or {}
        if ref.key not in data:
            raise SecretError(f"Secret {namespace}/{ref.name} has no key {ref.key}")
        return base64.b64decode(data[ref.key]).decode()

    return resolve


def gate_port(ctx: Context) -> cycle.EvaluateGates:
    """Webhook gates over the shared pool (a pool for the call when there is none: tests), Job
    gates in the cluster of the region each runs in; all at once."""
    resolve = secret_resolver(ctx.clusters)

    async def webhooks(
        spec: ModelDeploymentSpec, name: str, namespace: str, requests: Sequence[GateRequest], now: datetime
    ) -> tuple[GateResult, ...]:
        if not requests:
            return ()
        if ctx.webhooks is not None:
            return await webhook_gates(ctx.webhooks, resolve)(spec, name, namespace, requests, now)
        async with aiohttp.ClientSession() as session:
            return await webhook_gates(session, resolve)(spec, name, namespace, requests, now)

    async def ask(
        spec: ModelDeploymentSpec, name: str, namespace: str, requests: Sequence[GateRequest], now: datetime
    ) -> tuple[GateResult, ...]:
        jobs = {g.name: g for g in spec.rollout.gates if g.job is not None}
        hooks = [r for r in requests if r.gate not in jobs]
        ran = [job_gate(ctx, spec, jobs[r.gate], name, namespace, r) for r in requests if r.gate in jobs]
        answered, results = await asyncio.gather(webhooks(spec, name, namespace, hooks, now), asyncio.gather(*ran))
        return (*answered, *results)

    return ask


async def job_gate(
    ctx: Context, spec: ModelDeploymentSpec, gate: Gate, name: str, namespace: str, request: GateRequest
) -> GateResult:
    """One attempt of a Job gate: its Job created if missing, then read; a cluster error is a failed
    answer (the gate's onFailure decides), with what failed."""
    region = spec.region(gate_region(spec, request))
    outcome: GateOutcome
    try:
        client = await ctx.clusters.for_region(namespace, region)
        # Read for its uid, so a Job in its own namespace is owned by it (removed with it).
        owner = (
            await (await ctx.clusters.home()).get("ModelDeployment", namespace, name)
            if region.cluster is None
            else None
        )
        outcome, message = await run_gate_job(client, gate_job(name, namespace, spec, gate, request, owner))
    except CLUSTER_ERRORS as e:
        outcome, message = "failed", _why(region.name, e)
    return GateResult(request.gate, request.revision, request.wave, outcome, message)


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


async def reconcile(ctx: Context, namespace: str, name: str, now: datetime | None = None) -> Outcome:
    """One cycle, as the kopf daemon runs it; its `requeue_after` counts from the cycle's start."""
    started, cpu = time.monotonic(), time.process_time()
    regions = KubeRegions(ctx)
    ports = cycle.Ports(
        KubeHome(ctx),
        regions,
        prometheus_judge(ctx, namespace),
        ctx.max_requeue,
        ctx.rng,
        gates=gate_port(ctx),
        notify=ctx.notifier,
        capacity=regions.gpu_room,
    )
    try:
        async with ctx.slots:
            outcome = await cycle.run(ports, ctx.memory, namespace, name, now or datetime.now(UTC))
    finally:
        took = time.monotonic() - started
        metrics.RECONCILE_SECONDS.observe(took)
    if outcome.previous is not None and outcome.status is not None:
        _count(namespace, outcome.previous, outcome.status)
        cached = ctx.memory.specs.get((namespace, name))
        metrics.record(namespace, name, outcome.status, cached[1] if cached else None)
    backoff = cycle.crowded_backoff(took, time.process_time() - cpu, ctx.rng)
    return dataclasses.replace(outcome, requeue_after=outcome.requeue_after + backoff) if backoff else outcome


async def cleanup(ctx: Context, obj: dict[str, Any]) -> list[str]:
    """Delete this ModelDeployment's objects in regions that owner references cannot reach (other
    clusters, other namespaces). Returns the regions that could not be cleaned up."""
    meta = obj["metadata"]
    ctx.forget(meta["namespace"], meta["name"])
    metrics.forget(meta["namespace"], meta["name"])
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
