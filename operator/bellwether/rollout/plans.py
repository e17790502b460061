"""The desired state of each region, derived from the rollout's position in status and the observed pods.

Derived, not stored: the same status and observations always give the same plans, which is what makes
a restarted operator (or a replayed decision) harmless.
"""

from __future__ import annotations

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus, Template
from bellwether.rollout.replicas import split, surge_count
from bellwether.rollout.types import Observations, RegionPlan, RevisionPlan


def ready(obs: Observations, region: str, revision: str | None) -> int:
    """Ready pods of `revision` in `region`; an unreachable region counts as having none."""
    seen = obs.regions.get(region)
    if revision is None or seen is None or not seen.reachable:
        return 0
    pods = seen.pods.get(revision)
    return pods.ready if pods is not None else 0


def template_for(status: ModelDeploymentStatus, revision: str) -> Template | None:
    return next((h.template for h in status.history if h.revision == revision), None)


def wave_of(spec: ModelDeploymentSpec, region: str) -> int:
    return next(i for i, names in enumerate(spec.waves()) if region in names)


def canary_weight_in(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, region: str) -> int:
    """The canary's weight in a region: 100 in promoted waves, the step's weight in the current one."""
    if status.canary_revision is None:
        return 0
    wave = wave_of(spec, region)
    if wave < status.wave:
        return 100
    return status.canary_weight if wave == status.wave else 0


def region_plan(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, name: str) -> RegionPlan:
    region = spec.region(name)
    replicas = region.replicas
    max_surge = spec.rollout.max_surge
    revisions: list[RevisionPlan] = []
    stable = status.stable_revision
    stable_template = template_for(status, stable) if stable is not None else None
    canary = status.canary_revision
    canary_template = status.progress.canary_template
    weight = canary_weight_in(spec, status, name)
    if canary is not None and canary_template is not None and weight > 0:
        have = ready(obs, name, canary)
        stable_n, canary_n = split(replicas, weight, max_surge, have)
        # Traffic moves only onto canary pods that are ready; until then stable keeps the rest.
        share = weight if have >= canary_n or replicas == 0 else min(weight, 100 * have // replicas)
        if stable_n == 0 and (stable is None or ready(obs, name, stable) == 0):
            share = weight
        revisions.append(RevisionPlan(canary, "canary", canary_n, share, canary_template))
        if stable is not None and stable_template is not None and stable_n > 0:
            revisions.append(RevisionPlan(stable, "stable", stable_n, 100 - share, stable_template))
    elif stable is not None and stable_template is not None:
        revisions.append(RevisionPlan(stable, "stable", replicas, 100, stable_template))
    draining = status.progress.draining_revision
    drain_template = status.progress.draining_template
    if draining is not None and drain_template is not None and draining not in (stable, canary):
        # Kept (without traffic) until stable has its pods back, unless no surge room exists at all.
        seen = obs.regions.get(name)
        pods = seen.pods.get(draining) if seen is not None else None
        short = ready(obs, name, stable) < replicas
        if pods is not None and pods.desired > 0 and short and surge_count(max_surge, replicas) > 0:
            revisions.append(RevisionPlan(draining, "canary", pods.desired, 0, drain_template))
    return RegionPlan(name, tuple(revisions))


def all_plans(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations) -> tuple[RegionPlan, ...]:
    return tuple(region_plan(spec, status, obs, r.name) for r in spec.regions)
