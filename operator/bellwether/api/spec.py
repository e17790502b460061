"""The `ModelDeployment` spec: the one source of truth for runtime types and the CRD schema.

Rules that a structural OpenAPI schema cannot express are written twice on purpose, in the same
words: as pydantic validators (so `bellwether validate -f` and the operator catch them) and as CEL
`x-kubernetes-validations` (so `kubectl apply` refuses them). Tests check that both agree on every
bad example. Every list a CEL rule iterates has a `maxItems` and every string it compares a
`maxLength`, so the API server's CEL cost estimate stays bounded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema, model_validator

from bellwether.api.autoscaling import Autoscaling
from bellwether.api.base import Invalid, KeyRef, Wire, cel
from bellwether.api.hooks import Gates, Notifications
from bellwether.api.metrics import (
    PRESET_NAMES,
    TEMPLATE_VARIABLES,
    Analysis,
    Baseline,
    Metric,
    Preset,
    PrometheusRef,
    unknown_variables,
)
from bellwether.api.patterns import DNS_LABEL, ENV_NAME, HTTP_PATH, METRIC_NAME, QUANTITY
from bellwether.api.placement import Disruption, Scheduling
from bellwether.api.units import AnalysisDuration, Deadline, Duration, IntOrPercent, parse_duration

# Includes the parts defined in base.py and metrics.py, so the whole spec is importable from here.
__all__ = [
    "DNS_LABEL",
    "MAX_REGIONS",
    "MAX_STEPS",
    "METRIC_NAME",
    "PRESET_NAMES",
    "QUANTITY",
    "TEMPLATE_VARIABLES",
    "Analysis",
    "Autoscaling",
    "Baseline",
    "ClusterRef",
    "Disruption",
    "EnvVar",
    "EnvVarSource",
    "GatewayAPIRouting",
    "Gpu",
    "Invalid",
    "IstioRouting",
    "KeyRef",
    "Metric",
    "ModelDeploymentSpec",
    "ModelRef",
    "ParentRef",
    "Pause",
    "Preset",
    "PrometheusRef",
    "Region",
    "Resources",
    "Rollout",
    "Runtime",
    "Scheduling",
    "Step",
    "StepAnalysis",
    "Traffic",
    "Wire",
    "cel",
    "default_steps",
    "dump",
    "unknown_variables",
]

MAX_REGIONS = 16
MAX_STEPS = 32
MAX_LABEL_KEY = 317  # a Kubernetes label key: a 253-character prefix, '/', a 63-character name

Short = Annotated[str, Field(max_length=253)]


class ModelRef(Wire):
    name: str = Field(min_length=1, max_length=253, description="The model's name, e.g. llama-3.1-8b-instruct.")
    version: str = Field(min_length=1, max_length=128, description="The model version; part of the revision.")
    uri: str = Field(
        min_length=1, max_length=2048, description="Where the weights live; given to the container as MODEL_URI."
    )


class EnvVarSource(Wire):
    secret_key_ref: KeyRef | None = Field(default=None, description="A key of a Secret in the object's namespace.")
    config_map_key_ref: KeyRef | None = Field(default=None, description="A key of a ConfigMap in the namespace.")


class EnvVar(Wire):
    name: str = Field(min_length=1, max_length=128, pattern=ENV_NAME, description="The variable's name.")
    value: str | None = Field(default=None, max_length=32768, description="A literal value.")
    value_from: EnvVarSource | None = Field(default=None, description="Or a value read from a Secret or ConfigMap.")


class Gpu(Wire):
    count: int = Field(ge=1, le=64, description="nvidia.com/gpu per replica; at least 1.")
    product: str | None = Field(
        default=None,
        max_length=63,
        description="Value of the nvidia.com/gpu.product node label to schedule on, e.g. NVIDIA-H100-80GB-HBM3.",
    )


class Resources(Wire):
    gpu: Gpu | None = Field(default=None, description="GPUs per replica; absent = a CPU-only model.")
    cpu: str | None = Field(
        default=None, pattern=QUANTITY, max_length=32, description="CPU request and limit, e.g. 8 or 500m."
    )
    memory: str | None = Field(
        default=None, pattern=QUANTITY, max_length=32, description="Memory request and limit, e.g. 64Gi."
    )


# The text of a runtime (args, command, env names and values) is copied into every revision's pod
# template and into status for rollback; bounded together, so a ModelDeployment stays within the API
# server's limits (an object of ~1.5 MB in etcd, 256 KiB of annotations) over any number of rollouts.
MAX_RUNTIME_TEXT = 65536
_RUNTIME_TEXT = (
    "(has(self.args) ? self.args.map(a, size(a)).sum() : 0)"
    " + (has(self.command) ? self.command.map(c, size(c)).sum() : 0)"
    " + (has(self.env) ? self.env.map(e, size(e.name) + (has(e.value) ? size(e.value) : 0)).sum() : 0)"
    f" <= {MAX_RUNTIME_TEXT}"
)


class Runtime(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(_RUNTIME_TEXT, f"args, command and env together must be at most {MAX_RUNTIME_TEXT} characters")
            ]
        }
    )
    image: str = Field(min_length=1, max_length=512, description="The serving image: vLLM, Triton, TGI or any.")
    command: list[Short] | None = Field(
        default=None, max_length=64, description="Overrides the image's entrypoint; absent = the image's own."
    )
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=128, description="Arguments; `$(MODEL_URI)` expands to model.uri."
    )
    port: int = Field(default=8000, ge=1, le=65535, description="The container port serving HTTP.")
    env: list[EnvVar] = Field(default_factory=list, max_length=64, description="Plain environment variables.")
    resources: Resources = Field(default_factory=Resources, description="GPUs, CPU and memory per replica.")
    readiness_path: str = Field(
        default="/health", pattern=HTTP_PATH, max_length=1024, description="HTTP GET path of the readiness probe."
    )
    warmup_seconds: int = Field(
        default=60, ge=0, le=7200, description="Model load time: analysis ignores a new revision's first N seconds."
    )
    scheduling: Scheduling | None = Field(
        default=None,
        description="Tolerations, priority class and topology spread of the pods; part of the revision when set.",
    )

    @model_validator(mode="after")
    def _text_fits(self) -> Runtime:
        total = sum(map(len, self.args)) + sum(map(len, self.command or []))
        total += sum(len(e.name) + len(e.value or "") for e in self.env)
        if total > MAX_RUNTIME_TEXT:
            raise Invalid(
                "args",
                f"args, command and env hold {total} characters together; at most {MAX_RUNTIME_TEXT} fit "
                "(put large configuration in a ConfigMap or the model's own files)",
            )
        return self


class ClusterRef(Wire):
    kubeconfig_secret: KeyRef = Field(
        description="A Secret in the ModelDeployment's namespace holding the kubeconfig of the region's cluster."
    )


class Region(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.replicas) != has(self.autoscaling)",
                    "a region gives replicas or autoscaling, exactly one of them",
                )
            ]
        }
    )
    name: str = Field(pattern=DNS_LABEL, max_length=63, description="A DNS label; used in child names and labels.")
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Serving replicas in this region once fully rolled out; or give autoscaling.",
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description="Instead of replicas: an autoscaler sizes the region; rollouts split its live count.",
    )
    node_selector: Annotated[
        dict[Annotated[str, Field(max_length=MAX_LABEL_KEY)], Annotated[str, Field(max_length=63)]],
        WithJsonSchema(
            {
                "type": "object",
                "additionalProperties": {"type": "string", "maxLength": 63},
                "maxProperties": 8,
                "x-kubernetes-validations": [
                    cel(
                        f"self.all(k, size(k) <= {MAX_LABEL_KEY})", f"label keys are at most {MAX_LABEL_KEY} characters"
                    )
                ],
                "description": "Extra node labels the region's pods must match.",
            }
        ),
    ] = Field(default_factory=dict, max_length=8, description="Extra node labels the region's pods must match.")
    cluster: ClusterRef | None = Field(default=None, description="Absent = the home cluster.")
    namespace: str | None = Field(
        default=None,
        pattern=DNS_LABEL,
        max_length=63,
        description="Namespace in a remote cluster; default: the object's own.",
    )

    @model_validator(mode="after")
    def _sized_once(self) -> Region:
        if (self.replicas is None) == (self.autoscaling is None):
            raise Invalid(
                "replicas",
                "give replicas or autoscaling, exactly one of them"
                + (" (this region has both)" if self.autoscaling is not None else ""),
            )
        return self

    @property
    def size(self) -> int:
        """Fixed replicas, or the floor an autoscaled region starts from (minReplicas)."""
        if self.replicas is not None:
            return self.replicas
        assert self.autoscaling is not None  # the validator above
        return self.autoscaling.min_replicas


class ParentRef(Wire):
    name: str = Field(min_length=1, max_length=253, description="The Gateway's name.")
    namespace: str | None = Field(default=None, max_length=63, description="The Gateway's namespace; default: own.")
    section_name: str | None = Field(default=None, max_length=253, description="A listener of the Gateway.")


class GatewayAPIRouting(Wire):
    parent_refs: list[ParentRef] = Field(
        min_length=1, max_length=16, description="Gateways the generated HTTPRoute attaches to."
    )
    hostnames: list[Short] = Field(default_factory=list, max_length=16, description="Hostnames the route matches.")


class IstioRouting(Wire):
    hosts: list[Short] = Field(min_length=1, max_length=16, description="Hosts of the generated VirtualService.")
    gateways: list[Short] = Field(default_factory=list, max_length=16, description="Istio Gateways; absent = mesh.")


class Traffic(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.router != 'gatewayAPI' || has(self.gatewayAPI)",
                    "router gatewayAPI needs traffic.gatewayAPI.parentRefs",
                    ".gatewayAPI",
                ),
                cel("self.router != 'istio' || has(self.istio)", "router istio needs traffic.istio.hosts", ".istio"),
            ]
        }
    )
    router: Literal["replicas", "gatewayAPI", "istio"] = Field(
        default="replicas",
        description="How traffic is split: replicas (which ready pods serve), gatewayAPI (HTTPRoute weights), istio.",
    )
    gateway_api: GatewayAPIRouting | None = Field(
        default=None, alias="gatewayAPI", description="Required with router gatewayAPI."
    )
    istio: IstioRouting | None = Field(default=None, description="Required with router istio.")

    @property
    def by_pods(self) -> bool:
        """The split is which ready pods serve, not a route's weights (render/routers.py has the rest)."""
        return self.router == "replicas"

    @model_validator(mode="after")
    def _router_config(self) -> Traffic:
        if self.router == "gatewayAPI" and self.gateway_api is None:
            raise Invalid("gatewayAPI", "is required with router gatewayAPI: give the Gateways in parentRefs")
        if self.router == "istio" and self.istio is None:
            raise Invalid("istio", "is required with router istio: give the VirtualService hosts")
        return self


