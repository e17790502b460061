"""The cycle's ports in the simulated world: a home cluster holding one ModelDeployment, and the
world's clusters as its regions. `bellwether.cycle.run` drives them exactly as it drives Kubernetes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from bellwether.api import API_VERSION, KIND, ModelDeploymentSpec, ModelDeploymentStatus, Template, dump
from bellwether.api.spec import Region
from bellwether.render.serving import Seen
from bellwether.render.workload import GPU, pod_spec
from bellwether.rollout.commands import COMMAND_ANNOTATION
from bellwether.rollout.types import CommandAction, GpuRoom, RegionObservation, RegionPlan
from bellwether.sim.world import World


class SimHome:
    """The ModelDeployment as the API server would hold it: spec, generation, status, annotations."""

    def __init__(self, name: str, namespace: str, spec: ModelDeploymentSpec) -> None:
        self.name, self.namespace = name, namespace
        self.spec = spec
        self.raw_spec = dump(spec)
        self.generation = 1
        self.status = ModelDeploymentStatus()
        self.annotations: dict[str, str] = {}
        self.templates: dict[str, dict[str, Any]] = {}  # ClusterAnalysisTemplates by name, as stored
        self.writes = 0

    def change(self, spec: ModelDeploymentSpec) -> None:
        self.spec, self.raw_spec = spec, dump(spec)
        self.generation += 1

    def command(self, action: CommandAction, command_id: str) -> None:
        self.annotations[COMMAND_ANNOTATION] = json.dumps({"action": action, "id": command_id})

    async def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        meta = {
            "name": self.name,
            "namespace": self.namespace,
            "uid": f"sim-{self.namespace}-{self.name}",
            "generation": self.generation,
            "annotations": dict(self.annotations),
        }
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": self.raw_spec, "status": self.status}

    async def write_status(self, obj: Mapping[str, Any], status: ModelDeploymentStatus) -> bool:
        changed = status != self.status
        self.status = status
        self.writes += changed
        return changed

    async def consume_command(self, namespace: str, name: str) -> None:
        self.annotations.pop(COMMAND_ANNOTATION, None)

    def put_template(self, template: dict[str, Any]) -> None:
        """`kubectl apply` of a ClusterAnalysisTemplate (or a change to one): the next cycle reads it."""
        self.templates[template["metadata"]["name"]] = template

    def delete_template(self, name: str) -> None:
        self.templates.pop(name, None)

    async def read_template(self, name: str) -> dict[str, Any] | None:
        return self.templates.get(name)


class SimRegions:
    """The world's clusters. An unreachable one is seen as such and never applied to."""

    def __init__(self, world: World, owner: str) -> None:
        self.world, self.owner = world, owner

    async def observe(self, obj: Mapping[str, Any], spec: ModelDeploymentSpec, region: Region) -> Seen:
        cluster = self.world.clusters[region.name]
        if cluster.unreachable:
            return Seen(
                RegionObservation(region.name, reachable=False, error=f"region {region.name}: cluster unreachable")
            )
        return Seen(cluster.observe(self.owner), tuple(cluster.pod_views(self.owner)))

    async def apply(
        self,
        obj: Mapping[str, Any],
        spec: ModelDeploymentSpec,
        plan: RegionPlan,
        objects: Sequence[dict[str, Any]],
        serving: Mapping[str, bool] | None,
        observed: Seen,
    ) -> str | None:
        for rev in plan.revisions:
            self.world.load_seconds.setdefault(rev.revision, float(rev.template.runtime.warmup_seconds))
        cluster = self.world.clusters[plan.region]
        try:
            # Traffic first, as the operator's writes go: the pods to serve are labelled before any
            # Deployment shrinks, so a ReplicaSet scaling down removes the pods without traffic.
            # Pods join before others leave (make before break), as the operator's writes go.
            for pod, serve in sorted((serving or {}).items(), key=lambda kv: not kv[1]):
                with contextlib.suppress(KeyError):  # gone since it was observed: the API answers 404
                    cluster.set_serving(pod, serve)
            cluster.apply(objects, owner=self.owner)
        except ConnectionError as e:
            return f"region {plan.region}: {e}"
        return None

    async def gpu_room(self, region: Region, template: Template) -> GpuRoom | None:
        gpu = template.runtime.resources.gpu
        cluster = self.world.clusters[region.name]
        if gpu is None or not cluster.nodes:
            return None
        selector = pod_spec(template, region.node_selector).get("nodeSelector") or {}
        return GpuRoom(GPU, gpu.count, cluster.free_gpus(selector))
