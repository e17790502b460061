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
    regions: dict[str, str | None]  # region -> the live revision to compare with (None: none beside it)
    judged: str  # the revision being judged
    start: datetime  # the end of warm-up: the first window starts here
    warmup_until: str
    interval: float


def judged_regions(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> dict[str, str | None]:
    """Every region where the revision being judged serves, with its live baseline.

    The canary is judged for as long as it serves, not only in `analysis` steps: in the regions of
    waves already promoted (alone there, so against stable's last values) and in the current wave
    during its analysis and pause steps. Not while a `setWeight` (or the final 100%) waits for new
    canary pods: those are still loading the model. The bake judges every region.
    """
    if status.canary_revision is not None:
        waves, steps = spec.waves(), spec.rollout.steps
        if status.wave >= len(waves):
            return {}
        regions: dict[str, str | None] = {r: None for wave in waves[: status.wave] for r in wave}
        settled = status.step < len(steps) and steps[status.step].set_weight is None
        if status.canary_weight > 0 and settled:
            # At 100%, or where the replica counts gave the canary every serving pod (one replica,
            # no surge), stable takes no traffic: there is nothing live to compare with.
            routed = {r.name: r.share for r in status.regions}
            for r in waves[status.wave]:
                alone = status.canary_weight >= 100 or routed.get(r, 0) >= 100
                regions[r] = None if alone else status.stable_revision
        return regions
    if status.progress.bake_started_at is not None and status.progress.previous_revision is not None:
        # Bake: the previous revision has no pods left, so there is no live baseline either.
        return {r.name: None for r in spec.regions}
    return {}


def _schedule(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> _Schedule | None:
    analysis = spec.analysis
    if analysis is None or status.phase == "RolledBack" or status.stable_revision is None:
        return None
    regions = judged_regions(spec, status)
    judged = status.canary_revision or status.stable_revision
    warmup_until = analysis_start(spec, status)
    if not regions or warmup_until is None:
        return None
    return _Schedule(regions, judged, parse(warmup_until), warmup_until, parse_duration(analysis.interval))


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
    known = references(status)
    return [
        AnalysisRequest(
            region,
            s.judged,
            s.regions[region],
            s.interval,
            s.warmup_until,
            {metric: value for (metric, where), value in known.items() if where == region}
            if s.regions[region] is None
            else {},
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
