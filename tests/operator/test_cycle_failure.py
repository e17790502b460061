"""A cycle that fails (a bug, not bad input: the schema refuses what the engine cannot run) is never
silent: status gets a Degraded condition naming the failure, an Event is returned for kopf to post,
and the rollout is not left to freeze with a stale message."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bellwether import rollout
from bellwether.api.crd import crd
from bellwether.clusters import Clusters
from bellwether.handlers.reconcile import Context, reconcile
from bellwether.sim.standins.apiserver import ApiServer
from support.operator_world import model_deployment
from support.specs import NAME, NAMESPACE


@pytest.fixture
async def ctx(home: ApiServer, tmp_path: Path) -> AsyncIterator[Context]:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(home.kubeconfig(NAMESPACE)))
    await home.put("namespaces", {"metadata": {"name": NAMESPACE}})
    await home.put("customresourcedefinitions", crd())
    async with aiohttp.ClientSession() as session:
        yield Context(Clusters(session, kubeconfig=str(path), secret_ttl=0), prometheus=session)


async def test_an_exception_in_a_cycle_becomes_degraded_and_an_event(
    home: ApiServer, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    md = model_deployment("http://127.0.0.1:9", "v1")
    md["spec"]["regions"] = md["spec"]["regions"][:1]  # the home cluster only
    md["spec"]["rollout"]["waves"] = [["us-east"]]
    await home.put("modeldeployments", copy.deepcopy(md))

    def broken(*_args: Any) -> None:
        raise ZeroDivisionError("integer division or modulo by zero")

    monkeypatch.setattr(rollout, "decide", broken)  # the fault injected: the engine raising
    outcome = await reconcile(ctx, NAMESPACE, NAME)
    status = (home.get("modeldeployments", NAMESPACE, NAME) or {})["status"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "CycleFailed"
    assert "ZeroDivisionError: integer division or modulo by zero" in degraded["message"]
    assert "test_cycle_failure.py" in degraded["message"]  # where it was raised, for the bug report
    assert status["message"].startswith("the rollout cycle failed")
    assert [(e.type, e.reason) for e in outcome.events] == [("Warning", "CycleFailed")]
    assert home.list("deployments", NAMESPACE) == []  # nothing applied from a decision never taken

    monkeypatch.undo()  # the bug fixed: the next cycle decides again, and the condition clears
    await reconcile(ctx, NAMESPACE, NAME)
    status = (home.get("modeldeployments", NAMESPACE, NAME) or {})["status"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "False" and home.list("deployments", NAMESPACE) != []


async def test_a_status_refused_for_its_size_is_replaced_by_a_condition_saying_so(
    home: ApiServer, ctx: Context
) -> None:
    from bellwether.sim.standins.apiserver import Fault

    md = model_deployment("http://127.0.0.1:9", "v1")
    md["spec"]["regions"] = md["spec"]["regions"][:1]
    md["spec"]["rollout"]["waves"] = [["us-east"]]
    await home.put("modeldeployments", copy.deepcopy(md))
    # What etcd answers through the API server for an object over its limit: the status write fails (every retry of it).
    home.faults.append(
        Fault(status=500, message="etcdserver: request is too large", method="PATCH", path="/status", times=3)
    )
    outcome = await reconcile(ctx, NAMESPACE, NAME)
    status = (home.get("modeldeployments", NAMESPACE, NAME) or {})["status"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "ObjectTooLarge"
    assert "request is too large" in degraded["message"]
    assert [(e.type, e.reason) for e in outcome.events] == [("Warning", "ObjectTooLarge")]
    assert home.list("deployments", NAMESPACE) == []  # nothing applied after a status that was not written
