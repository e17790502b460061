"""Node drains against the disruption budgets Bellwether renders: the Eviction API and `kubectl drain`
as the simulator models them (`bellwether.sim.drain`), then a drain during a canary rollout and one in
steady state, through the operator's own cycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bellwether.api import ModelDeploymentSpec, dump, parse, parse_spec, revision_of, template_of
from bellwether.render import objects_for_region
from bellwether.rollout.types import RegionPlan, RevisionPlan
from bellwether.sim.cluster import Cluster, Node
from bellwether.sim.drain import Drain, Refused, budget_status, evict
from bellwether.sim.play import next_revision, settle
from bellwether.sim.runner import Runner
from bellwether.sim.scenarios import CATALOG
from bellwether.sim.source import SimMetricSource
from bellwether.sim.world import Pool, World

WARMUP = 60.0


def one_region(spec: ModelDeploymentSpec, **disruption: Any) -> ModelDeploymentSpec:
    """The demo's first region alone (4 replicas, maxSurge 25%, steps 10% and 50%)."""
    raw = dump(spec)
    raw["regions"] = raw["regions"][:1]
    raw["rollout"].pop("waves", None)
    raw["disruption"] = disruption
    return parse_spec(raw)


# -- the Eviction API and the disruption controller --------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def cluster_with(spec: ModelDeploymentSpec, replicas: int) -> tuple[Cluster, Clock, str]:
    clock = Clock()
    nodes = [Node(f"gpu-{i}", gpus=2, labels=_labels(spec)) for i in range(4)]
    cluster = Cluster("us-east", nodes, now=clock, load_seconds=lambda revision: WARMUP)
    t = template_of(spec)
    plan = RegionPlan("us-east", (RevisionPlan(revision_of(t), "stable", replicas, 100, t),))
    cluster.apply(objects_for_region("chat", "ml", spec, plan), owner="chat")
    clock.t = WARMUP
    cluster.reconcile()
    return cluster, clock, revision_of(t)


def _labels(spec: ModelDeploymentSpec) -> dict[str, str]:
    gpu = spec.runtime.resources.gpu
    product = gpu.product if gpu and gpu.product else ""
    return {"nvidia.com/gpu.product": product, **spec.regions[0].node_selector}


def test_one_pod_at_a_time_while_the_budget_allows_one(demo_spec: ModelDeploymentSpec) -> None:
    cluster, clock, _ = cluster_with(one_region(demo_spec), replicas=4)
    (budget,) = [o for (kind, _), o in cluster.objects.items() if kind == "PodDisruptionBudget"]
    assert budget_status(cluster, budget).disruptions_allowed == 1  # 4 healthy, 4 - 1 desired

    first, second = sorted(p.name for p in cluster.pods if p.deleted is None)[:2]
    evict(cluster, first)
    # Its replacement is warming up: 3 healthy of 3 desired, nothing more may go.
    assert budget_status(cluster, budget).disruptions_allowed == 0
    with pytest.raises(Refused) as refused:
        evict(cluster, second)
    assert refused.value.code == 429 and "needs 3 healthy pods and has 3" in str(refused.value)

    clock.t += WARMUP
    evict(cluster, second)  # the replacement is ready: the budget allows one again


def test_a_budget_of_zero_refuses_ready_pods_but_not_ones_that_serve_nothing(demo_spec: ModelDeploymentSpec) -> None:
    spec = one_region(demo_spec, maxUnavailable=0)
    cluster, clock, _ = cluster_with(spec, replicas=2)
    ready = sorted(p.name for p in cluster.pods if p.deleted is None)
    with pytest.raises(Refused):
        evict(cluster, ready[0])
    # A pod that is not ready (still loading the model) serves nothing: AlwaysAllow lets it go.
    cluster.delete_pod(ready[0])  # as a crash or a kubelet would: not an eviction
    (replacement,) = [p for p in cluster.pods if p.deleted is None and not p.ready(clock.t)]
    evict(cluster, replacement.name)


def test_a_pod_selected_by_two_budgets_cannot_be_evicted(demo_spec: ModelDeploymentSpec) -> None:
    cluster, _, _ = cluster_with(one_region(demo_spec), replicas=2)
    budget = next(o for (kind, _), o in cluster.objects.items() if kind == "PodDisruptionBudget")
    cluster.objects[("PodDisruptionBudget", "someone-elses")] = {**budget, "metadata": {"name": "someone-elses"}}
    pod = next(p for p in cluster.pods if p.deleted is None)
    with pytest.raises(Refused) as refused:
        evict(cluster, pod.name)
    assert refused.value.code == 500


# -- drains through the operator's cycle --------------------------------------------------------


async def deployed(spec: ModelDeploymentSpec) -> Runner:
    world = World.for_spec(spec, seed=3, pools={"us-east": Pool(gpus_per_node=2)})  # 4 nodes of 2 GPUs
    runner = Runner(world, SimMetricSource(world), spec, max_tick=5.0)  # kubectl retries every 5 s
    await settle(runner)
    assert runner.settled() and runner.status.phase == "Healthy"
    return runner


def busiest_node(cluster: Cluster, revision: str) -> str:
    counts: dict[str, int] = {}
    for p in cluster.pods:
        if p.deleted is None and p.revision == revision and p.node is not None:
            counts[p.node] = counts.get(p.node, 0) + 1
    return max(sorted(counts), key=lambda n: counts[n])


