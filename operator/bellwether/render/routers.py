"""The routers: how a region's traffic split is carried, one entry each.

`replicas` labels the pods that serve (`render.serving`); `gatewayAPI` and `istio` write a route whose
weights carry the split. Everything that differs between routers is here (what to render, which kind
carries the weights, how to read them back, what to install): adding a router is one more entry and
its render and read functions, nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bellwether.api import ModelDeploymentSpec
from bellwether.render.routes import http_route, http_route_weights, virtual_service, virtual_service_weights
from bellwether.rollout.types import RegionPlan

Render = Callable[[str, str, ModelDeploymentSpec, RegionPlan], dict[str, Any]]
Read = Callable[[Mapping[str, Any], Mapping[str, str]], dict[str, int]]


@dataclass(frozen=True)
class Router:
    name: str  # spec.traffic.router
    route_kind: str | None = None  # the object carrying the weights; None: the serving pods carry them
    install: str = ""  # what a cluster needs for that kind
    render: Render | None = None
    read: Read | None = None

    @property
    def by_pods(self) -> bool:
        """The split is which ready pods are labelled serving (see `render.serving`); the same as
        `Traffic.by_pods`, which the engine reads."""
        return self.route_kind is None

    def weights(self, route: Mapping[str, Any], by_name: Mapping[str, str]) -> dict[str, int]:
        return self.read(route, by_name) if self.read is not None else {}


ROUTERS: dict[str, Router] = {
    "replicas": Router("replicas"),
    "gatewayAPI": Router(
        "gatewayAPI", "HTTPRoute", "the Gateway API CRDs (gateway.networking.k8s.io/v1)", http_route, http_route_weights
    ),
    "istio": Router(
        "istio", "VirtualService", "Istio (networking.istio.io/v1)", virtual_service, virtual_service_weights
    ),
}
ROUTE_KINDS: dict[str, Router] = {r.route_kind: r for r in ROUTERS.values() if r.route_kind is not None}


def router_of(spec: ModelDeploymentSpec) -> Router:
    return ROUTERS[spec.traffic.router]
