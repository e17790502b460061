"""The spec's `analysis` section: where metrics come from, what each one measures, and its bounds.

A metric is a built-in preset or a PromQL query with template variables; either way it has bounds,
absolute (`max`, `min`) or relative to the stable revision (`baseline`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, get_args

from pydantic import ConfigDict, Field, model_validator

from bellwether.api.base import Invalid, KeyRef, Wire, cel
from bellwether.api.patterns import DNS_SUBDOMAIN, HTTP_URL, METRIC_NAME
from bellwether.api.units import Interval, QueryTimeout

MAX_METRICS = 32
MAX_TEMPLATES = 8  # ClusterAnalysisTemplates one ModelDeployment may reference
MAX_QUERY_TEXT = 32768  # every query together: bounds the object's size (see spec.MAX_RUNTIME_TEXT)

Preset = Literal[
    "vllm-e2e-latency-p99",
    "vllm-ttft-p95",
    "vllm-inter-token-latency-p95",
    "vllm-error-rate",
    "triton-request-latency-avg",
    "triton-failure-rate",
    "triton-first-response-p95",
    "tgi-request-duration-p99",
    "tgi-queue-duration-p95",
    "tgi-time-per-token-p95",
    "tgi-error-rate",
    "http-latency-p99",
    "http-error-rate",
]
PRESET_NAMES: tuple[str, ...] = get_args(Preset)

# Variables a metric query may use, `{{name}}`; anything else is a typo caught before it reaches Prometheus.
TEMPLATE_VARIABLES = ("name", "namespace", "region", "revision", "role", "interval")
ALLOWED_VARIABLES = ", ".join("{{" + v + "}}" for v in TEMPLATE_VARIABLES)
_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")
_KNOWN_PLACEHOLDER = re.compile(r"^\{\{\s*(" + "|".join(TEMPLATE_VARIABLES) + r")\s*\}\}$")

# A well-formed query, as one regular expression both Python and the API server (RE2) read the same way:
# any character but `{`, a single `{`, or a known `{{variable}}`. One linear `matches` keeps the CEL
# cost small; splitting into placeholders first (`findAll(...).all(...)`) costs length squared.
QUERY_SHAPE = r"^(?:[^{]|\{(?:[^{]|$)|\{\{\s*(?:" + "|".join(TEMPLATE_VARIABLES) + r")\s*\}\})*$"
_QUERY_SHAPE = re.compile(QUERY_SHAPE)


def unknown_variables(query: str) -> list[str]:
    """The `{{...}}` placeholders in a query that are not template variables, in order of appearance."""
    return [p for p in _PLACEHOLDER.findall(query) if not _KNOWN_PLACEHOLDER.match(p)]


def query_problem(query: str) -> str | None:
    """Why a query's placeholders are wrong, or None when every `{{` starts a known variable."""
    if _QUERY_SHAPE.fullmatch(query):
        return None
    unknown = unknown_variables(query)
    if unknown:
        return f"uses {', '.join(unknown)}, not a template variable; allowed: {ALLOWED_VARIABLES}"
    return f"has a '{{{{' that starts no template variable; allowed: {ALLOWED_VARIABLES}"


class Baseline(Wire):
    max_ratio: float = Field(gt=1.0, le=100.0, description="Canary may be at most this multiple of stable.")
    min_value: float = Field(
        default=0.0,
        ge=0.0,
        description="Floor for the stable value, so noise on a tiny baseline does not look like a regression.",
    )


_QUERY_VARIABLES = "!has(self.query) || self.query.matches('" + QUERY_SHAPE.replace("\\", "\\\\") + "')"