class Pause(Wire):
    duration: Duration | None = Field(default=None, description="Absent = wait for `bellwether promote`.")


class StepAnalysis(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.minDuration) || duration(self.minDuration) <= duration(self.duration)",
                    "minDuration must not be longer than duration",
                    ".minDuration",
                )
            ]
        }
    )
    duration: AnalysisDuration = Field(description="How long to measure every metric at this step.")
    min_duration: AnalysisDuration | None = Field(
        default=None,
        description="Opt-in: the step may pass this early, once every metric in every region of the wave is "
        "conclusively within its bounds (its latest measurement Successful).",
    )

    @model_validator(mode="after")
    def _min_within(self) -> StepAnalysis:
        if self.min_duration is not None and parse_duration(self.min_duration) > parse_duration(self.duration):
            raise Invalid("minDuration", f"{self.min_duration} is longer than duration {self.duration}")
        return self


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
    pause: Pause | None = Field(default=None, description="Wait, for a duration or for `bellwether promote`.")
    analysis: StepAnalysis | None = Field(default=None, description="Judge the canary against spec.analysis.")

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        fields = (("setWeight", self.set_weight), ("pause", self.pause), ("analysis", self.analysis))
        kinds = [k for k, v in fields if v is not None]
        if len(kinds) != 1:
            has = " and ".join(kinds) if kinds else "none of them"
            raise ValueError(f"a step is exactly one of setWeight, pause or analysis; this one has {has}")
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
    "!has(self.steps) || ("
    "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted() && "
    "self.steps.filter(s, has(s.setWeight)).all(a, "
    "self.steps.filter(s, has(s.setWeight)).exists_one(b, b.setWeight == a.setWeight)))"
)


