"""After full promotion: keep judging for bakeTime; a failure reverts to the previous revision.

The previous revision has no pods any more, so the bake compares with stable's last measured values
(see `AnalysisRequest.reference`). Like a step, the bake counts from the end of warm-up and ends only
with a Successful measurement of every metric in every region.
"""

from __future__ import annotations

from bellwether.api.reasons import Reason
from bellwether.api.units import parse_duration
from bellwether.rollout.due import references
from bellwether.rollout.judging import reset, weigh
from bellwether.rollout.pausing import clear_pause, pause_inconclusive, paused
from bellwether.rollout.rollback import revert_bake
from bellwether.rollout.state import Work
from bellwether.rollout.window import analysis_start


def bake(work: Work) -> None:
    st = work.status
    p = st.progress
    analysis = work.spec.analysis
    if p.bake_started_at is None:
        return
    if analysis is None or p.previous_revision is None:
        finish_bake(work)
        return
    if paused(work):
        return
    regions = [r.name for r in work.spec.regions]
    start = analysis_start(work.spec, st) or p.bake_started_at
    weighed = weigh(work, regions, start, parse_duration(work.spec.rollout.bake_time), references(st))
    if weighed.outcome == "failed":
        revert_bake(work, "BakeFailed", weighed.why)
    elif weighed.outcome == "inconclusive":
        if analysis.on_inconclusive == "rollback":
            revert_bake(work, "BakeInconclusive", weighed.why)
        else:
            pause_inconclusive(work, weighed.why)
    elif weighed.outcome == "passed":
        finish_bake(work, "BakeSucceeded", f"{st.stable_revision} baked for {work.spec.rollout.bake_time}")


def finish_bake(work: Work, reason: Reason | None = None, message: str = "") -> None:
    """The baked revision stays; the one before it is only history now."""
    p = work.status.progress
    p.bake_started_at = None
    p.previous_revision = None
    reset(work)
    clear_pause(work)
    if reason is not None:
        work.emit("Normal", reason, message)
