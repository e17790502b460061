"""Bad input at runtime ends in a status condition that names the problem; the stable revision is
never touched because of it."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from support.operator_world import World, kubeconfig_secret, model_deployment, secret
from support.specs import NAME, NAMESPACE, revision
from support.waiting import eventually


def degraded_message(world: World) -> str:
    for c in world.status().get("conditions") or []:
        if c["type"] == "Degraded" and c["status"] == "True":
            return str(c.get("message", ""))
    return ""


async def test_a_missing_kubeconfig_secret_is_named_and_the_region_recovers_once_it_exists(world: World) -> None:
    # Given no Secret for the remote region's kubeconfig
    await world.home.delete("secrets", NAMESPACE, "eu-west-kubeconfig")
    md = model_deployment(world.prometheus.url)
    await world.home.put("modeldeployments", copy.deepcopy(md))

    # Then status names the Secret and the key to create
    message = await eventually(lambda: degraded_message(world), what="a Degraded condition")
    assert "Secret ml/eu-west-kubeconfig not found" in message and "'kubeconfig'" in message
    assert world.remote.list("deployments") == []

    # When the Secret is created, the region is served and the condition goes away
    await world.home.put("secrets", kubeconfig_secret(world.remote))
    await eventually(lambda: world.deployments(world.remote).get(revision(md)), what="remote Deployment")
    await eventually(lambda: not degraded_message(world), what="condition cleared")


async def test_a_broken_kubeconfig_stops_the_rollout_there_and_leaves_stable_alone(world: World) -> None:
    # Given v1 serving in both clusters
    v1 = model_deployment(world.prometheus.url, "v1")
    await world.home.put("modeldeployments", copy.deepcopy(v1))
    await eventually(lambda: world.status().get("phase") == "Healthy", what="Healthy")
    stable_before = copy.deepcopy(world.deployments(world.remote)[revision(v1)]["spec"])

    # When the kubeconfig Secret is replaced by something that is not a kubeconfig
    await world.home.delete("secrets", NAMESPACE, "eu-west-kubeconfig")
    await world.home.put("secrets", secret("eu-west-kubeconfig", {"kubeconfig": "clusters: [unterminated"}))

    # Then status says which Secret is broken (once the operator has read it again: within one interval)
    message = await eventually(lambda: degraded_message(world), what="a Degraded condition")
    assert "Secret ml/eu-west-kubeconfig" in message and "not a usable kubeconfig" in message

    # And when v2 is rolled out, the remote region keeps its stable revision as it was
    v2 = model_deployment(world.prometheus.url, "v2")
    await world.change(v2)
    await asyncio.sleep(1.0)  # several cycles
    remote: dict[str, Any] = world.deployments(world.remote)
    assert set(remote) == {revision(v1)}
    assert remote[revision(v1)]["spec"] == stable_before
    assert world.status().get("stableRevision") != revision(v2)  # the rollout did not complete without eu-west


async def test_a_route_crd_that_is_not_installed_is_named_and_nothing_is_applied_there(world: World) -> None:
    # Given a ModelDeployment routed by the Gateway API, whose CRDs the remote cluster does not have
    md = model_deployment(
        world.prometheus.url, traffic={"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "inference"}]}}
    )
    await world.home.put("modeldeployments", copy.deepcopy(md))

    # Then the home region gets its route, and status names the missing CRDs in the remote region
    await eventually(lambda: world.home.get("httproutes", NAMESPACE, f"{NAME}-us-east"), what="home HTTPRoute")
    message = await eventually(lambda: degraded_message(world), what="a Degraded condition")
    assert "eu-west" in message and "HTTPRoute" in message and "Gateway API" in message
    assert world.remote.list("deployments") == []


async def test_a_spec_the_schema_let_through_is_refused_with_an_actionable_condition(world: World) -> None:
    # Given a spec whose waves name a region that does not exist (an API server without the CRD's
    # validation rules, e.g. an older one, would admit it)
    md = model_deployment(world.prometheus.url)
    md["spec"]["rollout"]["waves"] = [["us-east"], ["eu-wset"]]
    await world.home.put("modeldeployments", copy.deepcopy(md))

    # Then status says what is wrong and where, and nothing is applied anywhere
    message = await eventually(lambda: degraded_message(world), what="a Degraded condition")
    assert "eu-wset" in message and "rollout.waves" in message
    reason = next(c["reason"] for c in world.status()["conditions"] if c["type"] == "Degraded")
    assert reason == "InvalidSpec"
    assert world.home.list("deployments") == [] and world.remote.list("deployments") == []
    warnings = await eventually(lambda: [e for e in world.home.list("events") if e.get("reason") == "InvalidSpec"])
    assert "eu-wset" in warnings[0]["message"]


async def test_an_image_that_never_pulls_fails_the_rollout_with_the_reason_and_stable_keeps_serving(
    world: World,
) -> None:
    # Given v1 serving in both clusters; the progress deadline is far: what Kubernetes reports is enough
    rollout = {
        "waves": [["us-east", "eu-west"]],
        "steps": [{"setWeight": 50}],
        "progressDeadline": "10m",
        "bakeTime": "1s",
    }
    v1 = model_deployment(world.prometheus.url, "v1", rollout=rollout)
    await world.home.put("modeldeployments", copy.deepcopy(v1))
    await eventually(lambda: world.status().get("phase") == "Healthy", what="Healthy")

    # When v2's image cannot be pulled in eu-west (its pods stay Pending there)
    world.kubelet.hold.add(world.remote.name)
    v2 = model_deployment(world.prometheus.url, "v2", rollout=rollout)
    await world.change(v2)
    r1, r2 = revision(v1), revision(v2)
    await eventually(lambda: world.deployments(world.remote).get(r2), what="canary in eu-west")
    labels = {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/managed-by": "bellwether",
        "bellwether.dev/deployment": NAME,
        "bellwether.dev/region": "eu-west",
        "bellwether.dev/revision": r2,
        "bellwether.dev/role": "canary",
    }
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "vllm/vllm-openai:v9"'}
    pod_status = {
        "phase": "Pending",
        "containerStatuses": [{"name": "server", "ready": False, "state": {"waiting": waiting}}],
    }
    pod = {
        "metadata": {"name": f"{NAME}-eu-west-{r2}-x1", "namespace": NAMESPACE, "labels": labels},
        "status": pod_status,
    }
    await world.remote.put("pods", pod)

    # Then the rollout fails with the reason in status, and v1 serves at full size everywhere
    message = await eventually(lambda: degraded_message(world), timeout=30, what="a Degraded condition")
    assert "ImagePullBackOff" in message
    degraded = next(c for c in world.status()["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "PodsFailing", degraded  # not the 10-minute deadline
    world.kubelet.hold.discard(world.remote.name)
    for server in (world.home, world.remote):
        # One apply deletes the canary, then grows stable back (staged writes): watch for both together.
        await eventually(
            lambda s=server: set(world.deployments(s)) == {r1} and world.deployments(s)[r1]["spec"]["replicas"] == 2,
            what=f"only v1 in {server.name}, back at 2 replicas",
        )
