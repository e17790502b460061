"""The chart's RBAC grants what `RULES` lists, where the operator needs it, and nothing else.

A grant is (namespace or "*" for cluster-wide, API group, resource, verb), collected from the rendered
ClusterRoles, Roles and their bindings to the operator's ServiceAccount, so a rule in a role nobody binds
counts for nothing, and a binding to some other subject grants the operator nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bellwether.clusters import chart
from bellwether.clusters.permissions import RULES
from support.chartkit import CHART, RELEASE_NAMESPACE, VALUES, Helm, Rendered, render

Grant = tuple[str, str, str, str]
ALL = "*"
CLUSTER_SCOPED = {"namespaces", "nodes", "customresourcedefinitions", "clusterkopfpeerings", "clusteranalysistemplates"}


def rule_triples(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


LISTED = rule_triples(RULES)


def grants(r: Rendered) -> set[Grant]:
    """What the operator's ServiceAccount may do, as the API server's authorizer would see it."""
    account = {"kind": "ServiceAccount", "name": r.pod["serviceAccountName"], "namespace": RELEASE_NAMESPACE}
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in r.objects}
    found: set[Grant] = set()
    for binding in r.of_kind("ClusterRoleBinding") + r.of_kind("RoleBinding"):
        if account not in binding["subjects"]:
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace")
        role = roles[(ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])]
        where = namespace or ALL
        for rule in role["rules"]:
            assert set(rule) == {"apiGroups", "resources", "verbs"}, "no resourceNames, nonResourceURLs"
            found |= {(where, *triple) for triple in rule_triples([rule])}
    return found


@pytest.mark.parametrize("name", VALUES)
def test_rbac_grants_nothing_beyond_the_listed_rules(rendered: dict[str, Rendered], name: str) -> None:
    granted = grants(rendered[name])
    assert granted
    assert {(g, r, v) for _, g, r, v in granted} <= LISTED
    assert all(ALL not in (g, r, v) for _, g, r, v in granted), "no wildcards"


@pytest.mark.parametrize("name", VALUES)
def test_every_role_in_the_chart_is_bound_to_the_operator_only(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    account = {"kind": "ServiceAccount", "name": r.pod["serviceAccountName"], "namespace": RELEASE_NAMESPACE}
    bindings = r.of_kind("ClusterRoleBinding") + r.of_kind("RoleBinding")
    assert all(b["subjects"] == [account] for b in bindings)
    bound = {(b["roleRef"]["kind"], b["metadata"].get("namespace"), b["roleRef"]["name"]) for b in bindings}
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        for o in r.of_kind("ClusterRole") + r.of_kind("Role")
    }
    assert {(kind, ns if kind == "Role" else None, name) for kind, ns, name in bound} == roles


def needed(watched: list[str], peering: bool) -> set[Grant]:
    """What the operator uses, by mode: the policy the chart's README states, written out independently."""
    unused = {"kopfpeerings", "clusterkopfpeerings"}
    if peering:
        unused -= {"kopfpeerings" if watched else "clusterkopfpeerings"}
    wanted = {(g, r, v) for g, r, v in LISTED if r not in unused}
    out: set[Grant] = set()
    for group, resource, verb in wanted:
        if resource in CLUSTER_SCOPED or not watched:
            out.add((ALL, group, resource, verb))
        else:
            out |= {(ns, group, resource, verb) for ns in watched}
    return out


@pytest.mark.parametrize("name", VALUES)
def test_rbac_grants_exactly_what_the_mode_needs(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    watched, peering = r.values.get("watchNamespaces", []), r.values.get("replicas", 1) > 1
    assert grants(r) == needed(watched, peering)


def test_namespaced_mode_grants_nothing_namespaced_cluster_wide(rendered: dict[str, Rendered]) -> None:
    cluster_wide = {res for where, _, res, _ in grants(rendered["namespaced-ha"]) if where == ALL}
    # read-only: for kopf, the ClusterAnalysisTemplates (cluster-scoped) a ModelDeployment names, and
    # nodes for the GPU count before a surge
    assert cluster_wide == {"namespaces", "nodes", "customresourcedefinitions", "clusteranalysistemplates"}
    assert ("ml", "", "secrets", "get") in grants(rendered["namespaced-ha"])


def test_cluster_wide_mode_reads_secrets_everywhere_as_it_must(rendered: dict[str, Rendered]) -> None:
    assert (ALL, "", "secrets", "get") in grants(rendered["default"])


@pytest.mark.parametrize("name", VALUES)
def test_every_mode_may_follow_namespaces(rendered: dict[str, Rendered], name: str) -> None:
    """kopf lists and watches namespaces whenever it runs with --namespace, a cluster-wide installation
    run with `-n NS` included (without them: 403, retried in a loop); the operator's sweep lists them in
    either mode to find ModelDeployments left in namespaces being deleted."""
    granted = grants(rendered[name])
    assert {(ALL, "", "namespaces", verb) for verb in ("get", "list", "watch")} <= granted


def test_rbac_create_false_renders_no_rbac(helm: Helm, helm_tmp: Path) -> None:
    r = render(helm, {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "byo"}}, helm_tmp)
    assert not [o for o in r.objects if o["apiVersion"].startswith("rbac.authorization.k8s.io/")]
    assert r.of_kind("ServiceAccount") == []
    assert r.pod["serviceAccountName"] == "byo"


# --- the generated parts of the chart


def test_the_rules_template_is_generated_from_rules() -> None:
    assert (CHART / chart.RULES_TEMPLATE).read_text() == chart.rules_template(), (
        "templates/_rules.tpl drifted: run `python -m bellwether.clusters.chart charts/bellwether`"
    )


def test_the_readme_lists_every_permission_and_why() -> None:
    readme = (CHART / "README.md").read_text()
    assert readme == chart.readme_with_permissions(readme), (
        "the chart README's permissions drifted: run `python -m bellwether.clusters.chart charts/bellwether`"
    )
    for rule in RULES:
        for resource in rule["resources"]:
            (row,) = [line for line in readme.splitlines() if f"| `{resource}` |" in line]
            assert ", ".join(rule["verbs"]) in row and rule["why"] in row


def test_a_resource_of_unknown_scope_stops_the_generator() -> None:
    rules = [*RULES, {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["create"], "why": "x"}]
    with pytest.raises(ValueError, match="cronjobs"):
        chart.split_rules(rules)


def test_every_listed_resource_is_in_exactly_one_section() -> None:
    split = chart.split_rules()
    per_resource = [rule["resources"][0] for rules in split.values() for rule in rules]
    assert sorted(per_resource) == sorted(r for rule in RULES for r in rule["resources"])
    assert {r for r in per_resource if chart.SECTION_OF[r] in (chart.CLUSTER, chart.PEERING_CLUSTER)} == CLUSTER_SCOPED


def test_the_generator_rewrites_only_what_drifted(tmp_path: Path) -> None:
    copy = tmp_path / "bellwether"
    shutil.copytree(CHART, copy)
    (copy / chart.RULES_TEMPLATE).write_text("{{/* edited by hand */}}\n")
    assert chart.write(copy) == [copy / chart.RULES_TEMPLATE]
    assert (copy / chart.RULES_TEMPLATE).read_text() == chart.rules_template()
    assert chart.write(copy) == []
