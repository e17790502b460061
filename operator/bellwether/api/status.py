"""The `ModelDeployment` status: everything the rollout needs to resume after a restart.

All progress and every timestamp live here (not in operator memory), so an operator killed at any
moment picks up exactly where it was. The first block is what people read; the `progress` block is
the engine's bookkeeping, kept in the same object so it is written in the same single patch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bellwether.api.spec import ModelRef, Runtime, Wire

Phase = Literal["Pending", "Progressing", "Paused", "Healthy", "Degraded", "RolledBack"]
RegionPhase = Literal[
    "Pending", "Progressing", "Analyzing", "Paused", "Promoted", "Baking", "Healthy", "RolledBack", "Unreachable"
]
Verdict = Literal["Successful", "Failed", "Inconclusive"]
ConditionType = Literal["Available", "Progressing", "Degraded"]

MAX_MEASUREMENTS_PER_SERIES = 10
MAX_HISTORY = 10


class Condition(Wire):
    type: ConditionType
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: str | None = None
    observed_generation: int | None = None


class RegionStatus(Wire):
    name: str
    stable_ready: int = 0
    canary_ready: int = 0
    weight: int = 0
    phase: RegionPhase = "Pending"
    message: str | None = None


class Measurement(Wire):
    """One judged query result: what the canary measured, what stable measured, the bound, the verdict."""

    metric: str
    region: str
    verdict: Verdict
    value: float | None = None
    baseline: float | None = None
    bound: str | None = Field(default=None, description="The bound applied, e.g. '<= 0.01' or '<= 1.5x stable'.")
    reason: str | None = None
    at: str


class Template(Wire):
    """What shapes a revision's pods; kept so any revision in history can be rendered again for rollback."""

    model: ModelRef
    runtime: Runtime


class HistoryEntry(Wire):
    revision: str
    model: str = Field(description="The model version of that revision.")
    promoted_at: str
    template: Template


class Progress(Wire):
    """The engine's bookkeeping: timestamps and counters of the current step, and consumed commands."""

    rollout_started_at: str | None = None
    step_started_at: str | None = None
    wave_started_at: str | None = None
    bake_started_at: str | None = None
    ready_since: str | None = Field(default=None, description="When the step's canary pods were first all ready.")
    failures: int = 0
    inconclusives: int = 0
    successes: int = 0
    promoted_regions: list[str] = Field(default_factory=list)
    rolled_back_revision: str | None = Field(
        default=None, description="A revision rolled back and not retried by itself; `retry` clears it."
    )
    paused_by_user: bool = False
    last_command: str | None = Field(default=None, description="Id of the last manual command consumed.")
    canary_template: Template | None = None
    previous_revision: str | None = Field(
        default=None, description="During bake: the revision to revert to if the bake fails."
    )


class ModelDeploymentStatus(Wire):
    observed_generation: int | None = None
    phase: Phase = "Pending"
    stable_revision: str | None = None
    canary_revision: str | None = None
    wave: int = 0
    step: int = 0
    canary_weight: int = 0
    regions: list[RegionStatus] = Field(default_factory=list)
    analysis: list[Measurement] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list, description="Newest first; history[0] is stable.")
    conditions: list[Condition] = Field(default_factory=list)
    message: str | None = None
    region_summary: str | None = Field(default=None, description="Regions serving the target revision, e.g. 2/3.")
    progress: Progress = Field(default_factory=Progress)
