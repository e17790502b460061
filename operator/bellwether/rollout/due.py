"""`analysis_due`: which regions need a measurement now, derived from the measurements kept in status."""

from __future__ import annotations

from datetime import datetime

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus
from bellwether.api.units import parse_duration
from bellwether.rollout.clock import elapsed, not_before, parse, plus
from bellwether.rollout.types import AnalysisRequest


def analysis_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> list[AnalysisRequest]:
    analysis = spec.analysis
    p = status.progress
    if analysis is None or status.phase in ("RolledBack", "Paused") or p.paused_by_user:
        return []
    if status.canary_revision is not None:
        steps = spec.rollout.steps
        waves = spec.waves()
        if status.step >= len(steps) or steps[status.step].analysis is None or status.wave >= len(waves):
            return []
        regions, canary, stable, since = (
            waves[status.wave],
            status.canary_revision,
            status.stable_revision,
            p.step_started_at,
        )
    elif p.bake_started_at is not None and p.previous_revision is not None and status.stable_revision is not None:
        regions = [r.name for r in spec.regions]
        canary, stable, since = status.stable_revision, p.previous_revision, p.bake_started_at
    else:
        return []
    if stable is None or since is None:
        return []
    interval = parse_duration(analysis.interval)
    warm_from = p.ready_since if p.ready_since is not None and not_before(p.ready_since, since) else since
    if status.canary_revision is None:
        warm_from = since
    warmup_until = plus(warm_from, spec.runtime.warmup_seconds)
    due = []
    for region in regions:
        taken = [m.at for m in status.analysis if m.region == region and not_before(m.at, since)]
        if not taken or elapsed(max(taken, key=parse), now) >= interval:
            due.append(AnalysisRequest(region, canary, stable, interval, warmup_until))
    return due
