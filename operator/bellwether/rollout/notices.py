"""Notifications: derived from the Events a decision already produces, so every driver sends the same.

`notices` maps a cycle's Events (their reasons, api/reasons.py) and the status it wrote onto the six
notification events people subscribe to; `document` and `slack` are the two wire forms
(docs/notifications.md is the schema). Pure: the cycle's `notify` port delivers them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bellwether.api import API_VERSION, ModelDeploymentStatus
from bellwether.api.hooks import NOTIFICATION_EVENTS, Notification, NotificationEvent
from bellwether.rollout.types import Event

NOTIFICATION_KIND = "Notification"

# Event reason -> the notification event it is
_EVENTS: Mapping[str, NotificationEvent] = {
    "RolloutStarted": "RolloutStarted",
    "RolloutRestarted": "RolloutStarted",
    "WeightSet": "StepPromoted",
    "WavePromoted": "StepPromoted",
    "PromotedStep": "StepPromoted",
    "Paused": "Paused",
    "InconclusiveAnalysis": "Paused",
    "GateHeld": "Paused",
    "RolledBack": "RolledBack",
    "Promoted": "Promoted",
    "GateFailed": "Failed",
    "CycleFailed": "Failed",
    "InvalidSpec": "Failed",
    "InvalidAnalysisTemplate": "Failed",
    "ObjectTooLarge": "Failed",
}


@dataclass(frozen=True)
class Notice:
    """One notification, before it is shaped for a receiver."""

    event: NotificationEvent
    namespace: str
    name: str
    revision: str | None
    stable: str | None
    reason: str
    message: str
    time: str
    details: Mapping[str, Any] = field(default_factory=dict)


def _details(event: NotificationEvent, status: ModelDeploymentStatus) -> dict[str, Any]:
    p = status.progress
    if event == "RolledBack":
        bad = p.rolled_back_revision
        failed = [m for m in status.analysis if m.verdict == "Failed" and (m.revision == bad or m.revision is None)]
        out: dict[str, Any] = {"phase": status.phase}
        if failed:
            m = max(failed, key=lambda m: m.at)
            out.update({"metric": m.metric, "region": m.region, "value": m.value, "bound": m.bound})
            if m.baseline is not None:
                out["baseline"] = m.baseline
        return out
    if event in ("StepPromoted", "Paused", "RolloutStarted"):
        return {"wave": status.wave, "step": status.step, "weight": status.canary_weight, "phase": status.phase}
    return {"phase": status.phase}


def _revision(event: NotificationEvent, status: ModelDeploymentStatus) -> str | None:
    if event == "RolledBack":
        return status.progress.rolled_back_revision
    if event == "Promoted":
        return status.stable_revision
    return status.canary_revision or status.stable_revision


def notices(
    namespace: str, name: str, events: Sequence[Event], status: ModelDeploymentStatus | None, time: str
) -> tuple[Notice, ...]:
    """The notifications a cycle's Events amount to, in their order. A phase change to Degraded is a
    Failed; the reason of a Failed and of a RolledBack is the Degraded condition's (AnalysisFailed, ...)."""
    st = status or ModelDeploymentStatus()
    out = []
    for e in events:
        event = _EVENTS.get(e.reason)
        reason: str = e.reason
        if e.reason == "PhaseChanged" and st.phase == "Degraded":
            event = "Failed"
            degraded = next((c for c in st.conditions if c.type == "Degraded" and c.status == "True"), None)
            reason = degraded.reason if degraded is not None else "Degraded"
        if event is None:
            continue
        if event == "RolledBack" and st.progress.rollback_reason:
            reason = st.progress.rollback_reason
        out.append(
            Notice(
                event,
                namespace,
                name,
                _revision(event, st),
                st.stable_revision,
                reason,
                e.message,
                time,
                _details(event, st),
            )
        )
    return tuple(out)


def document(notice: Notice) -> dict[str, Any]:
    """The json format: a versioned document (docs/notifications.md)."""
    return {
        "apiVersion": API_VERSION,
        "kind": NOTIFICATION_KIND,
        "event": notice.event,
        "namespace": notice.namespace,
        "name": notice.name,
        "revision": notice.revision,
        "stable": notice.stable,
        "reason": notice.reason,
        "message": notice.message,
        "details": dict(notice.details),
        "time": notice.time,
    }


_MARK = {"RolledBack": ":rewind:", "Failed": ":x:", "Paused": ":pause_button:", "Promoted": ":white_check_mark:"}


def slack(notice: Notice) -> dict[str, Any]:
    """The slack format: one `text`, which Slack, Mattermost, Rocket.Chat and Teams' workflows accept."""
    mark = _MARK.get(notice.event, ":arrow_forward:")
    head = f"{mark} *{notice.event}* {notice.namespace}/{notice.name}"
    if notice.revision:
        head += f" `{notice.revision}`"
    facts = ", ".join(f"{k} {v}" for k, v in notice.details.items() if v is not None and k != "phase")
    return {"text": f"{head}: {notice.message}" + (f" ({facts})" if facts else "")}


def receives(notification: Notification, notice: Notice) -> bool:
    """Whether a receiver subscribed to this event (no list: to every event)."""
    return not notification.events or notice.event in notification.events


def body(notification: Notification, notice: Notice) -> dict[str, Any]:
    """What is POSTed to a receiver, in its format."""
    return slack(notice) if notification.format == "slack" else document(notice)


# The json format's schema, as docs/notifications.md publishes it. Version 1 of the document: fields
# may be added (receivers ignore unknown ones); none is removed or changes meaning within an apiVersion.
NOTIFICATION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Bellwether Notification",
    "type": "object",
    "required": ["apiVersion", "kind", "event", "namespace", "name", "reason", "message", "details", "time"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": NOTIFICATION_KIND},
        "event": {"enum": list(NOTIFICATION_EVENTS)},
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "revision": {"type": ["string", "null"], "description": "The revision the event is about."},
        "stable": {"type": ["string", "null"], "description": "The stable revision after the event."},
        "reason": {
            "type": "string",
            "description": "The Event's reason; of RolledBack and Failed, the Degraded condition's "
            "(docs/troubleshooting.md).",
        },
        "message": {"type": "string", "description": "The Event's message, for people."},
        "details": {
            "type": "object",
            "description": "By event: wave, step, weight (RolloutStarted, StepPromoted, Paused); metric, region, "
            "value, bound, baseline of the failed measurement (RolledBack, when a measurement failed); phase (all).",
            "properties": {
                "phase": {"type": "string"},
                "wave": {"type": "integer"},
                "step": {"type": "integer"},
                "weight": {"type": "integer"},
                "metric": {"type": "string"},
                "region": {"type": "string"},
                "value": {"type": ["number", "null"]},
                "bound": {"type": ["string", "null"]},
                "baseline": {"type": "number"},
            },
        },
        "time": {"type": "string", "format": "date-time"},
    },
}
