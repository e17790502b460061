"""The working state of one decision: a copy of status being edited, plus the events it produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus, Progress
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
        return cls.model_validate(status.model_dump())

    def frozen(self) -> ModelDeploymentStatus:
        return ModelDeploymentStatus.model_validate(self.model_dump())


@dataclass
class Work:
    spec: ModelDeploymentSpec
    status: DraftStatus
    obs: Observations
    now: datetime
    events: list[Event] = field(default_factory=list)
    waiting_on_pods: bool = False
    new_measurements: list[str] = field(default_factory=list)  # keys of measurements first seen now

    @property
    def stamp(self) -> str:
        return stamp(self.now)

    def emit(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))
