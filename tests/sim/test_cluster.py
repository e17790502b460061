"""The simulated GPU cluster: pods follow replicas, need free GPUs on a matching node, and become
ready after the model has loaded."""

from __future__ import annotations

from sim_objects import H100, deployment

from bellwether.api import ModelDeploymentSpec, template_of
from bellwether.render import objects_for_region
from bellwether.rollout.types import RegionPlan, RevisionPlan
from bellwether.sim.clock import VirtualClock
from bellwether.sim.cluster import Cluster, Node
from bellwether.sim.world import Pool, World


def cluster(gpus_per_node: list[int], load: float = 120.0) -> tuple[VirtualClock, Cluster]:
    clock = VirtualClock()
    nodes = [Node(f"gpu-{i}", g, dict(H100)) for i, g in enumerate(gpus_per_node)]
    return clock, Cluster("us-east", nodes, now=lambda: clock.elapsed, load_seconds=lambda rev: load)


def test_pods_become_ready_only_after_the_model_loads() -> None:
    clock, c = cluster([8])
    c.apply([deployment("chat-a", "a", 4)], owner="chat")
    assert c.observe("chat").pods["a"].ready == 0
    clock.advance(119)
    c.reconcile()
    assert c.observe("chat").pods["a"].ready == 0
    clock.advance(1)
    pods = c.observe("chat").pods["a"]
    assert (pods.desired, pods.ready, pods.unschedulable) == (4, 4, 0)


def test_pods_beyond_the_free_gpus_stay_pending_with_a_reason() -> None:
    clock, c = cluster([4, 2])
    c.apply([deployment("chat-a", "a", 4, gpus=2)], owner="chat")
    clock.advance(120)
    pods = c.observe("chat").pods["a"]
    assert (pods.ready, pods.unschedulable) == (3, 1)
    assert pods.problem is not None and "nvidia.com/gpu" in pods.problem
    assert c.gpus_in_use() == 6


def test_a_pod_never_spans_nodes() -> None:
    _, c = cluster([1, 1])
    c.apply([deployment("chat-a", "a", 1, gpus=2)], owner="chat")
    assert c.observe("chat").pods["a"].unschedulable == 1


def test_node_selector_must_match() -> None:
    _, c = cluster([8])
    c.apply([deployment("chat-a", "a", 1, selector={"nvidia.com/gpu.product": "NVIDIA-A100"})], owner="chat")
    pods = c.observe("chat").pods["a"]
    assert pods.unschedulable == 1
    assert pods.problem is not None and "node selector" in pods.problem


def test_surge_on_a_full_pool_is_pending_but_swapping_in_place_works() -> None:
    """maxSurge 0: shrinking stable frees exactly the GPUs the canary needs."""
    clock, c = cluster([4])
    c.apply([deployment("chat-a", "a", 4)], owner="chat")
    clock.advance(120)
    c.apply([deployment("chat-a", "a", 4), deployment("chat-b", "b", 1)], owner="chat")
    clock.advance(300)
    c.reconcile()
    assert c.observe("chat").pods["b"].unschedulable == 1
    c.apply([deployment("chat-a", "a", 3), deployment("chat-b", "b", 1)], owner="chat")
    clock.advance(120)
    c.reconcile()
    obs = c.observe("chat")
    assert (obs.pods["a"].ready, obs.pods["b"].ready, obs.pods["b"].unschedulable) == (3, 1, 0)
    assert c.gpus_in_use() == 4


def test_a_deployment_left_out_of_the_applied_set_is_deleted_and_frees_its_gpus() -> None:
    clock, c = cluster([8])
    c.apply([deployment("chat-a", "a", 2), deployment("chat-b", "b", 2)], owner="chat")
    clock.advance(120)
    c.apply([deployment("chat-a", "a", 2)], owner="chat")
    assert set(c.observe("chat").pods) == {"a"}
    assert c.gpus_in_use() == 2


def test_scaling_down_removes_pending_pods_before_serving_ones() -> None:
    clock, c = cluster([2])
    c.apply([deployment("chat-a", "a", 3)], owner="chat")
    clock.advance(120)
    c.apply([deployment("chat-a", "a", 2)], owner="chat")
    pods = c.observe("chat").pods["a"]
    assert (pods.desired, pods.ready, pods.unschedulable) == (2, 2, 0)


def test_replicas_router_weights_follow_ready_pods() -> None:
    _, c = cluster([8], load=0)
    c.apply([deployment("chat-a", "a", 3), deployment("chat-b", "b", 1)], owner="chat")
    assert c.observe("chat").weights == {"a": 75, "b": 25}


def test_the_renderers_deployments_schedule_by_their_gpu_limits_and_node_selector(
    demo_spec: ModelDeploymentSpec,
) -> None:
    """The objects the operator would apply, on a pool with no spare GPUs: a surge waits, a swap fits."""
    world = World.for_spec(demo_spec, pools={"us-east": Pool(spare_gpus=0)})
    world.load_seconds.update(dict.fromkeys(("old", "new"), 60.0))
    template = template_of(demo_spec)
    cluster = world.clusters["us-east"]

    def apply(stable: int, canary: int) -> None:
        revisions = [RevisionPlan("old", "stable", stable, 100, template)]
        if canary:
            revisions.append(RevisionPlan("new", "canary", canary, 10, template))
        plan = RegionPlan("us-east", tuple(revisions))
        cluster.apply(objects_for_region("chat", "ml", demo_spec, plan), owner="chat")

    apply(4, 0)
    world.advance(60)
    assert cluster.observe("chat").pods["old"].ready == 4
    apply(4, 1)
    world.advance(300)
    surged = cluster.observe("chat").pods["new"]
    assert (surged.ready, surged.unschedulable) == (0, 1)
    assert surged.problem is not None and "nvidia.com/gpu" in surged.problem
    apply(3, 1)
    world.advance(60)
    pods = cluster.observe("chat").pods
    assert (pods["old"].ready, pods["new"].ready) == (3, 1)
    assert cluster.gpus_in_use() == cluster.gpu_capacity() == 4
