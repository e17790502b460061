"""The `ModelDeployment` status: everything the rollout needs to resume after a restart.

All progress and every timestamp live here (not in operator memory), so an operator killed at any
moment picks up exactly where it was. The first block is what people read; the `progress` block is
the engine's bookkeeping, kept in the same object so it is written in the same single patch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bellwether.api.hooks import GateStatus
from bellwether.api.spec import ModelRef, Runtime, Wire

Phase = Literal["Pending", "Progressing", "Paused", "Healthy", "Degraded", "RolledBack"]
RegionPhase = Literal[
    "Pending", "Progressing", "Analyzing", "Paused", "Promoted", "Baking", "Healthy", "RolledBack", "Unreachable"
]
Verdict = Literal["Successful", "Failed", "Inconclusive"]
ConditionType = Literal["Available", "Progressing", "Degraded"]

MAX_MEASUREMENTS_PER_SERIES = 10
MAX_REASON = 512  # characters of a measurement's reason kept in status
MAX_MEASUREMENTS = 512  # in all (16 regions x 32 metrics, one each): many series keep fewer each
MAX_HISTORY = 10
# History entries past these keep no template: only stable (history[0]) and the revision a bake
# reverts to (history[1]) may have to be rendered again. A template is up to ~100 KB of pod spec.
HISTORY_TEMPLATES = 2


class Condition(Wire):
    type: ConditionType
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: str | None = None
    observed_generation: int | None = None


class RegionStatus(Wire):
    name: str
    replicas: int = Field(
        default=0, description="The replicas the region wants: what stable restores after a rollback."
    )
    stable_ready: int | None = Field(
        default=None, description="Ready stable pods; unset when the region cannot be seen."
    )
    canary_ready: int | None = Field(
        default=None, description="Ready canary pods; unset when the region cannot be seen."
    )
    weight: int = Field(default=0, description="The canary's share of traffic the step asks for, 0-100.")
    share: int = Field(
        default=0,
        description="The canary's share of traffic as routed: with the replicas router, its serving pods' "
        "part of all serving pods (the closest the replica counts allow to the weight).",
    )
    phase: RegionPhase = "Pending"
    message: str | None = None


class Measurement(Wire):
    """One judged query result: what the canary measured, what stable measured, the bound, the verdict."""

    metric: str
    region: str
    revision: str | None = Field(default=None, description="The revision judged.")
    verdict: Verdict
    value: float | None = None
    baseline: float | None = None
    unit: Literal["s", "ratio"] | None = Field(default=None, description="Of value and baseline, when known.")
    bound: str | None = Field(
        default=None, max_length=256, description="The bound applied, e.g. '<= 0.01' or '<= 1.5x stable'."
    )
    reason: str | None = Field(default=None, max_length=MAX_REASON, description="Why this verdict, for people.")
    sequential: bool = Field(
        default=False,
        description="Judged on the requests with an anytime-valid sequential test: a Failed is already "
        "conclusive and persisting, so it rolls back without waiting for failureLimit.",
    )
    cause: Literal["pending", "error"] | None = Field(
        default=None,
        description="Of an Inconclusive verdict: pending = not enough evidence yet (warm-up, a new pod's "
        "first scrape, too few requests, not yet conclusive), which never counts against inconclusiveLimit; "
        "error = the query failed or found no series.",
    )
    at: str


class Template(Wire):
    """What shapes a revision's pods; kept so any revision in history can be rendered again for rollback."""

    model: ModelRef
    runtime: Runtime


class HistoryEntry(Wire):
    revision: str
    model: str = Field(description="The model version of that revision.")
    promoted_at: str
    template: Template | None = Field(
        default=None, description="What renders its pods again; kept for the stable and the previous revision only."
    )


class Progress(Wire):
    """The engine's bookkeeping: timestamps and counters of the current step, and consumed commands."""

    rollout_started_at: str | None = None
    step_started_at: str | None = None
    wave_started_at: str | None = None
    bake_started_at: str | None = None
    ready_since: str | None = Field(default=None, description="When the step's canary pods were first all ready.")
    resumed_at: str | None = Field(
        default=None,
        description="When a person last resumed; the analysis of the step (or bake) counts its duration "
        "again from then, so a resumed analysis needs as much evidence as an uninterrupted one.",
    )
    pods_failing: str | None = Field(
        default=None, description="A canary pod problem Kubernetes reports (seen since podsFailingSince)."
    )
    pods_failing_since: str | None = None
    unreachable_since: str | None = Field(default=None, description="Since when a region of the wave is unreachable.")
    failures: int = 0
    inconclusives: int = 0
    successes: int = 0
    promoted_regions: list[str] = Field(default_factory=list)
    rolled_back_revision: str | None = Field(
        default=None, description="A revision rolled back and not retried by itself; `retry` clears it."
    )
    paused_by_user: bool = False
    paused_reason: str | None = Field(
        default=None,
        description="Why the rollout paused itself (e.g. InconclusiveAnalysis); unset for a person's pause.",
    )
    paused_message: str | None = Field(default=None, description="What made the rollout pause itself.")
    evidence: list[str] = Field(
        default_factory=list,
        description="metric@region series with a successful measurement in the current step or bake; "
        "a step passes only when every metric has one in every region of its wave.",
    )
    last_command: str | None = Field(default=None, description="Id of the last manual command consumed.")
    canary_template: Template | None = None
    previous_revision: str | None = Field(
        default=None, description="During bake: the revision to revert to if the bake fails."
    )
    draining_revision: str | None = Field(
        default=None, description="A replaced revision kept until the stable pods replacing it are ready."
    )
    draining_template: Template | None = None
    rollback_reason: str | None = Field(default=None, description="Condition reason of the last rollback.")
    rollback_message: str | None = Field(default=None, description="Why the last rollback happened.")


class ModelDeploymentStatus(Wire):
    observed_generation: int | None = Field(default=None, description="The spec generation this status describes.")
    phase: Phase = Field(default="Pending", description="Where the rollout is; Healthy = stable everywhere.")
    stable_revision: str | None = Field(default=None, description="The revision serving most traffic.")
    canary_revision: str | None = Field(default=None, description="The revision being rolled out, if any.")
    wave: int = Field(default=0, description="Index of the current wave in spec.rollout.waves (or the default waves).")
    step: int = Field(default=0, description="Index of the current step in spec.rollout.steps.")
    canary_weight: int = Field(
        default=0, description="The canary's share of traffic the current step asks for in its wave, 0-100."
    )
    canary_share: str | None = Field(
        default=None,
        description="The share the canary receives as routed in the current wave, e.g. '20%' or '20-33%' "
        "when its regions differ.",
    )
    regions: list[RegionStatus] = Field(default_factory=list, description="Per region: ready replicas and weight.")
    analysis: list[Measurement] = Field(
        default_factory=list,
        max_length=MAX_MEASUREMENTS,
        description="The latest judged measurements, a bounded number per metric and region.",
    )
    history: list[HistoryEntry] = Field(
        default_factory=list, max_length=MAX_HISTORY, description="Newest first; history[0] is stable."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Available, Progressing and Degraded.")
    message: str | None = Field(default=None, description="What is happening now, in one line.")
    region_summary: str | None = Field(default=None, description="Regions serving the target revision, e.g. 2/3.")
    gates: list[GateStatus] = Field(
        default_factory=list, description="The last answer of each gate asked in this rollout (docs/gates.md)."
    )
    progress: Progress = Field(default_factory=Progress)
