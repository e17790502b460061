"""`regions[].autoscaling`: a region sized by an autoscaler instead of a fixed replica count.

The metrics are the `autoscaling/v2` MetricSpec shape, field for field, so a block pasted from an
existing HorizontalPodAutoscaler works unchanged; Bellwether renders the HPA from it (`render/`).
`external` names a scaler that is not an HPA Bellwether renders (KEDA, a custom controller): Bellwether
then leaves the stable Deployment's replicas to it and only reads the count it keeps.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from bellwether.api.base import Invalid, Wire, cel
from bellwether.api.patterns import DNS_LABEL

MAX_METRICS = 8
MAX_AUTOSCALED_REPLICAS = 1000


def _coerce_quantity(value: Any) -> Any:
    """`averageValue: 5` and `averageValue: "5"` are the same quantity, as for Kubernetes."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


_QUANTITY_PATTERN = r"^[+-]?[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[0-9]+)?$"
_QUANTITY = re.compile(_QUANTITY_PATTERN)


def _check_quantity(value: str | None) -> str | None:
    if value is not None and (len(value) > 64 or not _QUANTITY.match(value)):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 5, 500m, 1.5 or 2Gi")
    return value


# Optional, and an int-or-string in the CRD: the schema says it once, without a nullable variant
# (an int-or-string node has no type to be nullable with).
Quantity = Annotated[
    str | None,
    BeforeValidator(_coerce_quantity),
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "maxLength": 64,
            "description": "A Kubernetes quantity: 5, 500m, 1.5, 2Gi.",
            "x-kubernetes-validations": [
                {
                    "rule": f"type(self) == int || self.matches('{_QUANTITY_PATTERN}')",
                    "message": "must be a Kubernetes quantity such as 5, 500m, 1.5 or 2Gi",
                }
            ],
        }
    ),
]

# Label selectors are passed to the HPA as given; Kubernetes checks their shape.
LabelSelector = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "description": "A label selector (matchLabels / matchExpressions), as in a HorizontalPodAutoscaler.",
        }
    ),
]


_TARGET_FIELD = {"Utilization": "averageUtilization", "Value": "value", "AverageValue": "averageValue"}


class MetricTarget(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(f"self.type != '{kind}' || has(self.{name})", f"is required with target type {kind}", f".{name}")
                for kind, name in _TARGET_FIELD.items()
            ]
        }
    )
    type: Literal["Utilization", "Value", "AverageValue"] = Field(description="What the target compares.")
    value: Quantity = Field(default=None, description="The metric's total value (type Value).")
    average_value: Quantity = Field(default=None, description="Per pod (type AverageValue).")
    average_utilization: int | None = Field(
        default=None, ge=1, le=10000, description="Percent of the pods' request (type Utilization)."
    )

    @model_validator(mode="after")
    def _given(self) -> MetricTarget:
        needed = _TARGET_FIELD[self.type]
        have = {"averageUtilization": self.average_utilization, "value": self.value, "averageValue": self.average_value}
        if have[needed] is None:
            raise Invalid(needed, f"is required with target type {self.type}")
        return self


class MetricIdentifier(Wire):
    name: str = Field(min_length=1, max_length=253, description="The metric's name, e.g. vllm:num_requests_waiting.")
    selector: LabelSelector | None = Field(default=None, description="Narrows the metric's series.")


class ObjectReference(Wire):
    api_version: str | None = Field(default=None, max_length=253, description="The object's apiVersion.")
    kind: str = Field(min_length=1, max_length=63, description="The object's kind.")
    name: str = Field(min_length=1, max_length=253, description="The object's name.")


class PodsMetric(Wire):
    metric: MetricIdentifier = Field(description="The per-pod metric, averaged over the pods.")
    target: MetricTarget = Field(description="Its target; type AverageValue.")


class ObjectMetric(Wire):
    described_object: ObjectReference = Field(description="The object the metric describes.")
    metric: MetricIdentifier = Field(description="The object's metric.")
    target: MetricTarget = Field(description="Its target; type Value or AverageValue.")


class ExternalMetric(Wire):
    metric: MetricIdentifier = Field(description="A metric from outside the cluster's objects.")
    target: MetricTarget = Field(description="Its target; type Value or AverageValue.")


