"""The phase: derived once per decision, here, from the facts the decision left in status.

Steps, bakes, rollbacks and commands change facts (a canary revision, a bake start, a pause, a
rolled-back revision); none of them writes the phase. Deriving it in one place means two code paths
can never disagree about it, and `WHEN` below is the whole table users read in docs/concepts.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from bellwether.api import ModelDeploymentStatus
from bellwether.api.status import Phase
from bellwether.rollout.live import needed
from bellwether.rollout.pausing import paused
from bellwether.rollout.plans import ready
from bellwether.rollout.state import Work

WHEN: Mapping[Phase, str] = {
    "Pending": "Not acted on yet.",
    "Progressing": "Deploying (a first revision, a scale-up, stable pods coming back after a rollback), rolling a "
    "canary out, or baking.",
    "Paused": "Waiting for a person: `pause`, a pause step without a duration, or inconclusive analysis with "
    "`onInconclusive: pause`; or for a gate that holds (docs/gates.md).",
    "Healthy": "No canary, no bake, and the stable revision serves every region at full size.",
    "Degraded": "Nothing is rolling out, but the stable revision, once serving in full, lost replicas or a region.",
    "RolledBack": "The revision the spec asks for was rolled back (or reverted during its bake); the previous "
    "revision serves.",
}


def derive(work: Work, target: str, before: ModelDeploymentStatus) -> None:
    """Set `status.phase` (and, when settled but short of pods, the message and Degraded cause)."""
    st = work.status
    if st.canary_revision is not None or st.progress.bake_started_at is not None:
        st.phase = "Paused" if paused(work) or work.held or work.gated else "Progressing"
        return
    if st.progress.rolled_back_revision is not None and st.progress.rolled_back_revision == target:
        st.phase = "RolledBack"
        return
    short = [
        r
        for r in work.spec.regions
        if ready(work.obs, r.name, st.stable_revision) < needed(work.spec, st, work.obs, r.name)
    ]
    if not short:
        st.phase = "Healthy"
        return
    work.waiting_on_pods = True
    was_serving = (
        before.phase in ("Healthy", "Degraded")
        and before.observed_generation == work.obs.generation
        and before.stable_revision == st.stable_revision
    )
    if not was_serving:
        st.phase = "Progressing"
        st.message = f"waiting for {st.stable_revision} pods in {', '.join(r.name for r in short)}"
        return
    _degraded(work, [r.name for r in short])


def _degraded(work: Work, short: list[str]) -> None:
    st = work.status
    lost, problems = [], []
    for name in short:
        seen = work.obs.regions.get(name)
        if seen is None or not seen.reachable:
            lost.append(name)
            problems.append(f"{name} unreachable ({(seen.error if seen is not None else None) or 'not observed'})")
        else:
            wanted = needed(work.spec, st, work.obs, name)
            have = ready(work.obs, name, st.stable_revision)
            problems.append(f"{name} has {have}/{wanted} ready replicas of {st.stable_revision}")
    st.phase = "Degraded"
    st.message = "degraded: " + "; ".join(problems)
    work.degraded = ("RegionUnreachable" if len(lost) == len(short) else "ReplicasUnavailable", st.message)
