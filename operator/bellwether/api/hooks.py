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
from bellwether.api.patterns import DNS_LABEL, DNS_SUBDOMAIN, ENV_NAME, HTTP_URL, QUANTITY
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
_DEADLINE = ("10s", "24h", "how long a gate's Job may run before it counts as timed out")
JobDeadline = Annotated[
    str, AfterValidator(_parsed), AfterValidator(_between(*_DEADLINE)), WithJsonSchema(_between_schema(*_DEADLINE))
]
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


class JobEnv(Wire):
    name: str = Field(min_length=1, max_length=128, pattern=ENV_NAME, description="The variable's name.")
    value: str = Field(default="", max_length=4096, description="Its value.")


class JobGate(Wire):
    """A Kubernetes Job that must succeed: e.g. an evaluation suite against the canary's Service.

    Bellwether creates it in the region it concerns (confirmPromotion: the wave's first region; the
    other types: the first region), with `BELLWETHER_*` variables naming the revision and the URLs of
    the canary's and stable's Services, and waits for its Complete or Failed condition."""

    image: str = Field(min_length=1, max_length=512, description="The image that runs the check.")
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, max_length=64, description="Overrides the image's entrypoint."
    )
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=128, description="Arguments of the check."
    )
    env: list[JobEnv] = Field(default_factory=list, max_length=64, description="Extra environment variables.")
    cpu: str | None = Field(default=None, pattern=QUANTITY, max_length=32, description="CPU request and limit.")
    memory: str | None = Field(default=None, pattern=QUANTITY, max_length=32, description="Memory request and limit.")
    service_account_name: str | None = Field(
        default=None, pattern=DNS_SUBDOMAIN, max_length=253, description="Default: the namespace's default."
    )
    backoff_limit: int = Field(default=0, ge=0, le=10, description="Retries of a failed pod before the Job fails.")
    deadline: JobDeadline = Field(
        default="10m", description="activeDeadlineSeconds: a Job still running then is a timeout (onTimeout)."
    )


_ONE_CHECK = "has(self.webhook) != has(self.job)"
_ONE_CHECK_MESSAGE = "give exactly one of webhook or job"


class Gate(Wire):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [cel(_ONE_CHECK, _ONE_CHECK_MESSAGE)]})
    name: str = Field(pattern=DNS_LABEL, max_length=63, description="Names the gate in status and Events.")
    type: GateType = Field(
        description="preRollout: before the canary gets pods or traffic; confirmPromotion: before each wave is "
        "promoted (the canary serving 100% of it); postRollback: after a rollback, before the next rollout."
    )
    webhook: Endpoint | None = Field(
        default=None, description="Called with a JSON document (docs/gates.md); a 2xx answer opens the gate."
    )
    job: JobGate | None = Field(default=None, description="Or a Job, created for the gate; success opens it.")
    on_failure: GatePolicy = Field(
        default="hold",
        description="A non-2xx answer (or no connection, or an unreadable Secret): hold = ask again every "
        "interval; fail = roll the canary back (postRollback: record the failure, stop asking).",
    )
    on_timeout: GatePolicy = Field(default="hold", description="No answer within webhook.timeout: as onFailure.")
    interval: GateInterval = Field(
        default="30s", description="While held, how often the gate is asked again (a Job gate: run again)."
    )

    @model_validator(mode="after")
    def _one_check(self) -> Gate:
        if (self.webhook is None) == (self.job is None):
            raise ValueError(_ONE_CHECK_MESSAGE)
        return self


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
