"""The simulated GPU cluster: pods follow replicas, need free GPUs on a matching node, and become
ready after the model has loaded."""

from __future__ import annotations

from typing import Literal

from bellwether.api import ModelDeploymentSpec, template_of
from bellwether.render import objects_for_region
from bellwether.rollout.types import RegionPlan, RevisionPlan
from bellwether.sim.clock import VirtualClock
from bellwether.sim.cluster import Cluster, Node
from bellwether.sim.world import Pool, World
from support.sim_objects import H100, deployment, service


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


def test_replicas_router_weights_are_the_serving_services_ready_endpoints() -> None:
    clock, c = cluster([8], load=60)
    c.apply([deployment("chat-a", "a", 3), deployment("chat-b", "b", 1), service("chat")], owner="chat")
    assert c.observe("chat").weights == {}  # nothing ready: no endpoints, no traffic
    clock.advance(60)
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


# -- the Deployment controller: a pod template change rolls the Deployment ----------------------------


def uids(c: Cluster, revision: str) -> set[str]:
    return {p.uid for p in c.pods if p.revision == revision and p.deleted is None}


def live(c: Cluster) -> int:
    return len(c.live_pods("chat", c.now()))


def test_a_pod_template_change_rolls_the_deployment_with_new_pods() -> None:
    """A label flipped in the template (the old `role` at promotion) is a new ReplicaSet: every pod is
    replaced, 25% surge / 25% unavailable by default, and the new pods load the model again."""
    clock, c = cluster([8], load=60)
    c.apply([deployment("chat-a", "a", 4, pod_labels={"bellwether.dev/role": "canary"})], owner="chat")
    clock.advance(60)
    c.reconcile()
    before = uids(c, "a")
    c.apply([deployment("chat-a", "a", 4, pod_labels={"bellwether.dev/role": "stable"})], owner="chat")
    pods = c.observe("chat").pods["a"]
    # 2 new pods at once (1 surge + 1 unavailable), and a ready pod killed in the same second
    assert (live(c), pods.ready) == (5, 3)
    assert len(c.deployments["chat-a"].replica_sets) == 2
    for _ in range(4):
        clock.advance(60)
        c.reconcile()
        assert live(c) <= 5 and c.observe("chat").pods["a"].ready >= 3
    assert uids(c, "a").isdisjoint(before) and len(uids(c, "a")) == 4
    assert c.observe("chat").pods["a"].ready == 4


def test_the_strategy_sets_how_a_template_change_rolls() -> None:
    clock, c = cluster([8], load=60)
    swap = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    c.apply([deployment("chat-a", "a", 4, strategy=swap)], owner="chat")
    clock.advance(60)
    c.reconcile()
    c.apply([deployment("chat-a", "a", 4, strategy=swap, image="vllm:2")], owner="chat")
    assert (live(c), c.observe("chat").pods["a"].ready) == (4, 3)  # one at a time, never a pod more
    clock.advance(60)
    c.reconcile()
    assert (live(c), c.observe("chat").pods["a"].ready) == (4, 3)
    c.apply([deployment("chat-a", "a", 4, strategy={"type": "Recreate"}, image="vllm:3")], owner="chat")
    assert (live(c), c.observe("chat").pods["a"].ready) == (4, 0)  # all old pods gone first


def test_the_same_template_reapplied_or_scaled_keeps_its_pods() -> None:
    clock, c = cluster([8], load=60)
    c.apply([deployment("chat-a", "a", 4)], owner="chat")
    clock.advance(60)
    c.reconcile()
    before = uids(c, "a")
    c.apply([deployment("chat-a", "a", 4)], owner="chat")
    c.apply([deployment("chat-a", "a", 2)], owner="chat")
    c.apply([deployment("chat-a", "a", 3)], owner="chat")
    assert len(uids(c, "a") & before) == 2 and len(c.deployments["chat-a"].replica_sets) == 1


