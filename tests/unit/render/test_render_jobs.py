"""The Job of a Job gate: valid for Kubernetes, named per attempt, pointed at the canary's Service."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
from test_render_objects import K8S_VERSION

from bellwether.api import parse_spec
from bellwether.render.jobs import gate_job
from bellwether.rollout.types import GateRequest

JOB: dict[str, Any] = {
    "image": "ghcr.io/acme/evals:1.4",
    "args": ["--suite", "smoke"],
    "env": [{"name": "SUITE", "value": "smoke"}],
    "cpu": "1",
    "memory": "2Gi",
    "deadline": "15m",
}


def spec_with_job(**job: Any) -> Any:
    return parse_spec(
        {
            "model": {"name": "llama", "version": "v2", "uri": "s3://m/v2"},
            "runtime": {"image": "vllm/vllm-openai:v0.11.0", "port": 8000},
            "regions": [
                {"name": "us-east", "replicas": 2},
                {"name": "eu-west", "replicas": 2, "namespace": "ml-eu"},
            ],
            "rollout": {
                "steps": [{"setWeight": 50}],
                "gates": [{"name": "evals", "type": "confirmPromotion", "job": {**JOB, **job}}],
            },
        }
    )


def request(wave: int = 0, attempt: int = 1) -> GateRequest:
    return GateRequest("evals", "confirmPromotion", "5d1e88f0", "7c9f2a1b", wave, attempt)


def test_a_gate_job_passes_the_kubernetes_openapi_schema() -> None:
    spec = spec_with_job(command=["python", "-m", "evals"], serviceAccountName="evals")
    job = gate_job("chat", "ml", spec, spec.rollout.gates[0], request())
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    assert job["spec"]["activeDeadlineSeconds"] == 900 and job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_a_gate_job_runs_in_the_region_it_concerns_against_the_canarys_service() -> None:
    spec = spec_with_job()
    first = gate_job("chat", "ml", spec, spec.rollout.gates[0], request(wave=0))
    second = gate_job("chat", "ml", spec, spec.rollout.gates[0], request(wave=1))
    assert first["metadata"]["namespace"] == "ml" and second["metadata"]["namespace"] == "ml-eu"
    env = {e["name"]: e["value"] for e in second["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BELLWETHER_CANARY_URL"] == "http://chat-eu-west-5d1e88f0.ml-eu.svc:8000"
    assert env["BELLWETHER_STABLE_URL"] == "http://chat-eu-west-7c9f2a1b.ml-eu.svc:8000"
    assert env["BELLWETHER_REGION"] == "eu-west" and env["SUITE"] == "smoke"


def test_each_attempt_is_its_own_job_and_a_repeat_of_one_is_the_same_job() -> None:
    spec = spec_with_job()
    gate = spec.rollout.gates[0]
    one, again, two = (gate_job("chat", "ml", spec, gate, request(attempt=a)) for a in (1, 1, 2))
    assert one == again
    assert one["metadata"]["name"] != two["metadata"]["name"]
    assert len(two["metadata"]["name"]) <= 63


def test_a_gate_job_runs_without_privileges() -> None:
    spec = spec_with_job()
    container = gate_job("chat", "ml", spec, spec.rollout.gates[0], request())["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_a_gate_job_in_the_modeldeployments_namespace_is_owned_by_it() -> None:
    spec = spec_with_job()
    owner = {"metadata": {"name": "chat", "namespace": "ml", "uid": "0c3f7d2e"}}
    home = gate_job("chat", "ml", spec, spec.rollout.gates[0], request(wave=0), owner)
    (ref,) = home["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("ModelDeployment", "chat", "0c3f7d2e", True)
    kubernetes_validate.validate(home, K8S_VERSION, strict=True)
    # In another namespace no owner reference can point at it: the Job's TTL cleans up instead.
    elsewhere = gate_job("chat", "ml", spec, spec.rollout.gates[0], request(wave=1), owner)
    assert "ownerReferences" not in elsewhere["metadata"]
