"""A region plan where an autoscaler sizes the stable revision: who owns which replica count.

The plan of a fixed region, computed from the live count, is reshaped here so the autoscaler and the
rollout never fight:
- during a step (0 < weight < 100) stable's replicas are the autoscaler's alone; the canary is added
  beside its live pods in the step's proportion (`autoscaled_canary`) and every ready pod serves, so
  the autoscaler keeps seeing the per-pod load it scales on;
- Bellwether writes stable's replicas only where the step needs a number: the first deploy, a
  rollback or drain that must bring stable back to the live count, and the hand-over at weight 100,
  where stable gives up a pod for each ready canary pod;
- the autoscaler targets the stable revision, and is held (its HPA removed) while Bellwether holds
  stable's count beside another revision; a canary becomes stable, and gets the autoscaler, only
  once it runs the whole live count, so the hand-over needs no capacity dip and no new pod.
"""

from __future__ import annotations

from dataclasses import replace

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus
from bellwether.rollout.live import desired, promoted_alone, ready
from bellwether.rollout.replicas import autoscaled_canary, share_of
from bellwether.rollout.types import Observations, RegionPlan, RevisionPlan


def autoscale(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, plan: RegionPlan, weight: int
) -> RegionPlan:
    name, stable = plan.region, status.stable_revision
    live = desired(obs, name, stable)
    revisions = list(plan.revisions)
    canary_at = next((i for i, r in enumerate(revisions) if r.role == "canary" and r.revision != stable), None)
    stable_at = next((i for i, r in enumerate(revisions) if r.revision == stable), None)
    stepping = canary_at is not None and revisions[canary_at].revision == status.canary_revision
    if stepping and stable_at is not None and canary_at is not None and 0 < weight < 100:
        revisions = _beside(spec, obs, name, weight, revisions, (canary_at, stable_at), live)
    elif stepping and canary_at is not None and len(revisions) == 1 and promoted_alone(status, obs, name, weight):
        # A promoted wave: the canary runs the region alone, its autoscaler scales it until it is stable.
        count = desired(obs, name, status.canary_revision) or revisions[canary_at].replicas
        revisions[canary_at] = replace(revisions[canary_at], replicas=count, autoscaled=True)
        return RegionPlan(name, tuple(revisions), autoscaler=revisions[canary_at].revision)
    elif stable_at is not None and live is not None and live >= revisions[stable_at].replicas and weight < 100:
        # Enough as the autoscaler keeps it: its count, not ours.
        revisions[stable_at] = replace(revisions[stable_at], replicas=live, autoscaled=True)
    return RegionPlan(name, tuple(revisions), autoscaler=_scaled(revisions, stable_at))


def _scaled(revisions: list[RevisionPlan], stable_at: int | None) -> str | None:
    """The revision the autoscaler scales: stable, unless Bellwether holds stable's count while another
    revision takes over or leaves (weight 100, a rollback, a drain). The autoscaler is held then (no
    HPA): with its minimum it would put back the pods the hand-over gives up, over and over."""
    if stable_at is None:
        return None
    stable = revisions[stable_at]
    if not stable.autoscaled and len(revisions) > 1:
        return None
    return stable.revision


def _beside(
    spec: ModelDeploymentSpec,
    obs: Observations,
    name: str,
    weight: int,
    revisions: list[RevisionPlan],
    at: tuple[int, int],
    live: int | None,
) -> list[RevisionPlan]:
    """The canary beside stable's autoscaled pods; both serve with every ready pod."""
    canary_at, stable_at = at
    canary, stable = revisions[canary_at], revisions[stable_at]
    stable_live = live if live is not None else stable.replicas
    stable_ready, canary_ready = ready(obs, name, stable.revision), ready(obs, name, canary.revision)
    count = autoscaled_canary(stable_live, weight, spec.rollout.max_surge, stable_ready, canary_ready)
    share = share_of(stable_ready, canary_ready) if stable_ready + canary_ready else 0
    out = list(revisions)
    out[canary_at] = replace(canary, replicas=count, weight=share, serving=None)
    out[stable_at] = replace(stable, replicas=stable_live, weight=100 - share, serving=None, autoscaled=True)
    return out
