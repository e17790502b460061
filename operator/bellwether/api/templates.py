"""`ClusterAnalysisTemplate`: metrics and bounds that many ModelDeployments reference by name.

A platform team writes the service-level bounds once (p99 latency, error rate) and every
ModelDeployment lists the template in `spec.analysis.templates`. The template holds only what is
measured and its bounds; when and how it is judged (Prometheus, interval, limits) stays with each
ModelDeployment, which knows its own traffic.

Resolution is pure: `resolve` takes the spec and the templates as read (None for one that does not
exist) and returns the spec the engine runs, with one list of metrics. The rules, as in Argo Rollouts'
`ClusterAnalysisTemplate`s, except for the first:
- an inline metric replaces a template's metric of the same name (a deployment may tighten one bound
  of a shared template without copying the rest);
- two templates giving the same metric name are an error, naming both: neither can win unnoticed;
- a missing or invalid template is an error naming it; the operator then applies nothing.
Templates are not part of the revision (the pods do not change), so editing one changes what the
running and future rollouts measure from the next cycle on, and never starts a rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bellwether.api.base import Wire, cel
from bellwether.api.metrics import MAX_METRICS, MAX_QUERY_TEXT, Metric, check_metrics
from bellwether.api.resource import API_VERSION, SpecError, explain
from bellwether.api.spec import ModelDeploymentSpec

TEMPLATE_KIND = "ClusterAnalysisTemplate"
TEMPLATE_PLURAL = "clusteranalysistemplates"


class ClusterAnalysisTemplateSpec(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
                    "metric names must be unique",
                    ".metrics",
                ),
                cel(
                    f"self.metrics.map(m, has(m.query) ? size(m.query) : 0).sum() <= {MAX_QUERY_TEXT}",
                    f"the metrics' queries together must be at most {MAX_QUERY_TEXT} characters",
                    ".metrics",
                ),
            ]
        }
    )
    description: str | None = Field(default=None, max_length=1024, description="What the bounds are for, for people.")
    metrics: list[Metric] = Field(
        min_length=1,
        max_length=MAX_METRICS,
        description="Metrics and bounds, exactly as in a ModelDeployment's spec.analysis.metrics.",
    )

    @model_validator(mode="after")
    def _unique_metrics(self) -> ClusterAnalysisTemplateSpec:
        check_metrics(self.metrics)
        return self


class TemplateMeta(BaseModel):
    """Only the metadata read here; a cluster-scoped object has no namespace."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str


class ClusterAnalysisTemplate(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)
    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = TEMPLATE_KIND
    metadata: TemplateMeta
    spec: ClusterAnalysisTemplateSpec


def parse_template(raw: Any) -> ClusterAnalysisTemplate:
    """A whole template as the API server holds it; raises SpecError naming every bad field."""
    if not isinstance(raw, dict):
        raise SpecError([f"object: must be a mapping of fields (got {type(raw).__name__})"])
    if raw.get("kind", TEMPLATE_KIND) != TEMPLATE_KIND:
        raise SpecError([f"kind: must be {TEMPLATE_KIND} (got {raw.get('kind')!r})"])
    try:
        return ClusterAnalysisTemplate.model_validate(raw)
    except ValidationError as e:
        raise explain(e, prefix="", root=ClusterAnalysisTemplate) from None


class TemplateProblem(SpecError):
    """The templates a spec references cannot be resolved: each problem names the template."""


def referenced(spec: ModelDeploymentSpec) -> list[str]:
    """The names of the ClusterAnalysisTemplates the spec references, in order."""
    return [t.name for t in spec.analysis.templates] if spec.analysis is not None else []


def resolve(spec: ModelDeploymentSpec, found: Mapping[str, Any]) -> ModelDeploymentSpec:
    """The spec with its templates' metrics merged into `analysis.metrics` (and none left to resolve);
    `found` maps each referenced name to the object as read (None: not found). Raises TemplateProblem
    naming every template at fault."""
    names = referenced(spec)
    if not names or spec.analysis is None:
        return spec
    problems: list[str] = []
    templates: dict[str, ClusterAnalysisTemplateSpec] = {}
    for i, name in enumerate(names):
        where = f"spec.analysis.templates[{i}]"
        raw = found.get(name)
        if raw is None:
            problems.append(f"{where}: {TEMPLATE_KIND} {name!r} not found")
            continue
        try:
            templates[name] = parse_template(raw).spec
        except SpecError as e:
            problems += [f"{where}: {TEMPLATE_KIND} {name!r} is invalid: {p}" for p in e.problems]
    if problems:
        raise TemplateProblem(problems)
    return merge(spec, templates)


def merge(spec: ModelDeploymentSpec, templates: Mapping[str, ClusterAnalysisTemplateSpec]) -> ModelDeploymentSpec:
    """The spec with the metrics of the templates given merged in: inline metrics first, then each
    template's in the order named, skipping those an inline metric replaces. The templates merged leave
    `analysis.templates` (merging again changes nothing); those `templates` lacks stay named there.
    Raises TemplateProblem for a metric name two templates give, or too many metrics."""
    analysis = spec.analysis
    if analysis is None:
        return spec
    inline = {m.name for m in analysis.metrics}
    owner: dict[str, str] = {}
    metrics = list(analysis.metrics)
    problems = []
    for i, name in enumerate(referenced(spec)):
        if name not in templates:
            continue
        for metric in templates[name].metrics:
            if metric.name in inline:
                continue
            if metric.name in owner:
                problems.append(
                    f"spec.analysis.templates[{i}]: {TEMPLATE_KIND} {name!r} gives metric {metric.name!r}, "
                    f"as {TEMPLATE_KIND} {owner[metric.name]!r} does; rename one, or define {metric.name!r} "
                    "inline to choose"
                )
                continue
            owner[metric.name] = name
            metrics.append(metric)
    if len(metrics) > MAX_METRICS:  # status keeps measurements per metric: its size is bounded by this
        problems.append(f"spec.analysis: {len(metrics)} metrics with the templates'; at most {MAX_METRICS} are judged")
    if problems:
        raise TemplateProblem(problems)
    left = [t for t in analysis.templates if t.name not in templates]  # to be resolved elsewhere
    return spec.model_copy(update={"analysis": analysis.model_copy(update={"metrics": metrics, "templates": left})})
