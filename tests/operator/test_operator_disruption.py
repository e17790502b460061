"""The real operator's disruption budgets against the stand-in's Eviction API: what `kubectl drain`
would be told, in steady state and in the middle of a rollout, in the home cluster and a remote one.
"""

from __future__ import annotations

import copy
import json

import aiohttp

from bellwether.rollout.commands import COMMAND_ANNOTATION
from bellwether.sim.standins.apiserver import ApiServer
from support.operator_world import World, model_deployment
from support.specs import NAME, NAMESPACE, revision
from support.waiting import eventually

PAUSED = {"waves": [["us-east", "eu-west"]], "steps": [{"setWeight": 50}, {"pause": {}}], "bakeTime": "1s"}


async def evict(server: ApiServer, pod: str) -> int:
    """What `kubectl drain` sends for each pod: an Eviction, answered 201 (gone) or 429 (wait)."""
    url = f"{server.url}/api/v1/namespaces/{NAMESPACE}/pods/{pod}/eviction"
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": NAMESPACE}}
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        return resp.status


def budgets(server: ApiServer) -> dict[str, object]:
    found = server.list("poddisruptionbudgets", NAMESPACE, f"bellwether.dev/deployment={NAME}")
    return {b["metadata"]["labels"]["bellwether.dev/revision"]: b["spec"]["maxUnavailable"] for b in found}


def ready_pods(server: ApiServer, rev: str) -> list[str]:
    pods = server.list("pods", NAMESPACE, f"bellwether.dev/revision={rev}")
    return sorted(
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))
    )


def settled(world: World, server: ApiServer, rev: str) -> list[str]:
    """The revision's ready pods, once they are as many as its Deployment asks for (else empty)."""
    ready = ready_pods(server, rev)
    wanted = world.deployments(server)[rev]["spec"]["replicas"]
    total = len([p for p in server.list("pods", NAMESPACE, f"bellwether.dev/revision={rev}")])
    return ready if len(ready) == wanted == total else []


async def test_evictions_take_one_pod_at_a_time_and_wait_while_a_region_runs_a_canary(world: World) -> None:
    # Given v1 serving two replicas in each cluster
    v1 = model_deployment(world.prometheus.url, "v1", rollout=PAUSED)
    r1 = revision(v1)
    await world.home.put("modeldeployments", copy.deepcopy(v1))
    await eventually(lambda: world.status().get("phase") == "Healthy", what="Healthy on v1")

    # Then each cluster has v1's budget, allowing one eviction at a time
    for server in (world.home, world.remote):
        assert await eventually(lambda s=server: budgets(s) == {r1: 1}, what=f"v1's budget in {server.name}")
    (home_budget,) = world.home.list("poddisruptionbudgets", NAMESPACE)
    assert home_budget["metadata"]["ownerReferences"][0]["uid"] == world.md()["metadata"]["uid"]  # type: ignore[index]

    # When a drain evicts v1's pods while their replacements cannot get ready
    world.kubelet.hold.add(world.home.name)
    first, second = await eventually(lambda: len(ready_pods(world.home, r1)) == 2 and ready_pods(world.home, r1))
    # Then the first goes, and the second must wait for the first's replacement
    assert await evict(world.home, first) == 201
    assert await evict(world.home, second) == 429
    world.kubelet.hold.discard(world.home.name)
    await eventually(lambda: len(ready_pods(world.home, r1)) == 2, what="v1's replacement ready")
    assert await evict(world.home, second) == 201

    # When v2 rolls out and waits at a pause step
    v2 = model_deployment(world.prometheus.url, "v2", rollout=PAUSED)
    r2 = revision(v2)
    await world.change(v2)
    await eventually(lambda: world.status().get("phase") == "Paused", what="Paused with the canary at 50%")

    # Then no pod of either revision may be evicted, in either cluster
    for server in (world.home, world.remote):
        await eventually(lambda s=server: budgets(s) == {r1: 0, r2: 0}, what=f"both budgets at 0 in {server.name}")
        # (once each revision has exactly the ready pods its Deployment asks for: a surplus pod the
        # ReplicaSet is about to remove may be evicted, the step does not rely on it)
        stable = await eventually(lambda s=server: settled(world, s, r1), what=f"v1 settled in {server.name}")
        canary = await eventually(lambda s=server: settled(world, s, r2), what=f"v2 settled in {server.name}")
        assert await evict(server, stable[0]) == 429
        assert await evict(server, canary[0]) == 429

    # When the user promotes it fully
    command = json.dumps({"action": "promote-full", "id": "drain-test"})
    await world.home.patch(
        "modeldeployments", NAMESPACE, NAME, {"metadata": {"annotations": {COMMAND_ANNOTATION: command}}}
    )

    # Then v2 alone is budgeted again, one eviction at a time
    for server in (world.home, world.remote):
        await eventually(lambda s=server: budgets(s) == {r2: 1}, what=f"only v2's budget in {server.name}")
        pods = await eventually(lambda s=server: len(ready_pods(s, r2)) == 2 and ready_pods(s, r2), what="v2 ready")
        assert await evict(server, pods[0]) == 201
