"""The operator's gate port: webhook gates with Secrets read from the cluster, and Job gates run in
an API server stand-in (the test plays the Job controller, setting the Job's conditions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from bellwether.api import parse_spec
from bellwether.clusters import Clusters
from bellwether.handlers.reconcile import Context, gate_port
from bellwether.rollout.types import GateRequest
from bellwether.sim.standins.apiserver import CORE, MODEL_DEPLOYMENTS, ApiServer, Resource
from support.operator_world import secret
from support.specs import NAMESPACE

JOBS = Resource("batch", "v1", "jobs", "Job", status=True)
NOW = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
async def cluster() -> AsyncIterator[ApiServer]:
    server = ApiServer("home", resources=[*CORE, JOBS, MODEL_DEPLOYMENTS])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def ctx(cluster: ApiServer, tmp_path: Path) -> AsyncIterator[Context]:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cluster.kubeconfig(NAMESPACE)))
    async with aiohttp.ClientSession() as session:
        yield Context(Clusters(session, kubeconfig=str(path), secret_ttl=0))


@pytest.fixture
async def gate_server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append({"auth": request.headers.get("Authorization"), "body": await request.json()})
        return web.Response(status=200, text="go")

    app = web.Application()
    app.router.add_post("/gate", handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/gate", seen
    await runner.cleanup()


def spec_with(gate: dict[str, Any]) -> Any:
    return parse_spec(
        {
            "model": {"name": "llama", "version": "v2", "uri": "s3://m/v2"},
            "runtime": {"image": "vllm/vllm-openai:v0.11.0"},
            "regions": [{"name": "us-east", "replicas": 2}],
            "rollout": {"steps": [{"setWeight": 50}], "gates": [{"name": "check", "type": "confirmPromotion", **gate}]},
        }
    )


def ask(attempt: int = 1) -> list[GateRequest]:
    return [GateRequest("check", "confirmPromotion", "r2", "r1", 0, attempt)]


async def test_a_job_gate_in_the_modeldeployments_namespace_is_owned_by_it(cluster: ApiServer, ctx: Context) -> None:
    md = await cluster.put(
        "modeldeployments",
        {
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "chat", "namespace": NAMESPACE},
        },
    )
    spec = spec_with({"job": {"image": "ghcr.io/acme/evals:1", "deadline": "5m"}})
    await gate_port(ctx)(spec, "chat", NAMESPACE, ask(), NOW)
    [job] = cluster.list("jobs", NAMESPACE)
    # The garbage collector removes it with the ModelDeployment, not a day later.
    assert [r["uid"] for r in job["metadata"]["ownerReferences"]] == [md["metadata"]["uid"]]


async def test_a_job_gate_creates_its_job_once_and_passes_when_kubernetes_says_it_completed(
    cluster: ApiServer, ctx: Context
) -> None:
    spec = spec_with({"job": {"image": "ghcr.io/acme/evals:1", "deadline": "5m"}})
    port = gate_port(ctx)
    [first] = await port(spec, "chat", NAMESPACE, ask(), NOW)
    jobs = cluster.list("jobs", NAMESPACE)
    assert first.outcome == "pending" and len(jobs) == 1
    name = jobs[0]["metadata"]["name"]
    assert first.message == f"Job {NAMESPACE}/{name} created"
    [running] = await port(spec, "chat", NAMESPACE, ask(), NOW)
    assert running.outcome == "pending" and "running" in running.message
    assert len(cluster.list("jobs", NAMESPACE)) == 1  # asked again: the same Job
    await cluster.patch("jobs", NAMESPACE, name, {"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
    [done] = await port(spec, "chat", NAMESPACE, ask(), NOW)
    assert (done.outcome, done.message) == ("passed", f"Job {NAMESPACE}/{name} succeeded")


@pytest.mark.parametrize(("reason", "outcome"), [("DeadlineExceeded", "timeout"), ("BackoffLimitExceeded", "failed")])
async def test_a_failed_job_is_a_timeout_past_its_deadline_and_a_failure_otherwise(
    cluster: ApiServer, ctx: Context, reason: str, outcome: str
) -> None:
    spec = spec_with({"job": {"image": "ghcr.io/acme/evals:1"}})
    port = gate_port(ctx)
    await port(spec, "chat", NAMESPACE, ask(), NOW)
    name = cluster.list("jobs", NAMESPACE)[0]["metadata"]["name"]
    failed = {"type": "Failed", "status": "True", "reason": reason, "message": "Job was active longer than specified"}
    await cluster.patch("jobs", NAMESPACE, name, {"status": {"conditions": [failed]}})
    [answer] = await port(spec, "chat", NAMESPACE, ask(), NOW)
    assert answer.outcome == outcome
    assert reason in answer.message and f"kubectl logs -n {NAMESPACE} job/{name}" in answer.message
    [retry] = await port(spec, "chat", NAMESPACE, ask(attempt=2), NOW)  # held, asked again: a new Job
    assert retry.outcome == "pending" and len(cluster.list("jobs", NAMESPACE)) == 2


async def test_a_webhook_gate_reads_its_url_and_authorization_from_a_secret_in_the_cluster(
    cluster: ApiServer, ctx: Context, gate_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = gate_server
    await cluster.put("secrets", secret("gate", {"url": url, "auth": "Bearer xyz"}))
    source = {"secretKeyRef": {"name": "gate", "key": "url"}}
    auth = {"secretKeyRef": {"name": "gate", "key": "auth"}}
    spec = spec_with({"webhook": {"urlFrom": source, "authorizationFrom": auth}})
    [answer] = await gate_port(ctx)(spec, "chat", NAMESPACE, ask(), NOW)
    assert (answer.outcome, answer.code, answer.message) == ("passed", 200, "HTTP 200: go")
    assert seen[0]["auth"] == "Bearer xyz" and seen[0]["body"]["revision"] == "r2"
    missing = spec_with({"webhook": {"urlFrom": {"secretKeyRef": {"name": "gate", "key": "nope"}}}})
    [answer] = await gate_port(ctx)(missing, "chat", NAMESPACE, ask(), NOW)
    assert (answer.outcome, answer.message) == ("failed", f"Secret {NAMESPACE}/gate has no key nope")
