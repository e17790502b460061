"""What a rollout in the simulated world must never do, as checks that return what went wrong.

Shared by the scenario tests and the property tests: an empty list is a pass, anything else names
the region, the moment and the pods, so a failure says what Kubernetes would have done.
"""

from __future__ import annotations

from bellwether.api import ModelDeploymentSpec
from bellwether.rollout.plans import NOT_ITS_DOING
from bellwether.rollout.replicas import surge_count
from bellwether.sim.cluster import Cluster
from bellwether.sim.runner import Runner


def cap(spec: ModelDeploymentSpec, region: str) -> int:
    """Pods a region may hold at any moment: replicas + maxSurge (a percentage rounded up)."""
    replicas = spec.region(region).replicas
    return replicas + surge_count(spec.rollout.max_surge, replicas)


def moments(cluster: Cluster, owner: str, since: float = 0.0) -> list[float]:
    """Every moment since `since` at which pods, their readiness, labels or routes changed."""
    out = {since}
    for p in cluster.pods:
        if p.owner == owner:
            out.update(t for t in (p.created, p.ready_at, p.deleted) if t is not None and t >= since)
            out.update(t for t, _ in p.label_history if t >= since)
    for history in (cluster.route_history.get(owner, []), cluster.serving_history.get(owner, [])):
        out.update(t for t, _ in history if t >= since)
    return sorted(out)


def replaced_pods(runner: Runner) -> list[str]:
    """A revision's pods all come from one pod template: a second ReplicaSet means the Deployment
    controller replaced pods that had been serving, without a new revision."""
    problems = []
    for region, cluster in runner.world.clusters.items():
        by_revision: dict[str, set[str]] = {}
        for p in cluster.pods:
            by_revision.setdefault(p.revision, set()).add(p.replica_set)
        problems += [
            f"{region}: revision {rev} had pods from {len(sets)} pod templates ({', '.join(sorted(sets))})"
            for rev, sets in by_revision.items()
            if len(sets) > 1
        ]
    return problems


def over_cap(runner: Runner, spec: ModelDeploymentSpec) -> list[str]:
    """Moments a region held more pods (Pending ones too) than replicas + maxSurge."""
    problems = []
    for region, cluster in runner.world.clusters.items():
        limit = cap(spec, region)
        for t in sorted({p.created for p in cluster.pods if p.owner == runner.owner}):
            n = len(cluster.live_pods(runner.owner, t))
            if n > limit:
                problems.append(f"{region} at {t:.0f}s: {n} pods > replicas + surge = {limit}")
                break
    return problems


def rollback_leaks(runner: Runner) -> list[str]:
    """After a rollback (or abort) decision for what the revision did, it has no endpoint (or route
    weight) left from the next cycle on, in any region. A rollback for what it could not do (be placed,
    be ready in time) lets its ready pods cover stable's gap, as a replaced revision does."""
    problems = []
    ticks = runner.ticks
    for before, decided, following in zip(ticks, ticks[1:], ticks[2:], strict=False):
        bad = decided.rolled_back
        if bad is None or bad == before.rolled_back or decided.rollback_reason in NOT_ITS_DOING:
            continue
        for region, cluster in runner.world.clusters.items():
            leaked = [
                t for t in moments(cluster, runner.owner, following.at) if cluster.shares(runner.owner, t).get(bad)
            ]
            if leaked:
                share = cluster.weights(runner.owner, leaked[0]).get(bad)
                problems.append(
                    f"{region}: {bad} rolled back at {decided.at:.0f}s still had {share}% at {leaked[0]:.0f}s "
                    f"(next cycle {following.at:.0f}s)"
                )
    return problems


def lost_served_pods(runner: Runner, revision: str) -> list[str]:
    """Pods of `revision` that became ready and are gone at the end: a promoted revision keeps every
    pod that served (same names and uids before and after promotion)."""
    return [
        f"{region}: pod {p.name} (uid {p.uid}) of {revision}, ready at {p.ready_at:.0f}s, deleted at {p.deleted:.0f}s"
        for region, cluster in runner.world.clusters.items()
        for p in cluster.pods
        if p.revision == revision and p.ready_at is not None and p.deleted is not None and p.deleted > p.ready_at
    ]


def untrue_shares(runner: Runner) -> list[str]:
    """With the `replicas` router, the split a plan announces (what status and Events report) is the
    split the serving Service's endpoints give once it is applied. A region with no endpoint at all
    is left out: nothing serves, there is no split to compare."""
    if runner.spec.traffic.router != "replicas":
        return []
    problems = []
    for tick in runner.ticks:
        for region, achieved in tick.achieved.items():
            planned = {r: w for r, w in tick.planned.get(region, {}).items() if w > 0}
            if achieved and achieved != planned:
                problems.append(f"{region} at {tick.at:.0f}s: the plan said {planned}, the endpoints gave {achieved}")
    return problems
