"""The cycle's gate port over HTTP: each gate due is POSTed a GateRequest document, all at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp

from bellwether import cycle
from bellwether.api import API_VERSION, ModelDeploymentSpec
from bellwether.api.units import parse_duration
from bellwether.hooks.http import post
from bellwether.hooks.secrets import Resolve, SecretError, target
from bellwether.rollout.types import GateRequest, GateResult

log = logging.getLogger("bellwether")
GATE_KIND = "GateRequest"


def gate_document(spec: ModelDeploymentSpec, name: str, namespace: str, request: GateRequest) -> dict[str, Any]:
    """What a gate is sent (docs/gates.md): which object, revision and point, and the regions concerned."""
    waves = spec.waves()
    regions = waves[request.wave] if request.type == "confirmPromotion" and request.wave < len(waves) else []
    return {
        "apiVersion": API_VERSION,
        "kind": GATE_KIND,
        "gate": request.gate,
        "type": request.type,
        "namespace": namespace,
        "name": name,
        "revision": request.revision,
        "stable": request.stable_revision,
        "wave": request.wave,
        "regions": regions or [r.name for r in spec.regions],
        "attempt": request.attempt,
    }


def webhook_gates(session: aiohttp.ClientSession, resolve: Resolve) -> cycle.EvaluateGates:
    """Ask every due webhook gate at once (the slowest takes its timeout, no more); each answer in
    words without secrets. Other gates (Jobs) are left to the port that runs them."""

    async def one(spec: ModelDeploymentSpec, name: str, namespace: str, request: GateRequest) -> GateResult:
        gate = next(g for g in spec.rollout.gates if g.name == request.gate)
        assert gate.webhook is not None  # asked only for webhook gates, below
        timeout = parse_duration(gate.webhook.timeout)

        def result(outcome: Any, message: str, code: int | None = None) -> GateResult:
            return GateResult(request.gate, request.revision, request.wave, outcome, message, code)

        try:
            to = await target(gate.webhook, namespace, resolve)
        except SecretError as e:
            return result("failed", str(e))
        answer = await post(session, to, gate_document(spec, name, namespace, request), timeout)
        log.info("%s/%s: %s gate %s answered %s", namespace, name, request.type, request.gate, answer.code)
        outcome = {"ok": "passed", "timeout": "timeout"}.get(answer.outcome, "failed")
        return result(outcome, answer.describe(timeout), answer.code)

    async def ask(
        spec: ModelDeploymentSpec, name: str, namespace: str, requests: Sequence[GateRequest], now: datetime
    ) -> tuple[GateResult, ...]:
        known = {g.name for g in spec.rollout.gates if g.webhook is not None}
        due = [r for r in requests if r.gate in known]
        return tuple(await asyncio.gather(*(one(spec, name, namespace, r) for r in due)))

    return ask
