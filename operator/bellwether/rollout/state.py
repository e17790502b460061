"""The working state of one decision: a copy of status being edited, plus the events it produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus, Progress
from bellwether.api.reasons import Reason
from bellwether.rollout.clock import stamp
from bellwether.rollout.types import Event, Observations


class DraftProgress(Progress):
    model_config = ConfigDict(frozen=False)


class DraftStatus(ModelDeploymentStatus):
    """A mutable copy of status that one decision edits; frozen again before it is returned."""

    model_config = ConfigDict(frozen=False)
    progress: DraftProgress = DraftProgress()

    @classmethod
    def of(cls, status: ModelDeploymentStatus) -> DraftStatus:
        # Shallow copies are enough: the items of the lists are frozen models, replaced, never edited.
        fields: dict[str, Any] = {name: _copy(getattr(status, name)) for name in ModelDeploymentStatus.model_fields}
        progress = status.progress
        fields["progress"] = DraftProgress.model_construct(
            **{name: _copy(getattr(progress, name)) for name in Progress.model_fields}
        )
        return cls.model_construct(**fields)

    def frozen(self) -> ModelDeploymentStatus:
        fields: dict[str, Any] = {name: _copy(getattr(self, name)) for name in ModelDeploymentStatus.model_fields}
        fields["progress"] = Progress.model_construct(
            **{name: _copy(getattr(self.progress, name)) for name in Progress.model_fields}
        )
        return ModelDeploymentStatus.model_construct(**fields)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


@dataclass
class Work:
    spec: ModelDeploymentSpec
    status: DraftStatus
    obs: Observations
    now: datetime
    events: list[Event] = field(default_factory=list)
    waiting_on_pods: bool = False
    held: bool = False  # at a `pause` step without a duration: waiting for `bellwether promote`
    degraded: tuple[Reason, str] | None = None  # (reason, message) when a settled revision is not fully serving
    gated: bool = False  # a gate holds the canary (status says which and why)
    gate_message: str | None = None  # what the canary waits for at a gate, for status' message

    @property
    def stamp(self) -> str:
        return stamp(self.now)

    def emit(self, type_: Literal["Normal", "Warning"], reason: Reason, message: str) -> None:
        self.events.append(Event(type_, reason, message))
