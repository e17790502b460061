"""The operator tests' world: two API server stand-ins ("clusters"), home, where ModelDeployments live,
and one remote region; a Prometheus stand-in; the operator process; and the ModelDeployment they roll."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import yaml

from bellwether.sim.standins.apiserver import ApiServer
from bellwether.sim.standins.kubelet import Kubelet
from bellwether.sim.standins.process import OperatorProcess
from bellwether.sim.standins.prometheus import PrometheusStandIn
from support.specs import GPU_PRODUCT, NAME, NAMESPACE, manifest, spec_doc


def secret(name: str, data: dict[str, str], namespace: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def kubeconfig_secret(server: ApiServer, name: str = "eu-west-kubeconfig") -> dict[str, Any]:
    return secret(name, {"kubeconfig": yaml.safe_dump(server.kubeconfig(NAMESPACE))})


def model_deployment(prometheus: str, version: str = "v1", **overrides: Any) -> dict[str, Any]:
    """Two pods of two GPUs in each region, one wave, a canary at 50% judged by its error rate every
    second; `overrides` replace whole top-level fields of the spec (`rollout=...`)."""
    runtime = {
        "resources": {"gpu": {"count": 2, "product": GPU_PRODUCT}, "cpu": "4", "memory": "16Gi"},
        "warmupSeconds": 0,
    }
    rollout = {
        "maxSurge": "25%",
        "waves": [["us-east", "eu-west"]],
        "steps": [{"setWeight": 50}, {"analysis": {"duration": "10m"}}],
        "bakeTime": "1s",
        "progressDeadline": "10m",
    }
    analysis = {
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
    }
    fields = {"rollout": rollout, "analysis": analysis} | overrides
    return manifest(spec_doc(version=version, runtime=runtime, **fields))


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
