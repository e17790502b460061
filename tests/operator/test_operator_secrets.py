"""Secrets stay secret: credentials read from Secrets (a remote region's kubeconfig, Prometheus's bearer
token) are sent where they belong and appear nowhere else, and Secrets are only ever read from the
ModelDeployment's own namespace.

"Nowhere else" is checked on everything the operator produced: every request the API server stand-ins
received (paths, query strings, bodies: status, Events, applied objects), the objects they hold, the
operator's own log at debug level, and its /metrics. The Secrets hold long recognisable tokens, also in
broken kubeconfigs whose parse errors end up in status.
"""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from bellwether.api import SpecError, parse_spec
from bellwether.api.crd import crd
from bellwether.sim.standins.apiserver import CORE, HTTPROUTES, MODEL_DEPLOYMENTS, ApiServer
from bellwether.sim.standins.kubelet import Kubelet
from bellwether.sim.standins.process import OperatorProcess
from bellwether.sim.standins.prometheus import PrometheusStandIn, labels_in
from support.operator_world import model_deployment, secret
from support.specs import NAMESPACE, revision
from support.waiting import eventually

KUBECONFIG_TOKEN = "kubeconfig-token-3f9c1e7a5b2d4c6e8f0a1b3c5d7e9f21"
PROMETHEUS_TOKEN = "prometheus-token-8e2a4c6e0b1d3f5a7c9e1b3d5f7a9c04"
BROKEN_TOKEN = "broken-kubeconfig-token-5a7c9e1b3d5f7a9c0e2a4c6e8b0d2f13"
KEY_MARKER = "client-key-material-0d2f4b6d8f1a3c5e7a9b1d3f5a7c9e25"
OTHER = "other"  # a namespace the operator is not watching, holding a Secret of its own


class RecordingApiServer(ApiServer):
    """The API server stand-in, also keeping each request's text (method, path, query, body) and its
    Authorization header apart (where a credential belongs)."""

    def __init__(self, name: str, resources: list[Any]) -> None:
        super().__init__(name, resources=resources)
        self.received: list[str] = []
        self.authorizations: list[str] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else ""
        self.received.append(f"{request.method} {request.path_qs}\n{body}")
        self.authorizations.append(request.headers.get("Authorization", ""))
        return await super()._handle(request)


class RecordingPrometheus(PrometheusStandIn):
    def __init__(self, bad: dict[str, float]) -> None:
        super().__init__(lambda query: bad.get(labels_in(query).get("revision", ""), 0.001))
        self.authorizations: list[str] = []

    async def _params(self, request: web.Request) -> dict[str, str]:
        self.authorizations.append(request.headers.get("Authorization", ""))
        return await super()._params(request)


@dataclass
class Cluster:
    home: RecordingApiServer
    remote: RecordingApiServer
    prometheus: RecordingPrometheus
    operator: OperatorProcess
    bad: dict[str, float]  # revision -> error rate answered by Prometheus

    def status(self, name: str) -> dict[str, Any]:
        return (self.home.get("modeldeployments", NAMESPACE, name) or {}).get("status") or {}

    def says(self, name: str) -> str:
        """Everything status says about problems: the message, conditions and region messages."""
        s = self.status(name)
        texts = [s.get("message") or ""] + [c.get("message") or "" for c in s.get("conditions") or []]
        return " | ".join(texts + [r.get("message") or "" for r in s.get("regions") or []])

    async def create(self, md: dict[str, Any]) -> None:
        await self.home.put("modeldeployments", copy.deepcopy(md))


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    home = RecordingApiServer("home", [*CORE, MODEL_DEPLOYMENTS, HTTPROUTES])
    remote = RecordingApiServer("eu-west", [*CORE])
    bad: dict[str, float] = {}
    prometheus = RecordingPrometheus(bad)
    for server in (home, remote):
        await server.start()
        for namespace in (NAMESPACE, OTHER):
            await server.put("namespaces", {"metadata": {"name": namespace}})
    await prometheus.start()
    await home.put("customresourcedefinitions", crd())
    operator = OperatorProcess(home, tmp_path, NAMESPACE)
    operator.args.append("--verbose")  # debug logging: what a person turning it on to debug would see
    operator.start()
    try:
        with Kubelet(home, remote):
            yield Cluster(home, remote, prometheus, operator, bad)
    finally:
        operator.stop()
        print(operator.output()[-6000:])  # shown by pytest when a test fails
        for server in (home, remote):
            await server.stop()
        await prometheus.stop()


def kubeconfig(server: str, user: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": NAMESPACE}}],
        "current-context": "c",
    }


