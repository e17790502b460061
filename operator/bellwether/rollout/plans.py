"""The desired state of each region, derived from the rollout's position in status and the observed pods.

Derived, not stored: the same status and observations always give the same plans, which is what makes
a restarted operator (or a replayed decision) harmless.
"""

from __future__ import annotations

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus, Template
from bellwether.rollout.autoscaled import autoscale
from bellwether.rollout.live import canary_weight_in, live_replicas, ready, wave_of
from bellwether.rollout.replicas import best_split, canary_count, share_of, split, surge_count
from bellwether.rollout.types import Observations, RegionPlan, RevisionPlan

__all__ = ["all_plans", "canary_weight_in", "ready", "region_plan", "template_for", "wave_of"]


def template_for(status: ModelDeploymentStatus, revision: str) -> Template | None:
    return next((h.template for h in status.history if h.revision == revision), None)


def region_plan(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, name: str) -> RegionPlan:
    replicas = live_replicas(spec, status, obs, name)
    surge = surge_count(spec.rollout.max_surge, replicas)
    stable = status.stable_revision
    stable_template = template_for(status, stable) if stable is not None else None
    drain = _drain(spec, status, obs, name, surge, replicas)
    canary, canary_template = status.canary_revision, status.progress.canary_template
    weight = canary_weight_in(spec, status, name)
    revisions: list[RevisionPlan] = []
    if canary is not None and canary_template is not None and weight > 0 and drain is None:
        revisions += _split(spec, obs, name, weight, canary_template, stable_template, status, replicas)
    elif stable is not None and stable_template is not None:
        kept = drain.replicas if drain is not None else 0
        share = drain.weight if drain is not None else 0
        revisions.append(
            RevisionPlan(stable, "stable", min(replicas, replicas + surge - kept), 100 - share, stable_template)
        )
    if drain is not None:
        revisions.append(drain)
    plan = RegionPlan(name, tuple(revisions))
    return autoscale(spec, status, obs, plan, weight) if spec.region(name).autoscaling is not None else plan


def _split(
    spec: ModelDeploymentSpec,
    obs: Observations,
    name: str,
    weight: int,
    canary_template: Template,
    stable_template: Template | None,
    status: ModelDeploymentStatus,
    replicas: int,
) -> list[RevisionPlan]:
    """Canary and stable at `weight` of `replicas`: pods within the surge cap, traffic only on ready pods."""
    stable, canary = status.stable_revision, status.canary_revision
    assert canary is not None
    have, stable_ready = ready(obs, name, canary), ready(obs, name, stable)
    stable_n, canary_n = split(replicas, weight, spec.rollout.max_surge, have)
    if stable is None or stable_template is None:
        stable_n = stable_ready = 0
    if spec.traffic.by_pods:
        a, b = best_split(weight, min(stable_ready, stable_n), min(have, canary_n), replicas)
        share = share_of(a, b) if a + b else 0
        canary_serving: int | None = None if weight >= 100 and a == 0 else b
        stable_serving: int | None = None if b == 0 else a
    else:
        # A route's weight moves only onto canary pods that are ready; until then stable keeps the rest.
        want = canary_count(replicas, weight)
        share = weight if have >= want or replicas == 0 else min(weight, 100 * have // replicas)
        if stable_n == 0 and stable_ready == 0:
            share = weight
        canary_serving = stable_serving = None
    plans = [RevisionPlan(canary, "canary", canary_n, share, canary_template, canary_serving)]
    if stable is not None and stable_template is not None and stable_n > 0:
        plans.append(RevisionPlan(stable, "stable", stable_n, 100 - share, stable_template, stable_serving))
    return plans


# Rollbacks for what a revision could not do (be placed, become ready in time, be reached, be
# reconciled), not for anything it did: its ready pods are not known bad, so they cover stable's
# missing capacity while stable's pods come back (a GPU-scarce region would otherwise go dark).
NOT_ITS_DOING: frozenset[str] = frozenset(
    {"Unschedulable", "ProgressDeadlineExceeded", "RegionUnreachable", "CycleFailed"}
)


def _drain(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, name: str, surge: int, replicas: int
) -> RevisionPlan | None:
    """What is left of a replaced revision in a region: nothing, or the pods covering what stable lacks.

    A revision rolled back (or aborted) leaves traffic at once, unless the spec asks it to cover
    stable's missing capacity (`rollbackTraffic: whenStableReady`), or the rollback was for what it
    could not do rather than what it did (NOT_ITS_DOING). A revision merely replaced (the spec changed
    mid-rollout, or went back to stable) is not known bad either: it keeps serving with as many
    ready pods as stable lacks, and hands them over as stable's pods become ready. Its pods count
    against the surge cap; with `maxSurge: 0` it hands over one pod at a time.
    """
    p = status.progress
    draining, template = p.draining_revision, p.draining_template
    if draining is None or template is None or draining in (status.stable_revision, status.canary_revision):
        return None
    if (
        draining == p.rolled_back_revision
        and spec.rollout.rollback_traffic == "immediate"
        and p.rollback_reason not in NOT_ITS_DOING
    ):
        return None
    stable_ready = ready(obs, name, status.stable_revision)
    gap = replicas - stable_ready - (1 if surge == 0 else 0)
    keep = min(ready(obs, name, draining), max(0, gap))
    if keep == 0:
        return None
    return RevisionPlan(draining, "canary", keep, share_of(stable_ready, keep), template, keep)


def all_plans(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations) -> tuple[RegionPlan, ...]:
    return tuple(region_plan(spec, status, obs, r.name) for r in spec.regions)
