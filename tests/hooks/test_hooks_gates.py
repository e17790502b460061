"""Gates in real cycles (the simulator's) answered by a real HTTP server on loopback."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from bellwether.cycle import EvaluateGates
from bellwether.hooks import webhook_gates
from bellwether.hooks.secrets import from_secrets
from bellwether.sim.play import start
from bellwether.sim.runner import Runner
from bellwether.sim.scenarios import CATALOG
from support.hookkit import roll_out, small_spec
from support.receiver import Answer, WebhookServer

GATE_TOKEN = "Bearer gate-7c1d-secret"


def gates_port(session: aiohttp.ClientSession, server: WebhookServer) -> EvaluateGates:
    secrets = {("default", "gate"): {"url": server.url("/secret-path"), "authorization": GATE_TOKEN}}
    return webhook_gates(session, from_secrets(secrets))


def gate(type_: str, url: str, **more: Any) -> dict[str, Any]:
    webhook = {"url": url, **more.pop("webhook", {})}
    return {"name": "check", "type": type_, "webhook": webhook, **more}


async def runner_with(session: aiohttp.ClientSession, server: WebhookServer, *gates: dict[str, Any]) -> Runner:
    spec = small_spec(gates=list(gates))
    return await start(spec, seed=3, scenario=CATALOG["healthy"], gates=gates_port(session, server))


async def ticks(runner: Runner, count: int) -> list[float]:
    """`count` cycles; how long each took."""
    took = []
    for _ in range(count):
        began = time.monotonic()
        await runner.tick()
        took.append(time.monotonic() - began)
    return took


def condition(runner: Runner, kind: str) -> tuple[str, str, str]:
    c = next(c for c in runner.status.conditions if c.type == kind)
    return c.status, c.reason, c.message


async def test_a_pre_rollout_gate_answering_503_holds_until_it_answers_200(
    session: aiohttp.ClientSession, server: WebhookServer
) -> None:
    server.answer(Answer(503, "change freeze until 18:00 UTC"))
    runner = await runner_with(session, server, gate("preRollout", server.url("/freeze"), interval="1m"))
    stable = runner.status.stable_revision
    revision = roll_out(runner)
    await ticks(runner, 10)
    assert runner.status.phase == "Paused"
    status, reason, message = condition(runner, "Progressing")
    assert (status, reason) == ("True", "GateHeld")
    assert "preRollout gate check holds: HTTP 503: change freeze until 18:00 UTC" in message
    [entry] = runner.status.gates
    assert (entry.phase, entry.code, entry.revision) == ("Held", 503, revision)
    assert not any(p.revision == revision for c in runner.world.clusters.values() for p in c.pods)
    first = server.received[0].body
    assert first == {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "GateRequest",
        "gate": "check",
        "type": "preRollout",
        "namespace": "default",
        "name": "llama-chat",
        "revision": revision,
        "stable": stable,
        "wave": 0,
        "regions": ["us-east"],
        "attempt": 1,
    }
    server.answer(Answer(200))
    assert await runner.run(lambda r: r.status.phase == "Healthy" and r.status.stable_revision == revision, 3600)
    assert runner.status.gates[0].phase == "Passed"


async def test_a_confirm_promotion_gate_that_times_out_with_the_fail_policy_rolls_back_within_its_timeout(
    session: aiohttp.ClientSession, server: WebhookServer
) -> None:
    server.answer(Answer(200, delay=2.0))
    confirm = gate("confirmPromotion", server.url(), webhook={"timeout": "300ms"}, onTimeout="fail")
    runner = await runner_with(session, server, confirm)
    stable = runner.status.stable_revision
    roll_out(runner)
    took = []
    for _ in range(300):
        took += await ticks(runner, 1)
        if runner.settled():
            break
    assert runner.status.phase == "RolledBack" and runner.status.stable_revision == stable
    status, reason, message = condition(runner, "Degraded")
    assert (status, reason) == ("True", "GateFailed")
    assert "confirmPromotion gate check failed: no answer within 0.3s" in message
    assert max(took) < 1.5  # the gate's timeout bounds the cycle, not the server's 2 s


async def test_a_gate_whose_secret_is_missing_holds_with_a_clear_condition(
    session: aiohttp.ClientSession, server: WebhookServer
) -> None:
    missing = {
        "name": "check",
        "type": "preRollout",
        "webhook": {"urlFrom": {"secretKeyRef": {"name": "nope", "key": "url"}}},
    }
    runner = await runner_with(session, server, missing)
    roll_out(runner)
    await ticks(runner, 5)
    assert runner.status.phase == "Paused"
    assert "preRollout gate check holds: Secret default/nope not found" in condition(runner, "Progressing")[2]
    assert server.received == []


async def test_a_gate_answer_is_kept_short_and_without_the_secrets_it_was_sent(
    session: aiohttp.ClientSession, server: WebhookServer
) -> None:
    server.answer(Answer(500, f"unauthorised {GATE_TOKEN} " + "x" * 5000))
    source = {"secretKeyRef": {"name": "gate", "key": "url"}}
    auth = {"secretKeyRef": {"name": "gate", "key": "authorization"}}
    secret_gate = {"name": "check", "type": "preRollout", "webhook": {"urlFrom": source, "authorizationFrom": auth}}
    runner = await runner_with(session, server, secret_gate)
    roll_out(runner)
    await ticks(runner, 5)
    assert server.received[0].path == "/secret-path" and server.received[0].headers["Authorization"] == GATE_TOKEN
    message = runner.status.gates[0].message or ""
    assert message.startswith("HTTP 500: unauthorised *** xxx") and len(message) <= 300
    shown = runner.status.model_dump_json() + " ".join(e.message for e in runner.timeline)
    assert GATE_TOKEN not in shown and "secret-path" not in shown


@pytest.mark.parametrize("policy", ["hold", "fail"])
async def test_a_post_rollback_gate_is_told_of_the_rollback(
    session: aiohttp.ClientSession, server: WebhookServer, policy: str
) -> None:
    server.answer(Answer(500, "cleanup failed"), Answer(200))
    post = gate("postRollback", server.url(), onFailure=policy, interval="30s")
    runner = await runner_with(session, server, post)
    bad = roll_out(runner, "latency-regression")
    assert await runner.run(Runner.settled, 3600)
    assert runner.status.phase == "RolledBack"
    await ticks(runner, 10)
    asked = [r.body for r in server.received]
    assert {(b["type"], b["revision"]) for b in asked} == {("postRollback", bad)}
    entry = runner.status.gates[-1]
    if policy == "hold":
        assert len(asked) == 2 and entry.phase == "Passed"  # asked again after the 500, then passed
    else:
        assert len(asked) == 1 and entry.phase == "Failed" and entry.message == "HTTP 500: cleanup failed"