def with_remote(md: dict[str, Any], secret_name: str, **ref: str) -> dict[str, Any]:
    """`md` with its second region in the remote cluster, through the kubeconfig in `secret_name`."""
    md = copy.deepcopy(md)
    md["spec"]["regions"][1]["cluster"] = {"kubeconfigSecret": {"name": secret_name, "key": "kubeconfig", **ref}}
    return md


def named(md: dict[str, Any], name: str) -> dict[str, Any]:
    md = copy.deepcopy(md)
    md["metadata"]["name"] = name
    return md


async def fetch(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return await resp.text()


async def test_credentials_reach_only_their_server_never_status_events_or_logs(cluster: Cluster) -> None:
    # Given Secrets holding a remote region's kubeconfig and Prometheus's bearer token
    good = kubeconfig(cluster.remote.url, {"token": KUBECONFIG_TOKEN})
    await cluster.home.put("secrets", secret("eu-west-kubeconfig", {"kubeconfig": yaml.safe_dump(good)}))
    await cluster.home.put("secrets", secret("prometheus-token", {"token": PROMETHEUS_TOKEN}))
    # and kubeconfigs that are broken in ways whose errors end up in status: YAML that does not parse
    # on the token's line, a token where a kubeconfig should be, an unusable client key, a dead server
    broken = {
        "broken-yaml": f"users:\n- name: u\n  user:\n    token: {BROKEN_TOKEN}: oops\n",  # the error quotes this line
        "not-a-kubeconfig": f"{BROKEN_TOKEN}\n",
        "bad-client-key": yaml.safe_dump(
            kubeconfig(
                "https://127.0.0.1:1",
                {
                    "client-certificate-data": base64.b64encode(
                        f"-----BEGIN CERTIFICATE-----\n{KEY_MARKER}\n".encode()
                    ).decode(),
                    "client-key-data": base64.b64encode(
                        f"-----BEGIN PRIVATE KEY-----\n{KEY_MARKER}\n".encode()
                    ).decode(),
                },
            )
        ),
        "unreachable": yaml.safe_dump(kubeconfig("http://127.0.0.1:1", {"token": BROKEN_TOKEN})),
    }
    for name, text in broken.items():
        await cluster.home.put("secrets", secret(name, {"kubeconfig": text}))

    # When a ModelDeployment uses the good ones through a rollout that is rolled back,
    v1 = model_deployment(cluster.prometheus.url, "v1")
    v1["spec"]["analysis"]["prometheus"]["bearerTokenSecret"] = {"name": "prometheus-token", "key": "token"}
    await cluster.create(with_remote(v1, "eu-west-kubeconfig"))
    # and others use each broken one
    for name in broken:
        await cluster.create(with_remote(named(v1, name), name))
    await eventually(lambda: cluster.status("chat").get("phase") == "Healthy", what="v1 Healthy")
    v2 = with_remote(model_deployment(cluster.prometheus.url, "v2"), "eu-west-kubeconfig")
    v2["spec"]["analysis"] = v1["spec"]["analysis"]
    cluster.bad[revision(v2)] = 0.5
    await cluster.home.patch("modeldeployments", NAMESPACE, "chat", {"spec": v2["spec"]})
    await eventually(lambda: cluster.status("chat").get("phase") == "RolledBack", timeout=30, what="rolled back")
    for name in broken:
        await eventually(lambda n=name: "eu-west" in cluster.says(n), what=f"the {name} region's error in status")

    # Then each credential went to its own server, in the Authorization header
    assert f"Bearer {KUBECONFIG_TOKEN}" in cluster.remote.authorizations
    assert f"Bearer {PROMETHEUS_TOKEN}" in cluster.prometheus.authorizations
    assert not any(KUBECONFIG_TOKEN in a or PROMETHEUS_TOKEN in a for a in cluster.home.authorizations)
    # and no Secret's value, nor any token in it, is anywhere else
    await asyncio.sleep(0.5)  # the last Events and log lines
    seen = {
        "requests to home": "\n".join(cluster.home.received),
        "requests to the remote region": "\n".join(cluster.remote.received),
        "queries": "\n".join(cluster.prometheus.queries),
        "objects": yaml.safe_dump(
            [o for s in (cluster.home, cluster.remote) for o in s.objects.values() if o.get("kind") != "Secret"]
        ),
        "operator log": cluster.operator.output(),
        "metrics": await fetch(f"http://127.0.0.1:{cluster.operator.metrics_port}/metrics"),
    }
    assert "rollout" in seen["operator log"].lower() or "handler" in seen["operator log"].lower()
    assert f"POST /api/v1/namespaces/{NAMESPACE}/events" in seen["requests to home"]  # Events were posted
    values = [KUBECONFIG_TOKEN, PROMETHEUS_TOKEN, BROKEN_TOKEN, KEY_MARKER]
    for s in cluster.home.objects.values():
        if s.get("kind") == "Secret":
            values += list((s.get("data") or {}).values())  # the encoded contents, whole
    for where, text in seen.items():
        for value in values:
            assert value not in text, f"a secret value ({value[:20]}...) appears in the {where}"


async def test_secrets_are_read_only_from_the_model_deployments_own_namespace(cluster: Cluster) -> None:
    # Given a usable kubeconfig and a bearer token, both in a namespace other than the ModelDeployment's
    good = kubeconfig(cluster.remote.url, {"token": KUBECONFIG_TOKEN})
    await cluster.home.put("secrets", secret("shared-kubeconfig", {"kubeconfig": yaml.safe_dump(good)}, OTHER))
    await cluster.home.put("secrets", secret("shared-token", {"token": PROMETHEUS_TOKEN}, OTHER))
    md = model_deployment(cluster.prometheus.url, "v1")

    # When a spec names the other namespace for them, the model refuses the field it does not have
    token_across = copy.deepcopy(md)
    token_ref = {"name": "shared-token", "key": "token", "namespace": OTHER}
    token_across["spec"]["analysis"]["prometheus"]["bearerTokenSecret"] = token_ref
    across = {
        "kubeconfigSecret": with_remote(md, "shared-kubeconfig", namespace=OTHER),
        "bearerTokenSecret": token_across,
    }
    for field, crossing in across.items():
        with pytest.raises(SpecError, match=rf"{field}\.namespace: is not a known field"):
            parse_spec(crossing["spec"])
    # and the CRD's schema has no such field either (the API server prunes or refuses it)
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    cluster_ref = schema["regions"]["items"]["properties"]["cluster"]["properties"]["kubeconfigSecret"]
    token_schema = schema["analysis"]["properties"]["prometheus"]["properties"]["bearerTokenSecret"]
    assert set(cluster_ref["properties"]) == set(token_schema["properties"]) == {"name", "key"}

    # When ModelDeployments reach the operator anyway (a server that does not prune), or name Secrets
    # that exist only in the other namespace (one rolls out, so its analysis needs the token)
    await cluster.create(named(with_remote(md, "shared-kubeconfig", namespace=OTHER), "crossing"))
    await cluster.create(named(with_remote(md, "shared-kubeconfig"), "kubeconfig-elsewhere"))
    token_elsewhere = named(md, "token-elsewhere")
    token_elsewhere["spec"]["regions"] = token_elsewhere["spec"]["regions"][:1]
    token_elsewhere["spec"]["rollout"]["waves"] = [["us-east"]]
    token_elsewhere["spec"]["analysis"]["prometheus"]["bearerTokenSecret"] = {"name": "shared-token", "key": "token"}
    await cluster.create(token_elsewhere)
    await eventually(lambda: cluster.status("token-elsewhere").get("phase") == "Healthy", what="v1 Healthy")
    v2 = copy.deepcopy(token_elsewhere["spec"])
    v2["model"] = model_deployment(cluster.prometheus.url, "v2")["spec"]["model"]
    await cluster.home.patch("modeldeployments", NAMESPACE, "token-elsewhere", {"spec": v2})

    # Then the first is refused as an invalid spec, and the others look in their own namespace only
    await eventually(lambda: "kubeconfigSecret.namespace" in cluster.says("crossing"), what="crossing refused")
    await eventually(
        lambda: "Secret ml/shared-kubeconfig not found" in cluster.says("kubeconfig-elsewhere"), what="not found"
    )
    canary = revision({"spec": v2})
    await eventually(lambda: any(canary in q for q in cluster.prometheus.queries), what="the canary analysed")
    secret_reads = [r.split("\n", 1)[0] for r in cluster.home.received if "/secrets/" in r.split("\n", 1)[0]]
    assert any("/secrets/shared-token" in r for r in secret_reads)  # the token was looked for, here
    assert secret_reads and all(f"/namespaces/{NAMESPACE}/secrets/" in r for r in secret_reads), secret_reads
    assert not any(f"/namespaces/{OTHER}/" in r for r in cluster.home.received)
    assert cluster.remote.received == []  # the other namespace's kubeconfig was never used
    assert not any(PROMETHEUS_TOKEN in a for a in cluster.prometheus.authorizations)
