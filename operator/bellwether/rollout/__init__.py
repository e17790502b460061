"""The rollout engine: a pure, deterministic state machine (DESIGN.md §4)."""

from bellwether.rollout.conditions import degraded
from bellwether.rollout.due import analysis_due
from bellwether.rollout.engine import after_failure, decide

__all__ = ["after_failure", "analysis_due", "decide", "degraded"]
