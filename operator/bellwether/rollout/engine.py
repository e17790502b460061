"""`decide`: the rollout as a pure function of (spec, status, observations, now).

Order of a decision: consume a new command; settle which revision should be rolling out; move the
canary (or bake) as far as the observations allow; then derive the region plans and the readable
status. No clock reads, no I/O: the caller supplies `now` and applies the result.
"""

from __future__ import annotations

from datetime import datetime

from bellwether.api import HistoryEntry, ModelDeploymentSpec, ModelDeploymentStatus, revision_of, template_of
from bellwether.api.units import format_duration, parse_duration
from bellwether.rollout import gates
from bellwether.rollout.bake import bake
from bellwether.rollout.clock import elapsed
from bellwether.rollout.commands import apply_command
from bellwether.rollout.conditions import set_condition
from bellwether.rollout.due import seconds_until_due
from bellwether.rollout.live import needed
from bellwether.rollout.pausing import paused
from bellwether.rollout.phases import derive
from bellwether.rollout.plans import all_plans, ready
from bellwether.rollout.rollback import roll_back, start_canary
from bellwether.rollout.state import DraftStatus, Work
from bellwether.rollout.steps import advance
from bellwether.rollout.summary import summarise
from bellwether.rollout.types import Decision, Observations, RegionPlan
from bellwether.rollout.window import analysis_start

WAIT_FOR_PODS_SECONDS = 5.0
IDLE_SECONDS = 300.0
PAUSED_SECONDS = 60.0


def decide(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, now: datetime) -> Decision:
    work = Work(spec, DraftStatus.of(status), obs, now)
    st = work.status
    before = status.phase
    template = template_of(spec)
    target = revision_of(template)
    apply_command(work)
    gates.record(work)
    if st.stable_revision is None:
        # The first revision has nothing to be compared with: straight to stable everywhere.
        st.stable_revision = target
        st.history = [
            HistoryEntry(revision=target, model=spec.model.version, promoted_at=work.stamp, template=template)
        ]
        work.emit("Normal", "Deploying", f"first revision {target} deployed in every region")
    elif target == st.stable_revision:
        if st.canary_revision is not None:
            # The spec went back to stable mid-rollout: drop the canary without calling it a failure.
            st.progress.draining_revision = st.canary_revision
            st.progress.draining_template = st.progress.canary_template
            st.canary_revision = None
            st.progress.canary_template = None
            st.wave = st.step = st.canary_weight = 0
            work.emit("Normal", "RolloutCancelled", f"spec is back to {target}: canary removed")
        st.progress.rolled_back_revision = None
    elif target != st.canary_revision and target != st.progress.rolled_back_revision:
        start_canary(work, target, template)
    if st.canary_revision is not None:
        advance(work)
    else:
        bake(work)
    derive(work, target, status)
    if st.progress.draining_revision is not None and _drained(work):
        st.progress.draining_revision = None
        st.progress.draining_template = None
    st.observed_generation = obs.generation
    plans = all_plans(spec, st, obs)
    summarise(work, st.message if work.waiting_on_pods else work.gate_message, plans)
    if st.phase != before:
        work.emit(
            "Warning" if st.phase in ("RolledBack", "Degraded") else "Normal",
            "PhaseChanged",
            f"{before} -> {st.phase}: {st.message}",
        )
    final = st.frozen()
    return Decision(final, plans, tuple(work.events), _with_gates(work, _requeue(work)))


def _with_gates(work: Work, requeue: float) -> float:
    """Sooner when a gate is to be asked before then (a new one: within a second)."""
    due = gates.seconds_until_gate(work.spec, work.status, work.now)
    return requeue if due is None else min(requeue, max(1.0, due))


def _needed(work: Work, region: str) -> int:
    return needed(work.spec, work.status, work.obs, region)


def _drained(work: Work) -> bool:
    st = work.status
    return all(ready(work.obs, r.name, st.stable_revision) >= _needed(work, r.name) for r in work.spec.regions)


def _requeue(work: Work) -> float:
    spec, st = work.spec, work.status
    p = st.progress
    if work.waiting_on_pods or p.draining_revision is not None:
        return WAIT_FOR_PODS_SECONDS
    if st.canary_revision is None and p.bake_started_at is None:
        return IDLE_SECONDS
    if paused(work):
        return PAUSED_SECONDS
    interval = parse_duration(spec.analysis.interval) if spec.analysis is not None else IDLE_SECONDS
    due = seconds_until_due(spec, st, work.now)
    start = analysis_start(spec, st)
    if p.bake_started_at is not None:
        return _sooner(due, parse_duration(spec.rollout.bake_time) - elapsed(start, work.now), interval)
    steps = spec.rollout.steps
    if st.step < len(steps):
        step = steps[st.step]
        if step.pause is not None:
            if step.pause.duration is None:
                return PAUSED_SECONDS
            return max(1.0, parse_duration(step.pause.duration) - elapsed(p.step_started_at, work.now))
        if step.analysis is not None:
            return _sooner(due, parse_duration(step.analysis.duration) - elapsed(start, work.now), interval)
    return WAIT_FOR_PODS_SECONDS


def _sooner(due: float | None, left: float, fallback: float) -> float:
    """Wake for the next measurement or the end of the duration, whichever comes first.

    Once the duration is over (missing evidence keeps the analysis going) only measurements matter:
    never a busy loop.
    """
    waits = [w for w in (due, left if left > 0 else None) if w is not None]
    return max(1.0, min(waits)) if waits else fallback


FAILED_CYCLE_SECONDS = 30.0


def after_failure(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, obs: Observations, now: datetime, error: str
) -> Decision:
    """What a cycle that could not decide still decides: Degraded says why, nothing is applied, and
    past `progressDeadline` the canary is rolled back (a rollout never hangs on a bug forever).

    `error` says what failed, for people; this is the last line of defence, not a way to handle input:
    the schema refuses what the engine cannot run."""
    work = Work(spec, DraftStatus.of(status), obs, now)
    st = work.status
    deadline = parse_duration(spec.rollout.progress_deadline)
    message = f"the rollout cycle failed, nothing applied: {error}"
    plans: tuple[RegionPlan, ...] = ()
    if st.canary_revision is not None and elapsed(st.progress.step_started_at, now) > deadline:
        roll_back(work, "CycleFailed", f"{message} (progressDeadline {format_duration(deadline)} exceeded)")
        derive(work, st.progress.rolled_back_revision or "", status)
        st.message = f"rolled back {st.progress.rolled_back_revision}: {st.progress.rollback_message}"
        plans = all_plans(spec, st, obs)
    else:
        st.message = message
    st.conditions = set_condition(st.conditions, "Degraded", "True", "CycleFailed", message, work.stamp, obs.generation)
    work.emit("Warning", "CycleFailed", message)
    return Decision(st.frozen(), plans, tuple(work.events), FAILED_CYCLE_SECONDS)
