"""Pure rendering of a region's child objects (Deployments, Services, routes) for a plan.

No I/O: the operator, the simulator and the tests all turn the same `RegionPlan` into the same dicts,
which `clusters/` then applies with server-side apply.
"""

from __future__ import annotations

from typing import Any

from bellwether.api import ModelDeploymentSpec
from bellwether.render import names
from bellwether.render.routes import http_route, virtual_service
from bellwether.render.workload import deployment, revision_service, serving_service
from bellwether.rollout.types import RegionPlan


def region_namespace(namespace: str, spec: ModelDeploymentSpec, region: str) -> str:
    """Where a region's objects live: its own namespace if set, else the ModelDeployment's."""
    return spec.region(region).namespace or namespace


def objects_for_region(name: str, namespace: str, spec: ModelDeploymentSpec, plan: RegionPlan) -> list[dict[str, Any]]:
    """Everything to apply in `plan.region`: per revision a Deployment and a Service, then the serving
    Service and, with a route-based router, the route carrying the weights."""
    region = spec.region(plan.region)
    ns = region_namespace(namespace, spec, plan.region)
    out: list[dict[str, Any]] = []
    for rev in plan.revisions:
        out.append(deployment(name, ns, plan.region, region.node_selector, rev))
        out.append(revision_service(name, ns, plan.region, rev))
    if plan.revisions:
        out.append(serving_service(name, ns, plan.region, plan.revisions[0].template.runtime.port))
    if spec.traffic.router == "gatewayAPI" and plan.revisions:
        out.append(http_route(name, ns, spec, plan))
    elif spec.traffic.router == "istio" and plan.revisions:
        out.append(virtual_service(name, ns, spec, plan))
    return out


__all__ = ["names", "objects_for_region", "region_namespace"]
