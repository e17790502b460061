"""Metric queries parsed offline, as Prometheus would parse them, before any rollout runs one.

The API server cannot parse PromQL: a query with an unclosed `(` is admitted, and then every
measurement of every rollout is an Inconclusive "Prometheus refused the query". `bellwether validate`
fills each query's placeholders with sample values exactly as the operator renders them (escaping
included) and parses the result with promql-parser, a Rust port of Prometheus' own parser.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import promql_parser

from bellwether.analysis.presets import query_of
from bellwether.analysis.templating import TemplateError, Variables, render
from bellwether.api import ModelDeployment
from bellwether.api.metrics import Metric
from bellwether.api.units import parse_duration

SAMPLE_REVISION = "0123456789"  # revisions are 10 hex digits


def sample_variables(interval_seconds: float) -> Variables:
    """Values to fill in. Whether a rendered query parses does not depend on them: the operator escapes
    every value for where it lands, and names, namespaces and regions are plain words wherever they
    may stand outside a string."""
    return Variables(
        name="llama-chat",
        namespace="ml",
        region="us-east",
        revision=SAMPLE_REVISION,
        role="canary",
        interval_seconds=interval_seconds,
    )


def parse_problem(query: str) -> str | None:
    """Why Prometheus would refuse a rendered query for a range query, or None."""
    try:
        expr = promql_parser.parse(query)
    except ValueError as e:
        return f"is not valid PromQL: {e}"
    if isinstance(expr, (promql_parser.MatrixSelector, promql_parser.SubqueryExpr)):
        return "returns a range vector, which a range query cannot: wrap it in a function, e.g. rate(...)"
    if isinstance(expr, promql_parser.StringLiteral):
        return "returns a string, not a number"
    return None


@functools.lru_cache(maxsize=4096)
def template_problem(template: str, interval_seconds: float) -> str | None:
    """Why a query template, rendered as the operator renders it, would be refused by Prometheus.
    Cached: a file of many ModelDeployments repeats the same presets and queries."""
    try:
        query = render(template, sample_variables(interval_seconds))
    except TemplateError as e:
        return str(e)
    return parse_problem(query)


def query_problems(md: ModelDeployment) -> list[str]:
    """One line per metric whose query Prometheus would refuse; the API server admits them all."""
    if md.spec.analysis is None:
        return []
    return metric_problems(md.spec.analysis.metrics, parse_duration(md.spec.analysis.interval), "spec.analysis.metrics")


def metric_problems(metrics: Sequence[Metric], interval_seconds: float, where: str) -> list[str]:
    """The same for any list of metrics (a ClusterAnalysisTemplate's too), `where` naming the list."""
    problems = []
    for i, metric in enumerate(metrics):
        problem = template_problem(query_of(metric), interval_seconds)
        if problem:
            field = "query" if metric.query is not None else "preset"
            problems.append(f"{where}[{i}].{field}: {problem}")
    return problems