class Rollout(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(_WEIGHTS_INCREASE, "setWeight must increase through the steps", ".steps"),
                cel("!has(self.waves) || self.waves.all(w, size(w) > 0)", "a wave names at least one region", ".waves"),
            ]
        }
    )
    max_surge: IntOrPercent = Field(
        default="25%", description='Extra pods during a rollout; "0" = GPU-scarce: swap stable for canary in place.'
    )
    waves: list[Annotated[list[Annotated[str, Field(max_length=63)]], Field(max_length=MAX_REGIONS)]] | None = Field(
        default=None,
        max_length=MAX_REGIONS,
        description="Region names per wave. Default: the first region alone, then all the rest.",
    )
    steps: list[Step] = Field(
        default_factory=default_steps,
        max_length=MAX_STEPS,
        description="Run in order in every wave. Default: setWeight 10, analysis 5m, setWeight 50, analysis 5m.",
    )
    bake_time: Duration = Field(default="10m", description="After full promotion: keep judging for this long.")
    progress_deadline: Deadline = Field(default="15m", description="A step that cannot progress fails the rollout.")
    on_unschedulable: Literal["rollback", "wait"] = Field(
        default="rollback",
        description="rollback: canary pods the scheduler cannot place (and no pod of this ModelDeployment "
        "terminating to free room) roll the canary back within two cycles; wait: keep waiting until "
        "progressDeadline, for clusters whose node autoscaler adds GPU nodes.",
    )
    region_timeout: Deadline = Field(
        default="10m", description="A region of the current wave unreachable for longer fails the rollout."
    )
    rollback_traffic: Literal["immediate", "whenStableReady"] = Field(
        default="immediate",
        description="immediate: a rolled-back revision leaves traffic within one cycle, everywhere, even "
        "where stable's pods are still starting; whenStableReady: it keeps serving the capacity stable "
        "lacks in a region and hands it over as stable's pods become ready. A rollback for what the "
        "revision could not do (Unschedulable, ProgressDeadlineExceeded, RegionUnreachable, CycleFailed) "
        "always hands over that way.",
    )
    gates: Gates = Field(
        default_factory=list,
        description="Webhooks the rollout waits for: preRollout, confirmPromotion, postRollback (docs/gates.md).",
    )

    @model_validator(mode="after")
    def _weights_increase(self) -> Rollout:
        previous: tuple[int, int] | None = None
        for i, step in enumerate(self.steps):
            if step.set_weight is None:
                continue
            if previous is not None and step.set_weight <= previous[1]:
                raise Invalid(
                    f"steps[{i}].setWeight",
                    f"must be greater than {previous[1]}, the weight of steps[{previous[0]}]: "
                    "setWeight must increase through the steps (0-100)",
                )
            previous = (i, step.set_weight)
        for i, wave in enumerate(self.waves or []):
            if not wave:
                raise Invalid(f"waves[{i}]", "is empty: a wave names at least one region")
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
        "!has(self.rollout) || !has(self.rollout.waves) || "
        "self.rollout.waves.all(w, w.all(n, w.exists_one(m, m == n)))",
        "rollout.waves must name every region exactly once",
        ".rollout.waves",
    ),
    cel(
        "!self.regions.exists(r, has(r.autoscaling)) || !has(self.rollout) || !has(self.rollout.maxSurge) || "
        "(type(self.rollout.maxSurge) == int ? self.rollout.maxSurge > 0 : !self.rollout.maxSurge.matches('^0+%?$'))",
        "autoscaled regions need rollout.maxSurge above 0: the canary is added beside the autoscaled stable pods",
        ".rollout.maxSurge",
    ),
    cel(
        "has(self.analysis) || (has(self.rollout) && has(self.rollout.steps) && "
        "!self.rollout.steps.exists(s, has(s.analysis)))",
        "spec.analysis is required: the rollout has analysis steps (the default steps do too)",
        ".analysis",
    ),
]


