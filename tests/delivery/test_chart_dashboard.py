"""The Grafana dashboard: valid JSON whose every query is valid PromQL once Grafana has put in its
variables, reading only series the operator really exports (from its real registry) per ModelDeployment
chosen by the namespace and name variables; the chart ships it in a ConfigMap for Grafana's dashboard
sidecar when asked to, and not otherwise. The alerts read only exported series too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import promql_parser
import yaml
from prometheus_client import REGISTRY

import bellwether.handlers.metrics  # noqa: F401  (registers the operator's metrics)
from support.chartkit import CHART, FULLNAME, RELEASE_NAMESPACE, Helm, render

DASHBOARD = CHART / "files" / "grafana-dashboard.json"
RULES = CHART / "files" / "prometheus-rules.yaml"
# What Grafana puts in for its variables before it sends a query.
GRAFANA = {
    "${datasource}": "prometheus",
    "$__rate_interval": "1m",
    "$namespace": "ml",
    "$name": "llama",
    "$metric": "error-rate",
}
PER_OBJECT = {
    "bellwether_rollout_phase",
    "bellwether_canary_weight_percent",
    "bellwether_canary_share_percent",
    "bellwether_analysis_verdict",
    "bellwether_analysis_value",
    "bellwether_analysis_bound",
}


def exported() -> set[str]:
    """Every series name the operator's registry exposes."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("bellwether_"):
            continue
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
        else:
            names.add(family.name)
    return names


def substituted(query: str) -> str:
    for variable, value in GRAFANA.items():
        query = query.replace(variable, value)
    assert "$" not in query, f"a Grafana variable the test does not know: {query}"
    return query


def selectors(query: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(expr: promql_parser.Expr) -> bool:
        if isinstance(expr, promql_parser.VectorSelector):
            found.append(expr)
        return True

    promql_parser.walk(promql_parser.parse(substituted(query)), visit)
    return found


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def targets(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def variable_queries(board: dict[str, Any]) -> dict[str, str]:
    """The series query inside each `label_values(<selector>, label)` variable."""
    out = {}
    for v in board["templating"]["list"]:
        if v["type"] == "query":
            found = re.fullmatch(r"label_values\((.+), (\w+)\)", v["query"]["query"])
            assert found, v["query"]
            out[v["name"]] = found.group(1)
    return out


def test_the_dashboard_chooses_one_model_deployment_and_repeats_a_panel_per_metric() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "name", "metric"} <= set(variables)
    assert variables["metric"]["multi"] and variables["metric"]["includeAll"]
    repeated = [p for p in board["panels"] if p.get("repeat")]
    assert [p["repeat"] for p in repeated] == ["metric"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in board["panels"]}
    assert {"Phase", "Canary share of traffic", "$metric: canary vs stable", "Verdicts"} <= titles
    assert any(t.startswith("Rollbacks") for t in titles)


def test_every_query_is_promql_and_reads_only_what_the_operator_exports() -> None:
    board = dashboard()
    names = exported()
    queries = [*targets(board), *(("variable " + n, q) for n, q in variable_queries(board).items())]
    assert len(queries) >= 10
    for title, query in queries:
        for selector in selectors(query):
            assert selector.name in names, f"{title}: {selector.name} is not exported by the operator"


def test_every_per_object_series_is_selected_by_the_namespace_and_name_variables() -> None:
    for title, query in targets(dashboard()):
        for selector in selectors(query):
            if selector.name in PER_OBJECT:
                matchers = {(m.name, m.value) for m in selector.matchers.matchers}
                assert {("namespace", "ml"), ("name", "llama")} <= matchers, f"{title}: {query}"


def test_every_panel_of_the_dashboard_uses_the_chosen_datasource() -> None:
    for panel in dashboard()["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]), panel["title"]


def test_the_alerts_read_only_what_the_operator_exports_and_prometheus_up() -> None:
    names = exported() | {"up"}
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    for rule in rules:
        found: list[promql_parser.VectorSelector] = []

        def visit(expr: promql_parser.Expr, into: list[promql_parser.VectorSelector] = found) -> bool:
            if isinstance(expr, promql_parser.VectorSelector):
                into.append(expr)
            return True

        promql_parser.walk(promql_parser.parse(rule["expr"]), visit)
        assert found and {s.name for s in found} <= names, rule["alert"]


def test_the_chart_ships_the_dashboard_for_the_sidecar_only_when_asked(helm: Helm, helm_tmp: Path) -> None:
    name = f"{FULLNAME}-dashboard"
    off = render(helm, {}, helm_tmp)
    assert [c for c in off.of_kind("ConfigMap") if c["metadata"]["name"] == name] == []
    values = {"metrics": {"grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Bellwether"}}}}
    on = render(helm, values, helm_tmp)
    (config,) = [c for c in on.of_kind("ConfigMap") if c["metadata"]["name"] == name]
    kubernetes_validate.validate(config, kubernetes_validate.latest_version(), strict=True)
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["annotations"] == {"grafana_folder": "Bellwether"}
    assert config["metadata"]["namespace"] == RELEASE_NAMESPACE
    (content,) = config["data"].values()
    assert json.loads(content) == dashboard()
    elsewhere = {"metrics": {"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}}}
    (moved,) = [c for c in render(helm, elsewhere, helm_tmp).of_kind("ConfigMap") if c["metadata"]["name"] == name]
    assert moved["metadata"]["namespace"] == "monitoring"


def test_the_observability_page_documents_every_series_and_alert() -> None:
    page = (CHART.parents[1] / "docs" / "observability.md").read_text()
    families = {
        n.removesuffix("_total").removesuffix("_bucket") for n in exported() if not n.endswith(("_count", "_sum"))
    }
    missing = [n for n in sorted(families) if f"`{n}" not in page]
    assert not missing, f"docs/observability.md does not list {missing}"
    alerts = [r["alert"] for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]]
    assert [a for a in alerts if f"`{a}`" not in page] == []
