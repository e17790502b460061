"""End to end against a real cluster when `BELLWETHER_E2E_KUBECONFIG` names its kubeconfig, else
against a stand-in cluster (the API server stand-in with its control plane: Deployment, ReplicaSet and
EndpointSlice controllers, scheduler, kubelets, Foreground deletion and the namespace lifecycle).

The operator runs locally (`bellwether run`) against that cluster; the model is a small CPU-only HTTP
server so any cluster (kind, k3d, minikube) will do. Objects carry a per-run namespace for isolation.

A real cluster deletes with its own timing: a Deployment deleted in the Foreground stays listed, with a
`deletionTimestamp`, until its pods are gone, and a namespace stays Terminating until every finalizer
in it is removed. So the checks tell live objects from ones on their way out, and every test leaves the
cluster as it found it: its ModelDeployments deleted and gone while the operator still runs (their
finalizer needs it), then the operator stopped, then the namespace deleted and gone.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bellwether.api import parse_spec, revision_of, template_of
from bellwether.api.crd import crd
from bellwether.clusters import ApiError, KubeClient
from bellwether.clusters.config import home_endpoint
from bellwether.sim.standins.apiserver import ApiServer
from bellwether.sim.standins.kubelet import Kubelet
from support.specs import manifest, spec_doc

REAL_CLUSTER = os.environ.get("BELLWETHER_E2E_KUBECONFIG")
pytestmark = [pytest.mark.e2e]
IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.47"
NAME = "echo"
SELECTOR = f"bellwether.dev/deployment={NAME}"
FINALIZER = "bellwether.dev/cleanup"
GONE_WITHIN = 300.0  # seconds for a namespace to go: pods get their termination grace period


def model_deployment(namespace: str, version: str, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An HTTP echo server, no GPU, in the one region the test cluster is."""
    spec = spec_doc(
        {"local": 2},
        model={"name": "echo", "version": version, "uri": f"file:///models/echo/{version}"},
        runtime={
            "image": IMAGE,
            "args": ["netexec", "--http-port=8000"],
            "readinessPath": "/",
            "warmupSeconds": 0,
            "resources": {"cpu": "50m", "memory": "64Mi"},
        },
        rollout={"steps": steps or [{"setWeight": 50}, {"pause": {"duration": "5s"}}], "bakeTime": "5s"},
    )
    return manifest(spec, NAME, namespace)


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 300, what: str = "") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last: {last!r}")


