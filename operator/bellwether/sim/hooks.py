"""Notifications and gates in the simulated world: an in-memory sink and gates answered by a rule.

The simulator runs `cycle.run` with these ports unless it is given others (`bellwether simulate
--webhooks` gives it the operator's HTTP ones, `bellwether.hooks`, to reach real receivers), so a
scenario shows which notifications a spec would send and where its gates would hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bellwether.api import ModelDeploymentSpec
from bellwether.rollout.notices import Notice, body, receives
from bellwether.rollout.types import GateOutcome, GateRequest, GateResult


@dataclass
class MemorySink:
    """The cycle's `notify` port: every notification, and the body each receiver would be POSTed."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (receiver, body)
    notices: list[Notice] = field(default_factory=list)

    async def __call__(
        self, namespace: str, name: str, spec: ModelDeploymentSpec | None, notices: Sequence[Notice]
    ) -> Sequence[str]:
        self.notices += notices
        for notice in notices:
            for n in spec.notifications if spec is not None else []:
                if receives(n, notice):
                    self.sent.append((n.name, body(n, notice)))
        return ()


# request -> (HTTP status, body) as the gate would answer
Answer = Callable[[GateRequest], tuple[int, str]]


def passing(_request: GateRequest) -> tuple[int, str]:
    return 200, "ok"


@dataclass
class RuleGates:
    """The cycle's gate port: each request answered by `answer` at once; every request kept."""

    answer: Answer = passing
    asked: list[GateRequest] = field(default_factory=list)

    async def __call__(
        self, spec: ModelDeploymentSpec, name: str, namespace: str, requests: Sequence[GateRequest], now: datetime
    ) -> tuple[GateResult, ...]:
        self.asked += requests
        out = []
        for r in requests:
            code, text = self.answer(r)
            outcome: GateOutcome = "passed" if 200 <= code < 300 else "failed"
            out.append(GateResult(r.gate, r.revision, r.wave, outcome, f"HTTP {code}: {text}"[:256], code))
        return tuple(out)
