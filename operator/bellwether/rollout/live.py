"""How many replicas a region wants now: fixed by the spec, or the live count of its autoscaler.

An autoscaled region has no number in the spec: its autoscaler keeps the stable Deployment's
`spec.replicas`, which the observation carries (`RevisionPods.desired`). While a canary serves beside
it the region's live count is both sides' replicas; while a revision hands over (weight 100,
rollback, a drain) the count is held where it was when the hand-over began (status remembers it per
region), so the autoscaler shrinking the side losing traffic never shrinks what replaces it.
"""

from __future__ import annotations

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus
from bellwether.api.autoscaling import Autoscaling
from bellwether.rollout.replicas import live_total
from bellwether.rollout.types import Observations


def ready(obs: Observations, region: str, revision: str | None) -> int:
    """Ready pods of `revision` in `region`; an unreachable region counts as having none."""
    seen = obs.regions.get(region)
    if revision is None or seen is None or not seen.reachable:
        return 0
    pods = seen.pods.get(revision)
    return pods.ready if pods is not None else 0


def desired(obs: Observations, region: str, revision: str | None) -> int | None:
    """The replicas `revision`'s Deployment holds in `region` (None: not seen there)."""
    seen = obs.regions.get(region)
    if revision is None or seen is None or not seen.reachable:
        return None
    pods = seen.pods.get(revision)
    return pods.desired if pods is not None else None


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


def _remembered(status: ModelDeploymentStatus, region: str) -> int | None:
    return next((r.replicas for r in status.regions if r.name == region), None)


def _handing_over(status: ModelDeploymentStatus, obs: Observations, region: str, weight: int) -> bool:
    """A revision other than stable still has a Deployment here outside a step's split."""
    seen = obs.regions.get(region)
    others = seen is not None and any(rev != status.stable_revision for rev in seen.pods)
    return weight >= 100 or (others and not 0 < weight < 100)


def live_replicas(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, region: str) -> int:
    """The replicas `region` wants now (see the module's docstring)."""
    auto = spec.region(region).autoscaling
    if auto is None:
        return spec.region(region).size
    stable = desired(obs, region, status.stable_revision)
    remembered = _remembered(status, region)
    weight = canary_weight_in(spec, status, region)
    if promoted_alone(status, obs, region, weight):
        return _clamp(auto, desired(obs, region, status.canary_revision) or remembered or 0)
    if status.canary_revision is not None and 0 < weight < 100:
        canary = desired(obs, region, status.canary_revision) or 0
        base = stable if stable is not None else (remembered or auto.min_replicas)
        return live_total(base, canary, auto.min_replicas, auto.max_replicas)
    if _handing_over(status, obs, region, weight):
        return _clamp(auto, max(remembered or 0, stable or 0))
    return _clamp(auto, stable if stable is not None else (remembered or 0))


def promoted_alone(status: ModelDeploymentStatus, obs: Observations, region: str, weight: int) -> bool:
    """The canary serves the region alone at 100% (a promoted wave): stable's Deployment is gone, which
    happens only once the canary runs the whole live count. The region's autoscaler scales it then."""
    seen = obs.regions.get(region)
    if status.canary_revision is None or weight < 100 or seen is None or not seen.reachable:
        return False
    return status.canary_revision in seen.pods and status.stable_revision not in seen.pods


def _clamp(auto: Autoscaling, n: int) -> int:
    return max(auto.min_replicas, min(auto.max_replicas, n))


def needed(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, region: str) -> int:
    """Ready stable pods for a region to count as serving in full.

    An autoscaled region at rest needs its minReplicas: pods its autoscaler adds are capacity on the
    way, not a fault. While a revision hands over it needs the whole live count.
    """
    live = live_replicas(spec, status, obs, region)
    auto = spec.region(region).autoscaling
    if auto is None or _handing_over(status, obs, region, canary_weight_in(spec, status, region)):
        return live
    return min(live, auto.min_replicas)
