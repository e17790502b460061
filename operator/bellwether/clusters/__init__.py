"""All Kubernetes I/O: per-region clients, server-side apply, observing readiness."""

from bellwether.clusters.client import FIELD_MANAGER, ApiError, KubeClient
from bellwether.clusters.config import ClusterConfigError, Clusters
from bellwether.clusters.region import RouteNotInstalled, apply_region, delete_region, observe_region

__all__ = [
    "FIELD_MANAGER",
    "ApiError",
    "ClusterConfigError",
    "Clusters",
    "KubeClient",
    "RouteNotInstalled",
    "apply_region",
    "delete_region",
    "observe_region",
]
