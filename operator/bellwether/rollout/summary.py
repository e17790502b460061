"""What people read: per-region status, the one-line message, the region summary and conditions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from bellwether.api import Condition, RegionStatus
from bellwether.api.reasons import Reason, as_reason
from bellwether.api.status import RegionPhase
from bellwether.api.units import parse_duration
from bellwether.rollout.clock import elapsed
from bellwether.rollout.conditions import set_condition
from bellwether.rollout.judging import no_evidence
from bellwether.rollout.live import live_replicas, needed
from bellwether.rollout.plans import canary_weight_in, ready, wave_of
from bellwether.rollout.state import Work
from bellwether.rollout.types import RegionPlan
from bellwether.rollout.window import analysis_start


def _region_phase(work: Work, name: str) -> RegionPhase:
    st = work.status
    seen = work.obs.regions.get(name)
    if seen is None or not seen.reachable:
        return "Unreachable"
    if st.phase == "RolledBack":
        return "RolledBack"
    if st.canary_revision is None:
        if st.progress.bake_started_at:
            return "Paused" if st.phase == "Paused" else "Baking"
        return (
            "Healthy"
            if ready(work.obs, name, st.stable_revision) >= needed(work.spec, st, work.obs, name)
            else "Progressing"
        )
    wave = wave_of(work.spec, name)
    if wave < st.wave:
        return "Promoted"
    if wave > st.wave:
        return "Pending"
    if st.phase == "Paused":
        return "Paused"
    steps = work.spec.rollout.steps
    if st.step < len(steps) and steps[st.step].analysis is not None:
        return "Analyzing"
    return "Progressing"


def _analysis_progress(work: Work, regions: list[str], duration: float, counted: str) -> str:
    """How far an analysis is: warming up, counting, or past its duration and still short of evidence."""
    st = work.status
    start = analysis_start(work.spec, st)
    if start is not None and elapsed(start, work.now) < 0:
        return f"canary warming up until {start}, analysis starts then"
    if elapsed(start, work.now) >= duration:
        lacking = no_evidence(work, regions, start)
        if lacking is not None:
            return f"{counted}; duration over but {lacking} yet"
    return counted


def _message(work: Work) -> str:
    st = work.status
    p = st.progress
    if st.phase == "RolledBack":
        return f"rolled back {p.rolled_back_revision}: {p.rollback_message}"
    if p.paused_reason is not None:
        where = f"baking {st.stable_revision}" if st.canary_revision is None else _where(work)
        return f"{where}: paused ({p.paused_reason}): {p.paused_message}; `bellwether resume` measures again"
    if st.canary_revision is None:
        if p.bake_started_at is not None:
            if p.paused_by_user:
                return f"baking {st.stable_revision}: paused"
            counted = f"{p.successes} successful, {p.failures} failed measurements"
            regions = [r.name for r in work.spec.regions]
            bake_time = parse_duration(work.spec.rollout.bake_time)
            return f"baking {st.stable_revision}: {_analysis_progress(work, regions, bake_time, counted)}"
        return f"{st.stable_revision} serving in every region"
    steps = work.spec.rollout.steps
    regions = work.spec.waves()[st.wave]
    where = _where(work)
    if st.step >= len(steps):
        return f"promoting {st.canary_revision} in {', '.join(regions)}"
    step = steps[st.step]
    if p.paused_by_user:
        return f"{where}: paused"
    if step.analysis is not None and work.spec.analysis is not None:
        duration = parse_duration(step.analysis.duration)
        per_region = max(1, int(duration // parse_duration(work.spec.analysis.interval)))
        total = per_region * len(regions) * len(work.spec.analysis.metrics)
        counted = f"analysis {p.successes}/{total} measurements successful"
        return f"{where}: {_analysis_progress(work, regions, duration, counted)}"
    if step.pause is not None:
        return f"{where}: paused" + ("" if step.pause.duration is None else f" for {step.pause.duration}")
    if st.message and st.message.startswith("waiting"):
        return f"{where}: {st.message}"
    return f"{where}: canary at {st.canary_weight}%"


def _canary_share(plan: RegionPlan, canary: str | None) -> int:
    return next((r.weight for r in plan.revisions if r.revision == canary), 0) if canary is not None else 0


def _wave_share(work: Work, shares: dict[str, int]) -> str | None:
    """The current wave's canary share as routed: one figure, or the range its regions span."""
    if work.status.canary_revision is None:
        return None
    found = sorted({shares.get(r, 0) for r in work.spec.waves()[work.status.wave]})
    return f"{found[0]}%" if len(found) == 1 else f"{found[0]}-{found[-1]}%"


