"""The generated CRD is one the API server accepts, and `crds/` is exactly what the models generate."""

from __future__ import annotations

from typing import Any

import celpy
import kubernetes_validate
import pytest

from bellwether.api.crd import crd, crd_yaml
from support.celcost import STATIC_COST_LIMIT, STATIC_CRD_COST_LIMIT, estimated_cost, rule_costs
from support.crdkit import (
    CRD_FILE,
    as_json_schema,
    nodes,
    object_schema,
    openapi_errors,
    program,
    schema_props_errors,
    unknown_fields,
)

COMBINATORS = ("anyOf", "oneOf", "allOf", "not")


def structural_problems(schema: dict[str, Any]) -> list[str]:
    """Violations of Kubernetes' structural-schema rules (apiextensions `structural` package), by path."""
    problems = []
    for path, node in nodes(schema):
        where = path or "<root>"
        int_or_string = node.get("x-kubernetes-int-or-string") is True
        preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
        if "$ref" in node:
            problems.append(f"{where}: $ref")
        problems += [f"{where}: {key}" for key in COMBINATORS if key in node]
        if node.get("additionalProperties") is False:
            problems.append(f"{where}: additionalProperties: false")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: both properties and additionalProperties")
        if int_or_string and "type" in node:
            problems.append(f"{where}: int-or-string with a type")
        if not node.get("type") and not (int_or_string or preserve):
            problems.append(f"{where}: no type")
        if "nullable" in node and "type" not in node:
            problems.append(f"{where}: nullable without a type")
        if node.get("type") == "array" and not isinstance(node.get("items"), dict):
            problems.append(f"{where}: array without items")
        if "default" in node:
            leaf = {k: v for k, v in node.items() if k != "default"}
            bad = openapi_errors(leaf, node["default"]) + unknown_fields(leaf, node["default"])
            problems += [f"{where}: default {node['default']!r} invalid: {r.message}" for r in bad]
    return problems


@pytest.fixture(scope="module")
def generated() -> dict[str, Any]:
    return crd()


def test_crds_directory_matches_the_models() -> None:
    assert CRD_FILE.read_text() == crd_yaml(), "crds/ drifted: run `bellwether crd > crds/modeldeployments...yaml`"


def test_chart_crd_copy_matches_the_models() -> None:
    # The chart templates its CRD from files/crds/ (crds/ there holds only kopf's peering CRDs);
    # tests/delivery checks that what it renders is this file.
    copy = CRD_FILE.parents[1] / "charts" / "bellwether" / "files" / "crds" / CRD_FILE.name
    assert copy.read_text() == crd_yaml(), (
        f"{copy} drifted: run `python -m bellwether.clusters.chart charts/bellwether`"
    )


def test_crd_is_a_valid_apiextensions_v1_object(generated: dict[str, Any]) -> None:
    kubernetes_validate.validate(generated, kubernetes_validate.latest_version(), strict=True)


def test_every_schema_node_is_a_valid_json_schema_props(generated: dict[str, Any]) -> None:
    assert schema_props_errors(object_schema(generated)) == []


def test_schema_props_check_refuses_json_schema_2020_keywords() -> None:
    # pydantic speaks JSON Schema 2020; OpenAPI v3.0 (Kubernetes) has a boolean exclusiveMinimum and no const.
    node = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 1.0}}},
    }
    assert any("boolean" in p for p in schema_props_errors(node))
    assert any("const" in p for p in schema_props_errors({"type": "string", "const": "x"}))


def test_schema_is_structural(generated: dict[str, Any]) -> None:
    assert structural_problems(object_schema(generated)) == []


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, "anyOf"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}, "false"),
        ({"$ref": "#/$defs/Region"}, "$ref"),
        ({"nullable": True, "description": "x"}, "nullable without a type"),
        ({"type": "string", "pattern": "^[0-9]+s$", "default": "5 minutes"}, "default"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "default": {"b": "x"}}, "default"),
        ({"description": "untyped"}, "no type"),
    ],
)
def test_structural_check_catches_what_the_api_server_refuses(node: dict[str, Any], problem: str) -> None:
    schema = {"type": "object", "properties": {"field": node}}
    assert any(problem in p for p in structural_problems(schema))


