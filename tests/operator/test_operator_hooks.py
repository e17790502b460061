"""The real operator (`bellwether run`) with a gate and notifications on a webhook server on loopback.

Given / When / Then, the way a user sees it: status, Events, what the receivers get, what the log says.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from support.operator_world import World, model_deployment, secret
from support.specs import NAME, NAMESPACE, revision
from support.waiting import eventually

TOKEN_PATH = "/hooks/T0KEN-in-the-url-9f8e7d"


@dataclass
class Hooks:
    """A gate (`/gate`, answering `gate_status`) and two receivers (`/team...`, `/install...`)."""

    url: str = ""
    gate_status: int = 503
    gate_asked: list[dict[str, Any]] = field(default_factory=list)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    authorization: dict[str, str | None] = field(default_factory=dict)  # path -> the last Authorization header

    def events(self, path: str) -> list[str]:
        return [b.get("event") or b.get("text", "") for b in self.received.get(path, [])]


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    h = Hooks()

    async def gate(request: web.Request) -> web.Response:
        h.gate_asked.append(await request.json())
        return web.Response(status=h.gate_status, text="change freeze" if h.gate_status >= 300 else "ok")

    async def receive(request: web.Request) -> web.Response:
        h.received.setdefault(request.path, []).append(await request.json())
        h.authorization[request.path] = request.headers.get("Authorization")
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/gate", gate)
    app.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    h.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield h
    await runner.cleanup()


def events(world: World, reason: str) -> list[str]:
    return [e.get("message", "") for e in world.home.list("events", NAMESPACE) if e.get("reason") == reason]


async def test_a_held_gate_pauses_the_rollout_and_every_receiver_is_told_without_its_secret_in_the_log(
    world: World, hooks: Hooks
) -> None:
    # Given receivers whose URLs are in Secrets: the ModelDeployment's own, and the installation's
    await world.home.put("secrets", secret("team-hooks", {"url": hooks.url + TOKEN_PATH}))
    await world.home.put("secrets", secret("install-hooks", {"url": hooks.url + "/install", "token": "Bearer zz9"}))
    world.operator.stop()
    world.operator.args += ["--notify-secret", f"{NAMESPACE}/install-hooks", "--notify-events", "Promoted,Paused"]
    world.operator.args += ["--notify-authorization-key", "token"]
    world.operator.start()
    gate = {"name": "freeze", "type": "preRollout", "webhook": {"url": hooks.url + "/gate"}, "interval": "1s"}
    team = {"name": "team", "urlFrom": {"secretKeyRef": {"name": "team-hooks", "key": "url"}}}
    missing = {"name": "gone", "urlFrom": {"secretKeyRef": {"name": "no-such", "key": "url"}}}
    rollout = {"steps": [{"setWeight": 50}], "bakeTime": "1s", "gates": [gate]}
    v1 = model_deployment(world.prometheus.url, "v1", rollout=rollout, notifications=[team, missing])
    await world.home.put("modeldeployments", copy.deepcopy(v1))
    await eventually(lambda: world.status().get("phase") == "Healthy", what="v1 Healthy")

    # When a new revision comes while the gate answers 503
    v2 = model_deployment(world.prometheus.url, "v2", rollout=rollout, notifications=[team, missing])
    r2 = revision(v2)
    await world.change(v2)

    # Then the rollout holds before the canary gets a pod, and says why
    await eventually(lambda: world.status().get("phase") == "Paused", what="held by the gate")
    progressing = next(c for c in world.status()["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "GateHeld" and "HTTP 503: change freeze" in progressing["message"]
    assert r2 not in world.deployments(world.home)
    assert hooks.gate_asked[0]["revision"] == r2 and hooks.gate_asked[0]["type"] == "preRollout"
    await eventually(lambda: events(world, "GateHeld"), what="a GateHeld Event")
    await eventually(lambda: events(world, "NotificationFailed"), what="the missing Secret reported")
    assert "Secret ml/no-such not found" in events(world, "NotificationFailed")[0]

    # When the gate opens
    hooks.gate_status = 200

    # Then the revision rolls out to Healthy, and the receivers heard of it
    await eventually(
        lambda: world.status().get("phase") == "Healthy" and world.status().get("stableRevision") == r2,
        what="v2 promoted",
        timeout=60,
    )
    await eventually(lambda: "Promoted" in hooks.events(TOKEN_PATH), what="the team told of the promotion")
    assert hooks.events(TOKEN_PATH)[:2] == ["RolloutStarted", "Paused"]
    await eventually(lambda: "Promoted" in hooks.events("/install"), what="the installation's receiver told")
    assert hooks.events("/install") == ["Paused", "Promoted"]  # only the events it asked for
    assert all(b["namespace"] == NAMESPACE and b["name"] == NAME for b in hooks.received["/install"])
    assert hooks.authorization == {"/install": "Bearer zz9", TOKEN_PATH: None}
    log = world.operator.output()
    assert "notified team of Promoted" in log
    assert TOKEN_PATH not in log and "T0KEN" not in log and "zz9" not in log
