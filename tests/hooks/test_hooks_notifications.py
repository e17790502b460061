"""Notifications from real cycles (the simulator's) to a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema
import pytest

from bellwether.hooks import Notifier
from bellwether.hooks.secrets import from_secrets
from bellwether.rollout.notices import NOTIFICATION_SCHEMA, notices
from bellwether.rollout.types import Event
from bellwether.sim.play import play, start
from bellwether.sim.scenarios import CATALOG
from support.hookkit import roll_out, small_spec
from support.receiver import Answer, WebhookServer, eventually

TOKEN_URL_PATH = "/services/T0001/B0001/Xy7SecretTokenInThePath"
AUTH = "Bearer tok-1f2e3d-do-not-log"


@pytest.fixture
async def notifier(session: aiohttp.ClientSession, server: WebhookServer) -> AsyncIterator[Notifier]:
    secrets = {("default", "hooks"): {"url": server.url(TOKEN_URL_PATH), "authorization": AUTH}}
    outcomes: list[str] = []
    n = Notifier(session, from_secrets(secrets), backoff=0.05, count=outcomes.append)
    n.start()
    n.outcomes = outcomes  # type: ignore[attr-defined]
    yield n
    await n.stop()


def receiver(name: str, url: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "url": url, **more}


async def test_a_rollback_is_sent_as_a_versioned_document_and_as_slack_text(
    notifier: Notifier, server: WebhookServer
) -> None:
    spec = small_spec(
        notifications=[receiver("ops", server.url("/json")), receiver("chat", server.url("/slack"), format="slack")]
    )
    outcome = await play(spec, "latency-regression", seed=3, notify=notifier)
    assert outcome.result == "rolled-back"
    await eventually(lambda: any(r.body.get("event") == "RolledBack" for r in server.received))
    await eventually(lambda: any("RolledBack" in r.body.get("text", "") for r in server.received))
    documents = [r.body for r in server.received if r.path == "/json"]
    for doc in documents:
        jsonschema.validate(doc, NOTIFICATION_SCHEMA)
    assert [d["event"] for d in documents][:2] == ["RolloutStarted", "StepPromoted"]
    rolled = next(d for d in documents if d["event"] == "RolledBack")
    assert (rolled["namespace"], rolled["name"], rolled["revision"]) == ("default", "llama-chat", outcome.revision)
    assert rolled["stable"] == outcome.previous_revision
    assert rolled["reason"] == "AnalysisFailed"
    details = rolled["details"]
    assert details["region"] == "us-east" and details["value"] is not None and details["bound"]
    assert details["metric"] in ("p99-latency", "ttft-p95")
    texts = [r.body for r in server.received if r.path == "/slack"]
    assert all(set(t) == {"text"} for t in texts)
    slack = next(t["text"] for t in texts if "RolledBack" in t["text"])
    assert "default/llama-chat" in slack and outcome.revision in slack and details["metric"] in slack


async def test_a_promotion_is_sent_and_a_receiver_gets_only_the_events_it_asked_for(
    notifier: Notifier, server: WebhookServer
) -> None:
    spec = small_spec(notifications=[receiver("releases", server.url(), events=["Promoted"])])
    outcome = await play(spec, "healthy", seed=3, notify=notifier)
    assert outcome.result == "promoted"
    await eventually(lambda: len(server.received) >= 1)
    await eventually(lambda: notifier.outcomes.count("delivered") >= 1)  # type: ignore[attr-defined]
    assert [r.body["event"] for r in server.received] == ["Promoted"]
    assert server.received[0].body["revision"] == outcome.revision


def a_notice(event: str = "RolledBack") -> Any:
    return notices("ml", "llama", [Event("Warning", event, "r2 rolled back to r1: p99 too high")], None, "t")  # type: ignore[arg-type]


async def test_a_5xx_is_retried_with_growing_backoff_until_delivered(notifier: Notifier, server: WebhookServer) -> None:
    server.answer(Answer(503), Answer(502), Answer(200))
    spec = small_spec(notifications=[receiver("ops", server.url())])
    assert await notifier("ml", "llama", spec, a_notice()) == []
    await eventually(lambda: len(server.received) == 3)
    await eventually(lambda: "delivered" in notifier.outcomes)  # type: ignore[attr-defined]
    assert notifier.outcomes == ["retried", "retried", "delivered"]  # type: ignore[attr-defined]
    at = [r.at for r in server.received]
    assert at[1] - at[0] >= 0.045 and at[2] - at[1] >= 0.095  # 0.05 s, then twice that
    assert await notifier("ml", "llama", spec, ()) == []  # delivered: nothing to report


async def test_a_4xx_is_not_retried_and_the_next_cycle_reports_it(notifier: Notifier, server: WebhookServer) -> None:
    server.answer(Answer(404, "no_service"))
    spec = small_spec(notifications=[receiver("ops", server.url())])
    await notifier("ml", "llama", spec, a_notice())
    await eventually(lambda: "failed" in notifier.outcomes)  # type: ignore[attr-defined]
    problems = await notifier("ml", "llama", spec, ())
    assert len(server.received) == 1
    assert problems == ["notification ops not delivered (RolledBack) after 1 attempt(s): HTTP 404: no_service"]


async def test_a_slow_receiver_never_delays_a_cycle(notifier: Notifier, server: WebhookServer) -> None:
    server.answer(Answer(200, delay=3.0))
    spec = small_spec(notifications=[receiver("slow", server.url(), timeout="1s")])
    runner = await start(spec, seed=3, scenario=CATALOG["healthy"], notify=notifier)
    roll_out(runner)
    slowest = 0.0
    for _ in range(300):
        began = time.monotonic()
        outcome = await runner.tick()
        if outcome.events:
            slowest = max(slowest, time.monotonic() - began)
        if runner.settled():
            break
    assert runner.status.phase == "Healthy"
    assert server.received, "the notifications were sent"
    assert slowest < 0.5  # a delivery would take 3 s, and its timeout 1 s
    await eventually(lambda: "retried" in notifier.outcomes, timeout=5)  # type: ignore[attr-defined]


async def test_secrets_are_used_but_never_logged_nor_put_in_status_or_events(
    notifier: Notifier, server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.answer(Answer(500, f"echo: {AUTH}"), Answer(200))
    source = {"secretKeyRef": {"name": "hooks", "key": "url"}}
    auth = {"secretKeyRef": {"name": "hooks", "key": "authorization"}}
    spec = small_spec(notifications=[{"name": "ops", "urlFrom": source, "authorizationFrom": auth}])
    outcome = await play(spec, "latency-regression", seed=3, notify=notifier)
    await eventually(lambda: any(r.body.get("event") == "RolledBack" for r in server.received))
    await eventually(lambda: "delivered" in notifier.outcomes)  # type: ignore[attr-defined]
    assert server.received[0].path == TOKEN_URL_PATH and server.received[0].headers["Authorization"] == AUTH
    shown = caplog.text + json.dumps(outcome.as_dict(), default=str)
    for secret in (TOKEN_URL_PATH, "Xy7SecretTokenInThePath", AUTH, "tok-1f2e3d"):
        assert secret not in shown
    assert "notif" in caplog.text  # the deliveries were logged, by receiver name


async def test_an_unreadable_secret_is_reported_as_an_event_and_the_rollout_goes_on(
    notifier: Notifier, server: WebhookServer
) -> None:
    missing = {"secretKeyRef": {"name": "no-such-secret", "key": "url"}}
    spec = small_spec(notifications=[{"name": "ops", "urlFrom": missing}])
    runner = await start(spec, seed=3, scenario=CATALOG["healthy"], notify=notifier)
    roll_out(runner)
    warnings: list[str] = []
    for _ in range(300):
        outcome = await runner.tick()
        warnings += [e.message for e in outcome.events if e.reason == "NotificationFailed"]
        if runner.settled():
            break
    assert runner.status.phase == "Healthy"
    assert (
        warnings
        and warnings[0] == "notification ops not sent (RolloutStarted): Secret default/no-such-secret not found"
    )
    assert server.received == []


async def test_a_full_queue_drops_the_oldest(session: aiohttp.ClientSession, server: WebhookServer) -> None:
    outcomes: list[str] = []
    n = Notifier(session, from_secrets({}), capacity=2, count=outcomes.append)
    n.start(workers=0)  # nothing drains: the queue fills
    spec = small_spec(notifications=[receiver("ops", server.url())])
    for event in ("RolloutStarted", "WeightSet", "RolledBack"):
        await n("ml", "llama", spec, a_notice(event))
    assert outcomes == ["dropped"]
    n.start(workers=1)
    await eventually(lambda: len(server.received) == 2)
    assert [r.body["event"] for r in server.received] == ["StepPromoted", "RolledBack"]
    await n.stop()
