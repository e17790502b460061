"""Counting the GPUs free for a revision's pods, through the real client against an API server stand-in:
the nodes its pods may run on, less what the pods bound there request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bellwether.api import template_of
from bellwether.clusters import ApiError, Clusters
from bellwether.clusters.gpus import free_gpus
from bellwether.render.workload import GPU, pod_spec
from bellwether.sim.standins.apiserver import ApiServer, Fault
from support.specs import GPU_PRODUCT, NAMESPACE, spec

TEMPLATE = template_of(
    spec(rollout={"steps": [{"setWeight": 50}]}, runtime={"resources": {"gpu": {"count": 2, "product": GPU_PRODUCT}}})
)
POD = pod_spec(TEMPLATE, {})  # nodeSelector nvidia.com/gpu.product, tolerates nvidia.com/gpu


@pytest.fixture
async def clusters(home: ApiServer, tmp_path: Path) -> AsyncIterator[Clusters]:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(home.kubeconfig(NAMESPACE)))
    async with aiohttp.ClientSession() as session:
        yield Clusters(session, kubeconfig=str(path), secret_ttl=0)


def node(name: str, gpus: int, *, product: str = GPU_PRODUCT, ready: bool = True, **spec: Any) -> dict[str, Any]:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "nvidia.com/gpu.product": product}},
        "spec": {"taints": [{"key": GPU, "value": "present", "effect": "NoSchedule"}], **spec},
        "status": {"allocatable": {GPU: str(gpus), "cpu": "96"}, "conditions": [condition]},
    }


def pod(name: str, on: str | None, gpus: int, *, namespace: str = "other", phase: str = "Running") -> dict[str, Any]:
    container = {"name": "c", "image": "x", "resources": {"limits": {GPU: str(gpus)}}}
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [container], **({"nodeName": on} if on else {})},
        "status": {"phase": phase},
    }


async def test_free_gpus_are_counted_on_the_nodes_the_pods_may_run_on(home: ApiServer, clusters: Clusters) -> None:
    # Given nodes of 8 GPUs: two open, one cordoned, one not Ready, one of another product, one untainted
    for n in [
        node("a", 8),
        node("b", 8),
        node("cordoned", 8, unschedulable=True),
        node("down", 8, ready=False),
        node("a100", 8, product="NVIDIA-A100-SXM4-80GB"),
    ]:
        await home.put("nodes", n)
    # and pods in other namespaces: on a, 2 and 3 GPUs (one asked as a request); on b, one finished
    # (its GPUs are free), one being deleted (about to be free), one of 1 GPU; one waits unbound
    await home.put("pods", pod("web-1", "a", 2))
    three = pod("web-2", "a", 3)
    three["spec"]["containers"][0]["resources"] = {"requests": {GPU: "3"}, "limits": {GPU: "3"}}
    await home.put("pods", three)
    await home.put("pods", pod("done", "b", 8, phase="Succeeded"))
    leaving = pod("leaving", "b", 4)
    leaving["metadata"]["deletionTimestamp"] = "2026-12-02T10:00:00Z"
    await home.put("pods", leaving)
    await home.put("pods", pod("small", "b", 1, namespace=NAMESPACE))
    await home.put("pods", pod("pending", None, 8))
    client = await clusters.home()

    # Then the pods may run on a (3 free) and b (7 free): room for 1 + 3 pods of 2 GPUs
    assert sorted(await free_gpus(client, POD, GPU) or ()) == [3, 7]
    # A pod that does not tolerate the GPU taint may run nowhere
    assert await free_gpus(client, {**POD, "tolerations": []}, GPU) == ()
    # The pods list asked only for assigned pods that hold resources, as kube-scheduler's informer does
    listed = [path for method, path, _ in home.requests if method == "GET" and path == "/api/v1/pods"]
    assert len(listed) == 1  # the second count reused the first's lists (within CACHE_SECONDS)


async def test_a_cluster_that_refuses_the_lists_is_not_checked(home: ApiServer, clusters: Clusters) -> None:
    await home.put("nodes", node("a", 8))
    home.faults.append(Fault(status=403, reason="Forbidden", message="nodes is forbidden", path="/api/v1/nodes"))
    client = await clusters.home()
    assert await free_gpus(client, POD, GPU) is None
    assert await free_gpus(client, POD, GPU) is None
    asked = [path for method, path, _ in home.requests if path == "/api/v1/nodes"]
    assert len(asked) == 1  # refused once: not asked again for FORBIDDEN_SECONDS


async def test_the_stand_in_answers_field_selectors_as_the_api_server_does(home: ApiServer, clusters: Clusters) -> None:
    await home.put("pods", pod("bound", "a", 1))
    await home.put("pods", pod("unbound", None, 1))
    await home.put("pods", pod("failed", "a", 1, phase="Failed"))
    client = await clusters.home()
    found = await client.request(
        "list", "/api/v1/pods", params={"fieldSelector": "spec.nodeName!=,status.phase!=Failed"}
    )
    assert [p["metadata"]["name"] for p in (found or {})["items"]] == ["bound"]
    with pytest.raises(ApiError, match=r"400 .*field label not supported: spec\.containers"):
        await client.request("list", "/api/v1/pods", params={"fieldSelector": "spec.containers=x"})
