"""The simulated world: one virtual clock, a GPU cluster per region, and the serving fleet on it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bellwether.api import Measurement, ModelDeploymentSpec
from bellwether.rollout.types import ManualCommand, Observations
from bellwether.sim.autoscaler import Autoscaler, region_load
from bellwether.sim.clock import VirtualClock
from bellwether.sim.cluster import PRODUCT_LABEL, Cluster, Node
from bellwether.sim.fleet import Fleet

DEFAULT_PRODUCT = "NVIDIA-H100-80GB-HBM3"


@dataclass(frozen=True)
class Pool:
    """A region's GPU pool: `spare_gpus` beyond what the spec's replicas need (None = plenty)."""

    spare_gpus: int | None = None
    gpus_per_node: int = 8


class World:
    def __init__(self, clock: VirtualClock, fleet: Fleet) -> None:
        self.clock = clock
        self.fleet = fleet
        self.clusters: dict[str, Cluster] = {}
        self.load_seconds: dict[str, float] = {}  # model load time by revision; the runner fills it in
        self.autoscalers: dict[str, Autoscaler] = {}  # by region: the HPA controller, once switched on

    @classmethod
    def for_spec(
        cls,
        spec: ModelDeploymentSpec,
        *,
        seed: int = 0,
        pools: Mapping[str, Pool] | None = None,
        fleet: Fleet | None = None,
    ) -> World:
        """Nodes labelled to match each region's nodeSelector and GPU product; by default a pool with
        room for a full second copy of the fleet (so `maxSurge` can surge)."""
        world = cls(VirtualClock(), fleet or Fleet(seed=seed))
        gpu = spec.runtime.resources.gpu
        per_pod = gpu.count if gpu else 0
        labels_gpu = {PRODUCT_LABEL: (gpu.product if gpu and gpu.product else DEFAULT_PRODUCT)}
        for region in spec.regions:
            pool = (pools or {}).get(region.name, Pool())
            most = region.autoscaling.max_replicas if region.autoscaling is not None else region.size
            need = most * per_pod
            total = need + (pool.spare_gpus if pool.spare_gpus is not None else max(need, per_pod))
            nodes = [
                Node(
                    f"{region.name}-gpu-{i}",
                    gpus=min(pool.gpus_per_node, total - i * pool.gpus_per_node),
                    labels={**labels_gpu, **region.node_selector, "kubernetes.io/hostname": f"{region.name}-gpu-{i}"},
                )
                for i in range(math.ceil(total / pool.gpus_per_node))
            ]
            world.clusters[region.name] = Cluster(region.name, nodes, now=world.elapsed, load_seconds=world._load)
            world.fleet.demand.setdefault(region.name, region.size * world.fleet.profile.rps_per_replica)
            if region.autoscaling is not None:
                world.autoscale(region.name)
        return world

    def autoscale(self, region: str) -> Autoscaler:
        """Run the HPA controller in `region`'s cluster, on the fleet's demand (a pod at its metric's
        target serves the fleet's `rps_per_replica`)."""
        cluster = self.clusters[region]
        scaler = Autoscaler(cluster, region_load(cluster, self.fleet.demand), self.fleet.profile.rps_per_replica)
        self.autoscalers[region] = scaler
        return scaler

    def elapsed(self) -> float:
        return self.clock.elapsed

    def _load(self, revision: str) -> float:
        return self.load_seconds.get(revision, 0.0)

    def advance(self, seconds: float) -> None:
        """Move time on, letting the controllers react at every moment a pod becomes ready (a rolling
        update goes on between the operator's cycles, as in a real cluster)."""
        if seconds < 0:
            raise ValueError(f"virtual time cannot go back ({seconds}s)")
        until = self.clock.elapsed + seconds
        while True:
            now = self.clock.elapsed
            events = [e for c in self.clusters.values() if (e := c.next_event(now, until)) is not None]
            events += [e for a in self.autoscalers.values() if (e := a.next_sync(now, until)) is not None]
            step_to = min(events, default=until)
            self.clock.advance(step_to - now)
            for c in self.clusters.values():
                c.reconcile()
            for a in self.autoscalers.values():
                a.sync(self.clock.elapsed)
            if step_to >= until:
                return

    def observe(
        self,
        owner: str,
        generation: int,
        measurements: tuple[Measurement, ...] = (),
        command: ManualCommand | None = None,
    ) -> Observations:
        return Observations(
            generation=generation,
            regions={name: c.observe(owner) for name, c in self.clusters.items()},
            measurements=measurements,
            command=command,
        )
