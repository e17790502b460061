"""Hand-written objects for cluster tests that need shapes the renderer would not produce."""

from __future__ import annotations

from typing import Any

H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "topology.kubernetes.io/region": "us-east1"}


def deployment(
    name: str,
    revision: str,
    replicas: int,
    gpus: int = 1,
    selector: dict[str, str] | None = None,
    *,
    image: str = "vllm",
    strategy: dict[str, Any] | None = None,
    pod_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    labels = {"bellwether.dev/deployment": "chat", "bellwether.dev/revision": revision}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": {**labels, **(pod_labels or {})}},
            "spec": {
                "nodeSelector": H100 if selector is None else selector,
                "containers": [
                    {"name": "server", "image": image, "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
                ],
            },
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {**labels, "bellwether.dev/role": "stable"}},
        "spec": spec,
    }


def service(name: str, selector: dict[str, str] | None = None, revision: str | None = None) -> dict[str, Any]:
    """A Service of the `chat` ModelDeployment; without `revision` it is the serving one, by default
    selecting every pod (as the `replicas` router did before pods were labelled serving)."""
    labels = {"bellwether.dev/deployment": "chat"} | ({"bellwether.dev/revision": revision} if revision else {})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": selector if selector is not None else {"bellwether.dev/deployment": "chat"}},
    }
