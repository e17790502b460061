"""Webhooks of a ModelDeployment: notifications it sends and gates it waits for.

Kept apart from the rest of the spec: `spec.notifications` and `spec.rollout.gates` are the only
places that use these models. A URL may carry a token (Slack's incoming webhooks do), so every URL
and header value can come from a Secret instead; those are read by the operator when it calls, and
never logged, written to status or put in an Event.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, ConfigDict, Field, WithJsonSchema, model_validator

from bellwether.api.base import KeyRef, Wire, cel
from bellwether.api.patterns import DNS_LABEL, HTTP_URL
from bellwether.api.units import DURATION_MAX_LENGTH, DURATION_PATTERN, parse_duration

MAX_NOTIFICATIONS = 8
MAX_GATES = 16
MAX_EXCERPT = 256  # characters of a gate's answer kept in status and Events

NotificationEvent = Literal["RolloutStarted", "StepPromoted", "Paused", "RolledBack", "Promoted", "Failed"]
NOTIFICATION_EVENTS: tuple[str, ...] = get_args(NotificationEvent)
GateType = Literal["preRollout", "confirmPromotion", "postRollback"]
GATE_TYPES: tuple[str, ...] = get_args(GateType)
GatePolicy = Literal["hold", "fail"]
GatePhase = Literal["Waiting", "Passed", "Held", "Failed"]


def _between(low: str, high: str, why: str) -> Any:
    """A check that a duration is from `low` to `high`, as the model applies it."""

    def check(value: str) -> str:
        if parse_duration(low) <= parse_duration(value) <= parse_duration(high):
            return value
        raise ValueError(f"{value!r} must be from {low} to {high}: {why}")

    return check


def _between_schema(low: str, high: str, why: str) -> dict[str, Any]:
    """The same check as the API server applies it (CEL)."""
    rule = f"duration(self) >= duration('{low}') && duration(self) <= duration('{high}')"
    return {
        "type": "string",
        "pattern": DURATION_PATTERN,
        "maxLength": DURATION_MAX_LENGTH,
        "description": f"A duration from {low} to {high}: 500ms, 10s, 1m.",
        "x-kubernetes-validations": [{"rule": rule, "message": f"must be from {low} to {high}: {why}"}],
    }


def _parsed(value: str) -> str:
    parse_duration(value)  # a ValueError in the words every duration uses
    return value


# A gate's call holds up its cycle for at most this long; a notification's is in the background.
_TIMEOUT = ("100ms", "1m", "a gate's cycle waits this long at most for its answer")
WebhookTimeout = Annotated[
    str, AfterValidator(_parsed), AfterValidator(_between(*_TIMEOUT)), WithJsonSchema(_between_schema(*_TIMEOUT))
]
_INTERVAL = ("1s", "24h", "how often a held gate is asked again")
GateInterval = Annotated[
    str, AfterValidator(_parsed), AfterValidator(_between(*_INTERVAL)), WithJsonSchema(_between_schema(*_INTERVAL))
]

_ONE_URL = "has(self.url) != has(self.urlFrom)"
_ONE_URL_MESSAGE = "give exactly one of url or urlFrom"


class SecretSource(Wire):
    secret_key_ref: KeyRef = Field(description="A key of a Secret in the ModelDeployment's namespace.")


class Endpoint(Wire):
    """Where to call: a URL in the spec, or one read from a Secret (a URL with a token in it)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [cel(_ONE_URL, _ONE_URL_MESSAGE)]})
    url: str | None = Field(
        default=None, pattern=HTTP_URL, max_length=2048, description="An http:// or https:// URL without secrets."
    )
    url_from: SecretSource | None = Field(
        default=None, description="Or the URL, read from a Secret when called; never logged or shown."
    )
    authorization_from: SecretSource | None = Field(
        default=None,
        description="An Authorization header value (e.g. 'Bearer …') read from a Secret; never logged or shown.",
    )
    timeout: WebhookTimeout = Field(default="10s", description="Per call; a call that takes longer is a timeout.")

    @model_validator(mode="after")
    def _one_url(self) -> Endpoint:
        if (self.url is None) == (self.url_from is None):
            raise ValueError(_ONE_URL_MESSAGE)
        return self


class Notification(Endpoint):
    name: str = Field(pattern=DNS_LABEL, max_length=63, description="Names the receiver in logs and Events.")
    format: Literal["json", "slack"] = Field(
        default="json",
        description="json: Bellwether's versioned Notification document (docs/notifications.md); "
        "slack: {'text': ...} for Slack-compatible incoming webhooks.",
    )
    events: list[NotificationEvent] = Field(
        default_factory=list, max_length=len(NOTIFICATION_EVENTS), description="Events to send; empty = all of them."
    )


class Gate(Wire):
    name: str = Field(pattern=DNS_LABEL, max_length=63, description="Names the gate in status and Events.")
    type: GateType = Field(
        description="preRollout: before the canary gets pods or traffic; confirmPromotion: before each wave is "
        "promoted (the canary serving 100% of it); postRollback: after a rollback, before the next rollout."
    )
    webhook: Endpoint = Field(description="Called with a JSON document; a 2xx answer opens the gate.")
    on_failure: GatePolicy = Field(
        default="hold",
        description="A non-2xx answer (or no connection, or an unreadable Secret): hold = ask again every "
        "interval; fail = roll the canary back (postRollback: record the failure, stop asking).",
    )
    on_timeout: GatePolicy = Field(default="hold", description="No answer within webhook.timeout: as onFailure.")
    interval: GateInterval = Field(default="30s", description="While held, how often the gate is asked again.")


class GateStatus(Wire):
    """The last answer of one gate for one revision (and wave): what status and `bellwether status` show."""

    name: str
    type: GateType
    revision: str
    wave: int = 0
    phase: GatePhase = "Waiting"
    attempts: int = 0
    code: int | None = Field(default=None, description="HTTP status of the last answer; unset: no answer.")
    message: str | None = Field(
        default=None, max_length=1024, description="The last answer: its outcome and an excerpt of its body."
    )
    at: str | None = Field(default=None, description="When the gate last answered.")


def _unique(what: str) -> Any:
    def check(items: list[Any]) -> list[Any]:
        names = [i.name for i in items]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise ValueError(
                    f"[{i}].name {name!r} is already the name of [{names.index(name)}]; {what} must be unique"
                )
        return items

    return check


def _unique_rule(what: str) -> dict[str, Any]:
    return {
        "x-kubernetes-validations": [cel("self.all(a, self.exists_one(b, b.name == a.name))", f"{what} must be unique")]
    }


Notifications = Annotated[
    list[Notification],
    AfterValidator(_unique("notification names")),
    Field(max_length=MAX_NOTIFICATIONS, json_schema_extra=_unique_rule("notification names")),
]
Gates = Annotated[
    list[Gate],
    AfterValidator(_unique("gate names")),
    Field(max_length=MAX_GATES, json_schema_extra=_unique_rule("gate names")),
]
