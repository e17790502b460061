"""Two API server stand-ins ("clusters"): home, where ModelDeployments live, and one remote region;
a Prometheus stand-in; the operator process; and a `World` tying them together for Given/When/Then."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from apiserver import CLUSTER_ANALYSIS_TEMPLATES, CORE, HTTPROUTES, MODEL_DEPLOYMENTS, ApiServer
from harness import Kubelet, OperatorProcess
from promstandin import PrometheusStandIn, labels_in

from bellwether.api import parse_spec, revision_of, template_of
from bellwether.api.crd import crd

NAMESPACE = "ml"


@pytest.fixture
async def home() -> AsyncIterator[ApiServer]:
    server = ApiServer("home", resources=[*CORE, MODEL_DEPLOYMENTS, CLUSTER_ANALYSIS_TEMPLATES, HTTPROUTES])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def remote() -> AsyncIterator[ApiServer]:
    server = ApiServer("eu-west", resources=[*CORE])  # no Gateway API CRDs in this cluster
    await server.start()
    yield server
    await server.stop()


def secret(name: str, data: dict[str, str], namespace: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def kubeconfig_secret(server: ApiServer, name: str = "eu-west-kubeconfig") -> dict[str, Any]:
    return secret(name, {"kubeconfig": yaml.safe_dump(server.kubeconfig(NAMESPACE))})


NAME = "chat"
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"


def model_deployment(prometheus: str, version: str = "v1", **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"name": "llama", "version": version, "uri": f"s3://models/llama/{version}"},
        "runtime": {
            "image": "vllm/vllm-openai:v0.11.0",
            "resources": {"gpu": {"count": 2, "product": GPU_PRODUCT}, "cpu": "4", "memory": "16Gi"},
            "warmupSeconds": 0,
        },
        "regions": [
            {"name": "us-east", "replicas": 2},
            {
                "name": "eu-west",
                "replicas": 2,
                "cluster": {"kubeconfigSecret": {"name": "eu-west-kubeconfig", "key": "kubeconfig"}},
            },
        ],
        "rollout": {
            "maxSurge": "25%",
            "waves": [["us-east", "eu-west"]],
            "steps": [{"setWeight": 50}, {"analysis": {"duration": "10m"}}],
            "bakeTime": "1s",
            "progressDeadline": "10m",
        },
        "analysis": {
            "prometheus": {"url": prometheus, "timeout": "2s"},
            "interval": "1s",
            "failureLimit": 0,
            "inconclusiveLimit": 100,
            "metrics": [
                {
                    "name": "error-rate",
                    "query": 'sum(rate(http_requests_total{namespace="{{namespace}}",region="{{region}}",'
                    'revision="{{revision}}",code=~"5.."}[{{interval}}]))',
                    "max": 0.05,
                }
            ],
        },
    }
    spec.update(overrides)
    return {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": spec,
    }


def revision(md: dict[str, Any]) -> str:
    return revision_of(template_of(parse_spec(md["spec"])))


@dataclass
class World:
    home: ApiServer
    remote: ApiServer
    prometheus: PrometheusStandIn
    operator: OperatorProcess
    kubelet: Kubelet
    bad: dict[tuple[str, str], float]  # (region, revision) -> error rate answered by Prometheus

    def md(self) -> dict[str, Any] | None:
        return self.home.get("modeldeployments", NAMESPACE, NAME)

    def status(self) -> dict[str, Any]:
        return (self.md() or {}).get("status") or {}

    def deployments(self, server: ApiServer) -> dict[str, dict[str, Any]]:
        return {
            d["metadata"]["labels"]["bellwether.dev/revision"]: d
            for d in server.list("deployments", NAMESPACE, f"bellwether.dev/deployment={NAME}")
        }

    async def change(self, md: dict[str, Any]) -> None:
        await self.home.patch("modeldeployments", NAMESPACE, NAME, {"spec": md["spec"]})


@pytest.fixture
async def world(home: ApiServer, remote: ApiServer, tmp_path: Path) -> AsyncIterator[World]:
    bad: dict[tuple[str, str], float] = {}

    def error_rate(query: str) -> float:
        labels = labels_in(query)
        return bad.get((labels.get("region", ""), labels.get("revision", "")), 0.001)

    prometheus = PrometheusStandIn(error_rate)
    await prometheus.start()
    for server in (home, remote):
        await server.put("namespaces", {"metadata": {"name": NAMESPACE}})
    await home.put("customresourcedefinitions", crd())
    await home.put("secrets", kubeconfig_secret(remote))
    operator = OperatorProcess(home, tmp_path, NAMESPACE)
    operator.start()
    with Kubelet(home, remote) as kubelet:
        try:
            yield World(home, remote, prometheus, operator, kubelet, bad)
        finally:
            operator.stop()
            print(operator.output()[-6000:])  # shown by pytest when a test fails
            await prometheus.stop()
