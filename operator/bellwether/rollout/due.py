"""`analysis_due`: which regions need a measurement now, derived from the measurements kept in status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus
from bellwether.api.units import parse_duration
from bellwether.rollout.clock import parse
from bellwether.rollout.types import AnalysisRequest
from bellwether.rollout.window import analysis_start


@dataclass(frozen=True)
class _Schedule:
    regions: list[str]
    judged: str  # the revision being judged
    baseline: str | None  # the live revision to compare with, None when none serves beside it
    start: datetime  # the end of warm-up: the first window starts here
    warmup_until: str
    interval: float


def _schedule(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> _Schedule | None:
    analysis = spec.analysis
    p = status.progress
    if analysis is None or status.phase in ("RolledBack", "Paused") or p.paused_by_user or p.paused_reason:
        return None
    if status.stable_revision is None:
        return None
    if status.canary_revision is not None:
        steps = spec.rollout.steps
        waves = spec.waves()
        if status.step >= len(steps) or steps[status.step].analysis is None or status.wave >= len(waves):
            return None
        regions = waves[status.wave]
        judged = status.canary_revision
        # At 100% the stable revision takes no traffic: there is nothing live to compare with.
        baseline: str | None = status.stable_revision if status.canary_weight < 100 else None
    elif p.bake_started_at is not None and p.previous_revision is not None:
        # Bake: the previous revision has no pods left, so there is no live baseline either.
        regions = [r.name for r in spec.regions]
        judged, baseline = status.stable_revision, None
    else:
        return None
    warmup_until = analysis_start(spec, status)
    if warmup_until is None:
        return None
    return _Schedule(regions, judged, baseline, parse(warmup_until), warmup_until, parse_duration(analysis.interval))


def _latest_by_region(status: ModelDeploymentStatus, since: datetime) -> dict[str, datetime]:
    latest: dict[str, datetime] = {}
    for m in status.analysis:
        at = parse(m.at)
        if at >= since and (m.region not in latest or at > latest[m.region]):
            latest[m.region] = at
    return latest


def _next_due(s: _Schedule, latest: dict[str, datetime], region: str) -> datetime:
    """A region is due one interval after its last measurement, the first time one interval after warm-up."""
    return latest.get(region, s.start) + timedelta(seconds=s.interval)


def references(status: ModelDeploymentStatus) -> dict[tuple[str, str], float]:
    """(metric, region) -> stable's newest known value: the newest measurement in status with a baseline.

    Only measurements of this rollout count: older ones compared with a revision that is not the
    one being replaced.
    """
    out: dict[tuple[str, str], float] = {}
    newest: dict[tuple[str, str], datetime] = {}
    started = status.progress.rollout_started_at
    since = parse(started) if started is not None else None
    for m in status.analysis:
        if m.baseline is None:
            continue
        key, at = (m.metric, m.region), parse(m.at)
        if since is not None and at < since:
            continue
        if key not in newest or at >= newest[key]:
            newest[key], out[key] = at, m.baseline
    return out


def analysis_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> list[AnalysisRequest]:
    """The measurements to take now: one request per region whose next analysis window has fully passed."""
    s = _schedule(spec, status)
    if s is None or now - timedelta(seconds=s.interval) < s.start:
        return []
    latest = _latest_by_region(status, s.start)
    due = [region for region in s.regions if _next_due(s, latest, region) <= now]
    if not due:
        return []
    known = references(status) if s.baseline is None else {}
    return [
        AnalysisRequest(
            region,
            s.judged,
            s.baseline,
            s.interval,
            s.warmup_until,
            {metric: value for (metric, where), value in known.items() if where == region},
        )
        for region in due
    ]


def seconds_until_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> float | None:
    """Seconds until some region of the current step (or bake) is due a measurement; None if none will be."""
    s = _schedule(spec, status)
    if s is None:
        return None
    latest = _latest_by_region(status, s.start)
    first = min(_next_due(s, latest, region) for region in s.regions)
    return (first - now).total_seconds()