class Watch:
    """What the region's Deployments asked for after every cycle, and the ready pods at every moment."""

    def __init__(self, runner: Runner) -> None:
        self.runner, self.cluster = runner, runner.world.clusters["us-east"]
        self.since = runner.elapsed
        self.plans: list[tuple[float, dict[str, int]]] = []

    async def tick(self) -> None:
        at = self.runner.elapsed
        await self.runner.tick()
        self.plans.append((at, {d.revision: d.replicas for d in self.cluster.deployments.values()}))

    def below_plan(self, revision: str, slack: int = 0) -> list[str]:
        """Moments `revision` had fewer ready pods than its Deployment asked for (less `slack`)."""
        problems = []
        for t in _moments(self.cluster, self.since):
            planned = [p for at, p in self.plans if at <= t]
            if not planned:
                continue
            want = planned[-1].get(revision, 0) - slack
            ready = len(self.cluster.ready_pods(self.runner.owner, t).get(revision, []))
            if ready < want:
                problems.append(f"at {t:.0f}s: {ready} ready < {want}")
        return problems


def _moments(cluster: Cluster, since: float) -> list[float]:
    out = {since}
    for p in cluster.pods:
        out.update(t for t in (p.created, p.ready_at, p.deleted) if t is not None and t >= since)
    return sorted(out)


async def drain_during_a_rollout(spec: ModelDeploymentSpec) -> tuple[Runner, Watch, Drain, str]:
    runner = await deployed(spec)
    stable = runner.target
    new = next_revision(spec)
    runner.world.fleet.behaviours[revision_of(template_of(new))] = CATALOG["healthy"].behaviour_for(new)
    runner.apply(new)
    watch = Watch(runner)
    while runner.status.canary_revision is None:
        await watch.tick()
    drain = Drain(watch.cluster, busiest_node(watch.cluster, stable))
    deadline = runner.elapsed + 3600
    while runner.elapsed < deadline and not (runner.settled() and drain.done):
        await watch.tick()
        drain.attempt()
    return runner, watch, drain, stable


async def test_a_drain_during_a_canary_waits_and_stable_never_drops_below_the_step(
    demo_spec: ModelDeploymentSpec,
) -> None:
    spec = one_region(demo_spec)
    runner, watch, drain, stable = await drain_during_a_rollout(spec)

    assert watch.below_plan(stable) == []
    assert drain.refused and {code for _, _, code in drain.refused} == {429}  # the drain waited
    # The rollout completed, and the drain with it: nothing is left on the cordoned node.
    assert runner.status.phase == "Healthy" and runner.status.stable_revision == runner.target != stable
    assert drain.done
    ready = watch.cluster.ready_pods(runner.owner, runner.elapsed)
    assert len(ready[runner.target]) == spec.regions[0].replicas
    assert all(p.node != drain.node for p in ready[runner.target])


async def test_without_budgets_the_same_drain_takes_stable_below_the_step(demo_spec: ModelDeploymentSpec) -> None:
    """The check above can fail: with spec.disruption.budget false the drain evicts stable pods at once."""
    _, watch, drain, stable = await drain_during_a_rollout(one_region(demo_spec, budget=False))
    assert not drain.refused
    assert watch.below_plan(stable)


async def test_a_drain_in_steady_state_takes_one_pod_at_a_time(demo_spec: ModelDeploymentSpec) -> None:
    spec = one_region(demo_spec)
    runner = await deployed(spec)
    watch = Watch(runner)
    await watch.tick()
    drain = Drain(watch.cluster, busiest_node(watch.cluster, runner.target))
    on_node = len(drain.pods())
    deadline = runner.elapsed + 1800
    while runner.elapsed < deadline and not drain.done:
        await watch.tick()
        drain.attempt()

    assert drain.done and len(drain.evicted) == on_node == 2
    # The second waited for the first's replacement to load the model.
    assert drain.evicted[1][0] - drain.evicted[0][0] >= WARMUP
    assert watch.below_plan(runner.target, slack=1) == []
    assert watch.below_plan(runner.target)  # one pod did go: the drain was not blocked
    # Status says the region is short while a replacement loads (Degraded, ReplicasShort), then
    # Healthy again with every replica ready off the drained node.
    assert await runner.run(lambda r: r.status.phase == "Healthy", WARMUP * 2)
    ready = watch.cluster.ready_pods(runner.owner, runner.elapsed)[runner.target]
    assert len(ready) == spec.regions[0].replicas and all(p.node != drain.node for p in ready)


async def test_a_drain_during_a_gpu_scarce_rollout_never_leaves_the_region_without_a_ready_pod() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "gpu-scarce.yaml"
    spec = parse(yaml.safe_load(example.read_text())).spec  # 4 replicas of 4 GPUs, maxSurge 0
    world = World.for_spec(spec, seed=3, pools={"us-east": Pool(spare_gpus=0, gpus_per_node=8)})
    runner = Runner(world, SimMetricSource(world), spec, max_tick=5.0)
    await settle(runner)
    stable = runner.target
    new = next_revision(spec)
    world.fleet.behaviours[revision_of(template_of(new))] = CATALOG["healthy"].behaviour_for(new)
    runner.apply(new)
    watch = Watch(runner)
    while runner.status.canary_revision is None:
        await watch.tick()
    drain = Drain(watch.cluster, busiest_node(watch.cluster, stable))
    deadline = runner.elapsed + 7200
    while runner.elapsed < deadline and not (runner.settled() and drain.done):
        await watch.tick()
        drain.attempt()

    assert not drain.evicted  # the budgets refused every eviction: what follows is the rollout's own doing
    dark = [t for t in _moments(watch.cluster, watch.since) if not watch.cluster.ready_pods(runner.owner, t)]
    assert dark == []
