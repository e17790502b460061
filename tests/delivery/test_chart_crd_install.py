"""`helm install` works whether or not the ModelDeployment CRD already exists.

The real helm runs `helm install --dry-run=server` against the API server stand-in of the operator tests
(`bellwether.sim.standins.apiserver`): Helm's `lookup` is answered by it, and Helm runs the checks of a real
install against it before it would write anything, the ownership check that refused a CRD applied with
kubectl first ("invalid ownership metadata") included. A chart without the lookup guard fails here
exactly as it failed on a real cluster, so passing means something.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bellwether.sim.standins.apiserver import CORE, ApiServer, Resource
from support.chartkit import CHART, FULLNAME, RELEASE, RELEASE_NAMESPACE, ROOT, Helm, Install, crd_from_crds_directory

CRD_NAME = "modeldeployments.bellwether.dev"
TEMPLATE_CRD_NAME = "clusteranalysistemplates.bellwether.dev"  # decided on its own: absent here, so installed
RBAC = "rbac.authorization.k8s.io"
# What the chart installs, beyond the stand-in's core kinds.
KINDS = [
    Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    Resource(RBAC, "v1", "clusterroles", "ClusterRole", namespaced=False),
    Resource(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    Resource(RBAC, "v1", "roles", "Role"),
    Resource(RBAC, "v1", "rolebindings", "RoleBinding"),
]
NAMESPACED = {"watchNamespaces": ["ml", "prod"]}


@dataclass
class Cluster:
    server: ApiServer
    kubeconfig: Path

    async def install(self, helm: Helm, values: dict[str, Any], tmp: Path) -> Install:
        # helm blocks; the stand-in answering it runs on this event loop
        return await asyncio.to_thread(helm.install_against, self.kubeconfig, values, tmp)

    async def apply_crd(self, annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> None:
        """The CRD as `kubectl apply --server-side -f crds/` leaves it (optionally with Helm's metadata)."""
        crd = crd_from_crds_directory()
        crd["metadata"].update(annotations=annotations or {}, labels=labels or {})
        await self.server.put("customresourcedefinitions", crd)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    server = ApiServer("helm", resources=[*CORE, *KINDS])
    await server.start()
    for namespace in (RELEASE_NAMESPACE, "ml", "prod"):
        await server.put("namespaces", {"metadata": {"name": namespace}})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(server.kubeconfig(RELEASE_NAMESPACE)))
    try:
        yield Cluster(server, kubeconfig)
    finally:
        await server.stop()


def owned_by(release: str, namespace: str) -> dict[str, dict[str, str]]:
    return {
        "annotations": {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace},
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
    }


def remembered(done: Install) -> str:
    """Whether the release manages the CRD, as the operator's Deployment remembers it for upgrades."""
    (deployment,) = done.of_kind("Deployment")
    annotation: str = deployment["metadata"]["annotations"]["bellwether.dev/crd-managed"]
    return annotation


def crds_in(done: Install) -> list[str]:
    assert done.returncode == 0, done.stderr
    return sorted(o["metadata"]["name"] for o in done.of_kind("CustomResourceDefinition"))


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster-wide", "namespaced"])
async def test_a_first_install_installs_the_crd_and_keeps_it(
    cluster: Cluster, helm: Helm, helm_tmp: Path, values: dict[str, Any]
) -> None:
    done = await cluster.install(helm, values, helm_tmp)
    assert crds_in(done) == [TEMPLATE_CRD_NAME, CRD_NAME]
    for crd in done.of_kind("CustomResourceDefinition"):
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "Uninstalling keeps the CRD" in done.notes
    assert "already existed" not in done.notes
    assert remembered(done) == "true"  # so its upgrades keep the CRD in the release


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster-wide", "namespaced"])
async def test_an_install_after_the_crd_was_applied_with_kubectl_leaves_it_alone(
    cluster: Cluster, helm: Helm, helm_tmp: Path, values: dict[str, Any]
) -> None:
    # Given the CRD applied first, as the repository's README and the chart's NOTES suggest
    await cluster.apply_crd()

    # Then the install goes through, without the CRD, and the NOTES say who keeps it up to date
    done = await cluster.install(helm, values, helm_tmp)
    assert crds_in(done) == [TEMPLATE_CRD_NAME]
    assert done.of_kind("Deployment"), "the operator itself is installed"
    assert "already existed, managed outside Helm" in done.notes
    assert "kubectl apply --server-side -f crds/modeldeployments.bellwether.dev.yaml" in done.notes
    handover = f"meta.helm.sh/release-name={RELEASE} meta.helm.sh/release-namespace={RELEASE_NAMESPACE}"
    assert handover in done.notes
    assert "Uninstalling keeps the CRD" not in done.notes  # not ours to keep
    assert remembered(done) == "false"