def test_scaling_down_deletes_like_a_replicaset() -> None:
    """Unscheduled first, then not ready, then the lower pod-deletion-cost, then the most recently ready."""
    clock, c = cluster([2, 2], load=60)
    c.apply([deployment("chat-a", "a", 2)], owner="chat")
    clock.advance(100)
    c.reconcile()
    first = {p.name for p in c.pods}
    c.apply([deployment("chat-a", "a", 5)], owner="chat")  # 2 more scheduled, 1 Pending
    pending = next(p for p in c.pods if p.node is None)
    c.apply([deployment("chat-a", "a", 4)], owner="chat")
    assert pending.deleted is not None
    clock.advance(30)
    c.apply([deployment("chat-a", "a", 2)], owner="chat")  # the two not ready yet go
    assert {p.name for p in c.pods if p.deleted is None} == first
    c.apply([deployment("chat-a", "a", 4)], owner="chat")
    clock.advance(200)
    c.reconcile()
    oldest, older = sorted(first)
    c.set_serving(oldest, True)
    c.set_serving(older, True)
    c.apply([deployment("chat-a", "a", 2)], owner="chat")  # the two without a deletion cost go
    assert {p.name for p in c.pods if p.deleted is None} == first
    c.set_serving(older, False)
    c.apply([deployment("chat-a", "a", 1)], owner="chat")
    assert {p.name for p in c.pods if p.deleted is None} == {oldest}
    c.set_serving(oldest, False)
    c.apply([deployment("chat-a", "a", 2)], owner="chat")
    clock.advance(300)
    c.reconcile()
    c.apply([deployment("chat-a", "a", 1)], owner="chat")  # both ready, same cost: the newer one goes
    assert {p.name for p in c.pods if p.deleted is None} == {oldest}


def test_set_serving_labels_the_pod_and_the_serving_service_selects_it() -> None:
    clock, c = cluster([8], load=60)
    c.apply(
        [
            deployment("chat-a", "a", 3),
            deployment("chat-b", "b", 1),
            service("chat", {"bellwether.dev/deployment": "chat", "bellwether.dev/serving": "true"}),
            service("chat-a", revision="a", selector={"bellwether.dev/revision": "a"}),
        ],
        owner="chat",
    )
    views = c.pod_views("chat")
    assert len(views) == 4 and not any(v.serving or v.ready for v in views)
    for v in views:
        c.set_serving(v.name, True)  # every pod serves once ready
    b = next(v.name for v in views if v.revision == "b")
    labelled = next(p for p in c.pods if p.name == b)
    assert labelled.labels["bellwether.dev/serving"] == "true"
    assert labelled.annotations["controller.kubernetes.io/pod-deletion-cost"] == "100"
    assert c.observe("chat").weights == {}  # labelled, not ready: no endpoint yet
    clock.advance(60)
    assert c.observe("chat").weights == {"a": 75, "b": 25}
    assert c.observe("chat").pods["b"].serving == 1
    clock.advance(10)
    c.set_serving(b, False)
    assert labelled.labels.get("bellwether.dev/serving") is None and not labelled.annotations
    obs = c.observe("chat")
    assert (obs.weights, obs.pods["b"].serving, obs.pods["b"].ready) == ({"a": 100}, 0, 1)
    assert c.weights("chat", 65) == {"a": 75, "b": 25}  # the past is answered as it was


def test_promotion_as_rendered_never_replaces_a_pod(demo_spec: ModelDeploymentSpec) -> None:
    """The canary's Deployment re-rendered as stable (role flips, replicas grow) keeps every pod it
    had: the pod template of a revision never changes."""
    world = World.for_spec(demo_spec)
    world.load_seconds["new"] = 60.0
    template = template_of(demo_spec)
    cluster = world.clusters["us-east"]

    def apply(role: Literal["stable", "canary"], replicas: int) -> None:
        plan = RegionPlan("us-east", (RevisionPlan("new", role, replicas, 100, template),))
        cluster.apply(objects_for_region("chat", "ml", demo_spec, plan), owner="chat")

    apply("canary", 2)
    world.advance(60)
    before = uids(cluster, "new")
    apply("stable", 4)
    world.advance(120)
    assert before <= uids(cluster, "new")
    assert len({p.replica_set for p in cluster.pods}) == 1