class ModelDeploymentSpec(Wire):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})
    model: ModelRef = Field(description="What is served; a change starts a rollout.")
    runtime: Runtime = Field(description="How it is served; a change starts a rollout.")
    regions: list[Region] = Field(
        min_length=1, max_length=MAX_REGIONS, description="Where it is served; the first is the home cluster's."
    )
    traffic: Traffic = Field(default_factory=Traffic, description="How traffic is split between revisions.")
    rollout: Rollout = Field(default_factory=Rollout, description="How a new revision is rolled out.")
    analysis: Analysis | None = Field(default=None, description="How a canary is judged; needed by analysis steps.")
    notifications: Notifications = Field(
        default_factory=list, description="Webhooks told of rollout events (docs/notifications.md)."
    )
    disruption: Disruption = Field(
        default_factory=Disruption, description="The PodDisruptionBudgets that keep evictions from thinning a region."
    )

    @model_validator(mode="after")
    def _cross_field(self) -> ModelDeploymentSpec:
        names = [r.name for r in self.regions]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise Invalid(
                    f"regions[{i}].name",
                    f"{name!r} is already the name of regions[{names.index(name)}]; region names must be unique",
                )
        if self.rollout.waves is not None:
            self._check_waves(self.rollout.waves, names)
        autoscaled = [r.name for r in self.regions if r.autoscaling is not None]
        if autoscaled and _zero(self.rollout.max_surge):
            raise Invalid(
                "rollout.maxSurge",
                f"is {self.rollout.max_surge}, but {', '.join(autoscaled)} autoscale: autoscaled regions need "
                "rollout.maxSurge above 0 (the canary is added beside the autoscaled stable pods)",
            )
        analysis_steps = [i for i, s in enumerate(self.rollout.steps) if s.analysis is not None]
        if self.analysis is None and analysis_steps:
            raise Invalid(
                "analysis",
                f"is required: rollout.steps[{analysis_steps[0]}] is an analysis step (the default steps include "
                "analysis steps); add spec.analysis with at least one metric, or give steps without analysis",
            )
        return self

    @staticmethod
    def _check_waves(waves: list[list[str]], names: list[str]) -> None:
        seen: dict[str, str] = {}
        for i, wave in enumerate(waves):
            for j, name in enumerate(wave):
                where = f"rollout.waves[{i}][{j}]"
                if name not in names:
                    raise Invalid(
                        where, f"{name!r} is not a region of this ModelDeployment; allowed: {', '.join(names)}"
                    )
                if name in seen:
                    raise Invalid(where, f"{name!r} is already in {seen[name]}; every region is in exactly one wave")
                seen[name] = where
        missing = [n for n in names if n not in seen]
        if missing:
            raise Invalid("rollout.waves", f"leaves out {', '.join(missing)}; every region is in exactly one wave")

    def waves(self) -> list[list[str]]:
        """Region names per wave; default: the first region alone (a canary of canaries), then the rest."""
        if self.rollout.waves is not None:
            return [list(w) for w in self.rollout.waves]
        names = [r.name for r in self.regions]
        return [names[:1], names[1:]] if len(names) > 1 else [names]

    def region(self, name: str) -> Region:
        return next(r for r in self.regions if r.name == name)


def _zero(surge: str) -> bool:
    return surge.rstrip("%").strip("0") == ""


def dump(model: BaseModel) -> dict[str, Any]:
    """The wire form: camelCase, no nulls (Kubernetes treats absent and null alike, diffs stay small)."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")
