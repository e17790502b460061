"""End to end against a real cluster (optional): `BELLWETHER_E2E_KUBECONFIG` names its kubeconfig.

The operator runs locally (`bellwether run`) against that cluster; the model is a small CPU-only HTTP
server so any cluster (kind, k3d, minikube) will do. Objects carry a per-run namespace for isolation.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bellwether.api import parse_spec, revision_of, template_of
from bellwether.api.crd import crd
from bellwether.clusters import KubeClient
from bellwether.clusters.config import home_endpoint

KUBECONFIG = os.environ.get("BELLWETHER_E2E_KUBECONFIG")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not KUBECONFIG, reason="set BELLWETHER_E2E_KUBECONFIG to a test cluster's kubeconfig to run"),
]
IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.47"


def model_deployment(namespace: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "echo", "namespace": namespace},
        "spec": {
            "model": {"name": "echo", "version": version, "uri": f"file:///models/echo/{version}"},
            "runtime": {
                "image": IMAGE,
                "args": ["netexec", "--http-port=8000"],
                "readinessPath": "/",
                "warmupSeconds": 0,
                "resources": {"cpu": "50m", "memory": "64Mi"},
            },
            "regions": [{"name": "local", "replicas": 2}],
            "rollout": {"steps": [{"setWeight": 50}, {"pause": {"duration": "5s"}}], "bakeTime": "5s"},
        },
    }


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[KubeClient, str]]:
    assert KUBECONFIG
    namespace = f"bellwether-e2e-{uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as session:
        client = KubeClient("e2e", await home_endpoint(KUBECONFIG), session)
        await client.request(
            "apply",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/modeldeployments.bellwether.dev",
            params={"fieldManager": "bellwether-e2e", "force": "true"},
            body=crd(),
            content_type="application/apply-patch+yaml",
        )
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        await client.request("create", "/api/v1/namespaces", body=ns)
        operator = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from bellwether.cli.main import entrypoint; entrypoint()",
                "run",
                "--standalone",
                "-n",
                namespace,
                "--kubeconfig",
                KUBECONFIG,
                "--metrics-port",
                "0",
                "--health-port",
                "0",
                "--interval",
                "2",
            ],
        )
        try:
            yield client, namespace
        finally:
            operator.terminate()
            operator.wait(timeout=30)
            await client.request("delete", f"/api/v1/namespaces/{namespace}", not_found_ok=True)


async def wait_for(check: Any, timeout: float = 300) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(2)
    raise AssertionError(f"timed out after {timeout}s")


async def test_a_new_revision_is_rolled_out_and_deleting_cleans_up(cluster: tuple[KubeClient, str]) -> None:
    client, namespace = cluster
    v1, v2 = model_deployment(namespace, "v1"), model_deployment(namespace, "v2")

    async def phase_on(md: dict[str, Any]) -> bool:
        obj = await client.get("ModelDeployment", namespace, "echo")
        status = (obj or {}).get("status") or {}
        return status.get("phase") == "Healthy" and status.get("stableRevision") == revision_of(
            template_of(parse_spec(md["spec"]))
        )

    await client.request("create", f"/apis/bellwether.dev/v1alpha1/namespaces/{namespace}/modeldeployments", body=v1)
    await wait_for(lambda: phase_on(v1))
    await client.merge_patch("ModelDeployment", namespace, "echo", {"spec": v2["spec"]})
    await wait_for(lambda: phase_on(v2))
    deployments = await client.list("Deployment", namespace, "bellwether.dev/deployment=echo")
    assert [d["spec"]["replicas"] for d in deployments] == [2]

    await client.delete("ModelDeployment", namespace, "echo")

    async def gone() -> bool:
        return not await client.list("Deployment", namespace, "bellwether.dev/deployment=echo")

    await wait_for(gone)
