"""The `ModelDeployment` spec: the one source of truth for runtime types and the CRD schema.

Rules that a structural OpenAPI schema cannot express are written twice on purpose, in the same
words: as pydantic validators (so `bellwether simulate -f` and the operator catch them) and as CEL
`x-kubernetes-validations` (so `kubectl apply` refuses them). Tests check that both agree on every
bad example.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from bellwether.api.units import Duration, IntOrPercent

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
METRIC_NAME = r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$"

PRESET_NAMES = (
    "vllm-e2e-latency-p99",
    "vllm-ttft-p95",
    "vllm-inter-token-latency-p95",
    "vllm-error-rate",
    "triton-request-latency-avg",
    "triton-failure-rate",
    "tgi-request-duration-p99",
    "tgi-error-rate",
    "http-latency-p99",
    "http-error-rate",
)
Preset = Literal[
    "vllm-e2e-latency-p99",
    "vllm-ttft-p95",
    "vllm-inter-token-latency-p95",
    "vllm-error-rate",
    "triton-request-latency-avg",
    "triton-failure-rate",
    "tgi-request-duration-p99",
    "tgi-error-rate",
    "http-latency-p99",
    "http-error-rate",
]


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry; the message is what `kubectl apply` prints."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class Wire(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are typos, so they are errors."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ModelRef(Wire):
    name: str = Field(min_length=1, max_length=253, description="The model's name, e.g. llama-3.1-8b-instruct.")
    version: str = Field(min_length=1, max_length=128, description="The model version; part of the revision.")
    uri: str = Field(
        min_length=1, max_length=2048, description="Where the weights live; given to the container as MODEL_URI."
    )


class KeyRef(Wire):
    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(min_length=1, max_length=253)


class EnvVarSource(Wire):
    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None


class EnvVar(Wire):
    name: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str | None = None
    value_from: EnvVarSource | None = None


class Gpu(Wire):
    count: int = Field(ge=1, le=64, description="nvidia.com/gpu per replica; at least 1.")
    product: str | None = Field(
        default=None,
        max_length=63,
        description="Value of the nvidia.com/gpu.product node label to schedule on, e.g. NVIDIA-H100-80GB-HBM3.",
    )


QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"


class Resources(Wire):
    gpu: Gpu | None = Field(default=None, description="GPUs per replica; absent = a CPU-only model.")
    cpu: str | None = Field(default=None, pattern=QUANTITY, description="CPU request and limit, e.g. 8 or 500m.")
    memory: str | None = Field(default=None, pattern=QUANTITY, description="Memory request and limit, e.g. 64Gi.")


class Runtime(Wire):
    image: str = Field(min_length=1, max_length=512, description="The serving image: vLLM, Triton, TGI or any.")
    command: list[str] | None = None
    args: list[str] = Field(default_factory=list)
    port: int = Field(default=8000, ge=1, le=65535)
    env: list[EnvVar] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    readiness_path: str = Field(default="/health", pattern=r"^/.*$")
    warmup_seconds: int = Field(
        default=60, ge=0, le=7200, description="Model load time: analysis ignores a new revision's first N seconds."
    )


class ClusterRef(Wire):
    kubeconfig_secret: KeyRef = Field(
        description="A Secret in the ModelDeployment's namespace holding the kubeconfig of the region's cluster."
    )


class Region(Wire):
    name: str = Field(pattern=DNS_LABEL, max_length=63, description="A DNS label; used in child names and labels.")
    replicas: int = Field(ge=0, le=1000)
    node_selector: dict[str, str] = Field(default_factory=dict)
    cluster: ClusterRef | None = Field(default=None, description="Absent = the home cluster.")
    namespace: str | None = Field(
        default=None, pattern=DNS_LABEL, description="Namespace in a remote cluster; default: the object's own."
    )


class ParentRef(Wire):
    name: str = Field(min_length=1)
    namespace: str | None = None
    section_name: str | None = None


class GatewayAPIRouting(Wire):
    parent_refs: list[ParentRef] = Field(min_length=1)
    hostnames: list[str] = Field(default_factory=list)


class IstioRouting(Wire):
    hosts: list[str] = Field(min_length=1)
    gateways: list[str] = Field(default_factory=list)


class Traffic(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.router != 'gatewayAPI' || has(self.gatewayAPI)",
                    "router gatewayAPI needs traffic.gatewayAPI.parentRefs",
                ),
                cel("self.router != 'istio' || has(self.istio)", "router istio needs traffic.istio.hosts"),
            ]
        }
    )
    router: Literal["replicas", "gatewayAPI", "istio"] = "replicas"
    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")
    istio: IstioRouting | None = None

    @model_validator(mode="after")
    def _router_config(self) -> Traffic:
        if self.router == "gatewayAPI" and self.gateway_api is None:
            raise ValueError("router gatewayAPI needs traffic.gatewayAPI.parentRefs")
        if self.router == "istio" and self.istio is None:
            raise ValueError("router istio needs traffic.istio.hosts")
        return self


class Pause(Wire):
    duration: Duration | None = Field(default=None, description="Absent = wait for `bellwether promote`.")


class StepAnalysis(Wire):
    duration: Duration


_ONE_STEP_KIND = "(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analysis) ? 1 : 0) == 1"


class Step(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(_ONE_STEP_KIND, "a step is exactly one of setWeight, pause or analysis"),
            ]
        }
    )
    set_weight: int | None = Field(default=None, ge=0, le=100, description="Canary share of traffic, 0-100.")
    pause: Pause | None = None
    analysis: StepAnalysis | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if sum(x is not None for x in (self.set_weight, self.pause, self.analysis)) != 1:
            raise ValueError("a step is exactly one of setWeight, pause or analysis")
        return self


def default_steps() -> list[Step]:
    return [
        Step(set_weight=10),
        Step(analysis=StepAnalysis(duration="5m")),
        Step(set_weight=50),
        Step(analysis=StepAnalysis(duration="5m")),
    ]


# Strictly increasing = sorted (Kubernetes' CEL list library) and no repeats.
_WEIGHTS_INCREASE = (
    "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted() && "
    "self.steps.filter(s, has(s.setWeight)).all(a, "
    "self.steps.filter(s, has(s.setWeight)).exists_one(b, b.setWeight == a.setWeight))"
)


class Rollout(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(_WEIGHTS_INCREASE, "setWeight must increase through the steps", ".steps"),
            ]
        }
    )
    max_surge: IntOrPercent = Field(
        default="25%", description='Extra pods during a rollout; "0" = GPU-scarce: swap stable for canary in place.'
    )
    waves: list[list[Annotated[str, Field(max_length=63)]]] | None = Field(
        default=None,
        max_length=16,
        description="Region names per wave. Default: the first region alone, then all the rest.",
    )
    steps: list[Step] = Field(default_factory=default_steps, max_length=64)
    bake_time: Duration = Field(default="10m", description="After full promotion: keep judging for this long.")
    progress_deadline: Duration = Field(default="15m", description="A step that cannot progress fails the rollout.")

    @model_validator(mode="after")
    def _weights_increase(self) -> Rollout:
        weights = [s.set_weight for s in self.steps if s.set_weight is not None]
        for i in range(1, len(weights)):
            if weights[i] <= weights[i - 1]:
                raise ValueError(f"setWeight must increase through the steps: {weights[i]} after {weights[i - 1]}")
        return self


class Baseline(Wire):
    max_ratio: float = Field(gt=1.0, le=100.0, description="Canary may be at most this multiple of stable.")
    min_value: float = Field(
        default=0.0,
        ge=0.0,
        description="Floor for the stable value, so noise on a tiny baseline does not look like a regression.",
    )


class Metric(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.query) != has(self.preset)", "a metric has exactly one of query or preset"),
                cel(
                    "has(self.max) || has(self.min) || has(self.baseline) || has(self.preset)",
                    "a query metric needs a bound: max, min or baseline",
                ),
            ]
        }
    )
    name: str = Field(pattern=METRIC_NAME, max_length=63)
    preset: Preset | None = Field(default=None, description="A built-in query; see docs/presets.md.")
    query: str | None = Field(default=None, min_length=1, max_length=8192)
    max: float | None = None
    min: float | None = None
    baseline: Baseline | None = None

    @model_validator(mode="after")
    def _query_or_preset(self) -> Metric:
        if (self.query is None) == (self.preset is None):
            raise ValueError("a metric has exactly one of query or preset")
        if self.query is not None and self.max is None and self.min is None and self.baseline is None:
            raise ValueError("a query metric needs a bound: max, min or baseline")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class PrometheusRef(Wire):
    url: str = Field(pattern=r"^https?://.+$", description="Base URL of the Prometheus HTTP API.")
    timeout: Duration = "10s"
    bearer_token_secret: KeyRef | None = Field(
        default=None, description="A Secret key holding a bearer token; never logged or shown in status."
    )


class Analysis(Wire):
    prometheus: PrometheusRef
    interval: Duration = "30s"
    failure_limit: int = Field(default=2, ge=0, le=100, description="Failed measurements tolerated before rollback.")
    inconclusive_limit: int = Field(default=4, ge=0, le=100)
    on_inconclusive: Literal["pause", "rollback"] = "pause"
    metrics: list[Metric] = Field(min_length=1, max_length=32)

    @model_validator(mode="after")
    def _unique_metrics(self) -> Analysis:
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric names must be unique: {', '.join(dupes)} repeated")
        return self


_SPEC_RULES: list[JsonValue] = [
    cel(
        "self.regions.all(r, self.regions.exists_one(q, q.name == r.name))",
        "region names must be unique",
        ".regions",
    ),
    cel(
        "!has(self.rollout) || !has(self.rollout.waves) || "
        "self.rollout.waves.all(w, w.all(n, self.regions.exists(r, r.name == n)))",
        "rollout.waves may name only regions declared in spec.regions",
        ".rollout.waves",
    ),
    cel(
        "!has(self.rollout) || !has(self.rollout.waves) || "
        "self.regions.all(r, self.rollout.waves.exists_one(w, w.exists(n, n == r.name)))",
        "rollout.waves must name every region exactly once",
        ".rollout.waves",
    ),
    cel(
        "has(self.analysis) || !has(self.rollout) || !has(self.rollout.steps) || "
        "!self.rollout.steps.exists(s, has(s.analysis))",
        "analysis steps need spec.analysis with at least one metric",
        ".analysis",
    ),
]


class ModelDeploymentSpec(Wire):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})
    model: ModelRef
    runtime: Runtime
    regions: list[Region] = Field(min_length=1, max_length=64)
    traffic: Traffic = Field(default_factory=Traffic)
    rollout: Rollout = Field(default_factory=Rollout)
    analysis: Analysis | None = None

    @model_validator(mode="after")
    def _cross_field(self) -> ModelDeploymentSpec:
        names = [r.name for r in self.regions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"region names must be unique: {', '.join(dupes)} repeated")
        if self.rollout.waves is not None:
            listed = [n for wave in self.rollout.waves for n in wave]
            unknown = sorted(set(listed) - set(names))
            if unknown:
                raise ValueError(
                    f"rollout.waves names {', '.join(unknown)}, not declared in spec.regions ({', '.join(names)})"
                )
            missing = [n for n in names if listed.count(n) != 1]
            if missing:
                raise ValueError(f"rollout.waves must name every region exactly once: {', '.join(missing)}")
            if any(not wave for wave in self.rollout.waves):
                raise ValueError("rollout.waves may not contain an empty wave")
        if self.analysis is None and any(s.analysis is not None for s in self.rollout.steps):
            raise ValueError("analysis steps need spec.analysis with at least one metric")
        return self

    def waves(self) -> list[list[str]]:
        """Region names per wave; default: the first region alone (a canary of canaries), then the rest."""
        if self.rollout.waves is not None:
            return [list(w) for w in self.rollout.waves]
        names = [r.name for r in self.regions]
        return [names[:1], names[1:]] if len(names) > 1 else [names]

    def region(self, name: str) -> Region:
        return next(r for r in self.regions if r.name == name)


def dump(model: BaseModel) -> dict[str, Any]:
    """The wire form: camelCase, no nulls (Kubernetes treats absent and null alike, diffs stay small)."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")
