"""The real operator (`bellwether run`) against two API server stand-ins: home and a remote region.

Given / When / Then, the way a user sees it: objects in the clusters, status, Events.
"""

from __future__ import annotations

import asyncio
import copy
import math
import re
import subprocess
import sys

import aiohttp

from bellwether.api import ModelDeploymentStatus
from support.operator_world import World, model_deployment
from support.specs import GPU_PRODUCT, NAME, NAMESPACE, revision
from support.waiting import eventually


async def fetch(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200, url
        return await resp.text()


def cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    """The user's CLI, as a separate process, against the home cluster's kubeconfig."""
    command = [sys.executable, "-c", "from bellwether.cli.main import entrypoint; entrypoint()", *args]
    command += ["-n", NAMESPACE, "--kubeconfig", str(world.operator.kubeconfig)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)


async def test_a_rollout_reaches_both_clusters_and_a_failing_analysis_rolls_back_everywhere(world: World) -> None:
    # Given a ModelDeployment serving v1 in the home cluster and in a remote region
    v1 = model_deployment(world.prometheus.url, "v1")
    await world.home.put("modeldeployments", copy.deepcopy(v1))
    r1 = revision(v1)

    # Then each cluster runs v1 with the requested GPUs, node placement and labels
    for server in (world.home, world.remote):
        deps = await eventually(lambda s=server: world.deployments(s).get(r1), what=f"v1 in {server.name}")
        pod = deps["spec"]["template"]["spec"]
        assert deps["spec"]["replicas"] == 2
        assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
        assert pod["nodeSelector"]["nvidia.com/gpu.product"] == GPU_PRODUCT
        labels = deps["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "bellwether" and "bellwether.dev/role" not in labels
        assert deps["metadata"]["labels"]["bellwether.dev/role"] == "stable"
    home_dep = world.deployments(world.home)[r1]
    assert home_dep["metadata"]["ownerReferences"][0]["uid"] == world.md()["metadata"]["uid"]  # type: ignore[index]
    assert "ownerReferences" not in world.deployments(world.remote)[r1]["metadata"]  # no owner across clusters
    await eventually(lambda: world.remote.get("services", NAMESPACE, f"{NAME}-eu-west"), what="remote Service")

    # And once the pods are ready, the ModelDeployment is Healthy on v1, with kopf's notes out of status
    status = await eventually(lambda: world.status().get("phase") == "Healthy" and world.status(), what="Healthy")
    assert status["stableRevision"] == r1
    ModelDeploymentStatus.model_validate(status)  # only our fields: kopf keeps its notes elsewhere
    assert "kopf" not in status
    assert all(k.startswith("bellwether.dev/") for k in world.md()["metadata"].get("annotations", {}))  # type: ignore[index]

    # When the model version changes
    v2 = model_deployment(world.prometheus.url, "v2")
    r2 = revision(v2)
    await world.change(v2)

    # Then a canary of v2 runs next to v1 in both clusters at the first step's weight
    for server in (world.home, world.remote):
        canary = await eventually(lambda s=server: world.deployments(s).get(r2), what=f"canary in {server.name}")
        assert canary["spec"]["replicas"] == math.ceil(2 * 50 / 100)
        assert canary["metadata"]["labels"]["bellwether.dev/role"] == "canary"
        # Stable keeps serving, giving up a pod only for a ready canary pod, within replicas + maxSurge.
        assert world.deployments(server)[r1]["spec"]["replicas"] in (1, 2)
        assert world.deployments(server)[r1]["spec"]["replicas"] + canary["spec"]["replicas"] <= 3
    status = await eventually(lambda: world.status().get("canaryWeight") == 50 and world.status(), what="weight 50")
    assert status["canaryRevision"] == r2

    # When the canary's error rate in eu-west goes far past the bound
    world.bad[("eu-west", r2)] = 0.4

    # Then it is rolled back in both clusters, and status and Events say why
    status = await eventually(lambda: world.status().get("phase") == "RolledBack" and world.status(), what="RolledBack")
    for server in (world.home, world.remote):
        # One apply deletes the canary, then grows stable back (staged writes): watch for both, not one then the other.
        await eventually(
            lambda s=server: r2 not in world.deployments(s) and world.deployments(s)[r1]["spec"]["replicas"] == 2,
            what=f"canary removed from {server.name} and stable back at 2 replicas",
        )
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert "error-rate" in degraded["message"] and "eu-west" in degraded["message"]
    assert status["stableRevision"] == r1
    events = await eventually(
        lambda: [e for e in world.home.list("events", NAMESPACE) if e.get("type") == "Warning"], what="a Warning Event"
    )
    assert any("error-rate" in e.get("message", "") or "roll" in e.get("reason", "").lower() for e in events)
    assert any(f'revision="{r2}"' in q and "eu-west" in q for q in world.prometheus.queries)

    # And the operator's own metrics and probe tell the same story
    metrics = await fetch(f"http://127.0.0.1:{world.operator.metrics_port}/metrics")
    assert 'bellwether_rollouts_started_total{namespace="ml"} 1.0' in metrics
    assert "bellwether_rollouts_rolled_back_total{" in metrics
    assert 'bellwether_analysis_verdicts_total{metric="error-rate",verdict="Failed"}' in metrics
    assert "bellwether_reconcile_duration_seconds_count" in metrics
    assert await fetch(f"http://127.0.0.1:{world.operator.health_port}/healthz") is not None

    # And `bellwether status` shows it as a table
    shown = await asyncio.to_thread(cli, world, "status", NAME)
    assert "RolledBack" in shown.stdout and "eu-west" in shown.stdout and "error-rate" in shown.stdout

    # When the ModelDeployment is deleted
    await world.home.delete("modeldeployments", NAMESPACE, NAME)

    # Then the remote cluster is cleaned up by the finalizer, the home cluster by owner references
    await eventually(lambda: world.md() is None, what="ModelDeployment gone")
    assert world.remote.list("deployments", NAMESPACE) == []
    assert world.remote.list("services", NAMESPACE) == []
    assert world.remote.list("poddisruptionbudgets", NAMESPACE) == []
    assert world.home.list("deployments", NAMESPACE) == []


async def test_manual_commands_are_consumed_once(world: World) -> None:
    # Given v1 serving, and v2 rolled out with a pause that waits for a person
    v1 = model_deployment(world.prometheus.url, "v1")
    await world.home.put("modeldeployments", copy.deepcopy(v1))
    await eventually(lambda: world.status().get("phase") == "Healthy", what="Healthy")
    steps = {"waves": [["us-east", "eu-west"]], "steps": [{"setWeight": 50}, {"pause": {}}], "bakeTime": "1s"}
    v2 = model_deployment(world.prometheus.url, "v2", rollout=steps)
    await world.change(v2)
    await eventually(lambda: world.status().get("phase") == "Paused", what="Paused at the manual pause step")

    # When the user promotes fully from the command line
    done = await asyncio.to_thread(cli, world, "promote", NAME, "--full")
    assert "promote-full requested" in done.stdout
    # (the operator may consume the annotation before we look, so the id comes from the CLI's answer)
    command_id = re.search(r"\(id ([^)]+)\)", done.stdout).group(1)  # type: ignore[union-attr]

    # Then the operator records the command, removes the annotation, and v2 becomes stable everywhere
    await eventually(lambda: world.status().get("progress", {}).get("lastCommand") == command_id, what="consumed")
    await eventually(
        lambda: "bellwether.dev/command" not in (world.md() or {})["metadata"].get("annotations", {}),
        what="annotation removed",
    )
    status = await eventually(
        lambda: world.status().get("stableRevision") == revision(v2) and world.status(), what="v2 stable"
    )
    assert status["canaryWeight"] in (0, 100)
    for server in (world.home, world.remote):
        await eventually(lambda s=server: set(world.deployments(s)) == {revision(v2)}, what=f"only v2 in {server.name}")
