"""The ModelDeployment API: pydantic models (the single source of truth), the CRD, revisions."""

from bellwether.api.resource import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    ModelDeployment,
    ObjectMeta,
    SpecError,
    parse,
    parse_spec,
    revision_of,
    template_of,
)
from bellwether.api.spec import ModelDeploymentSpec, dump
from bellwether.api.status import (
    Condition,
    HistoryEntry,
    Measurement,
    ModelDeploymentStatus,
    Progress,
    RegionStatus,
    Template,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Condition",
    "HistoryEntry",
    "Measurement",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ObjectMeta",
    "Progress",
    "RegionStatus",
    "SpecError",
    "Template",
    "dump",
    "parse",
    "parse_spec",
    "revision_of",
    "template_of",
]