async def test_a_crd_of_another_release_is_left_to_it(cluster: Cluster, helm: Helm, helm_tmp: Path) -> None:
    # Given a second installation next to one that installed the CRD (docs/operations.md suggests several)
    await cluster.apply_crd(**owned_by("bw-prod", "bellwether-prod"))
    done = await cluster.install(helm, NAMESPACED, helm_tmp)
    assert crds_in(done) == [TEMPLATE_CRD_NAME]
    assert "managed by the Helm release bw-prod in namespace bellwether-prod" in done.notes


async def test_a_crd_handed_to_this_release_is_upgraded_by_it(cluster: Cluster, helm: Helm, helm_tmp: Path) -> None:
    # Given the CRD annotated and labelled as the README's hand-over says
    await cluster.apply_crd(**owned_by(RELEASE, RELEASE_NAMESPACE))
    done = await cluster.install(helm, {}, helm_tmp)
    assert crds_in(done) == [TEMPLATE_CRD_NAME, CRD_NAME]
    assert "already existed" not in done.notes


async def test_crds_install_false_never_renders_it(cluster: Cluster, helm: Helm, helm_tmp: Path) -> None:
    await cluster.apply_crd()
    done = await cluster.install(helm, {"crds": {"install": False}}, helm_tmp)
    assert crds_in(done) == []
    assert "crds.install is false" in done.notes


async def test_without_the_lookup_the_install_fails_as_it_did_on_a_real_cluster(
    cluster: Cluster, helm: Helm, helm_tmp: Path, tmp_path: Path
) -> None:
    """The check above is real: a chart that always templates the CRD meets Helm's ownership check."""
    copy = tmp_path / "bellwether"
    shutil.copytree(CHART, copy)
    template = copy / "templates" / "crd.yaml"
    guarded = '{{- if include "bellwether.crd.managed" . }}'
    assert guarded in template.read_text()
    template.write_text(template.read_text().replace(guarded, "{{- if .Values.crds.install }}"))
    await cluster.apply_crd()

    unguarded = Helm(helm.binary, chart=copy)
    done = await cluster.install(unguarded, {}, helm_tmp)
    assert done.returncode != 0
    assert f'CustomResourceDefinition "{CRD_NAME}"' in done.stderr and "invalid ownership metadata" in done.stderr


async def test_a_crd_in_the_release_stays_in_it_whatever_became_of_its_metadata(
    cluster: Cluster, helm: Helm, helm_tmp: Path
) -> None:
    """Left out by an upgrade, the CRD would be deleted by Helm, every ModelDeployment with it. Once the
    release manages it (remembered on the operator's Deployment), it is rendered even after `kubectl
    replace` stripped Helm's label and annotations. (A dry-run install stands in for the upgrade here:
    it meets the ownership check an upgrade skips for objects already in the release, which shows the
    CRD was rendered.)"""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": FULLNAME,
            "namespace": RELEASE_NAMESPACE,
            "annotations": {
                **owned_by(RELEASE, RELEASE_NAMESPACE)["annotations"],
                "bellwether.dev/crd-managed": "true",
            },
            "labels": owned_by(RELEASE, RELEASE_NAMESPACE)["labels"],
        },
        "spec": {},
    }
    await cluster.server.put("deployments", deployment)
    await cluster.apply_crd()  # replaced: no Helm metadata left

    done = await cluster.install(helm, {}, helm_tmp)
    assert f'CustomResourceDefinition "{CRD_NAME}"' in done.stderr and "invalid ownership metadata" in done.stderr
    assert f'Deployment "{FULLNAME}"' not in done.stderr  # the remembered owner itself is the release's


async def test_a_template_crd_applied_with_kubectl_is_left_alone_and_the_other_installed(
    cluster: Cluster, helm: Helm, helm_tmp: Path
) -> None:
    """Each CRD is decided on its own: `kubectl apply -f crds/clusteranalysistemplates...` before the
    install does not stop the release from installing the ModelDeployment CRD, nor the install."""
    template_crd = yaml.safe_load((ROOT / "crds" / f"{TEMPLATE_CRD_NAME}.yaml").read_text())
    await cluster.server.put("customresourcedefinitions", template_crd)
    done = await cluster.install(helm, {}, helm_tmp)
    assert crds_in(done) == [CRD_NAME]
    assert "The ClusterAnalysisTemplate CRD already existed, managed outside Helm" in done.notes
    assert "kubectl apply --server-side -f crds/clusteranalysistemplates.bellwether.dev.yaml" in done.notes
    (deployment,) = done.of_kind("Deployment")
    assert deployment["metadata"]["annotations"]["bellwether.dev/template-crd-managed"] == "false"
    assert remembered(done) == "true"
