"""The simulated metrics port: what the judge would get from Prometheus for the simulated fleet, per
interval (samples) and over whole windows (bucket and request counts)."""

from __future__ import annotations

import math
import statistics

from bellwether.analysis.source import Counts, Sample, Window
from bellwether.api import ModelDeploymentSpec
from bellwether.api.spec import Metric
from bellwether.sim.cluster import Cluster
from bellwether.sim.fleet import Behaviour, Meanwhile
from bellwether.sim.source import SimMetricSource
from bellwether.sim.world import World
from support.sim_objects import deployment, service

P99 = Metric(name="p99", preset="vllm-e2e-latency-p99")
ERRORS = Metric(name="errors", preset="vllm-error-rate")
TTFT = Metric(name="ttft", preset="vllm-ttft-p95")


def serving(spec: ModelDeploymentSpec, canary: Behaviour, seed: int = 1) -> World:
    """Stable revision `a` on 3 pods and canary `b` on 1 pod in every region, 30 minutes in."""
    world = World.for_spec(spec, seed=seed)
    world.fleet.behaviours["b"] = canary
    world.load_seconds.update(a=60.0, b=60.0)
    for name, cluster in world.clusters.items():
        sel = spec.region(name).node_selector | {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
        cluster.apply(
            [
                deployment(f"chat-{name}-a", "a", 3, selector=sel),
                deployment(f"chat-{name}-b", "b", 1, selector=sel),
                service(f"chat-{name}"),  # every ready pod serves: 3 to 1
            ],
            owner="chat",
        )
    world.advance(1800)
    return world


async def sample(world: World, source: SimMetricSource, metric: Metric, region: str, revision: str) -> Sample:
    end = world.clock.unix()
    role = "canary" if revision == "b" else "stable"
    window = Window("chat", "ml", region, revision, role, start=end - 300, end=end, step=30)
    return await source.sample(metric, window)


async def test_presets_answer_per_revision_with_one_value_per_interval(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour(latency_factor=2.0))
    source = SimMetricSource(world)
    stable = await sample(world, source, P99, "us-east", "a")
    canary = await sample(world, source, P99, "us-east", "b")
    assert len(stable.series) == len(canary.series) == 10
    assert stable.value == stable.series[-1]
    ratio = statistics.median(canary.series) / statistics.median(stable.series)
    assert 1.7 < ratio < 2.3
    assert 1.5 < statistics.median(stable.series) < 3.5  # seconds, like vLLM's e2e histogram


async def test_a_regression_can_be_limited_to_one_region(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour(latency_factor=2.0, regions=frozenset({"eu-west"})))
    source = SimMetricSource(world)
    for region, expected in (("us-east", 1.0), ("eu-west", 2.0)):
        stable = await sample(world, source, TTFT, region, "a")
        canary = await sample(world, source, TTFT, region, "b")
        ratio = statistics.median(canary.series) / statistics.median(stable.series)
        assert abs(ratio - expected) < 0.3 * expected, region


async def test_error_rates_are_counts_over_requests(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour(error_factor=5.0))
    source = SimMetricSource(world)
    stable = await sample(world, source, ERRORS, "us-east", "a")
    canary = await sample(world, source, ERRORS, "us-east", "b")
    assert statistics.mean(stable.series) < 0.01 < statistics.mean(canary.series) < 0.04


async def test_the_same_window_answers_the_same_and_seeds_differ(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour())
    source = SimMetricSource(world)
    first = await sample(world, source, P99, "us-east", "b")
    again = await sample(world, source, P99, "us-east", "b")
    other = serving(demo_spec, Behaviour(), seed=2)
    assert first == again
    assert first != await sample(other, SimMetricSource(other), P99, "us-east", "b")


async def test_a_canary_with_less_traffic_is_noisier(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour())
    world.fleet.load_swing = 0.0
    source = SimMetricSource(world)
    stable, canary = [], []
    for _ in range(20):
        world.advance(300)
        stable += (await sample(world, source, P99, "us-east", "a")).series
        canary += (await sample(world, source, P99, "us-east", "b")).series
    assert statistics.stdev(canary) / statistics.mean(canary) > statistics.stdev(stable) / statistics.mean(stable)


async def test_no_ready_pods_no_data_and_an_outage_is_an_error(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour())
    cluster: Cluster = world.clusters["us-east"]
    cluster.delete_deployment("chat-us-east-b")
    world.advance(600)
    source = SimMetricSource(world, outages=[(world.clock.elapsed + 60, 1e9)])
    gone = await sample(world, source, P99, "us-east", "b")
    assert (gone.value, gone.series, gone.error) == (None, (), None)
    world.advance(120)
    down = await sample(world, source, P99, "us-east", "a")
    assert down.value is None and down.error is not None and "unreachable" in down.error


async def test_a_revision_that_exports_nothing_has_no_series(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour(exports_metrics=False))
    empty = await sample(world, SimMetricSource(world), P99, "us-east", "b")
    assert (empty.value, empty.series, empty.error) == (None, (), None)


async def test_custom_queries_are_answered_by_what_they_measure(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour(error_factor=5.0))
    source = SimMetricSource(world)
    custom = Metric(name="fivexx", query='sum(rate(http_requests_total{code=~"5.."}[1m]))', max=0.01)
    got = await sample(world, source, custom, "us-east", "b")
    assert got.value is not None and got.value < 0.1
    unknown = Metric(name="gpu-temp", query="avg(DCGM_FI_DEV_GPU_TEMP)", max=80)
    assert (await sample(world, source, unknown, "us-east", "b")).error is not None


async def counts(world: World, source: SimMetricSource, metric: Metric, revision: str, start: float) -> Counts:
    end = world.clock.unix()
    role = "canary" if revision == "b" else "stable"
    return await source.counts(metric, Window("chat", "ml", "us-east", revision, role, end - start, end, 30))


def share_above(c: Counts, edge: float) -> float:
    total = dict(c.buckets)[math.inf]
    below = max(v for le, v in c.buckets if le <= edge)
    return (total - below) / total


async def test_counts_are_the_requests_of_the_window_and_add_up_across_it(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour())
    source = SimMetricSource(world)
    whole = await counts(world, source, P99, "b", 600)
    recent = await counts(world, source, P99, "b", 300)
    errors = await counts(world, source, ERRORS, "b", 600)
    # one canary pod of four serves a quarter of us-east's 80 requests a second
    assert 0.9 * 20 * 600 < whole.total < 1.1 * 20 * 600
    assert errors.total == whole.total and 0 < errors.failed < 0.02 * errors.total
    assert recent.total < whole.total and all(
        r <= w for (_, r), (_, w) in zip(recent.buckets, whole.buckets, strict=True)
    )
    assert whole == await counts(world, source, P99, "b", 600)  # the same window answers the same


async def test_counts_and_the_per_interval_samples_describe_the_same_requests(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour(latency_factor=2.0))
    source = SimMetricSource(world)
    canary, stable = await counts(world, source, P99, "b", 300), await counts(world, source, P99, "a", 300)
    # a canary twice as slow has about as many requests above 2x stable's p99 as stable has above it
    p99 = statistics.median((await sample(world, source, P99, "us-east", "a")).series)
    assert abs(share_above(canary, 2 * p99) - share_above(stable, p99)) < 0.01
    assert share_above(stable, p99) < 0.02


async def test_a_tail_regression_slows_a_share_of_the_requests_only(demo_spec: ModelDeploymentSpec) -> None:
    world = serving(demo_spec, Behaviour(tail_share=0.03, tail_factor=4.0))
    source = SimMetricSource(world)
    canary, stable = await counts(world, source, P99, "b", 600), await counts(world, source, P99, "a", 600)
    assert share_above(canary, 1.0) - share_above(stable, 1.0) < 0.05  # the body barely moves
    assert share_above(canary, 3.5) > 5 * share_above(stable, 3.5)  # the tail does


async def test_what_happens_meanwhile_reaches_stable_as_well(demo_spec: ModelDeploymentSpec) -> None:
    surge = Meanwhile(surge_factor=1.8, surge_after=0, surge_seconds=1e9)
    degrading = Meanwhile(stable_factor=1.6, stable_ramp=1)
    for meanwhile, stable_slower, canary_slower in ((surge, True, True), (degrading, True, False)):
        world = serving(demo_spec, Behaviour(meanwhile=meanwhile))
        calm = serving(demo_spec, Behaviour())
        for revision, slower in (("a", stable_slower), ("b", canary_slower)):
            now = await counts(world, SimMetricSource(world), P99, revision, 300)
            before = await counts(calm, SimMetricSource(calm), P99, revision, 300)
            assert (share_above(now, 3.0) > 3 * share_above(before, 3.0)) == slower, (meanwhile, revision)


async def test_little_traffic_means_few_requests_and_no_series_before_a_pod_serves(
    demo_spec: ModelDeploymentSpec,
) -> None:
    world = serving(demo_spec, Behaviour(meanwhile=Meanwhile(rps=2.0)))
    source = SimMetricSource(world)
    quiet = await counts(world, source, ERRORS, "b", 300)
    assert 0 < quiet.total < 0.4 * 2 * 300
    assert (await counts(world, source, ERRORS, "c", 300)).present is False  # a revision that never served


async def test_triton_and_tgi_token_presets_answer_what_the_fleet_does_to_their_quantity(
    demo_spec: ModelDeploymentSpec,
) -> None:
    """Time to first response and queue time follow the fleet's time to first token, TGI's time per
    token its inter-token latency: a first-token regression moves the first two and not the third."""
    world = serving(demo_spec, Behaviour(ttft_factor=2.0))
    source = SimMetricSource(world)
    ratios = {}
    for preset in ("triton-first-response-p95", "tgi-queue-duration-p95", "tgi-time-per-token-p95"):
        metric = Metric(name="m", preset=preset)
        stable = await sample(world, source, metric, "us-east", "a")
        canary = await sample(world, source, metric, "us-east", "b")
        ratios[preset] = statistics.median(canary.series) / statistics.median(stable.series)
    assert 1.6 < ratios["triton-first-response-p95"] < 2.5 and 1.6 < ratios["tgi-queue-duration-p95"] < 2.5
    assert 0.8 < ratios["tgi-time-per-token-p95"] < 1.25
