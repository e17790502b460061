"""Generate the CustomResourceDefinition from the pydantic models.

The API server wants a *structural* schema: every node typed, no `$ref`, no `anyOf` with null, no
`additionalProperties: false` (it prunes unknown fields instead). pydantic's JSON Schema is turned into
that shape here, so the models stay the single source of truth and `crds/` is never edited by hand.
"""

from __future__ import annotations

from typing import Any

import yaml

from bellwether.api.resource import GROUP, KIND, PLURAL, VERSION
from bellwether.api.spec import ModelDeploymentSpec
from bellwether.api.status import ModelDeploymentStatus
from bellwether.api.templates import TEMPLATE_KIND, TEMPLATE_PLURAL, ClusterAnalysisTemplateSpec


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = dict(defs[node["$ref"].split("/")[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **extra}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "default" and (isinstance(value, (dict, list)) or value is None):
            continue  # object defaults come from the models at runtime; keep the CRD small
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema 2020 says `exclusiveMinimum: 1`; OpenAPI v3.0 (Kubernetes) says `minimum: 1` + `true`.
            out[key.replace("exclusiveM", "m")] = value
            out[key] = True
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "properties":
            out[key] = {name: _inline(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _inline(value, defs)
    if "anyOf" in out:
        variants = [v for v in out["anyOf"] if v.get("type") != "null"]
        if len(variants) < len(out["anyOf"]) and len(variants) == 1:
            del out["anyOf"]
            merged = {**variants[0], **out}
            merged["nullable"] = True
            out = merged
    return out


def schema_of(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    schema.pop("description", None)
    return schema


def crd() -> dict[str, Any]:
    spec_schema = schema_of(ModelDeploymentSpec)
    status_schema = schema_of(ModelDeploymentStatus)
    columns = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Stable", "type": "string", "jsonPath": ".status.stableRevision"},
        {"name": "Canary", "type": "string", "jsonPath": ".status.canaryRevision"},
        {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
        {"name": "Share", "type": "string", "jsonPath": ".status.canaryShare"},
        {"name": "Regions", "type": "string", "jsonPath": ".status.regionSummary"},
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["mdep"],
                "categories": ["bellwether", "ml"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A model served in one or more regions, rolled out as a guarded canary.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def template_crd() -> dict[str, Any]:
    """The ClusterAnalysisTemplate CRD: cluster-scoped, a spec and no status (the operator only reads it)."""
    columns = [
        {"name": "Metrics", "type": "string", "jsonPath": ".spec.metrics[*].name"},
        {"name": "Description", "type": "string", "jsonPath": ".spec.description", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{TEMPLATE_PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": TEMPLATE_KIND,
                "listKind": f"{TEMPLATE_KIND}List",
                "plural": TEMPLATE_PLURAL,
                "singular": TEMPLATE_KIND.lower(),
                "shortNames": ["bwcat"],  # not Argo Rollouts' `cat`: both may be installed
                "categories": ["bellwether"],
            },
            "scope": "Cluster",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "Metrics and bounds that ModelDeployments reference by name in "
                            "spec.analysis.templates.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": schema_of(ClusterAnalysisTemplateSpec),
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `bellwether crd` from bellwether.api; do not edit by hand.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)


def template_crd_yaml() -> str:
    header = f"# Generated by `bellwether crd {TEMPLATE_KIND}` from bellwether.api; do not edit by hand.\n"
    return header + yaml.safe_dump(template_crd(), sort_keys=False, width=120)
