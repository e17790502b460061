"""The real operator with an autoscaled region: the HPA it renders, the count it leaves alone, the
hand-over at promotion. The API server stand-in keeps server-side apply's field ownership, so an apply
that dropped `replicas` carelessly would reset the count to 1 here as it would in a cluster.

Given / When / Then; "the HPA" is the test writing the Deployment's replicas as the controller does.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from support.operator_world import World, model_deployment
from support.specs import NAME, NAMESPACE, revision
from support.waiting import eventually

METRIC = {
    "type": "Pods",
    "pods": {"metric": {"name": "vllm:num_requests_waiting"}, "target": {"type": "AverageValue", "averageValue": 5}},
}


def autoscaled(prometheus: str, version: str) -> dict[str, Any]:
    md = model_deployment(prometheus, version)
    md["spec"]["regions"][0] = {
        "name": "us-east",
        "autoscaling": {"minReplicas": 2, "maxReplicas": 8, "metrics": [METRIC]},
    }
    md["spec"]["rollout"]["steps"] = [{"setWeight": 50}, {"pause": {"duration": "3s"}}]
    return md


def hpa_target(world: World) -> str | None:
    hpa = world.home.get("horizontalpodautoscalers", NAMESPACE, f"{NAME}-us-east")
    return None if hpa is None else str(hpa["spec"]["scaleTargetRef"]["name"])


def region(world: World, name: str) -> dict[str, Any]:
    return next((r for r in world.status().get("regions", []) if r["name"] == name), {})


def pod_uids(world: World, revision: str) -> set[str]:
    return {
        p["metadata"]["uid"]
        for p in world.home.list("pods", NAMESPACE, f"bellwether.dev/revision={revision}")
        if not p["metadata"].get("deletionTimestamp")
    }


async def test_the_hpa_owns_stables_count_and_moves_to_the_new_revision_without_replacing_a_pod(world: World) -> None:
    # Given an autoscaled us-east: an HPA on the stable Deployment, which starts at minReplicas
    v1 = autoscaled(world.prometheus.url, "v1")
    await world.home.put("modeldeployments", copy.deepcopy(v1))
    r1 = revision(v1)
    await eventually(lambda: hpa_target(world) == f"{NAME}-us-east-{r1}", what="the HPA on v1")
    await eventually(lambda: world.status().get("phase") == "Healthy", what="Healthy")
    assert world.deployments(world.home)[r1]["spec"]["replicas"] == 2
    assert world.home.get("horizontalpodautoscalers", NAMESPACE, f"{NAME}-us-east")["spec"]["metrics"][0]["pods"]

    # When the HPA scales stable to 4, the operator keeps applying and the count stays the HPA's
    dep = f"{NAME}-us-east-{r1}"
    await world.home.patch("deployments", NAMESPACE, dep, {"spec": {"replicas": 4}})
    # (60 s: under `stress-ng --cpu 2` beside two test workers the count once took longer than 20 s to show)
    await eventually(lambda: region(world, "us-east").get("replicas") == 4, timeout=60, what="the live count in status")
    await eventually(lambda: region(world, "us-east").get("stableReady") == 4, timeout=60, what="4 ready")
    await asyncio.sleep(3)  # several cycles
    assert world.deployments(world.home)[r1]["spec"]["replicas"] == 4
    assert world.status()["phase"] == "Healthy"

    # When v2 rolls out, the canary is sized from the live count (4 beside 4 at 50%), stable untouched
    v2 = autoscaled(world.prometheus.url, "v2")
    r2 = revision(v2)
    await world.change(v2)
    await eventually(
        lambda: (d := world.deployments(world.home).get(r2)) and d["spec"]["replicas"] == 4, what="canary at 4"
    )
    assert world.deployments(world.home)[r1]["spec"]["replicas"] == 4
    await eventually(lambda: world.status().get("canaryWeight") == 100 or None, timeout=30, what="the hand-over")
    handed = await eventually(lambda: pod_uids(world, r2) if len(pod_uids(world, r2)) >= 8 else None, what="8 pods")

    # Then once v2 is stable, the HPA scales it, its count is kept and no pod of it was replaced
    await eventually(
        lambda: world.status().get("stableRevision") == r2 and world.status().get("phase") == "Healthy",
        timeout=30,
        what="v2 Healthy",
    )
    await eventually(lambda: hpa_target(world) == f"{NAME}-us-east-{r2}", what="the HPA on v2")
    assert r1 not in world.deployments(world.home)
    live = region(world, "us-east")["replicas"]
    assert world.deployments(world.home)[r2]["spec"]["replicas"] == live >= 4
    assert pod_uids(world, r2) == handed
