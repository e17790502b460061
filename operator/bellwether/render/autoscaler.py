"""The HorizontalPodAutoscaler of an autoscaled region, and who may write which Deployment's replicas.

One HPA per region (named like the serving Service), always scaling the stable revision's Deployment;
its `scaleTargetRef` moves to a new revision when the plan hands the autoscaler over, which happens only
once that revision runs the whole live count (`rollout/autoscaled.py`). An `external` scaler (KEDA, a
custom controller) gets no HPA: Bellwether only leaves the replicas to it.

Replica counts in an autoscaled region are written under their own field manager (`REPLICAS_MANAGER`),
never by the main apply: when a server-side apply leaves out a field its manager owned alone, the API
server resets it to the default (1 replica). Keeping the count under a second manager is Kubernetes'
documented way to hand a field over to an autoscaler without that reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bellwether.api import ModelDeploymentSpec, dump
from bellwether.api.autoscaling import Autoscaling
from bellwether.render import names
from bellwether.rollout.types import RegionObservation, RegionPlan

KIND = "HorizontalPodAutoscaler"
API_VERSION = "autoscaling/v2"
REPLICAS_MANAGER = "bellwether-replicas"


def horizontal_pod_autoscaler(
    name: str, namespace: str, region: str, auto: Autoscaling, revision: str
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": names.revision_name(name, region, revision),
        },
        "minReplicas": auto.min_replicas,
        "maxReplicas": auto.max_replicas,
        "metrics": [dump(m) for m in auto.metrics],
    }
    if auto.behavior:
        spec["behavior"] = auto.behavior
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": names.serving_name(name, region),
            "namespace": namespace,
            "labels": {**names.owner_labels(name, region), names.REVISION: revision},
        },
        "spec": spec,
    }


def autoscaler_objects(name: str, namespace: str, spec: ModelDeploymentSpec, plan: RegionPlan) -> list[dict[str, Any]]:
    """The region's HPA, when Bellwether renders one and the plan names its target."""
    auto = spec.region(plan.region).autoscaling
    if auto is None or not auto.renders_hpa or plan.autoscaler is None:
        return []
    return [horizontal_pod_autoscaler(name, namespace, plan.region, auto, plan.autoscaler)]


@dataclass(frozen=True)
class Claim:
    """Replicas to write under REPLICAS_MANAGER; `force` takes the field back (the step needs this count),
    otherwise the count as seen is co-owned so the main apply can drop it safely, and a conflict means
    the autoscaler has already moved it (nothing to do)."""

    replicas: int
    force: bool


def replica_claims(
    name: str, spec: ModelDeploymentSpec, plan: RegionPlan, observed: RegionObservation | None
) -> dict[str, Claim]:
    """Deployment name -> its replica claim, for every Deployment of an autoscaled region's plan."""
    if spec.region(plan.region).autoscaling is None:
        return {}
    claims = {}
    for rev in plan.revisions:
        seen = observed.pods.get(rev.revision) if observed is not None else None
        count = seen.desired if rev.autoscaled and seen is not None else rev.replicas
        claims[names.revision_name(name, plan.region, rev.revision)] = Claim(count, force=not rev.autoscaled)
    return claims
