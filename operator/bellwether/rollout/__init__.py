"""The rollout engine: a pure, deterministic state machine (DESIGN.md §4)."""

from bellwether.rollout.due import analysis_due
from bellwether.rollout.engine import decide

__all__ = ["analysis_due", "decide"]
