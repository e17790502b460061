"""The rollout engine: a pure, deterministic state machine (docs/concepts.md says what it does)."""

from bellwether.rollout.conditions import degraded
from bellwether.rollout.due import analysis_due
from bellwether.rollout.engine import after_failure, decide
from bellwether.rollout.gates import gates_due

__all__ = ["after_failure", "analysis_due", "decide", "degraded", "gates_due"]