class Metric(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.query) != has(self.preset)", "a metric has exactly one of query or preset"),
                cel(
                    "has(self.max) || has(self.min) || has(self.baseline) || has(self.preset)",
                    "a query metric needs a bound: max, min or baseline",
                ),
                cel(
                    _QUERY_VARIABLES,
                    "query may use only the template variables " + ALLOWED_VARIABLES,
                    ".query",
                ),
                cel("!has(self.max) || !has(self.min) || self.min <= self.max", "min must not be above max", ".min"),
            ]
        }
    )
    name: str = Field(pattern=METRIC_NAME, max_length=63, description="Names the metric in status and Events.")
    preset: Preset | None = Field(default=None, description="A built-in query for vLLM, Triton, TGI or plain HTTP.")
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=8192,
        description="PromQL with {{name}} {{namespace}} {{region}} {{revision}} {{role}} {{interval}}.",
    )
    max: float | None = Field(default=None, description="Absolute upper bound on the canary's value.")
    min: float | None = Field(default=None, description="Absolute lower bound on the canary's value.")
    baseline: Baseline | None = Field(default=None, description="Bound relative to the stable revision.")

    @model_validator(mode="after")
    def _query_or_preset(self) -> Metric:
        if self.query is not None and self.preset is not None:
            raise ValueError("has both query and preset; a metric has exactly one of them")
        if self.query is None and self.preset is None:
            raise ValueError("needs a query or a preset (exactly one of them)")
        if self.query is not None:
            problem = query_problem(self.query)
            if problem:
                raise Invalid("query", problem)
            if self.max is None and self.min is None and self.baseline is None:
                raise ValueError("a query metric needs a bound: max, min or baseline")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise Invalid("min", f"{self.min} is above max {self.max}; min must not be above max")
        return self


class TemplateRef(Wire):
    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="The ClusterAnalysisTemplate's name."
    )


class PrometheusRef(Wire):
    url: str = Field(pattern=HTTP_URL, max_length=2048, description="Base URL of the Prometheus HTTP API.")
    timeout: QueryTimeout = Field(default="10s", description="Per query; a timeout is an inconclusive measurement.")
    bearer_token_secret: KeyRef | None = Field(
        default=None, description="A Secret key holding a bearer token; never logged or shown in status."
    )


def check_metrics(metrics: Sequence[Metric]) -> None:
    """Names unique and queries within MAX_QUERY_TEXT together: the same rules inline and in a template."""
    seen: dict[str, int] = {}
    for i, metric in enumerate(metrics):
        if metric.name in seen:
            raise Invalid(
                f"metrics[{i}].name",
                f"{metric.name!r} is already the name of metrics[{seen[metric.name]}]; metric names must be unique",
            )
        seen[metric.name] = i
    total = sum(len(m.query or "") for m in metrics)
    if total > MAX_QUERY_TEXT:
        raise Invalid("metrics", f"the queries hold {total} characters together; at most {MAX_QUERY_TEXT} fit")


class Analysis(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.metrics) && size(self.metrics) > 0) || (has(self.templates) && size(self.templates) > 0)",
                    "metrics must have at least 1 item, or templates must name a ClusterAnalysisTemplate",
                    ".metrics",
                ),
                cel(
                    "!has(self.metrics) || self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
                    "metric names must be unique",
                    ".metrics",
                ),
                cel(
                    "!has(self.metrics) || "
                    f"self.metrics.map(m, has(m.query) ? size(m.query) : 0).sum() <= {MAX_QUERY_TEXT}",
                    f"the metrics' queries together must be at most {MAX_QUERY_TEXT} characters",
                    ".metrics",
                ),
                cel(
                    "!has(self.templates) || self.templates.all(t, self.templates.exists_one(u, u.name == t.name))",
                    "templates must name each ClusterAnalysisTemplate once",
                    ".templates",
                ),
            ]
        }
    )
    prometheus: PrometheusRef = Field(description="Where the metrics are queried.")
    interval: Interval = Field(default="30s", description="Time between measurements, and the {{interval}} range.")
    failure_limit: int = Field(default=2, ge=0, le=100, description="Failed measurements tolerated before rollback.")
    inconclusive_limit: int = Field(
        default=4, ge=0, le=100, description="Inconclusive measurements (no data, errors) before onInconclusive."
    )
    on_inconclusive: Literal["pause", "rollback"] = Field(
        default="pause", description="What to do past inconclusiveLimit: pause for a person, or roll back."
    )
    metrics: list[Metric] = Field(
        default_factory=list,
        max_length=MAX_METRICS,
        description="Every one must pass. May be empty when templates are given; an inline metric replaces a "
        "template's metric of the same name.",
    )
    templates: list[TemplateRef] = Field(
        default_factory=list,
        max_length=MAX_TEMPLATES,
        description="ClusterAnalysisTemplates whose metrics are judged too, read by the operator every cycle; "
        "two templates giving the same metric name are an error.",
    )

    @model_validator(mode="after")
    def _unique_metrics(self) -> Analysis:
        if not self.metrics and not self.templates:
            raise Invalid("metrics", "must have at least 1 item, or templates must name a ClusterAnalysisTemplate")
        names = [t.name for t in self.templates]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise Invalid(f"templates[{i}].name", f"{name!r} is already named by templates[{names.index(name)}]")
        check_metrics(self.metrics)
        return self
