"""The engine's ports: what it is told (observations) and what it answers (a decision).

Plain frozen dataclasses, so the operator, the simulator and the benchmarks build them the same way
and a decision can be compared, replayed and printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from bellwether.api import Measurement, ModelDeploymentStatus, Template
from bellwether.api.hooks import GateType
from bellwether.api.reasons import Reason

Role = Literal["stable", "canary"]
CommandAction = Literal["pause", "resume", "promote", "promote-full", "abort", "retry"]


@dataclass(frozen=True)
class RevisionPods:
    """Pods of one revision in one region, as observed."""

    desired: int = 0
    ready: int = 0
    unschedulable: int = 0
    unavailable: int = 0
    problem: str | None = None
    serving: int = 0  # ready pods receiving traffic (replicas router: ready and labelled serving)  # e.g. "ImagePullBackOff: image not found", "0/4 nodes have a free nvidia.com/gpu"
    # `desired` is the Deployment's spec.replicas as the cluster holds it: in an autoscaled region, the
    # stable revision's is the live count its autoscaler keeps.


@dataclass(frozen=True)
class RegionObservation:
    name: str
    reachable: bool = True
    error: str | None = None  # why the region could not be observed or applied to
    pods: Mapping[str, RevisionPods] = field(default_factory=dict)  # by revision
    weights: Mapping[str, int] = field(default_factory=dict)  # current route weights by revision
    terminating: int = 0  # pods of this ModelDeployment being deleted here: GPUs about to be free
    autoscaled: bool = False  # a Deployment here was applied for an autoscaled region (its HPA may be here)


@dataclass(frozen=True)
class GpuRoom:
    """The GPUs a region has free for one revision's pods: on each node its pods may run on (ready, not
    cordoned, labels and taints allowing them), what is allocatable less what the pods bound there
    request. Pods being deleted count as gone: their GPUs are about to be free."""

    resource: str  # e.g. nvidia.com/gpu
    per_pod: int  # GPUs one pod of the revision requests
    free: tuple[int, ...]  # one entry per node the pods may run on

    def pods(self) -> int:
        """How many more of these pods the nodes can take (a pod's GPUs come from one node)."""
        return sum(f // self.per_pod for f in self.free) if self.per_pod > 0 else 0


@dataclass(frozen=True)
class ManualCommand:
    """A user's command (from an annotation); `id` makes it consumed exactly once."""

    action: CommandAction
    id: str


@dataclass(frozen=True)
class Observations:
    generation: int
    regions: Mapping[str, RegionObservation]
    measurements: tuple[Measurement, ...] = ()  # judged results of the analysis requests due now
    command: ManualCommand | None = None
    gates: tuple[GateResult, ...] = ()  # answers of the gates due now


@dataclass(frozen=True)
class GateRequest:
    """Ask gate `gate` (of `type`) whether `revision` may go on; `wave` is the wave a confirmPromotion
    gate would promote (0 for the other types). `attempt` counts from 1."""

    gate: str
    type: GateType
    revision: str
    stable_revision: str | None
    wave: int
    attempt: int


# pending: no answer yet, ask again soon (a gate's Job still running)
GateOutcome = Literal["passed", "failed", "timeout", "pending"]


@dataclass(frozen=True)
class GateResult:
    """A gate's answer. `code` is the HTTP status (None: no answer); `message` says what happened in
    a few words with a bounded excerpt of the answer's body, never a URL or a header."""

    gate: str
    revision: str
    wave: int
    outcome: GateOutcome
    message: str
    code: int | None = None


@dataclass(frozen=True)
class AnalysisRequest:
    """Measure every metric of the spec once in `region`, over the last `window_seconds`.

    `canary_revision` is the revision being judged: the canary during a step, the newly promoted
    stable revision during bake time.

    `stable_revision` is the live baseline to compare with over the same window and region, or None
    when no revision serves beside the judged one: during bake (the previous revision has no pods
    left) and in an analysis step at 100% (stable takes no traffic). Then a baseline bound compares
    with `reference` instead: metric name -> the stable value last measured for that metric in this
    region (the newest measurement in status with a baseline). A metric absent from `reference` has
    no known stable value, so its baseline bound cannot be judged (Inconclusive, never Successful).
    `reference` may be given with a live baseline too; it is only for when there is none.

    `warmup_until` is when the canary's pods in the region finished warming up (ISO 8601). The
    engine asks for no window that starts earlier; a measurement whose window does anyway is
    Inconclusive, never Successful.
    """

    region: str
    canary_revision: str
    stable_revision: str | None
    window_seconds: float
    warmup_until: str
    reference: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RevisionPlan:
    """One revision in one region: its pods, its share of traffic and which of its pods carry it.

    `weight` is the share of the region's traffic this revision receives once the plan is applied (a
    route's weight, or with the `replicas` router the share its serving pods make of all serving pods).
    `serving` is how many of its ready pods receive traffic with the `replicas` router; None means
    every pod of the revision, ready now or later (the only revision serving in the region).
    """

    revision: str
    role: Role
    replicas: int
    weight: int  # share of traffic, 0-100
    template: Template
    serving: int | None = None
    autoscaled: bool = False  # the region's autoscaler owns its replicas: left as they are (`replicas` as seen)


@dataclass(frozen=True)
class RegionPlan:
    """The desired state of a region. A revision not listed here is to be removed from the region.

    `autoscaler` is the revision whose Deployment the region's autoscaler scales (None: the region has
    fixed replicas): the stable revision, handed to the new one only once it runs the live count.
    """

    region: str
    revisions: tuple[RevisionPlan, ...]
    autoscaler: str | None = None


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: Reason
    message: str


@dataclass(frozen=True)
class Decision:
    status: ModelDeploymentStatus
    regions: tuple[RegionPlan, ...]
    events: tuple[Event, ...] = ()
    requeue_after: float = 30.0  # seconds until deciding again is useful
