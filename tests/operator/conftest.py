"""Two API server stand-ins ("clusters"): home, where ModelDeployments live, and one remote region."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from apiserver import CORE, HTTPROUTES, MODEL_DEPLOYMENTS, ApiServer

NAMESPACE = "ml"


@pytest.fixture
async def home() -> AsyncIterator[ApiServer]:
    server = ApiServer("home", resources=[*CORE, MODEL_DEPLOYMENTS, HTTPROUTES])
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
