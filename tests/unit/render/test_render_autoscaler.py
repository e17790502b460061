"""The HorizontalPodAutoscaler of an autoscaled region and the Deployments beside it.

Checked against the real Kubernetes OpenAPI schemas (strict), as the other rendered objects are: the
metrics a user pastes from an HPA come out as an autoscaling/v2 HPA would have them.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from bellwether.api import ModelDeploymentSpec, parse_spec, revision_of, template_of
from bellwether.render import objects_for_region
from bellwether.render.autoscaler import replica_claims
from bellwether.render.names import AUTOSCALED, revision_name
from bellwether.rollout.types import RegionObservation, RegionPlan, RevisionPlan, RevisionPods

K8S_VERSION = "1.33"
METRICS: list[dict[str, Any]] = [
    {
        "type": "Pods",
        "pods": {
            "metric": {"name": "vllm:num_requests_waiting"},
            "target": {"type": "AverageValue", "averageValue": 5},
        },
    },
    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
    {
        "type": "External",
        "external": {
            "metric": {"name": "requests_per_second", "selector": {"matchLabels": {"service": "chat"}}},
            "target": {"type": "AverageValue", "averageValue": "30"},
        },
    },
    {
        "type": "Object",
        "object": {
            "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "chat"},
            "metric": {"name": "requests-per-second"},
            "target": {"type": "Value", "value": "2k"},
        },
    },
    {
        "type": "ContainerResource",
        "containerResource": {
            "name": "memory",
            "container": "server",
            "target": {"type": "AverageValue", "averageValue": "60Gi"},
        },
    },
]
BEHAVIOR = {
    "scaleDown": {"stabilizationWindowSeconds": 600, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}
}


def spec_with(autoscaling: dict[str, Any]) -> ModelDeploymentSpec:
    return parse_spec(
        {
            "model": {"name": "llama", "version": "v1", "uri": "s3://models/llama/v1"},
            "runtime": {"image": "vllm/vllm-openai:v0.11.0", "resources": {"gpu": {"count": 1}}},
            "regions": [{"name": "us-east", "autoscaling": autoscaling}, {"name": "eu-west", "replicas": 2}],
            "rollout": {"steps": [{"setWeight": 25}]},
        }
    )


SPEC = spec_with({"minReplicas": 2, "maxReplicas": 12, "metrics": METRICS, "behavior": BEHAVIOR})
STABLE = template_of(SPEC)
CANARY = template_of(SPEC.model_copy(update={"model": SPEC.model.model_copy(update={"version": "v2"})}))
OLD, NEW = revision_of(STABLE), revision_of(CANARY)


def plan(autoscaler: str | None = OLD) -> RegionPlan:
    return RegionPlan(
        "us-east",
        (
            RevisionPlan(OLD, "stable", 8, 73, STABLE, autoscaled=True),
            RevisionPlan(NEW, "canary", 3, 27, CANARY),
        ),
        autoscaler=autoscaler,
    )


def kinds(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_the_hpa_and_the_deployments_pass_the_kubernetes_openapi_schema() -> None:
    objects = objects_for_region("chat", "ml", SPEC, plan())
    (hpa,) = kinds(objects, "HorizontalPodAutoscaler")
    for obj in [hpa, *kinds(objects, "Deployment")]:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"chat-us-east-{OLD}",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 12)
    # as pasted; a quantity written as a number comes out as the string Kubernetes stores it as
    assert hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "5"
    assert hpa["spec"]["metrics"][1:] == METRICS[1:]
    assert hpa["spec"]["behavior"] == BEHAVIOR


def test_a_misspelt_metric_field_would_be_caught_by_the_schema_check() -> None:
    (hpa,) = kinds(objects_for_region("chat", "ml", SPEC, plan()), "HorizontalPodAutoscaler")
    hpa["spec"]["metrics"][0]["pods"]["metric"]["nmae"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)


def test_stable_leaves_replicas_to_its_autoscaler_and_the_canary_keeps_a_count() -> None:
    deployments = {
        d["metadata"]["labels"]["bellwether.dev/role"]: d
        for d in kinds(objects_for_region("chat", "ml", SPEC, plan()), "Deployment")
    }
    assert "replicas" not in deployments["stable"]["spec"]
    assert deployments["canary"]["spec"]["replicas"] == 3
    assert all(d["metadata"]["annotations"][AUTOSCALED] == "true" for d in deployments.values())
    fixed = kinds(objects_for_region("chat", "ml", SPEC, RegionPlan("eu-west", plan().revisions[1:])), "Deployment")
    assert AUTOSCALED not in fixed[0]["metadata"]["annotations"]


def test_no_hpa_while_the_autoscaler_is_held_nor_for_an_external_scaler() -> None:
    assert kinds(objects_for_region("chat", "ml", SPEC, plan(autoscaler=None)), "HorizontalPodAutoscaler") == []
    keda = spec_with({"minReplicas": 2, "maxReplicas": 12, "external": {"ownedBy": "keda"}})
    objects = objects_for_region("chat", "ml", keda, plan())
    assert kinds(objects, "HorizontalPodAutoscaler") == []
    stable = next(d for d in kinds(objects, "Deployment") if d["metadata"]["labels"]["bellwether.dev/role"] == "stable")
    assert "replicas" not in stable["spec"]  # KEDA's count is left alone too


def test_replica_counts_are_claimed_apart_forced_only_where_the_step_needs_a_count() -> None:
    seen = RegionObservation("us-east", pods={OLD: RevisionPods(desired=9, ready=9), NEW: RevisionPods(desired=3)})
    claims = replica_claims("chat", SPEC, plan(), seen)
    # stable: the count as seen (its autoscaler may have moved it since), never forced
    assert claims[revision_name("chat", "us-east", OLD)].replicas == 9
    assert not claims[revision_name("chat", "us-east", OLD)].force
    assert (
        claims[revision_name("chat", "us-east", NEW)].replicas == 3
        and claims[revision_name("chat", "us-east", NEW)].force
    )
    assert replica_claims("chat", SPEC, RegionPlan("eu-west", plan().revisions[1:]), None) == {}
