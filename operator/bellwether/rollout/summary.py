"""What people read: per-region status, the one-line message, the region summary and conditions."""

from __future__ import annotations

from bellwether.api import RegionStatus
from bellwether.api.status import RegionPhase
from bellwether.api.units import parse_duration
from bellwether.rollout.conditions import set_condition
from bellwether.rollout.plans import canary_weight_in, ready, wave_of
from bellwether.rollout.state import Work


def _region_phase(work: Work, name: str) -> RegionPhase:
    st = work.status
    seen = work.obs.regions.get(name)
    if seen is None or not seen.reachable:
        return "Unreachable"
    if st.phase == "RolledBack":
        return "RolledBack"
    if st.canary_revision is None:
        return "Baking" if st.progress.bake_started_at else "Healthy"
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


def _message(work: Work) -> str:
    st = work.status
    p = st.progress
    if st.phase == "RolledBack":
        return f"rolled back {p.rolled_back_revision}: {p.rollback_message}"
    if st.canary_revision is None:
        if p.bake_started_at is not None:
            return f"baking {st.stable_revision}: {p.successes} successful, {p.failures} failed measurements"
        return f"{st.stable_revision} serving in every region"
    steps = work.spec.rollout.steps
    regions = ", ".join(work.spec.waves()[st.wave])
    where = f"step {min(st.step + 1, len(steps))}/{len(steps)} in {regions}"
    if st.step >= len(steps):
        return f"promoting {st.canary_revision} in {regions}"
    step = steps[st.step]
    if p.paused_by_user:
        return f"{where}: paused"
    if step.analysis is not None and work.spec.analysis is not None:
        per_region = max(1, int(parse_duration(step.analysis.duration) // parse_duration(work.spec.analysis.interval)))
        total = per_region * len(work.spec.waves()[st.wave]) * len(work.spec.analysis.metrics)
        return f"{where}: analysis {p.successes}/{total} measurements successful"
    if step.pause is not None:
        return f"{where}: paused" + ("" if step.pause.duration is None else f" for {step.pause.duration}")
    if st.message and st.message.startswith("waiting"):
        return f"{where}: {st.message}"
    return f"{where}: canary at {st.canary_weight}%"


def summarise(work: Work, waiting: str | None) -> None:
    spec, st, obs = work.spec, work.status, work.obs
    target = st.canary_revision or st.stable_revision
    regions: list[RegionStatus] = []
    serving = 0
    available = True
    for region in spec.regions:
        seen = obs.regions.get(region.name)
        stable_ready = ready(obs, region.name, st.stable_revision)
        canary_ready = ready(obs, region.name, st.canary_revision)
        if ready(obs, region.name, target) >= region.replicas:
            serving += 1
        if stable_ready + canary_ready < region.replicas:
            available = False
        message = seen.error if seen is not None and not seen.reachable else None
        if seen is None:
            message = "not observed"
        regions.append(
            RegionStatus(
                name=region.name,
                stable_ready=stable_ready,
                canary_ready=canary_ready,
                weight=canary_weight_in(spec, st, region.name),
                phase=_region_phase(work, region.name),
                message=message,
            )
        )
    st.regions = regions
    st.region_summary = f"{serving}/{len(spec.regions)}"
    st.message = waiting if waiting and st.phase not in ("RolledBack", "Healthy") else _message(work)
    now, gen = work.stamp, work.obs.generation
    conditions = st.conditions
    conditions = set_condition(
        conditions,
        "Available",
        "True" if available else "False",
        "AllRegionsServing" if available else "ReplicasShort",
        "every region has its replicas ready" if available else "some regions have fewer ready replicas than asked",
        now,
        gen,
    )
    moving = st.phase in ("Progressing", "Paused")
    conditions = set_condition(
        conditions,
        "Progressing",
        "True" if moving else "False",
        {"Paused": "Paused", "RolledBack": "RolledBack", "Progressing": "RolloutInProgress"}.get(st.phase, "Complete"),
        st.message or "",
        now,
        gen,
    )
    degraded = st.phase == "RolledBack"
    conditions = set_condition(
        conditions,
        "Degraded",
        "True" if degraded else "False",
        (st.progress.rollback_reason or "RolledBack") if degraded else "Healthy",
        (st.progress.rollback_message or "") if degraded else "",
        now,
        gen,
    )
    st.conditions = conditions
