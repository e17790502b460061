"""ClusterAnalysisTemplate: a CRD the API server accepts and that refuses what the models refuse, at the
same field; ModelDeployments that name templates; and resolution, the merge the operator makes each cycle."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from test_api_bad_specs import BASE, DELETE, edited, put, within
from test_api_crd import structural_problems

from bellwether.api import SpecError, parse, revision_of, template_of
from bellwether.api.crd import template_crd_yaml
from bellwether.api.templates import TemplateProblem, merge, parse_template, resolve
from support.celcost import STATIC_COST_LIMIT, rule_costs
from support.crdkit import ROOT, admit, nodes, object_schema, program, schema_props_errors

TEMPLATE_CRD_FILE = ROOT / "crds" / "clusteranalysistemplates.bellwether.dev.yaml"
EXAMPLE = ROOT / "examples" / "analysis-templates.yaml"

TEMPLATE: dict[str, Any] = {
    "apiVersion": "bellwether.dev/v1alpha1",
    "kind": "ClusterAnalysisTemplate",
    "metadata": {"name": "chat-slo"},
    "spec": {
        "metrics": [
            {"name": "p99-latency", "preset": "vllm-e2e-latency-p99", "baseline": {"maxRatio": 1.3}},
            {"name": "error-rate", "query": 'sum(rate(x{revision="{{revision}}"}[{{interval}}]))', "max": 0.02},
        ]
    },
}


def template(name: str = "chat-slo", *metrics: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(TEMPLATE)
    doc["metadata"]["name"] = name
    if metrics:
        doc["spec"]["metrics"] = list(metrics)
    return doc


def metric(name: str, bound: float = 1.0) -> dict[str, Any]:
    return {
        "name": name,
        "query": f'sum(rate({name.replace("-", "_")}_total{{revision="{{{{revision}}}}"}}[1m]))',
        "max": bound,
    }


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(TEMPLATE_CRD_FILE.read_text())
    return loaded


# --- The CRD


def test_crds_directory_and_chart_copy_match_the_models() -> None:
    assert TEMPLATE_CRD_FILE.read_text() == template_crd_yaml(), (
        "crds/ drifted: run `bellwether crd ClusterAnalysisTemplate > crds/clusteranalysistemplates.bellwether.dev.yaml`"
    )
    copy_ = ROOT / "charts" / "bellwether" / "files" / "crds" / TEMPLATE_CRD_FILE.name
    assert copy_.read_text() == template_crd_yaml(), "run `python -m bellwether.clusters.chart charts/bellwether`"


def test_crd_is_a_valid_structural_apiextensions_v1_object(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)
    assert schema_props_errors(object_schema(crd)) == []
    assert structural_problems(object_schema(crd)) == []


def test_it_is_cluster_scoped_and_lists_its_metrics(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert spec["scope"] == "Cluster"
    assert spec["group"] == "bellwether.dev" and spec["versions"][0]["name"] == "v1alpha1"
    assert spec["names"]["kind"] == "ClusterAnalysisTemplate" and "cat" not in spec["names"]["shortNames"]
    (version,) = spec["versions"]
    assert "subresources" not in version  # nothing writes a status: the operator only reads templates
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Metrics"] == ".spec.metrics[*].name"
    props = object_schema(crd)["properties"]["spec"]["properties"]
    assert "name" in props["metrics"]["items"]["properties"] and "description" in props


def test_every_rule_compiles_is_bounded_and_cheap(crd: dict[str, Any]) -> None:
    schema = object_schema(crd)
    rules = [r for _, node in nodes(schema) for r in node.get("x-kubernetes-validations", [])]
    assert len(rules) >= 5  # the template's own two and every metric rule
    for rule in rules:
        program(rule["rule"])
    for path, node in nodes(schema["properties"]["spec"], "spec"):
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "string":
            assert "maxLength" in node or "enum" in node, path
    for path, rule, cost, _ in rule_costs(schema):
        assert cost < STATIC_COST_LIMIT / 10, f"{path}: {rule} estimates {cost}"


def test_the_example_template_is_admitted_and_read(crd: dict[str, Any]) -> None:
    (doc,) = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] == "ClusterAnalysisTemplate"]
    assert admit(crd, doc) == []
    assert [m.name for m in parse_template(doc).spec.metrics] == [
        "p99-latency",
        "ttft-p95",
        "error-rate",
        "preemptions",
    ]


# (case, edits of TEMPLATE, the field the models and the CRD must both name, what the models say)
BAD_TEMPLATES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no metrics", {"spec.metrics": []}, "spec.metrics", "at least 1 item"),
    ("a metric name twice", {"spec.metrics[1].name": "p99-latency"}, "spec.metrics", "must be unique"),
    ("a query without a bound", {"spec.metrics[1].max": DELETE}, "spec.metrics[1]", "needs a bound"),
    ("an unknown variable", {"spec.metrics[1].query": "up{x='{{pod}}'}"}, "spec.metrics[1].query", "{{pod}}"),
    ("an unknown preset", {"spec.metrics[0].preset": "vllm-p99"}, "spec.metrics[0].preset", "must be one of"),
    ("a typo in a field", {"spec.metrcs": []}, "spec.metrcs", "did you mean metrics"),
    ("33 metrics", {"spec.metrics": [metric(f"m{i}") for i in range(33)]}, "spec.metrics", "at most 32 items"),
]


@pytest.mark.parametrize(("case", "edits", "path", "said"), BAD_TEMPLATES, ids=[c[0] for c in BAD_TEMPLATES])
def test_models_and_crd_refuse_a_bad_template_at_the_same_field(
    crd: dict[str, Any], case: str, edits: dict[str, Any], path: str, said: str
) -> None:
    doc = copy.deepcopy(TEMPLATE)
    for at, value in edits.items():
        put(doc, at, value)
    rejections = admit(crd, doc)
    assert any(within(r.path, path) or within(path, r.path) for r in rejections), [str(r) for r in rejections]
    with pytest.raises(SpecError) as raised:
        parse_template(doc)
    assert any(p.startswith(path) and said in p for p in raised.value.problems), raised.value.problems


# --- ModelDeployments that name templates

REFERS: dict[str, Any] = {"spec.analysis.templates": [{"name": "chat-slo"}], "spec.analysis.metrics": DELETE}


def test_a_modeldeployment_may_take_all_its_metrics_from_templates() -> None:
    from support.crdkit import load_crd

    doc = edited(REFERS)
    assert admit(load_crd(), doc) == []
    assert [t.name for t in parse(doc).spec.analysis.templates] == ["chat-slo"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("case", "edits", "path", "said"),
    [
        ("neither metrics nor templates", {"spec.analysis.metrics": []}, "spec.analysis.metrics", "or templates"),
        (
            "a template named twice",
            {**REFERS, "spec.analysis.templates": [{"name": "a"}, {"name": "a"}]},
            "spec.analysis.templates",
            "already named",
        ),
        (
            "a template name that is no object name",
            {**REFERS, "spec.analysis.templates": [{"name": "Chat_SLO"}]},
            "spec.analysis.templates[0].name",
            "a Kubernetes object name",
        ),
        (
            "nine templates",
            {"spec.analysis.templates": [{"name": f"t{i}"} for i in range(9)]},
            "spec.analysis.templates",
            "at most 8",
        ),
    ],
)
def test_models_and_crd_refuse_bad_references_at_the_same_field(
    case: str, edits: dict[str, Any], path: str, said: str
) -> None:
    from support.crdkit import load_crd

    doc = edited(edits)
    rejections = admit(load_crd(), doc)
    assert any(within(r.path, path) or within(path, r.path) for r in rejections), [str(r) for r in rejections]
    with pytest.raises(SpecError) as raised:
        parse(doc)
    assert any(p.startswith(path) and said in p for p in raised.value.problems), raised.value.problems


# --- Resolution


def spec_naming(*names: str, inline: list[dict[str, Any]] | None = None) -> Any:
    doc = edited({"spec.analysis.templates": [{"name": n} for n in names]})
    doc["spec"]["analysis"]["metrics"] = inline or []
    return parse(doc).spec


def names_and_bounds(spec: Any) -> list[tuple[str, float | None]]:
    return [(m.name, m.max) for m in spec.analysis.metrics]


def test_the_templates_metrics_follow_the_inline_ones_in_the_order_named() -> None:
    spec = spec_naming("a", "b", inline=[metric("own")])
    resolved = resolve(spec, {"a": template("a", metric("a1"), metric("a2")), "b": template("b", metric("b1"))})
    assert names_and_bounds(resolved) == [("own", 1.0), ("a1", 1.0), ("a2", 1.0), ("b1", 1.0)]


def test_an_inline_metric_replaces_the_templates_metric_of_the_same_name() -> None:
    spec = spec_naming("a", inline=[metric("error-rate", 0.005)])
    resolved = resolve(spec, {"a": template("a", metric("error-rate", 0.02), metric("latency", 2.0))})
    assert names_and_bounds(resolved) == [("error-rate", 0.005), ("latency", 2.0)]


def test_two_templates_giving_one_metric_name_are_an_error_naming_both() -> None:
    spec = spec_naming("a", "b")
    with pytest.raises(TemplateProblem) as raised:
        resolve(spec, {"a": template("a", metric("latency")), "b": template("b", metric("latency"))})
    (problem,) = raised.value.problems
    assert problem.startswith("spec.analysis.templates[1]: ClusterAnalysisTemplate 'b' gives metric 'latency'")
    assert "'a'" in problem and "inline" in problem
    # ... unless the ModelDeployment says which it wants, inline
    chosen = resolve(
        spec_naming("a", "b", inline=[metric("latency", 3.0)]),
        {"a": template("a", metric("latency")), "b": template("b", metric("latency"))},
    )
    assert names_and_bounds(chosen) == [("latency", 3.0)]


def test_a_missing_template_is_named_and_so_is_an_invalid_ones_field() -> None:
    spec = spec_naming("gone", "broken")
    broken = template("broken", {"name": "x", "query": "up{x='{{pod}}'}", "max": 1})
    with pytest.raises(TemplateProblem) as raised:
        resolve(spec, {"gone": None, "broken": broken})
    gone, bad = raised.value.problems
    assert gone == "spec.analysis.templates[0]: ClusterAnalysisTemplate 'gone' not found"
    assert bad.startswith(
        "spec.analysis.templates[1]: ClusterAnalysisTemplate 'broken' is invalid: spec.metrics[0].query"
    )
    assert "{{pod}}" in bad


def test_more_than_32_metrics_in_all_is_an_error() -> None:
    spec = spec_naming("a", "b")
    a = template("a", *(metric(f"a{i}") for i in range(20)))
    b = template("b", *(metric(f"b{i}") for i in range(13)))
    with pytest.raises(TemplateProblem, match="33 metrics with the templates'; at most 32"):
        resolve(spec, {"a": a, "b": b})


def test_a_spec_naming_no_template_is_returned_as_it_is() -> None:
    spec = parse(BASE).spec
    assert resolve(spec, {}) is spec


def test_templates_are_not_part_of_the_revision() -> None:
    """Changing a template changes what is measured, never the pods: no rollout starts."""
    spec = spec_naming("a")
    one = resolve(spec, {"a": template("a", metric("x", 1.0))})
    other = resolve(spec, {"a": template("a", metric("x", 2.0), metric("y"))})
    assert names_and_bounds(one) != names_and_bounds(other)
    assert revision_of(template_of(one)) == revision_of(template_of(other)) == revision_of(template_of(spec))


def test_merge_leaves_out_templates_not_at_hand() -> None:
    """What `bellwether validate` checks offline: the templates in the files, the others left to the cluster."""
    spec = spec_naming("here", "elsewhere", inline=[metric("own")])
    merged = merge(spec, {"here": parse_template(template("here", metric("h"))).spec})
    assert names_and_bounds(merged) == [("own", 1.0), ("h", 1.0)]


def test_the_example_modeldeployment_resolves_against_its_template(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all(EXAMPLE.read_text()))
    found = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterAnalysisTemplate"}
    (md,) = [parse(d) for d in docs if d["kind"] == "ModelDeployment"]
    resolved = resolve(md.spec, found)
    bounds = dict(names_and_bounds(resolved))
    assert bounds["error-rate"] == 0.005  # the ModelDeployment's own, not the template's 0.02
    assert set(bounds) == {"error-rate", "p99-latency", "ttft-p95", "preemptions"}
