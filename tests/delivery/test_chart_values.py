"""A wrong value fails at install time with a message naming it, not as a broken pod later."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from support.chartkit import CHART, Helm

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())
# Objects whose keys are the user's own (labels, annotations, selectors) or Kubernetes' (affinity).
FREE_FORM = {"annotations", "labels", "podAnnotations", "podLabels", "nodeSelector", "affinity", "global"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicas": "three"}, "at '/replicas': got string, want integer"),
        ({"replicas": 0}, "at '/replicas': minimum: got 0, want 1"),
        ({"replica": 2}, "additional properties 'replica' not allowed"),
        ({"logFormat": "xml"}, "at '/logFormat': value must be one of 'json', 'text'"),
        ({"watchNamespaces": ["ml-*"]}, "at '/watchNamespaces/0': 'ml-*' does not match pattern"),
        ({"watchNamespaces": ["ml", "ml"]}, "at '/watchNamespaces': items at 0 and 1 are equal"),
        ({"metrics": {"port": 80}}, "at '/metrics/port': minimum: got 80, want 1,024"),
        (
            {"metrics": {"serviceMonitor": {"enabled": "yes"}}},
            "at '/metrics/serviceMonitor/enabled': got string, want boolean",
        ),
        ({"image": {"digest": "latest"}}, "at '/image/digest': 'latest' does not match pattern"),
        ({"crds": {"instal": True}}, "at '/crds': additional properties 'instal' not allowed"),
        ({"resources": {"requests": {"gpu": 1}}}, "at '/resources/requests': additional properties 'gpu' not allowed"),
        ({"podDisruptionBudget": {"maxUnavailable": "150%"}}, "at '/podDisruptionBudget/maxUnavailable'"),
        # What one value cannot say alone, the templates refuse.
        ({"healthPort": 8080}, "metrics.port and healthPort must differ (both are 8080)"),
        ({"podDisruptionBudget": {"enabled": True}}, "podDisruptionBudget.enabled needs replicas >= 2"),
        ({"serviceAccount": {"create": False}}, "serviceAccount.name is required when serviceAccount.create is false"),
        ({"notifications": {"enabled": True}}, "notifications.secretName is required when notifications.enabled"),
        ({"notifications": {"format": "teams"}}, "at '/notifications/format': value must be one of 'json', 'slack'"),
        ({"notifications": {"events": ["Deployed"]}}, "at '/notifications/events/0': value must be one of"),
        (
            {"notifications": {"enabled": True, "secretName": "hooks"}, "watchNamespaces": ["ml"]},
            "must be one of watchNamespaces: in namespaced mode the operator reads Secrets only there",
        ),
    ],
)
def test_helm_template_refuses_a_wrong_value_and_says_which(
    helm: Helm, helm_tmp: Path, values: dict[str, Any], message: str
) -> None:
    done = helm.template(values, helm_tmp)
    assert done.returncode != 0
    assert message in done.stderr


def test_helm_lint_refuses_a_wrong_value_too(helm: Helm, helm_tmp: Path) -> None:
    done = helm.lint({"replicas": "three"}, helm_tmp)
    assert done.returncode != 0
    assert "at '/replicas': got string, want integer" in done.stdout + done.stderr


def test_the_schema_is_draft_07_and_the_defaults_satisfy_it() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.Draft7Validator(SCHEMA).validate(DEFAULTS)


def objects(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if schema.get("type") == "object" or "properties" in schema:
        yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from objects(sub, f"{path}.{name}")


def test_every_object_of_ours_refuses_unknown_keys() -> None:
    """A misspelt key anywhere (`crds.instal`) must fail, not be silently ignored."""
    loose = [
        path
        for path, node in objects(SCHEMA)
        if path.rsplit(".", 1)[-1] not in FREE_FORM and node.get("additionalProperties") is not False
    ]
    assert loose == []


def test_every_default_value_is_in_the_schema_and_the_readme() -> None:
    readme = (CHART / "README.md").read_text()
    for key in DEFAULTS:
        assert key in SCHEMA["properties"], key
        assert f"`{key}" in readme, f"the chart README's values table does not mention {key}"
