"""Pauses: a person's (`bellwether pause`) and the rollout's own, kept apart in status.

The rollout pauses itself when analysis stays inconclusive past `inconclusiveLimit` with
`onInconclusive: pause`. That pause records its reason and what was inconclusive (metric, region,
reasons), so `status` and the Progressing condition say why, and `resume` measures again from a zero
inconclusive count.
"""

from __future__ import annotations

from bellwether.api.reasons import Reason
from bellwether.rollout.state import Work

INCONCLUSIVE: Reason = "InconclusiveAnalysis"


def paused(work: Work) -> bool:
    p = work.status.progress
    return p.paused_by_user or p.paused_reason is not None


def pause_inconclusive(work: Work, why: str) -> None:
    p = work.status.progress
    p.paused_reason, p.paused_message = INCONCLUSIVE, why
    work.emit("Warning", INCONCLUSIVE, f"paused: {why}; `bellwether resume` measures again, or `promote` / `abort`")


def clear_pause(work: Work) -> None:
    p = work.status.progress
    p.paused_by_user = False
    p.paused_reason = p.paused_message = None
