"""The operator process reads the ClusterAnalysisTemplates a ModelDeployment names from the API server,
every cycle: a missing one is a condition naming it with nothing applied, and once it exists the
canary is judged, and rolled back, on its metrics."""

from __future__ import annotations

import copy
from typing import Any

from support.operator_world import World, model_deployment
from support.specs import NAMESPACE, revision
from support.waiting import eventually


def naming_a_template(prometheus: str, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The harness's ModelDeployment with its error-rate metric moved into a ClusterAnalysisTemplate."""
    md = model_deployment(prometheus, version)
    template = {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "ClusterAnalysisTemplate",
        "metadata": {"name": "fleet-slo"},
        "spec": {"metrics": md["spec"]["analysis"].pop("metrics")},
    }
    md["spec"]["analysis"]["templates"] = [{"name": "fleet-slo"}]
    return md, template


def condition(world: World) -> tuple[str, str]:
    found = next((c for c in world.status().get("conditions") or [] if c["type"] == "Degraded"), {})
    return (found.get("reason", ""), found.get("message", "")) if found.get("status") == "True" else ("", "")


async def test_a_missing_template_is_named_then_its_metrics_judge_the_canary(world: World) -> None:
    # Given a ModelDeployment naming a ClusterAnalysisTemplate nobody has applied
    v1, template = naming_a_template(world.prometheus.url, "v1")
    await world.home.put("modeldeployments", copy.deepcopy(v1))

    # Then status names it, and nothing is deployed anywhere
    reason, message = await eventually(lambda: condition(world)[0] and condition(world), what="a Degraded condition")
    assert reason == "InvalidAnalysisTemplate" and "ClusterAnalysisTemplate 'fleet-slo' not found" in message
    assert world.home.list("deployments") == [] and world.remote.list("deployments") == []
    # (the Event is posted after the status write: wait for it too)
    await eventually(
        lambda: any(e.get("reason") == "InvalidAnalysisTemplate" for e in world.home.list("events", NAMESPACE)),
        what="an InvalidAnalysisTemplate Event",
    )

    # When the template is applied, v1 is deployed and the condition clears
    await world.home.put("clusteranalysistemplates", copy.deepcopy(template))
    await eventually(lambda: world.status().get("phase") == "Healthy", what="Healthy")
    assert condition(world) == ("", "")

    # And a canary of v2 failing the template's bound is rolled back, the template's metric named
    v2, _ = naming_a_template(world.prometheus.url, "v2")
    await world.change(v2)
    await eventually(lambda: world.status().get("canaryRevision") == revision(v2), what="a canary")
    world.bad[("eu-west", revision(v2))] = 0.4
    await eventually(lambda: world.status().get("phase") == "RolledBack", what="RolledBack")
    assert "error-rate" in condition(world)[1] and "eu-west" in condition(world)[1]