class ResourceMetric(Wire):
    name: str = Field(min_length=1, max_length=253, description="cpu, memory, or another resource.")
    target: MetricTarget = Field(description="Its target; type Utilization or AverageValue.")


class ContainerResourceMetric(Wire):
    name: str = Field(min_length=1, max_length=253, description="cpu, memory, or another resource.")
    container: str = Field(min_length=1, max_length=63, description="The container whose usage counts.")
    target: MetricTarget = Field(description="Its target; type Utilization or AverageValue.")


_SOURCE = {
    "Pods": "pods",
    "Object": "object",
    "External": "external",
    "Resource": "resource",
    "ContainerResource": "containerResource",
}


class MetricSpec(Wire):
    """One autoscaling/v2 MetricSpec: `type` and the one source it names."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    " && ".join(f"(self.type == '{kind}') == has(self.{source})" for kind, source in _SOURCE.items()),
                    "a metric has exactly the source its type names (type Pods: pods, type External: external, ...)",
                )
            ]
        }
    )
    type: Literal["Pods", "Object", "External", "Resource", "ContainerResource"] = Field(
        description="Which source follows: Pods, Object, External, Resource or ContainerResource."
    )
    pods: PodsMetric | None = Field(default=None, description="type Pods: a metric of every pod, averaged.")
    object: ObjectMetric | None = Field(default=None, description="type Object: a metric of one object.")
    external: ExternalMetric | None = Field(default=None, description="type External: a metric from outside.")
    resource: ResourceMetric | None = Field(default=None, description="type Resource: CPU or memory of the pods.")
    container_resource: ContainerResourceMetric | None = Field(
        default=None, description="type ContainerResource: CPU or memory of one container."
    )

    @model_validator(mode="after")
    def _one_source(self) -> MetricSpec:
        given = [source for source in _SOURCE.values() if getattr(self, _snake(source)) is not None]
        wanted = _SOURCE[self.type]
        if given != [wanted]:
            extra = [g for g in given if g != wanted]
            why = f"has {', '.join(extra)} as well" if extra else f"has no {wanted}"
            raise Invalid(
                wanted if not extra else extra[0], f"a metric of type {self.type} needs {wanted} alone; {why}"
            )
        return self


def _snake(name: str) -> str:
    return "container_resource" if name == "containerResource" else name


class ExternalScaler(Wire):
    owned_by: str = Field(
        pattern=DNS_LABEL,
        max_length=63,
        description="Who scales the stable Deployment instead of an HPA Bellwether renders, e.g. keda. "
        "Bellwether leaves its replicas alone and reads the count it keeps.",
    )


class Autoscaling(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.minReplicas <= self.maxReplicas", "minReplicas must not be above maxReplicas"),
                cel(
                    "has(self.external) != (has(self.metrics) && size(self.metrics) > 0)",
                    "give metrics (Bellwether renders an HPA) or external (another scaler owns the replicas), not both",
                ),
            ]
        }
    )
    min_replicas: int = Field(ge=1, le=MAX_AUTOSCALED_REPLICAS, description="The fewest replicas the region keeps.")
    max_replicas: int = Field(ge=1, le=MAX_AUTOSCALED_REPLICAS, description="The most replicas the autoscaler asks.")
    metrics: list[MetricSpec] = Field(
        default_factory=list,
        max_length=MAX_METRICS,
        description="autoscaling/v2 metrics of the HPA Bellwether renders for the stable revision.",
    )
    behavior: Annotated[
        dict[str, Any] | None,
        WithJsonSchema(
            {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "The HPA's scaleUp / scaleDown behavior, passed through as given.",
            }
        ),
    ] = Field(default=None, description="The HPA's scaleUp / scaleDown behavior, passed through as given.")
    external: ExternalScaler | None = Field(
        default=None, description="Another scaler (e.g. KEDA) owns the replicas; no HPA is rendered."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise Invalid("minReplicas", f"{self.min_replicas} is above maxReplicas {self.max_replicas}")
        if (self.external is not None) == bool(self.metrics):
            raise Invalid(
                "metrics",
                "give metrics (Bellwether renders an HPA) or external (another scaler owns the replicas), not both",
            )
        return self

    @property
    def renders_hpa(self) -> bool:
        return self.external is None
