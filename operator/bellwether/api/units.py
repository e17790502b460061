"""Wire formats shared by the spec: durations (`30s`, `5m`, `1h30m`), int-or-percent (`25%`, `0`).

They are strings on the wire, like Kubernetes' own, so manifests read naturally; the parsers here are
the one place that turns them into numbers, so the CRD pattern and the runtime check cannot disagree.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
_DURATION_FULL = re.compile(DURATION_PATTERN)
DURATION_MAX_LENGTH = 32
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

INT_OR_PERCENT_PATTERN = r"^([0-9]+%?)$"
_INT_OR_PERCENT = re.compile(INT_OR_PERCENT_PATTERN)
INT_OR_PERCENT_MAX_LENGTH = 8  # bounds the CEL cost of matching the string form
# The API server's version of `_check_int_or_percent`: a count, or a percentage of at most 100.
_CEL_INT_OR_PERCENT = "^([0-9]+|0*([0-9]{1,2}|100)%)$"


def parse_duration(value: str) -> float:
    """Seconds in a duration such as `30s`, `5m`, `1h30m` or `500ms`."""
    if len(value) > DURATION_MAX_LENGTH or not _DURATION_FULL.match(value):
        raise ValueError(f"{value!r} is not a duration: use a number with a unit, like 30s, 5m, 1h30m or 500ms")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(value))


def format_duration(seconds: float) -> str:
    """The shortest duration string for whole seconds, e.g. 90 -> `1m30s`; for messages and PromQL ranges."""
    total = round(seconds)
    if total <= 0:
        return "0s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)


def format_value(value: float | None, unit: str | None) -> str:
    """A measured value as a dashboard shows it: seconds as s or ms, ratios as percentages.

    >>> format_value(0.369508, "s"), format_value(2.75, "s"), format_value(0.0083, "ratio"), format_value(12.5, None)
    ('370ms', '2.75s', '0.83%', '12.5')
    """
    if value is None:
        return "no value"
    if unit == "s":
        return f"{value:.2f}s" if abs(value) >= 1 else f"{value * 1000:.0f}ms"
    if unit == "ratio":
        return f"{value * 100:.2f}%"
    return f"{value:.4g}"


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


def _coerce_str(value: Any) -> Any:
    # YAML turns `maxSurge: 0` into an int; accept it as the string "0".
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_int_or_percent(value: str) -> str:
    if len(value) > INT_OR_PERCENT_MAX_LENGTH or not _INT_OR_PERCENT.match(value):
        raise ValueError(
            f"{value!r} is not a count or a percentage: use a whole number like 1 or a percentage like 25%"
        )
    if value.endswith("%") and int(value[:-1]) > 100:
        raise ValueError(f"{value!r} is more than 100%: use a whole number like 1 or a percentage from 0% to 100%")
    return value


def resolve_int_or_percent(value: str, total: int, *, round_up: bool) -> int:
    """A count from `2` or `25%` of `total`; surge rounds up, like Kubernetes' own maxSurge."""
    if value.endswith("%"):
        scaled = total * int(value[:-1])
        return -(-scaled // 100) if round_up else scaled // 100
    return int(value)


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": DURATION_MAX_LENGTH,
            "description": "A duration: 30s, 5m, 1h30m.",
        }
    ),
]


def _at_least(minimum: str, why: str) -> Any:
    floor = parse_duration(minimum)

    def check(value: str) -> str:
        if parse_duration(value) < floor:
            raise ValueError(f"{value!r} is shorter than {minimum}: {why}")
        return value

    return check


def _bounded_schema(minimum: str, why: str) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": DURATION_PATTERN,
        "maxLength": DURATION_MAX_LENGTH,
        "description": f"A duration of at least {minimum}: 30s, 5m, 1h30m.",
        "x-kubernetes-validations": [
            {"rule": f"duration(self) >= duration('{minimum}')", "message": f"must be at least {minimum}: {why}"}
        ],
    }


# Durations the engine divides by or waits on have a floor, in the schema (CEL `duration()`) and in
# the parser alike: `interval: 0s` would divide by zero, `1ms` asks for measurements more often than a
# cycle can run, a 0s timeout fails every query.
_INTERVAL_WHY = "the time between measurements; the operator cannot measure more often than once a second"
Interval = Annotated[
    str,
    AfterValidator(_check_duration),
    AfterValidator(_at_least("1s", _INTERVAL_WHY)),
    WithJsonSchema(_bounded_schema("1s", _INTERVAL_WHY)),
]
_STEP_WHY = "an analysis needs at least one measurement"
AnalysisDuration = Annotated[
    str,
    AfterValidator(_check_duration),
    AfterValidator(_at_least("1s", _STEP_WHY)),
    WithJsonSchema(_bounded_schema("1s", _STEP_WHY)),
]
_TIMEOUT_WHY = "a query that may take less cannot reach Prometheus and back"
QueryTimeout = Annotated[
    str,
    AfterValidator(_check_duration),
    AfterValidator(_at_least("100ms", _TIMEOUT_WHY)),
    WithJsonSchema(_bounded_schema("100ms", _TIMEOUT_WHY)),
]
_DEADLINE_WHY = "pods need time to be scheduled and start"
Deadline = Annotated[
    str,
    AfterValidator(_check_duration),
    AfterValidator(_at_least("10s", _DEADLINE_WHY)),
    WithJsonSchema(_bounded_schema("10s", _DEADLINE_WHY)),
]


IntOrPercent = Annotated[
    str,
    BeforeValidator(_coerce_str),
    AfterValidator(_check_int_or_percent),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "maxLength": INT_OR_PERCENT_MAX_LENGTH,
            "description": "A whole number (2) or a percentage (25%).",
            "x-kubernetes-validations": [
                {
                    "rule": "type(self) == int ? self >= 0 : self.matches('" + _CEL_INT_OR_PERCENT + "')",
                    "message": "must be a whole number like 1 or a percentage from 0% to 100% like 25%",
                }
            ],
        }
    ),
]
