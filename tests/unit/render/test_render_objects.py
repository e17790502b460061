"""Rendered child objects are valid Kubernetes objects that do what the spec asks.

Core and apps objects are checked against the real Kubernetes OpenAPI schemas (strict: an unknown or
misspelt field fails); routes against the fields of their CRDs that Bellwether writes.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from bellwether.api import ModelDeploymentSpec, revision_of, template_of
from bellwether.render import objects_for_region
from bellwether.render.names import fit, revision_name
from bellwether.rollout.types import RegionPlan, RevisionPlan
from support.specs import GPU_PRODUCT, spec

K8S_VERSION = "1.33"


def make_spec(**traffic: Any) -> ModelDeploymentSpec:
    return spec(
        [
            {"name": "us-east", "replicas": 4, "nodeSelector": {"topology.kubernetes.io/region": "us-east1"}},
            {"name": "eu-west", "replicas": 2, "namespace": "serving"},
        ],
        runtime={
            "args": ["--model", "$(MODEL_URI)"],
            "port": 8000,
            "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}],
            "resources": {"gpu": {"count": 2, "product": GPU_PRODUCT}, "cpu": "8", "memory": "64Gi"},
            "readinessPath": "/health",
            "warmupSeconds": 300,
        },
        traffic=traffic or {"router": "replicas"},
        analysis={
            "prometheus": {"url": "http://prometheus:9090"},
            "metrics": [{"name": "p99", "preset": "vllm-e2e-latency-p99"}],
        },
    )


def canary_plan(spec: ModelDeploymentSpec, region: str = "us-east") -> RegionPlan:
    stable = template_of(spec)
    canary = template_of(
        spec.model_copy(
            update={"model": spec.model.model_copy(update={"version": "v2", "uri": "s3://models/llama/v2"})}
        )
    )
    return RegionPlan(
        region,
        (
            RevisionPlan(revision_of(stable), "stable", 4, 90, stable),
            RevisionPlan(revision_of(canary), "canary", 1, 10, canary),
        ),
    )


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("router", ["replicas", "gatewayAPI", "istio"])
def test_core_objects_pass_the_kubernetes_openapi_schema(router: str) -> None:
    spec = make_spec(
        router=router, gatewayAPI={"parentRefs": [{"name": "inference"}]}, istio={"hosts": ["chat.example.com"]}
    )
    objects = objects_for_region("chat", "ml", spec, canary_plan(spec))
    core = [o for o in objects if o["kind"] in ("Deployment", "Service")]
    assert len(by_kind(core, "Deployment")) == 2
    assert len(by_kind(core, "Service")) == 3  # one per revision and the serving one
    for obj in core:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_a_misspelt_field_would_be_caught_by_the_schema_check() -> None:
    spec = make_spec()
    deployment = by_kind(objects_for_region("chat", "ml", spec, canary_plan(spec)), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["nodeSelecter"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_each_revision_gets_gpus_node_placement_and_its_model() -> None:
    spec = make_spec()
    plan = canary_plan(spec)
    deployments = {
        d["metadata"]["labels"]["bellwether.dev/role"]: d
        for d in by_kind(objects_for_region("chat", "ml", spec, plan), "Deployment")
    }

    canary = deployments["canary"]
    assert canary["metadata"]["name"] == f"chat-us-east-{plan.revisions[1].revision}"
    assert canary["spec"]["replicas"] == 1
    assert deployments["stable"]["spec"]["replicas"] == 4
    pod = canary["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["requests"] == {"cpu": "8", "memory": "64Gi"}
    assert pod["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "topology.kubernetes.io/region": "us-east1",
    }
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODEL_URI"] == "s3://models/llama/v2"
    assert env["VLLM_LOGGING_LEVEL"] == "DEBUG"
    names = [e["name"] for e in container["env"]]
    assert names.index("MODEL_URI") < names.index("VLLM_LOGGING_LEVEL")  # so $(MODEL_URI) expands in user vars


def test_probes_follow_the_readiness_path_and_the_warmup() -> None:
    spec = make_spec()
    container = by_kind(objects_for_region("chat", "ml", spec, canary_plan(spec)), "Deployment")[0]["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    startup = container["startupProbe"]
    # The kubelet waits at least the declared 300 s of model loading before it restarts the pod.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    spec = make_spec()
    for deployment in by_kind(objects_for_region("chat", "ml", spec, canary_plan(spec)), "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        assert all("hostPath" not in v for v in pod.get("volumes", []))
        for c in pod["containers"]:
            ctx = c["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"]
            assert "add" not in ctx["capabilities"]
            assert not ctx.get("privileged")


def test_every_child_carries_the_labels_queries_select_by() -> None:
    spec = make_spec()
    plan = canary_plan(spec)
    for obj in objects_for_region("chat", "ml", spec, plan):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "bellwether"
        assert labels["bellwether.dev/deployment"] == "chat"
        assert labels["bellwether.dev/region"] == "us-east"
    for d in by_kind(objects_for_region("chat", "ml", spec, plan), "Deployment"):
        pod_labels = d["spec"]["template"]["metadata"]["labels"]
        assert {"app.kubernetes.io/name", "bellwether.dev/revision"} <= set(pod_labels)
        # The selector is a subset of the pod labels, or the API server would refuse the Deployment.
        assert d["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        # The role is the Deployment's, not the pods': it changes at promotion, a template must not.
        assert d["metadata"]["labels"]["bellwether.dev/role"] in ("stable", "canary")
        assert "bellwether.dev/role" not in pod_labels and "bellwether.dev/serving" not in pod_labels
        assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def test_a_revision_pod_template_is_the_same_whatever_its_role_weight_or_replicas() -> None:
    """Promotion (canary -> stable), weight and scale changes must never make Kubernetes replace pods."""
    spec = make_spec()
    plan = canary_plan(spec)
    rev = plan.revisions[0]
    templates = []
    for role, replicas, weight, serving in [("canary", 1, 10, 1), ("canary", 2, 50, None), ("stable", 4, 100, None)]:
        changed = RegionPlan(plan.region, (RevisionPlan(rev.revision, role, replicas, weight, rev.template, serving),))
        (dep,) = by_kind(objects_for_region("chat", "ml", spec, changed), "Deployment")
        templates.append(dep["spec"]["template"])
    assert templates[0] == templates[1] == templates[2]


def test_the_serving_service_selects_the_serving_pods_of_every_revision_and_each_revision_service_one() -> None:
    spec = make_spec()
    plan = canary_plan(spec)
    services = {s["metadata"]["name"]: s for s in by_kind(objects_for_region("chat", "ml", spec, plan), "Service")}
    assert "bellwether.dev/revision" not in services["chat-us-east"]["spec"]["selector"]
    assert services["chat-us-east"]["spec"]["selector"]["bellwether.dev/serving"] == "true"
    for rev in plan.revisions:
        assert services[f"chat-us-east-{rev.revision}"]["spec"]["selector"]["bellwether.dev/revision"] == rev.revision


def test_a_region_with_its_own_namespace_renders_there() -> None:
    spec = make_spec()
    objects = objects_for_region("chat", "ml", spec, canary_plan(spec, "eu-west"))
    assert {o["metadata"]["namespace"] for o in objects} == {"serving"}


HTTPROUTE_SCHEMA = {  # the HTTPRoute v1 fields Bellwether writes, with the CRD's own constraints
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
        "kind": {"const": "HTTPRoute"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "parentRefs": {
                    "type": "array",
                    "maxItems": 32,
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "group": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": {"type": "string", "minLength": 1, "maxLength": 253},
                            "namespace": {"type": "string"},
                            "sectionName": {"type": "string"},
                        },
                    },
                },
                "hostnames": {"type": "array", "items": {"type": "string"}},
                "rules": {
                    "type": "array",
                    "maxItems": 16,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "backendRefs": {
                                "type": "array",
                                "maxItems": 16,
                                "items": {
                                    "type": "object",
                                    "required": ["name"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "group": {"type": "string"},
                                        "kind": {"type": "string"},
                                        "name": {"type": "string", "minLength": 1, "maxLength": 253},
                                        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                        "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
                                    },
                                },
                            }
                        },
                    },
                },
            },
        },
    },
}

VIRTUALSERVICE_SCHEMA = {  # the VirtualService fields Bellwether writes
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "networking.istio.io/v1"},
        "kind": {"const": "VirtualService"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["hosts", "http"],
            "properties": {
                "hosts": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "gateways": {"type": "array", "items": {"type": "string"}},
                "http": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "route": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["destination"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "destination": {
                                            "type": "object",
                                            "required": ["host"],
                                            "properties": {
                                                "host": {"type": "string"},
                                                "port": {
                                                    "type": "object",
                                                    "properties": {"number": {"type": "integer"}},
                                                },
                                            },
                                        },
                                        "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                                    },
                                },
                            }
                        },
                    },
                },
            },
        },
    },
}


def test_gateway_api_route_carries_the_planned_weights() -> None:
    spec = make_spec(router="gatewayAPI", gatewayAPI={"parentRefs": [{"name": "inference", "namespace": "gw"}]})
    plan = canary_plan(spec)
    (route,) = by_kind(objects_for_region("chat", "ml", spec, plan), "HTTPRoute")
    jsonschema.validate(route, HTTPROUTE_SCHEMA)
    # ObjectMeta is the same for every kind: check it against the real schema via a core kind.
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": route["metadata"]}, K8S_VERSION, strict=True
    )
    weights = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {revision_name("chat", "us-east", r.revision): r.weight for r in plan.revisions}
    assert route["spec"]["parentRefs"][0]["namespace"] == "gw"


def test_istio_virtual_service_carries_the_planned_weights() -> None:
    spec = make_spec(router="istio", istio={"hosts": ["chat.example.com"], "gateways": ["gw/inference"]})
    plan = canary_plan(spec)
    (vs,) = by_kind(objects_for_region("chat", "ml", spec, plan), "VirtualService")
    jsonschema.validate(vs, VIRTUALSERVICE_SCHEMA)
    route = vs["spec"]["http"][0]["route"]
    assert sum(d["weight"] for d in route) == 100
    assert {d["destination"]["host"].split(".")[0]: d["weight"] for d in route} == {
        revision_name("chat", "us-east", r.revision): r.weight for r in plan.revisions
    }


@pytest.mark.parametrize("name", ["chat", "a" * 60, "x" * 253])
def test_names_are_deterministic_valid_and_distinct(name: str) -> None:
    a = revision_name(name, "europe-west-4", "0123456789")
    b = revision_name(name, "europe-west-4", "9876543210")
    assert a == revision_name(name, "europe-west-4", "0123456789")
    assert a != b
    assert len(a) <= 63 and a[-1].isalnum() and a[0].isalnum()
    assert len(fit(name)) <= 63


def test_every_router_the_api_accepts_has_one_entry_and_agrees_with_the_engine() -> None:
    from typing import get_args

    from bellwether.api.spec import Traffic
    from bellwether.render.routers import ROUTERS

    accepted = get_args(Traffic.model_fields["router"].annotation)
    assert set(ROUTERS) == set(accepted)
    for name, router in ROUTERS.items():
        config = {
            "gatewayAPI": {"gatewayAPI": {"parentRefs": [{"name": "gw"}]}},
            "istio": {"istio": {"hosts": ["h"]}},
        }.get(name, {})
        traffic = Traffic.model_validate({"router": name, **config})
        assert router.by_pods == traffic.by_pods
        assert (router.route_kind is None) == (router.render is None) == (router.read is None)