class Operator:
    """`bellwether run` watching one namespace, as a user starts it; stopped and started by the tests."""

    def __init__(self, namespace: str, kubeconfig: str) -> None:
        self.args = [
            sys.executable,
            "-c",
            "from bellwether.cli.main import entrypoint; entrypoint()",
            "run",
            "--standalone",
            "-n",
            namespace,
            "--kubeconfig",
            kubeconfig,
            "--metrics-port",
            "0",
            "--health-port",
            "0",
            "--interval",
            "2",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Cluster:
    client: KubeClient
    namespace: str
    operator: Operator

    async def md(self) -> dict[str, Any] | None:
        return await self.client.get("ModelDeployment", self.namespace, NAME)

    async def create(self, md: dict[str, Any]) -> None:
        path = f"/apis/bellwether.dev/v1alpha1/namespaces/{self.namespace}/modeldeployments"
        await self.client.request("create", path, body=md)

    async def namespace_object(self) -> dict[str, Any] | None:
        return await self.client.request("get", f"/api/v1/namespaces/{self.namespace}", not_found_ok=True)

    async def delete_namespace(self) -> None:
        try:
            await self.client.request("delete", f"/api/v1/namespaces/{self.namespace}", not_found_ok=True)
        except ApiError as e:
            if e.status != 409:  # 409: already being deleted
                raise

    async def deployments(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(live, on their way out): a Foreground deletion keeps a Deployment listed until its pods go."""
        found = await self.client.list("Deployment", self.namespace, SELECTOR)
        live = [d for d in found if not d["metadata"].get("deletionTimestamp")]
        return live, [d for d in found if d["metadata"].get("deletionTimestamp")]


async def tear_down(cluster: Cluster) -> None:
    """Delete the ModelDeployments and wait until they are gone while the operator runs (its finalizer
    needs it), then stop the operator, then delete the namespace and wait until it is gone."""
    try:
        for md in await cluster.client.list("ModelDeployment", cluster.namespace):
            await cluster.client.delete("ModelDeployment", cluster.namespace, md["metadata"]["name"])

        async def no_model_deployments() -> bool:
            return not await cluster.client.list("ModelDeployment", cluster.namespace)

        await wait_for(no_model_deployments, timeout=120, what="every ModelDeployment deleted")
    finally:
        cluster.operator.stop()
        await cluster.delete_namespace()

        async def namespace_gone() -> bool:
            return await cluster.namespace_object() is None

        await wait_for(namespace_gone, timeout=GONE_WITHIN, what=f"namespace {cluster.namespace} gone")


@pytest.fixture
async def kubeconfig(tmp_path: Path) -> AsyncIterator[str]:
    """The real cluster's kubeconfig, or a stand-in cluster's for the test's length."""
    if REAL_CLUSTER:
        yield REAL_CLUSTER
        return
    server = ApiServer("e2e")
    await server.start()
    await server.put("namespaces", {"metadata": {"name": "default"}})
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(server.kubeconfig("default")))
    try:
        with Kubelet(server, delay=1.0, grace=1.0):
            yield str(path)
    finally:
        await server.stop()


@pytest.fixture
async def cluster(kubeconfig: str) -> AsyncIterator[Cluster]:
    namespace = f"bellwether-e2e-{uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as session:
        client = KubeClient("e2e", await home_endpoint(kubeconfig), session)
        await client.request(
            "apply",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/modeldeployments.bellwether.dev",
            params={"fieldManager": "bellwether-e2e", "force": "true"},
            body=crd(),
            content_type="application/apply-patch+yaml",
        )
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        await client.request("create", "/api/v1/namespaces", body=ns)
        found = Cluster(client, namespace, Operator(namespace, kubeconfig))
        found.operator.start()
        try:
            yield found
        finally:
            await tear_down(found)


def healthy_on(cluster: Cluster, md: dict[str, Any]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        status = (await cluster.md() or {}).get("status") or {}
        revision = revision_of(template_of(parse_spec(md["spec"])))
        return status.get("phase") == "Healthy" and status.get("stableRevision") == revision

    return check


async def test_a_new_revision_is_rolled_out_and_deleting_cleans_up(cluster: Cluster) -> None:
    v1, v2 = model_deployment(cluster.namespace, "v1"), model_deployment(cluster.namespace, "v2")

    await cluster.create(v1)
    await wait_for(healthy_on(cluster, v1), what="Healthy on v1")
    await cluster.client.merge_patch("ModelDeployment", cluster.namespace, NAME, {"spec": v2["spec"]})
    await wait_for(healthy_on(cluster, v2), what="Healthy on v2")

    # Once Healthy, one live Deployment serves; v1's may still be on its way out (Foreground deletion)
    async def one_live_deployment() -> list[int] | None:
        live, _leaving = await cluster.deployments()
        return [d["spec"]["replicas"] for d in live] if len(live) == 1 else None

    assert await wait_for(one_live_deployment, timeout=60, what="one live Deployment") == [2]

    async def none_leaving() -> bool:
        return not (await cluster.deployments())[1]

    await wait_for(none_leaving, timeout=GONE_WITHIN, what="the old revision's Deployment gone")

    await cluster.client.delete("ModelDeployment", cluster.namespace, NAME)

    async def gone() -> bool:
        return await cluster.md() is None and not await cluster.client.list("Deployment", cluster.namespace, SELECTOR)

    await wait_for(gone, what="the ModelDeployment and its Deployments gone")


async def test_deleting_the_namespace_of_a_paused_model_deployment_completes(cluster: Cluster) -> None:
    # Given a ModelDeployment paused at a step that waits for a person
    v1 = model_deployment(cluster.namespace, "v1")
    await cluster.create(v1)
    await wait_for(healthy_on(cluster, v1), what="Healthy on v1")
    v2 = model_deployment(cluster.namespace, "v2", steps=[{"setWeight": 50}, {"pause": {}}])
    await cluster.client.merge_patch("ModelDeployment", cluster.namespace, NAME, {"spec": v2["spec"]})

    async def paused() -> bool:
        return ((await cluster.md() or {}).get("status") or {}).get("phase") == "Paused"

    await wait_for(paused, what="Paused")

    # When its namespace is deleted while the operator runs, Then the ModelDeployment goes promptly
    await cluster.delete_namespace()

    async def md_gone() -> bool:
        return await cluster.md() is None

    await wait_for(md_gone, timeout=90, what="the ModelDeployment gone with its namespace")


async def test_a_namespace_deleted_while_the_operator_is_down_goes_once_it_starts(cluster: Cluster) -> None:
    # Given a ModelDeployment serving, and the operator stopped
    v1 = model_deployment(cluster.namespace, "v1")
    await cluster.create(v1)
    await wait_for(healthy_on(cluster, v1), what="Healthy on v1")
    cluster.operator.stop()

    # When its namespace is deleted meanwhile, it stays Terminating on the finalizer
    await cluster.delete_namespace()

    async def held_by_the_finalizer() -> bool:
        md = await cluster.md() or {"metadata": {}}
        return bool(md["metadata"].get("deletionTimestamp")) and FINALIZER in md["metadata"].get("finalizers", [])

    await wait_for(held_by_the_finalizer, timeout=60, what="the ModelDeployment marked deleted")
    await asyncio.sleep(10)
    assert await cluster.md() is not None, "nothing but the operator removes the finalizer"

    # Then the operator, once started, lets it go, and the namespace with it
    cluster.operator.start()

    async def namespace_gone() -> bool:
        return await cluster.namespace_object() is None

    await wait_for(namespace_gone, timeout=GONE_WITHIN, what="the namespace gone after the start")
