"""Pure rendering of a region's child objects (Deployments, Services, disruption budgets, routes) for a plan.

No I/O: the operator, the simulator and the tests all turn the same `RegionPlan` into the same dicts,
which `clusters/` then applies with server-side apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bellwether.api import API_VERSION, KIND, ModelDeploymentSpec
from bellwether.render import names
from bellwether.render.autoscaler import autoscaler_objects
from bellwether.render.disruption import disruption_budget, max_unavailable
from bellwether.render.routers import router_of
from bellwether.render.workload import deployment, revision_service, serving_service
from bellwether.rollout.types import RegionPlan


def region_namespace(namespace: str, spec: ModelDeploymentSpec, region: str) -> str:
    """Where a region's objects live: its own namespace if set, else the ModelDeployment's."""
    return spec.region(region).namespace or namespace


def owner_reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The ModelDeployment as the controller owner of its children (the garbage collector removes them
    with it). Only valid for children in its own namespace of its own cluster."""
    meta = obj["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def objects_for_region(
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    plan: RegionPlan,
    owner: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Everything to apply in `plan.region`: per revision a Deployment, a Service and (unless
    `spec.disruption.budget` is false) a PodDisruptionBudget, then the serving
    Service and, with a route-based router, the route carrying the weights. With `owner` (the
    ModelDeployment object), children in its namespace of the home cluster carry its owner reference."""
    out = _objects(name, namespace, spec, plan)
    if owner is None or spec.region(plan.region).cluster is not None:
        return out
    ref = owner_reference(owner)
    home = owner["metadata"]["namespace"]
    return [
        {**o, "metadata": {**o["metadata"], "ownerReferences": [ref]}} if o["metadata"].get("namespace") == home else o
        for o in out
    ]


def _objects(name: str, namespace: str, spec: ModelDeploymentSpec, plan: RegionPlan) -> list[dict[str, Any]]:
    region = spec.region(plan.region)
    ns = region_namespace(namespace, spec, plan.region)
    out: list[dict[str, Any]] = []
    budget = max_unavailable(spec.disruption, plan) if spec.disruption.budget else None
    for rev in plan.revisions:
        dep = deployment(name, ns, plan.region, region.node_selector, rev)
        if region.autoscaling is not None:
            dep["metadata"]["annotations"][names.AUTOSCALED] = "true"
        out.append(dep)
        out.append(revision_service(name, ns, plan.region, rev))
        if budget is not None:
            out.append(disruption_budget(name, ns, plan.region, rev, budget))
    if plan.revisions:
        out.append(serving_service(name, ns, plan.region, plan.revisions[0].template.runtime.port))
    route = router_of(spec).render
    if route is not None and plan.revisions:
        out.append(route(name, ns, spec, plan))
    out += autoscaler_objects(name, ns, spec, plan)
    return out


__all__ = ["names", "objects_for_region", "owner_reference", "region_namespace"]
