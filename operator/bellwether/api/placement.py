"""Where serving pods may run and how many voluntary disruptions they tolerate.

Two parts with different lifetimes:

- `Scheduling` (`spec.runtime.scheduling`) shapes the pod template, so it is part of the revision:
  a change rolls out as a canary like any runtime change, and a revision's pods never change under
  it. Absent, it renders nothing and leaves the revision hash as it was (`dump` drops None), so an
  operator upgrade never restarts the pods of an existing spec.
- `Disruption` (`spec.disruption`) is the PodDisruptionBudget of each revision in each region. It
  lives outside the pod template, so it changes without touching a pod.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from bellwether.api.base import Invalid, Wire, cel
from bellwether.api.patterns import DNS_SUBDOMAIN
from bellwether.api.units import IntOrPercent

MAX_TOLERATIONS = 16
MAX_LABEL_KEY = 317  # a Kubernetes label key: a 253-character prefix, '/', a 63-character name

Spread = Literal["DoNotSchedule", "ScheduleAnyway"]
NODE_KEY = "kubernetes.io/hostname"
ZONE_KEY = "topology.kubernetes.io/zone"


class Toleration(Wire):
    """A Kubernetes toleration, e.g. for a GPU node pool's own taint (the `nvidia.com/gpu` one is
    always added for GPU models)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
                    "a toleration with operator Exists takes no value",
                    ".value",
                ),
                cel(
                    "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
                    "a toleration without a key must have operator Exists (it tolerates every taint)",
                    ".operator",
                ),
                cel(
                    "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                    "tolerationSeconds is only for effect NoExecute",
                    ".tolerationSeconds",
                ),
            ]
        }
    )
    key: str | None = Field(default=None, max_length=MAX_LABEL_KEY, description="The taint key; absent = any.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Equal (the default) matches the value; Exists matches any value."
    )
    value: str | None = Field(default=None, max_length=63, description="The taint value, with operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="The taint effect to tolerate; absent = every effect."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="With NoExecute: how long the pod stays after the taint."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise Invalid("value", "must be empty: a toleration with operator Exists takes no value")
        if not self.key and self.operator != "Exists":
            raise Invalid("operator", "must be Exists when key is empty (the toleration then matches every taint)")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise Invalid("tolerationSeconds", "is only for effect NoExecute")
        return self


class TopologySpread(Wire):
    """Spread each revision's pods in a region evenly (at most `maxSkew` apart) over nodes and zones.

    DoNotSchedule leaves a pod Pending rather than break the spread; ScheduleAnyway prefers the
    spread but places the pod anyway. Only nodes matching the region's node selector and the GPU
    product count, and a region with a single zone is one domain, so `zones` never holds it back (with
    DoNotSchedule, a node without the topology label is not eligible at all).
    """

    nodes: Spread | None = Field(default=None, description=f"Over nodes ({NODE_KEY}); absent = no constraint.")
    zones: Spread | None = Field(default=None, description=f"Over zones ({ZONE_KEY}); absent = no constraint.")
    max_skew: int = Field(default=1, ge=1, le=100, description="The most pods one domain may hold beyond another.")


class Scheduling(Wire):
    """Placement of the serving pods: part of the revision, rendered only when given."""

    priority_class_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="A PriorityClass for the serving pods, e.g. one that lets them preempt batch jobs on GPU nodes.",
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        max_length=MAX_TOLERATIONS,
        description="Taints of the GPU node pool the pods may run on, added to the nvidia.com/gpu one.",
    )
    topology_spread: TopologySpread | None = Field(
        default=None, description="Spread each revision's pods over nodes and zones; absent = the scheduler's choice."
    )


class Disruption(Wire):
    """The PodDisruptionBudget of every revision in every region: how many of its pods voluntary
    evictions (`kubectl drain`, node upgrades, the cluster autoscaler) may take at once.

    Budgets only gate the Eviction API. Bellwether scales Deployments down and the Deployment
    controller replaces pods by deleting them, which no budget blocks.
    """

    budget: bool = Field(
        default=True,
        description="false: no PodDisruptionBudgets (for clusters whose own budgets select these pods; a pod "
        "matched by two budgets cannot be evicted at all).",
    )
    max_unavailable: IntOrPercent = Field(
        default="1",
        description="Pods of a revision that evictions may take while it serves the region alone.",
    )
    max_unavailable_during_rollout: IntOrPercent = Field(
        default="0",
        description='The same while a region runs a canary beside stable (and during a rollback): "0" = '
        "evictions wait until the region's rollout is over, so a drain never takes either below its plan.",
    )
