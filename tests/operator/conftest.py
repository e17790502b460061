"""The operator tests' clusters (home, where ModelDeployments live, and one remote region) and the
`World` of `support.operator_world` tying them to a Prometheus stand-in and the operator process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bellwether.api.crd import crd
from bellwether.sim.standins.apiserver import (
    CLUSTER_ANALYSIS_TEMPLATES,
    CORE,
    HPAS,
    HTTPROUTES,
    MODEL_DEPLOYMENTS,
    ApiServer,
)
from bellwether.sim.standins.kubelet import Kubelet
from bellwether.sim.standins.process import OperatorProcess
from bellwether.sim.standins.prometheus import PrometheusStandIn, labels_in
from support.operator_world import World, kubeconfig_secret
from support.specs import NAMESPACE


@pytest.fixture
async def home() -> AsyncIterator[ApiServer]:
    server = ApiServer("home", resources=[*CORE, MODEL_DEPLOYMENTS, CLUSTER_ANALYSIS_TEMPLATES, HTTPROUTES, HPAS])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def remote() -> AsyncIterator[ApiServer]:
    server = ApiServer("eu-west", resources=[*CORE])  # no Gateway API CRDs in this cluster
    await server.start()
    yield server
    await server.stop()


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
