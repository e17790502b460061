"""Weighted routes for the `gatewayAPI` and `istio` routers: one backend per revision Service.

With a route the split is exact and independent of replica counts; the engine still sizes the
canary so the pods can carry their share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bellwether.api import ModelDeploymentSpec
from bellwether.render import names
from bellwether.rollout.types import RegionPlan

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
ISTIO_API_VERSION = "networking.istio.io/v1"


def _backends(name: str, region: str, plan: RegionPlan) -> list[tuple[str, int, int]]:
    """(service, port, weight) per revision, in plan order."""
    return [(names.revision_name(name, region, r.revision), r.template.runtime.port, r.weight) for r in plan.revisions]


def http_route(name: str, namespace: str, spec: ModelDeploymentSpec, plan: RegionPlan) -> dict[str, Any]:
    routing = spec.traffic.gateway_api
    assert routing is not None  # the spec validator requires it for this router
    parents = []
    for ref in routing.parent_refs:
        parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref.name}
        if ref.namespace:
            parent["namespace"] = ref.namespace
        if ref.section_name:
            parent["sectionName"] = ref.section_name
        parents.append(parent)
    route_spec: dict[str, Any] = {
        "parentRefs": parents,
        "rules": [
            {
                "backendRefs": [
                    {"group": "", "kind": "Service", "name": svc, "port": port, "weight": weight}
                    for svc, port, weight in _backends(name, plan.region, plan)
                ]
            }
        ],
    }
    if routing.hostnames:
        route_spec["hostnames"] = list(routing.hostnames)
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": {
            "name": names.serving_name(name, plan.region),
            "namespace": namespace,
            "labels": names.owner_labels(name, plan.region),
        },
        "spec": route_spec,
    }


def virtual_service(name: str, namespace: str, spec: ModelDeploymentSpec, plan: RegionPlan) -> dict[str, Any]:
    routing = spec.traffic.istio
    assert routing is not None  # the spec validator requires it for this router
    route = [
        {
            "destination": {"host": f"{svc}.{namespace}.svc.cluster.local", "port": {"number": port}},
            "weight": weight,
        }
        for svc, port, weight in _backends(name, plan.region, plan)
    ]
    vs_spec: dict[str, Any] = {"hosts": list(routing.hosts), "http": [{"route": route}]}
    if routing.gateways:
        vs_spec["gateways"] = list(routing.gateways)
    return {
        "apiVersion": ISTIO_API_VERSION,
        "kind": "VirtualService",
        "metadata": {
            "name": names.serving_name(name, plan.region),
            "namespace": namespace,
            "labels": names.owner_labels(name, plan.region),
        },
        "spec": vs_spec,
    }


def http_route_weights(route: Mapping[str, Any], by_name: Mapping[str, str]) -> dict[str, int]:
    """Revision -> weight in an HTTPRoute, given the revision of each backend Service's name."""
    out: dict[str, int] = {}
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            if ref.get("name") in by_name:
                out[by_name[ref["name"]]] = int(ref.get("weight", 1))
    return out


def virtual_service_weights(route: Mapping[str, Any], by_name: Mapping[str, str]) -> dict[str, int]:
    """Revision -> weight in a VirtualService (destinations name Services by host)."""
    out: dict[str, int] = {}
    for http in (route.get("spec") or {}).get("http") or []:
        for dest in http.get("route") or []:
            host = str((dest.get("destination") or {}).get("host", "")).split(".")[0]
            if host in by_name:
                out[by_name[host]] = int(dest.get("weight", 0))
    return out