def _where(work: Work) -> str:
    st = work.status
    steps = work.spec.rollout.steps
    regions = ", ".join(work.spec.waves()[st.wave])
    return f"step {min(st.step + 1, len(steps))}/{len(steps)} in {regions}"


def summarise(work: Work, waiting: str | None, plans: Sequence[RegionPlan]) -> None:
    spec, st = work.spec, work.status
    shares = {plan.region: _canary_share(plan, st.canary_revision) for plan in plans}
    st.regions = [_region_status(work, region.name, shares.get(region.name, 0)) for region in spec.regions]
    target = st.canary_revision or st.stable_revision
    serving = sum(ready(work.obs, r.name, target) >= needed(spec, st, work.obs, r.name) for r in spec.regions)
    st.canary_share = _wave_share(work, shares)
    st.region_summary = f"{serving}/{len(spec.regions)}"
    st.message = waiting if waiting and st.phase not in ("RolledBack", "Healthy") else _message(work)
    st.conditions = _conditions(work)


def _region_status(work: Work, name: str, share: int) -> RegionStatus:
    """What people see of a region; ready counts are unknown (unset), never 0, where it cannot be seen."""
    st, obs = work.status, work.obs
    seen = obs.regions.get(name)
    visible = seen is not None and seen.reachable
    message = seen.error if seen is not None and not seen.reachable else None
    return RegionStatus(
        name=name,
        replicas=live_replicas(work.spec, st, obs, name),
        stable_ready=ready(obs, name, st.stable_revision) if visible else None,
        canary_ready=ready(obs, name, st.canary_revision) if visible else None,
        weight=canary_weight_in(work.spec, st, name),
        share=share,
        phase=_region_phase(work, name),
        message="not observed" if seen is None else message,
    )


def _available(work: Work) -> tuple[Literal["True", "False", "Unknown"], Reason, str]:
    st, obs = work.status, work.obs
    unseen = [r.name for r in work.spec.regions if (seen := obs.regions.get(r.name)) is None or not seen.reachable]
    short = [
        r.name
        for r in work.spec.regions
        if r.name not in unseen
        and ready(obs, r.name, st.stable_revision) + ready(obs, r.name, st.canary_revision)
        < needed(work.spec, st, obs, r.name)
    ]
    if short:
        return "False", "ReplicasShort", f"fewer ready replicas than asked in {', '.join(short)}"
    if unseen:
        # Its pods keep serving what they served; whether they all still are is not known from here.
        return "Unknown", "RegionUnreachable", f"cannot see {', '.join(unseen)}; the others have their replicas ready"
    return "True", "AllRegionsServing", "every region has its replicas ready"


def _conditions(work: Work) -> list[Condition]:
    st = work.status
    now, gen = work.stamp, work.obs.generation
    available, reason, says = _available(work)
    conditions = set_condition(st.conditions, "Available", available, reason, says, now, gen)
    moving = st.phase in ("Progressing", "Paused")
    progressing_reason: Reason = {
        "Paused": "GateHeld" if work.gated else as_reason(st.progress.paused_reason, "Paused"),
        "RolledBack": "RolledBack",
        "Progressing": "RolloutInProgress",
        "Degraded": "Degraded",
    }.get(st.phase, "Complete")
    conditions = set_condition(
        conditions, "Progressing", "True" if moving else "False", progressing_reason, st.message or "", now, gen
    )
    degraded: tuple[Reason, str] | None = work.degraded if st.phase == "Degraded" else None
    if st.phase == "RolledBack":
        degraded = (as_reason(st.progress.rollback_reason, "RolledBack"), st.progress.rollback_message or "")
    status: Literal["True", "False"] = "True" if degraded else "False"
    return set_condition(
        conditions,
        "Degraded",
        status,
        degraded[0] if degraded else "Healthy",
        degraded[1] if degraded else "",
        now,
        gen,
    )
