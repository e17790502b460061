"""After full promotion: keep judging for bakeTime; a failure reverts to the previous revision."""

from __future__ import annotations

from bellwether.api.units import parse_duration
from bellwether.rollout.clock import elapsed
from bellwether.rollout.judging import count, describe, record
from bellwether.rollout.rollback import revert_bake
from bellwether.rollout.state import Work


def bake(work: Work) -> None:
    st = work.status
    p = st.progress
    analysis = work.spec.analysis
    if p.bake_started_at is None:
        return
    if analysis is None or p.previous_revision is None:
        p.bake_started_at = None
        return
    regions = [r.name for r in work.spec.regions]
    worst = count(work, record(work, regions, p.bake_started_at))
    if p.failures > analysis.failure_limit:
        detail = describe(worst) if worst is not None else "analysis failed"
        revert_bake(work, f"{detail}; {p.failures} failed > failureLimit {analysis.failure_limit}")
        return
    if elapsed(p.bake_started_at, work.now) >= parse_duration(work.spec.rollout.bake_time):
        p.bake_started_at = None
        p.previous_revision = None
        p.failures = p.inconclusives = p.successes = 0
        work.emit("Normal", "BakeSucceeded", f"{st.stable_revision} baked for {work.spec.rollout.bake_time}")
        return
    st.phase = "Progressing"
