"""Hand-written Deployment objects for scheduler tests that need shapes the renderer would not produce."""

from __future__ import annotations

from typing import Any

H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "topology.kubernetes.io/region": "us-east1"}


def deployment(
    name: str, revision: str, replicas: int, gpus: int = 1, selector: dict[str, str] | None = None
) -> dict[str, Any]:
    labels = {"bellwether.dev/deployment": "chat", "bellwether.dev/revision": revision, "bellwether.dev/role": "stable"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": H100 if selector is None else selector,
                    "containers": [
                        {"name": "server", "image": "vllm", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
                    ],
                },
            },
        },
    }
