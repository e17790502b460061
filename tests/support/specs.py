"""The one ModelDeployment builder every tier of tests uses: a spec document from keyword overrides,
the parsed spec, the manifest around it, and the revision a spec rolls out.

The defaults are a small model on one GPU in two regions, us-east in the home cluster and eu-west behind
a kubeconfig Secret (the operator tests' two API servers). A tier passes what its stories need
(`support.engine.make_spec` and `support.operator_world.model_deployment` are such calls), so a field
added to the API is added here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bellwether.api import ModelDeploymentSpec, parse_spec, revision_of, template_of

NAME = "chat"
NAMESPACE = "ml"
IMAGE = "vllm/vllm-openai:v0.11.0"
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
REMOTE = "eu-west-kubeconfig"  # the Secret holding the eu-west cluster's kubeconfig


def two_regions(replicas: int = 2) -> list[dict[str, Any]]:
    """us-east in the home cluster, eu-west in the remote one."""
    remote = {"kubeconfigSecret": {"name": REMOTE, "key": "kubeconfig"}}
    return [{"name": "us-east", "replicas": replicas}, {"name": "eu-west", "replicas": replicas, "cluster": remote}]


def spec_doc(
    regions: Mapping[str, int] | Sequence[dict[str, Any]] | None = None,
    *,
    version: str = "v1",
    uri: str | None = None,
    runtime: Mapping[str, Any] | None = None,
    router: str | None = None,
    gateway: str = "gw",
    **fields: Any,
) -> dict[str, Any]:
    """A spec as a user writes it. `regions` is {name: replicas} or the region entries themselves
    (default `two_regions()`); `uri` defaults to one per version; `runtime` fields replace the default
    image and GPU one by one; `router` adds a traffic section (a Gateway API one routes through the
    Gateway `gateway`). Any other top-level field (`rollout`, `analysis`, `traffic`, ...) is given whole."""
    doc: dict[str, Any] = {
        "model": {"name": "llama", "version": version, "uri": uri or f"s3://models/llama/{version}"},
        "runtime": {"image": IMAGE, "resources": {"gpu": {"count": 1}}} | dict(runtime or {}),
        "regions": _regions(regions),
    }
    if router is not None:
        doc["traffic"] = {"router": router}
        if router == "gatewayAPI":
            doc["traffic"]["gatewayAPI"] = {"parentRefs": [{"name": gateway}]}
    return doc | fields


def spec(regions: Mapping[str, int] | Sequence[dict[str, Any]] | None = None, **overrides: Any) -> ModelDeploymentSpec:
    """`spec_doc`, parsed as the operator parses it."""
    return parse_spec(spec_doc(regions, **overrides))


def manifest(spec: dict[str, Any], name: str = NAME, namespace: str = NAMESPACE) -> dict[str, Any]:
    """The ModelDeployment object around a spec document, as `kubectl apply` sends it."""
    return {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def revision(of: ModelDeploymentSpec | dict[str, Any]) -> str:
    """The revision a spec (or a ModelDeployment manifest) rolls out."""
    parsed = parse_spec(of["spec"]) if isinstance(of, dict) else of
    return revision_of(template_of(parsed))


def _regions(regions: Mapping[str, int] | Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if regions is None:
        return two_regions()
    if isinstance(regions, Mapping):
        return [{"name": n, "replicas": r} for n, r in regions.items()]
    return list(regions)
