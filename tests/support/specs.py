"""What every tier of tests names a ModelDeployment by, and the revision a spec rolls out."""

from __future__ import annotations

from typing import Any

from bellwether.api import ModelDeploymentSpec, parse_spec, revision_of, template_of

NAME = "chat"
NAMESPACE = "ml"
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"


def revision(of: ModelDeploymentSpec | dict[str, Any]) -> str:
    """The revision a spec (or a ModelDeployment manifest) rolls out."""
    parsed = parse_spec(of["spec"]) if isinstance(of, dict) else of
    return revision_of(template_of(parsed))