def test_nullable_fields_accept_null_and_nothing_else() -> None:
    schema = {"type": "object", "properties": {"cpu": {"type": "string", "nullable": True}}}
    assert openapi_errors(schema, {"cpu": None}) == []
    assert openapi_errors(schema, {"cpu": 8}) != []
    assert as_json_schema({"type": "string"}) == {"type": "string"}


def test_names_subresources_and_printer_columns(generated: dict[str, Any]) -> None:
    spec = generated["spec"]
    assert spec["names"]["shortNames"] == ["mdep"]
    # `kubectl get bellwether` lists them; `kubectl get all` (workloads) does not: a ModelDeployment is not one
    assert spec["names"]["categories"] == ["bellwether", "ml"]
    assert spec["scope"] == "Namespaced"
    (version,) = spec["versions"]
    assert version["subresources"] == {"status": {}}
    shown = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert shown == ["Phase", "Stable", "Canary", "Weight", "Share", "Regions", "Age"]
    status = object_schema(generated)["properties"]["status"]["properties"]
    for column in version["additionalPrinterColumns"]:
        section, _, field = column["jsonPath"].removeprefix(".").partition(".")
        if section == "status":
            assert field in status, f"column {column['name']} points at a field status does not have"
            assert column["type"] == {"string": "string", "integer": "integer"}[status[field]["type"]]


def rules(generated: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (path, node, rule)
        for path, node in nodes(object_schema(generated))
        for rule in node.get("x-kubernetes-validations", [])
    ]


def test_every_cel_rule_compiles_and_has_a_message(generated: dict[str, Any]) -> None:
    found = rules(generated)
    assert len(found) >= 10
    for path, node, rule in found:
        assert rule["message"] and "\n" not in rule["message"], path
        target = node
        for name in rule.get("fieldPath", "").split(".")[1:]:
            assert name in target.get("properties", {}), f"{path}: fieldPath {rule['fieldPath']} names no field"
            target = target["properties"][name]
        program(rule["rule"])  # raises on a syntax error


def test_a_broken_rule_does_not_compile() -> None:
    with pytest.raises(celpy.CELParseError):
        program("self.steps.all(s, ")


def test_everything_a_rule_can_iterate_is_bounded(generated: dict[str, Any]) -> None:
    """The API server refuses rules whose estimated CEL cost is unbounded: lists, maps and strings need limits."""
    unbounded = []
    for path, node in nodes(object_schema(generated)["properties"]["spec"], "spec"):
        kind = node.get("type")
        if kind == "array" and "maxItems" not in node:
            unbounded.append(path)
        if kind == "object" and isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(path)
        if kind == "string" and "maxLength" not in node and "enum" not in node:
            unbounded.append(path)
    assert unbounded == []


def test_rules_sit_where_they_can_see_what_they_compare(generated: dict[str, Any]) -> None:
    placed = {
        path: [r["message"] for r in node.get("x-kubernetes-validations", [])]
        for path, node in nodes(object_schema(generated))
    }
    assert "region names must be unique" in placed["spec"]
    assert "setWeight must increase through the steps" in placed["spec.rollout"]
    assert "a metric has exactly one of query or preset" in placed["spec.analysis.metrics[*]"]


def test_cel_rules_stay_far_below_the_api_servers_cost_limits(generated: dict[str, Any]) -> None:
    costs = list(rule_costs(object_schema(generated)))
    for path, rule, cost, _ in costs:
        assert cost < STATIC_COST_LIMIT / 10, f"{path}: {rule} estimates {cost}"
    total = sum(cost * times for _, _, cost, times in costs)
    assert total < STATIC_CRD_COST_LIMIT / 10, total


@pytest.mark.parametrize(
    ("rule", "node", "at_least"),
    [
        ("self.items.all(x, x == 'a')", {"type": "object", "properties": {"items": {"type": "array"}}}, float("inf")),
        (
            "self.l.all(a, self.l.exists(b, a == b))",
            {"type": "object", "properties": {"l": {"type": "array", "maxItems": 100, "items": {"type": "integer"}}}},
            100 * 100,
        ),
    ],
)
def test_cost_estimate_multiplies_nested_comprehensions(rule: str, node: dict[str, Any], at_least: float) -> None:
    assert estimated_cost(rule, node) >= at_least
