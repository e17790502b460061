"""The chart ships the ClusterAnalysisTemplate CRD as it ships the ModelDeployment CRD (templated from
the generated copy, kept on uninstall unless asked not to, left out with crds.install=false), and grants
the operator exactly `get` on templates, cluster-wide, in every mode: they are cluster-scoped."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from test_chart_rbac import ALL, grants
from test_chart_render import without_chart_metadata

from support.chartkit import ROOT, VALUES, Rendered

TEMPLATE_CRD = ROOT / "crds" / "clusteranalysistemplates.bellwether.dev.yaml"


def template_crd(r: Rendered) -> dict[str, Any] | None:
    found = [
        c for c in r.of_kind("CustomResourceDefinition") if c["spec"]["names"]["kind"] == "ClusterAnalysisTemplate"
    ]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize("name", ["default", "custom"])
def test_the_templated_crd_is_the_one_in_crds(rendered: dict[str, Rendered], name: str) -> None:
    crd = template_crd(rendered[name])
    assert crd is not None
    assert without_chart_metadata(crd) == yaml.safe_load(TEMPLATE_CRD.read_text())
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_it_is_kept_on_uninstall_unless_asked_not_to_and_left_out_when_not_installed(
    rendered: dict[str, Rendered],
) -> None:
    kept, dropped = template_crd(rendered["default"]), template_crd(rendered["custom"])
    assert kept is not None and dropped is not None
    assert kept["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "annotations" not in dropped["metadata"]
    assert template_crd(rendered["no-crds"]) is None


@pytest.mark.parametrize("name", VALUES)
def test_the_operator_may_get_templates_cluster_wide_and_nothing_more(rendered: dict[str, Rendered], name: str) -> None:
    on_templates = {
        (where, verb)
        for where, group, resource, verb in grants(rendered[name])
        if (group, resource) == ("bellwether.dev", "clusteranalysistemplates")
    }
    assert on_templates == {(ALL, "get")}
