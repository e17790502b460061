"""A rollout in an autoscaled region, through the operator's cycle and a simulated HPA controller.

Given a region autoscaled on load, when the load doubles in the middle of a canary step, the HPA
doubles the stable revision; the canary follows so its share stays at the step's weight (within what
whole pods allow), the region never serves with fewer pods than before, and promotion hands the HPA
to the new revision without replacing a pod.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bellwether.api import parse, parse_spec
from bellwether.render import names
from bellwether.sim.autoscaler import KIND as HPA
from bellwether.sim.play import next_revision, play
from bellwether.sim.runner import Runner
from bellwether.sim.source import SimMetricSource
from bellwether.sim.world import World

REGION = "us-east"
SPEC: dict[str, Any] = {
    "model": {"name": "llama", "version": "1", "uri": "s3://models/llama/1"},
    "runtime": {"image": "vllm/vllm-openai:v0.11.0", "resources": {"gpu": {"count": 1}}, "warmupSeconds": 60},
    "regions": [
        {
            "name": REGION,
            "autoscaling": {
                "minReplicas": 4,
                "maxReplicas": 16,
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "vllm:num_requests_waiting"},
                            "target": {"type": "AverageValue", "averageValue": 5},
                        },
                    }
                ],
            },
        }
    ],
    "rollout": {
        "maxSurge": "25%",
        "steps": [{"setWeight": 25}, {"pause": {"duration": "15m"}}, {"setWeight": 50}, {"pause": {"duration": "10m"}}],
        "bakeTime": "2m",
    },
}


def serving(runner: Runner, t: float) -> int:
    return len(runner.world.clusters[REGION].endpoints(runner.owner, t))


async def test_the_canary_follows_the_autoscaler_and_promotion_hands_it_over_without_a_restart() -> None:
    spec = parse_spec(SPEC)
    world = World.for_spec(spec)
    runner = Runner(world, SimMetricSource(world), spec, max_tick=10.0)
    cluster = world.clusters[REGION]
    assert await runner.run(Runner.settled, 900)
    old = runner.status.stable_revision
    assert old is not None
    before = serving(runner, runner.elapsed)
    assert before == 4  # minReplicas, at the load four pods carry

    runner.apply(next_revision(spec))
    new = runner.target
    start, doubled_at = runner.elapsed, None
    shares: list[tuple[float, int, int, int]] = []  # (t, weight asked, share achieved, pods serving)
    canary_at_25: dict[bool, int] = {}  # doubled yet -> most canary replicas at weight 25
    promoted_uids: set[str] | None = None
    while runner.elapsed - start < 3 * 3600 and not runner.settled():
        await runner.tick()
        st = runner.status
        region = st.regions[0]
        pods = cluster.observe(runner.owner).pods
        if st.canary_revision == new and 0 < region.weight < 100 and new in pods:
            settled = all(p.ready == p.desired for p in pods.values())
            achieved = cluster.weights(runner.owner, runner.elapsed).get(new, 0)
            if settled:
                shares.append((runner.elapsed, region.weight, achieved, serving(runner, runner.elapsed)))
            if region.weight == 25:
                was = canary_at_25.get(doubled_at is not None, 0)
                canary_at_25[doubled_at is not None] = max(was, pods[new].desired)
                if doubled_at is None and settled and st.phase == "Progressing" and st.step == 1:
                    world.fleet.demand[REGION] *= 2  # the load doubles mid-rollout
                    doubled_at = runner.elapsed
        if st.stable_revision == new and promoted_uids is None:
            promoted_uids = {p.uid for p in cluster.live_pods(runner.owner, runner.elapsed) if p.revision == new}
    assert runner.settled() and runner.status.stable_revision == new and runner.status.phase == "Healthy"
    assert doubled_at is not None and promoted_uids is not None

    # The HPA doubled the stable revision while the canary ran at 25%.
    scaled = world.autoscalers[REGION].scaled
    stable_name = names.revision_name(runner.name, REGION, old)
    assert any(t > doubled_at and dep == stable_name and to >= 2 * frm - 1 for t, dep, frm, to in scaled)
    # The canary followed it, and its share stayed at the step's weight within one pod's worth.
    assert canary_at_25[True] > canary_at_25[False]
    assert {w for _, w, _, _ in shares} == {25, 50}
    for t, weight, achieved, total in shares:
        assert abs(achieved - weight) <= 100 / total + 1, (t, weight, achieved, total)

    # Capacity never dipped: never fewer pods serving than before the rollout, nor, once the HPA had
    # scaled up for the doubled load, fewer than that load needs.
    end = runner.elapsed
    samples = [start + i for i in range(int(end - start))]
    assert min(serving(runner, t) for t in samples) >= before
    grown = next(t for t in samples if t > doubled_at and serving(runner, t) >= 2 * before)
    assert min(serving(runner, t) for t in samples if t >= grown) >= 2 * before

    # Promotion handed the HPA over without replacing a pod: the promoted revision's pods are the
    # ones it had when it became stable, of one pod template, and the HPA scales it now.
    final = {p.uid for p in cluster.live_pods(runner.owner, end) if p.revision == new}
    assert final and final <= promoted_uids
    deployment = cluster.deployments[names.revision_name(runner.name, REGION, new)]
    assert len(deployment.replica_sets) == 1
    assert old not in {p.revision for p in cluster.live_pods(runner.owner, end)}
    hpas = [o for (kind, _), o in cluster.objects.items() if kind == HPA]
    assert [h["spec"]["scaleTargetRef"]["name"] for h in hpas] == [deployment.name]
    assert runner.status.regions[0].replicas == deployment.replicas >= 2 * before


async def test_the_autoscaled_multi_region_example_promotes_a_healthy_revision_in_every_region() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "vllm-autoscaled-multi-region.yaml"
    spec = parse(yaml.safe_load(path.read_text())).spec
    outcome = await play(spec, "healthy", seed=3)
    assert outcome.result == "promoted"
    assert outcome.regions_touched == ["us-east", "eu-west", "ap-south"]
    # Every region ends serving the new revision with at least its minimum.
    for region in spec.regions:
        assert region.autoscaling is not None
        assert outcome.serving[region.name].get(outcome.revision, 0) >= region.autoscaling.min_replicas
