"""Whether a surge's new pods fit the GPUs a region has free, said before they are asked for.

The scheduler reports a pod it cannot place only once the pod exists, and the rollout then acts on it
(`steps`: Unschedulable). Knowing earlier lets a person free GPUs, or see why a canary will wait:
when a plan grows a revision beyond what its Deployment holds, the cycle asks the region's port how
many such pods the nodes can take (`GpuRoom`), and this says so in a Warning Event when they fall
short. Advice only: the surge goes ahead, since a node autoscaler may add the nodes it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from bellwether.rollout.types import Event, GpuRoom, RegionObservation, RegionPlan, RevisionPlan


@dataclass(frozen=True)
class Surge:
    """Pods a plan asks for beyond what the region holds, and the ModelDeployment's own pods the same
    plan removes (each frees the GPUs of one pod, on a node the new ones may use)."""

    region: str
    revision: RevisionPlan
    new: int
    released: int


def surge(plan: RegionPlan, seen: RegionObservation) -> Surge | None:
    """The GPU revision this plan grows, if any; a revision its autoscaler sizes is not ours to grow."""
    planned = {r.revision: r.replicas for r in plan.revisions}
    for rev in plan.revisions:
        have = seen.pods.get(rev.revision)
        new = rev.replicas - (have.desired if have is not None else 0)
        if rev.template.runtime.resources.gpu is None or rev.autoscaled or new <= 0:
            continue
        released = sum(
            max(0, pods.desired - planned.get(revision, 0))
            for revision, pods in seen.pods.items()
            if revision != rev.revision
        )
        return Surge(plan.region, rev, new, released)
    return None


def shortfall(found: Surge, room: GpuRoom, on_unschedulable: str) -> Event | None:
    """A Warning when the new pods cannot all be placed, even counting the pods the plan removes."""
    fits = room.pods() + found.released
    if fits >= found.new:
        return None
    role = found.revision.role
    then = (
        "the canary is rolled back once the scheduler reports them unschedulable (onUnschedulable: rollback)"
        if role == "canary" and on_unschedulable == "rollback"
        else "they will wait for the scheduler"
    )
    nodes = len(room.free)
    freed = f" and {found.released} as pods of this ModelDeployment leave" if found.released else ""
    return Event(
        "Warning",
        "InsufficientGPUs",
        f"{found.region}: the surge asks for {_count(found.new, f'new {role} pod')} of {found.revision.revision} "
        f"({room.per_pod} {room.resource} each), but the {_count(nodes, 'node')} they may run on "
        f"{'has' if nodes == 1 else 'have'} {sum(room.free)} free: room for {room.pods()}{freed}; {then}",
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
