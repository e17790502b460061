"""Before a surge: a Warning when the GPUs free where the new pods may run cannot take them."""

from __future__ import annotations

from bellwether.api import Template, template_of
from bellwether.rollout.capacity import shortfall, surge
from bellwether.rollout.types import GpuRoom, RegionObservation, RegionPlan, RevisionPlan, RevisionPods
from support.specs import spec

GPU = "nvidia.com/gpu"
STEPS = {"steps": [{"setWeight": 25}]}
ONE_GPU = template_of(spec(version="v2", rollout=STEPS))
TWO_GPUS = template_of(spec(version="v2", rollout=STEPS, runtime={"resources": {"gpu": {"count": 2}}}))
NO_GPU = template_of(spec(version="v2", rollout=STEPS, runtime={"resources": {"cpu": "4"}}))


def plan(canary: int, stable: int, template: Template = ONE_GPU, autoscaled: bool = False) -> RegionPlan:
    revisions = [RevisionPlan("s1", "stable", stable, 100, ONE_GPU)]
    if canary:
        revisions.append(RevisionPlan("c2", "canary", canary, 25, template, autoscaled=autoscaled))
    return RegionPlan("us-east", tuple(revisions))


def seen(**desired: int) -> RegionObservation:
    return RegionObservation("us-east", pods={rev: RevisionPods(desired=n, ready=n) for rev, n in desired.items()})


def test_a_surge_is_the_pods_asked_for_beyond_the_deployment_and_the_pods_the_plan_removes() -> None:
    # 4 stable pods; the step asks for 1 canary pod beside them (maxSurge 1): 1 new, none released
    found = surge(plan(canary=1, stable=4), seen(s1=4))
    assert found is not None and (found.revision.revision, found.new, found.released) == ("c2", 1, 0)
    # maxSurge 0: stable gives up a pod for the canary's
    found = surge(plan(canary=1, stable=3), seen(s1=4))
    assert found is not None and (found.new, found.released) == (1, 1)
    # the next step: 2 canary pods where its Deployment has 1
    found = surge(plan(canary=2, stable=2), seen(s1=4, c2=1))
    assert found is not None and (found.new, found.released) == (1, 2)


def test_no_surge_without_new_gpu_pods_of_ours() -> None:
    assert surge(plan(canary=1, stable=4), seen(s1=4, c2=1)) is None  # already asked for
    assert surge(plan(canary=0, stable=4), seen(s1=4)) is None
    assert surge(plan(canary=1, stable=4, template=NO_GPU), seen(s1=4)) is None
    assert surge(plan(canary=1, stable=4, autoscaled=True), seen(s1=4)) is None  # its autoscaler's to size


def test_a_surge_that_fits_says_nothing() -> None:
    found = surge(plan(canary=1, stable=4), seen(s1=4))
    assert found is not None
    assert shortfall(found, GpuRoom(GPU, 1, (0, 1)), "rollback") is None
    swap = surge(plan(canary=1, stable=3), seen(s1=4))
    assert swap is not None and shortfall(swap, GpuRoom(GPU, 1, (0, 0)), "rollback") is None  # the freed GPU


def test_a_surge_that_cannot_fit_is_a_warning_saying_what_is_short_and_what_follows() -> None:
    found = surge(plan(canary=2, stable=4, template=TWO_GPUS), seen(s1=4))
    assert found is not None
    # 3 free GPUs, but on three nodes: no node has the 2 one pod needs
    event = shortfall(found, GpuRoom(GPU, 2, (1, 1, 1)), "rollback")
    assert event is not None and (event.type, event.reason) == ("Warning", "InsufficientGPUs")
    assert event.message == (
        "us-east: the surge asks for 2 new canary pods of c2 (2 nvidia.com/gpu each), but the 3 nodes they"
        " may run on have 3 free: room for 0; the canary is rolled back once the scheduler reports them"
        " unschedulable (onUnschedulable: rollback)"
    )
    waiting = shortfall(found, GpuRoom(GPU, 2, (2,)), "wait")
    assert waiting is not None and waiting.message.endswith("has 2 free: room for 1; they will wait for the scheduler")
