"""The control plane stand-in (`bellwether.sim.standins.controllers`) does what the real controllers do
with a Deployment: its own ReplicaSets and pods, rolling updates by strategy, scale-down order, the scheduler's GPU
arithmetic, EndpointSlices of ready pods, foreground / background deletion, and the namespace lifecycle.

No operator here: the tests write Deployments and Services the way any client would.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bellwether.sim.standins.apiserver import CORE, ApiServer
from bellwether.sim.standins.controllers import HASH_LABEL, GpuPool, template_hash
from bellwether.sim.standins.kubelet import Backend, Kubelet, backends
from support.waiting import eventually

NS = "ml"


@pytest.fixture
async def server() -> AsyncIterator[ApiServer]:
    s = ApiServer("cluster", resources=[*CORE])
    await s.start()
    await s.put("namespaces", {"metadata": {"name": NS}})
    yield s
    await s.stop()


def deployment(name: str = "web", replicas: int = 4, image: str = "v1", **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": "server",
        "image": image,
        "ports": [{"name": "http", "containerPort": 8000}],
        "resources": {"limits": {"nvidia.com/gpu": "2"}},
    }
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            **spec,
        },
    }


def pods(server: ApiServer, live: bool = True) -> list[dict[str, Any]]:
    return [p for p in server.list("pods", NS) if not (live and p["metadata"].get("deletionTimestamp"))]


def ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []
    )


def images(server: ApiServer) -> list[str]:
    return sorted(p["spec"]["containers"][0]["image"] for p in pods(server))


async def settled(server: ApiServer, name: str, replicas: int, image: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        dep = server.get("deployments", NS, name) or {}
        status = dep.get("status") or {}
        want = {"replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas}
        ok = all(status.get(k) == v for k, v in want.items()) and images(server) == [image] * replicas
        return dep if ok and all(ready(p) for p in pods(server)) else None

    return await eventually(done, what=f"{name} settled on {image}")


def replay(server: ApiServer) -> list[tuple[int, int]]:
    """(live pods, ready live pods) after every pod change."""
    live: dict[str, bool] = {}
    out = []
    for _, kind, pod in server.changes("pods"):
        uid = pod["metadata"]["uid"]
        if kind == "DELETED" or pod["metadata"].get("deletionTimestamp"):
            live.pop(uid, None)
        else:
            live[uid] = ready(pod)
        out.append((len(live), sum(live.values())))
    return out


async def test_a_deployment_gets_a_replicaset_named_by_its_template_hash_and_ready_pods(server: ApiServer) -> None:
    with Kubelet(server, delay=0.2):
        dep = await server.put("deployments", deployment())
        await settled(server, "web", 4, "v1")
    [rs] = server.list("replicasets", NS)
    pod_hash = template_hash(deployment()["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: pod_hash}
    assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    for pod in pods(server):
        assert pod["metadata"]["labels"] == {"app": "web", HASH_LABEL: pod_hash}
        assert pod["metadata"]["name"].startswith(f"web-{pod_hash}-")
        assert pod["metadata"]["ownerReferences"][0] | {"uid": ""} == {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": rs["metadata"]["name"],
            "uid": "",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert pod["metadata"]["uid"] and pod["metadata"]["creationTimestamp"]
        assert pod["spec"]["containers"] == deployment()["spec"]["template"]["spec"]["containers"]
        assert pod["status"]["phase"] == "Running" and pod["status"]["podIP"]
        assert all(c["ready"] for c in pod["status"]["containerStatuses"])
    status = server.get("deployments", NS, "web")["status"]  # type: ignore[index]
    assert status["availableReplicas"] == 4 and status["unavailableReplicas"] == 0
    assert status["observedGeneration"] == 1
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }


@pytest.mark.parametrize(
    ("strategy", "most", "fewest_ready"),
    [
        (None, 5, 3),  # the defaults: 25% surge of 4 rounds up to 1, 25% unavailable rounds down to 1
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, 4, 3),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 0}}, 6, 4),
        ({"type": "Recreate"}, 4, 0),
    ],
)
async def test_a_template_change_rolls_by_the_strategy(
    server: ApiServer, strategy: dict[str, Any] | None, most: int, fewest_ready: int
) -> None:
    extra: dict[str, Any] = {} if strategy is None else {"strategy": strategy}
    with Kubelet(server, delay=0.3):
        await server.put("deployments", deployment(**extra))
        await settled(server, "web", 4, "v1")
        start = len(server.changes("pods"))
        first = {p["metadata"]["uid"] for p in pods(server)}
        await server.patch("deployments", NS, "web", {"spec": deployment(image="v2")["spec"]})
        await settled(server, "web", 4, "v2")
    steps = replay(server)[start:]
    assert max(total for total, _ in steps) == most, steps
    assert min(up for _, up in steps) == fewest_ready, steps
    if strategy and strategy["type"] == "Recreate":
        created = [o for _, kind, o in server.changes("pods")[start:] if kind == "ADDED"]
        removed = [
            i
            for i, (_, kind, o) in enumerate(server.changes("pods"))
            if kind == "DELETED" and o["metadata"]["uid"] in first
        ]
        first_new = next(i for i, (_, kind, _) in enumerate(server.changes("pods")) if i >= start and kind == "ADDED")
        assert created and max(removed) < first_new, "a new pod before every old one was gone"
    olds = [rs for rs in server.list("replicasets", NS) if rs["spec"]["replicas"] == 0]
    assert len(olds) == 1 and len(server.list("replicasets", NS)) == 2  # the old one is kept, empty
    assert server.get("deployments", NS, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"  # type: ignore[index]


async def test_a_scale_down_removes_unready_then_cheaper_then_newer_pods(server: ApiServer) -> None:
    with Kubelet(server) as kubelet:
        await server.put("deployments", deployment(replicas=4))
        await settled(server, "web", 4, "v1")
        names = sorted(p["metadata"]["name"] for p in pods(server))
        # Two pods carry a deletion cost (as the operator marks the serving ones)
        for name in names[:2]:
            patch = {"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "100"}}}
            await server.patch("pods", NS, name, patch)
        await server.patch("deployments", NS, "web", {"spec": {"replicas": 2}})
        await eventually(lambda: len(pods(server)) == 2, what="two pods")
        assert sorted(p["metadata"]["name"] for p in pods(server)) == names[:2]

        # A pod that is not ready goes before any ready one, whatever its cost
        kubelet.hold.add(server.name)
        await server.patch("deployments", NS, "web", {"spec": {"replicas": 3}})
        await eventually(lambda: len(pods(server)) == 3, what="three pods")
        fresh = next(p["metadata"]["name"] for p in pods(server) if p["metadata"]["name"] not in names)
        await server.patch(
            "pods", NS, fresh, {"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "1000"}}}
        )
        await server.patch("deployments", NS, "web", {"spec": {"replicas": 2}})
        await eventually(lambda: len(pods(server)) == 2, what="two pods again")
        assert sorted(p["metadata"]["name"] for p in pods(server)) == names[:2]


async def test_pods_past_the_free_gpus_stay_pending_unschedulable(server: ApiServer) -> None:
    with Kubelet(server, gpus={server.name: GpuPool(nodes=2, per_node=4)}):  # room for 4 pods of 2 GPUs
        await server.put("deployments", deployment(replicas=5))

        def pending() -> list[dict[str, Any]]:
            return [p for p in pods(server) if not p["spec"].get("nodeName")]

        def one_pending() -> list[dict[str, Any]] | None:
            return pending() if len(pods(server)) == 5 and len(pending()) == 1 else None

        [stuck] = await eventually(one_pending, what="one pending")
        scheduled = next(c for c in stuck["status"]["conditions"] if c["type"] == "PodScheduled")
        assert scheduled == scheduled | {
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
        }
        assert stuck["status"]["phase"] == "Pending"
        nodes = sorted(p["spec"]["nodeName"] for p in pods(server) if p["spec"].get("nodeName"))
        assert nodes == ["cluster-gpu-node-0"] * 2 + ["cluster-gpu-node-1"] * 2  # spread (least allocated)
        assert server.get("nodes", None, "cluster-gpu-node-0")["status"]["capacity"]["nvidia.com/gpu"] == "4"  # type: ignore[index]

        # When a pod goes, the pending one gets its GPUs
        await server.patch("deployments", NS, "web", {"spec": {"replicas": 4}})
        await settled(server, "web", 4, "v1")
        assert not pending()


async def test_endpoints_are_the_selected_ready_pods(server: ApiServer) -> None:
    service = {
        "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
        "spec": {
            "selector": {"app": "web", "serving": "true"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    with Kubelet(server, delay=0.5) as kubelet:
        await server.put("services", service)
        await server.put("deployments", deployment(replicas=3))
        await eventually(lambda: len(pods(server)) == 3, what="three pods")
        for pod in pods(server)[:2]:
            await server.patch("pods", NS, pod["metadata"]["name"], {"metadata": {"labels": {"serving": "true"}}})
        # Not ready yet: listed, but not ready
        listed = await eventually(lambda: backends(server, NS, "web", ready=False), what="endpoints")
        assert len(listed) == 2 and not any(b.ready or b.serving for b in listed)
        assert backends(server, NS, "web") == []

        def two() -> list[Backend] | None:
            found = backends(server, NS, "web")
            return found if len(found) == 2 else None

        up = await eventually(two, what="two ready endpoints")
        assert {b.pod for b in up} == {p["metadata"]["name"] for p in pods(server)[:2]}
        [piece] = server.list("endpointslices", NS)
        assert piece["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
        assert (
            piece["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        )
        assert piece["ports"] == [{"name": "http", "protocol": "TCP", "port": 8000}]
        assert piece["metadata"]["ownerReferences"][0]["kind"] == "Service"

        # A label taken off leaves the endpoints within a controller round
        await server.patch("pods", NS, up[0].pod, {"metadata": {"labels": {"serving": None}}})
        await eventually(
            lambda: [b.pod for b in backends(server, NS, "web")] == [up[1].pod], timeout=1, what="one left"
        )

        # A terminating pod is listed as terminating, serving, not ready
        kubelet.servers[0].pod_grace = 2.0
        await server.delete("pods", NS, up[1].pod)

        def terminating() -> list[Backend]:
            return [b for b in backends(server, NS, "web", ready=False) if b.terminating]

        gone = await eventually(terminating, timeout=1, what="a terminating endpoint")
        assert backends(server, NS, "web") == []
        assert [(b.ready, b.serving, b.terminating) for b in gone] == [(False, True, True)]


async def test_foreground_deletion_waits_for_the_pods_and_background_does_not(server: ApiServer) -> None:
    with Kubelet(server, grace=1.0):
        await server.put("deployments", deployment(replicas=2))
        await settled(server, "web", 2, "v1")

        # Foreground, over HTTP as a client sends it
        body = json.dumps({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"})
        async with aiohttp.ClientSession() as session:
            url = f"{server.url}/apis/apps/v1/namespaces/{NS}/deployments/web"
            async with session.delete(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 200
        dep = server.get("deployments", NS, "web")
        assert dep is not None and dep["metadata"]["deletionTimestamp"]
        assert dep["metadata"]["finalizers"] == ["foregroundDeletion"]
        [rs] = server.list("replicasets", NS)
        assert rs["metadata"]["deletionTimestamp"] and rs["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert all(p["metadata"].get("deletionTimestamp") for p in pods(server, live=False))
        assert len(pods(server, live=False)) == 2  # terminating for their grace, never replaced
        name = pods(server, live=False)[0]["metadata"]["name"]
        await server.patch("pods", NS, name, {"metadata": {"labels": {"serving": None}}})  # still patchable
        assert server.get("pods", NS, name) is not None
        await asyncio.sleep(0.5)
        assert server.get("deployments", NS, "web") is not None and len(pods(server, live=False)) == 2
        await eventually(lambda: server.get("deployments", NS, "web") is None, timeout=3, what="gone")
        assert server.list("replicasets", NS) == [] and pods(server, live=False) == []

        # Background: the Deployment at once, its ReplicaSet after it, the pods terminating
        await server.put("deployments", deployment(replicas=2))
        await settled(server, "web", 2, "v1")
        await server.delete("deployments", NS, "web")
        assert server.get("deployments", NS, "web") is None and server.list("replicasets", NS) == []
        assert len(pods(server, live=False)) == 2 and pods(server) == []
        await eventually(lambda: pods(server, live=False) == [], timeout=3, what="pods gone")


async def test_pods_are_patched_in_their_metadata_only_and_never_replaced_for_it(server: ApiServer) -> None:
    with Kubelet(server):
        await server.put("deployments", deployment(replicas=2))
        await settled(server, "web", 2, "v1")
        before = {p["metadata"]["uid"] for p in pods(server)}
        name = pods(server)[0]["metadata"]["name"]
        patch = {"metadata": {"labels": {"serving": "true"}}, "status": {"phase": "Failed"}}
        async with aiohttp.ClientSession() as session:
            url = f"{server.url}/api/v1/namespaces/{NS}/pods/{name}"
            headers = {"Content-Type": "application/merge-patch+json"}
            async with session.patch(url, data=json.dumps(patch), headers=headers) as resp:
                assert resp.status == 200
                assert (await resp.json())["status"]["phase"] == "Running"  # status only through /status
        await asyncio.sleep(0.3)
        assert {p["metadata"]["uid"] for p in pods(server)} == before
        template = copy.deepcopy(deployment()["spec"]["template"])
        template["metadata"]["labels"]["tier"] = "gpu"  # a template change does replace them
        await server.patch("deployments", NS, "web", {"spec": {"template": template}})
        await eventually(lambda: not before & {p["metadata"]["uid"] for p in pods(server)}, what="replaced")


async def test_orphan_deletion_leaves_the_replicaset_and_its_pods(server: ApiServer) -> None:
    with Kubelet(server):
        await server.put("deployments", deployment(replicas=2))
        await settled(server, "web", 2, "v1")
        await server.delete("deployments", NS, "web", propagation="Orphan")
        await asyncio.sleep(0.3)
        [rs] = server.list("replicasets", NS)
        assert server.get("deployments", NS, "web") is None and "ownerReferences" not in rs["metadata"]
        assert len(pods(server)) == 2


async def test_a_deleted_namespace_is_terminating_until_everything_in_it_is_gone(server: ApiServer) -> None:
    # Given a namespace holding a Deployment's pods, and an object whose finalizer only its owner removes
    with Kubelet(server, grace=1.0):
        await server.put("deployments", deployment(replicas=2))
        await settled(server, "web", 2, "v1")
        held = {"metadata": {"name": "held", "namespace": NS, "finalizers": ["example.com/cleanup"]}}
        await server.put("secrets", held)

        # When the namespace is deleted, over HTTP as kubectl sends it
        async with aiohttp.ClientSession() as session:
            async with session.delete(f"{server.url}/api/v1/namespaces/{NS}") as resp:
                assert resp.status == 200
            # Then it is Terminating and takes no new content
            ns = server.get("namespaces", None, NS)
            assert ns is not None and ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
            assert ns["spec"]["finalizers"] == ["kubernetes"]
            body = {"metadata": {"name": "new"}, "data": {}}
            async with session.post(f"{server.url}/api/v1/namespaces/{NS}/secrets", json=body) as resp:
                assert resp.status == 403
                assert "because it is being terminated" in (await resp.json())["message"]

        # its content goes (the pods after their grace), the held object stays, and so does the namespace
        await eventually(
            lambda: server.list("deployments", NS) == [] and pods(server, live=False) == [], what="emptied"
        )
        held_now = server.get("secrets", NS, "held")
        assert held_now is not None and held_now["metadata"]["deletionTimestamp"]
        assert server.get("namespaces", None, NS) is not None

        # until the finalizer is removed: then the namespace goes with it
        await server.patch("secrets", NS, "held", {"metadata": {"finalizers": None}})
        assert server.get("secrets", NS, "held") is None
        assert server.get("namespaces", None, NS) is None
