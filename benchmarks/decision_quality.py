"""Decision quality: how often each judge rolls back a healthy revision, lets a bad one through, how
quickly it catches one, and how long a healthy rollout takes, on the same scenarios and seeds.

    python benchmarks/decision_quality.py [--seeds 5] [--json] [-f examples/demo.yaml] [--scenario NAME ...]

Three policies, only the judge differs between them:

* `bellwether`: the request-level sequential judge (`analysis.measure`), presets decided on their
  histogram buckets and request counters since the analysis started.
* `mann-whitney`: the per-interval judge it replaced (`analysis.measure.measure_per_interval`): one
  p99 or error ratio per interval, canary against stable with a Mann-Whitney U test (Kayenta's way).
* `fixed-threshold`: one absolute bound per metric (the healthy level x a margin), the way most canary
  tools decide (`sim.threshold`).

Everything runs in the simulated world (virtual time), through the operator's engine, rendering and
metrics port. The figures describe the simulator's fleet (lognormal or log-t latencies per request,
binomial errors, a shared regional load cycle, the scenarios' surges, tails and ramps), not a real one.
Detection is counted in analysis intervals from when a regression is visible (the canary served past
its warm-up with the regression at the size that must be caught) to the rollback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bellwether.analysis.measure import measure, measure_per_interval
from bellwether.analysis.source import MetricSource
from bellwether.api import ModelDeploymentSpec
from bellwether.api.status import Measurement
from bellwether.cli.simulate import load
from bellwether.rollout.types import AnalysisRequest
from bellwether.sim.fleet import Profile
from bellwether.sim.play import Outcome, least_time, play, step_floor
from bellwether.sim.runner import Measure
from bellwether.sim.scenarios import CATALOG, Scenario
from bellwether.sim.threshold import MARGINS, bounds_for, fixed_threshold

DEFAULT_SPEC = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"
POLICIES = ("bellwether", "mann-whitney", "fixed-threshold")
GOAL_MEDIAN, GOAL_P95 = 2.0, 4.0  # analysis intervals from visible to rolled back


def judging(s: Scenario) -> bool:
    """Scenarios whose right outcome depends on the judge (not on GPUs, outages or missing series)."""
    return s.regressed is not None or s.quiet


def healthy(s: Scenario) -> bool:
    return s.regressed is False


@dataclass
class Run:
    """What one rollout tells the benchmark (small: it crosses process boundaries)."""

    result: str
    detection: float | None  # intervals from visible to rolled back
    promotion: float | None  # seconds from apply to serving everywhere
    measurements: int
    failed: int
    series_failed: int  # series (metric x region) with any Failed measurement
    series: int


async def _always_passing(
    spec: ModelDeploymentSpec,
    _name: str,
    _namespace: str,
    requests: Sequence[AnalysisRequest],
    _source: MetricSource,
    now: datetime,
) -> tuple[Measurement, ...]:
    """The judge no judge can beat: every window Successful the moment it is asked for. Its healthy
    rollout takes the steps' floor: timed steps, model loads in the batches maxSurge allows, warm-ups."""
    assert spec.analysis is not None
    return tuple(
        Measurement(
            metric=m.name, region=r.region, revision=r.canary_revision, at=now.isoformat(), verdict="Successful"
        )
        for r in requests
        for m in spec.analysis.metrics
    )


def measured_floor(path: str) -> float:
    """The healthy rollout's promotion time under `_always_passing`: what only the judge can add to."""
    spec = load(path).spec
    outcome = asyncio.run(play(spec, "healthy", seed=0, measure=_always_passing))
    assert outcome.promoted_at is not None, f"an always-passing judge did not promote: {outcome.reason}"
    return outcome.promoted_at - outcome.applied_at


def _policy(name: str, spec: ModelDeploymentSpec) -> Measure:
    if name == "mann-whitney":
        return measure_per_interval
    if name == "fixed-threshold":
        return fixed_threshold(bounds_for(spec, Profile()))
    return measure


def _one(args: tuple[str, str, str, int, int | None]) -> Run:
    path, scenario, policy, seed, limit = args
    spec = load(path).spec
    if policy == "bellwether" and limit is not None and spec.analysis is not None:
        spec = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"failure_limit": limit})})
    outcome = asyncio.run(play(spec, scenario, seed=seed, measure=_policy(policy, spec)))
    return _summary(outcome)


def _summary(o: Outcome) -> Run:
    measured = [m for e in o.timeline if e.kind == "measurement" for m in e.data["measurements"]]
    failed = [m for m in measured if m["verdict"] == "Failed"]
    series = {(m["metric"], m["region"]) for m in measured}
    return Run(
        o.result,
        None if o.detection_seconds is None else o.detection_seconds / o.interval,
        None if o.promoted_at is None else o.promoted_at - o.applied_at,
        len(measured),
        len(failed),
        len({(m["metric"], m["region"]) for m in failed}),
        len(series),
    )


@dataclass
class Tally:
    runs: list[Run] = field(default_factory=list)

    def outcomes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.runs:
            out[r.result] = out.get(r.result, 0) + 1
        return dict(sorted(out.items()))

    def detections(self) -> list[float]:
        return [r.detection for r in self.runs if r.detection is not None]


def _quantile(xs: Sequence[float], q: float) -> float | None:
    """The q-quantile (nearest rank), rounded: virtual times carry float noise, intervals do not."""
    if not xs:
        return None
    ordered = sorted(xs)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 2)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def figures(
    tallies: dict[tuple[str, str], Tally],
    scenarios: Sequence[Scenario],
    floor: float,
    loads: float,
    steps_alone: float,
) -> dict[str, Any]:
    """The JSON object: per policy the overall figures, per scenario and policy the outcomes."""
    out: dict[str, Any] = {"policies": {}, "scenarios": []}
    for policy in POLICIES:
        good = [r for s in scenarios if healthy(s) for r in tallies[(s.name, policy)].runs]
        bad = [r for s in scenarios if s.regressed for r in tallies[(s.name, policy)].runs]
        detections = [r.detection for r in bad if r.detection is not None]
        took = [
            r.promotion
            for s in scenarios
            if healthy(s) and not s.quiet
            for r in tallies[(s.name, policy)].runs
            if r.promotion is not None
        ]
        out["policies"][policy] = {
            "false_rollback_rate": _rate(sum(r.result == "rolled-back" for r in good), len(good)),
            "missed_rate": _rate(sum(r.result != "rolled-back" for r in bad), len(bad)),
            "detection_intervals_median": _quantile(detections, 0.5),
            "detection_intervals_p95": _quantile(detections, 0.95),
            "promotion_over_floor": _quantile([t / floor for t in took], 0.5),
            "promotion_over_loads": _quantile([t / loads for t in took], 0.5),
            "promotion_over_steps_alone": _quantile([t / steps_alone for t in took], 0.5),
            "false_alarm_per_measurement": _rate(sum(r.failed for r in good), sum(r.measurements for r in good)),
            "false_alarm_per_series": _rate(sum(r.series_failed for r in good), sum(r.series for r in good)),
        }
    for s in scenarios:
        for policy in POLICIES:
            t = tallies[(s.name, policy)]
            out["scenarios"].append(
                {
                    "name": s.name,
                    "policy": policy,
                    "outcomes": t.outcomes(),
                    "detection_intervals_median": _quantile(t.detections(), 0.5),
                }
            )
    return out


def _fmt(x: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{unit}"


def table(
    doc: dict[str, Any], scenarios: Sequence[Scenario], seeds: int, floor: float, limit: int | None
) -> Iterable[str]:
    yield (
        f"Decision quality over {seeds} seeds per scenario and policy; the steps' floor is {floor:.0f}s per rollout "
        "(measured: the same healthy rollout with a judge that passes every window at once, so timed steps, "
        "warm-ups and model loads in the batches maxSurge allows)"
    )
    yield (
        f"fixed-threshold: bound = healthy level x {MARGINS['e2e_p99']} (latency), x {MARGINS['error_rate']} "
        "(errors); mann-whitney and fixed-threshold with the spec's failureLimit"
    )
    if limit is not None:
        yield (
            f"bellwether with failureLimit {limit}: its Failed is already a conclusive, persisting sequential "
            "decision (--bellwether-failure-limit spec: the spec's)"
        )
    yield ""
    head = f"{'scenario':26} {'expected':>15} {'policy':16} {'outcomes':40} {'detect (int.)':>13}"
    yield head
    yield "-" * len(head)
    by = {(d["name"], d["policy"]): d for d in doc["scenarios"]}
    for s in scenarios:
        expected = "rolled-back" if s.regressed else "not rolled back" if s.quiet else "promoted"
        for policy in POLICIES:
            d = by[(s.name, policy)]
            outcomes = ", ".join(f"{k} {v}" for k, v in d["outcomes"].items())
            yield f"{s.name:26} {expected:>15} {policy:16} {outcomes:40} {_fmt(d['detection_intervals_median']):>13}"
    yield ""
    rows = (
        ("false rollbacks (healthy runs)", "false_rollback_rate", ".1%"),
        ("missed regressions (not rolled back)", "missed_rate", ".1%"),
        ("detection, intervals, median", "detection_intervals_median", ".1f"),
        ("detection, intervals, p95", "detection_intervals_p95", ".1f"),
        ("healthy promotion / steps' floor, median", "promotion_over_floor", ".2f"),
        ("healthy promotion / least_time, median", "promotion_over_loads", ".2f"),
        ("healthy promotion / timed steps alone, median", "promotion_over_steps_alone", ".2f"),
        ("false alarms per measurement (healthy)", "false_alarm_per_measurement", ".3%"),
        ("series with a false alarm (healthy)", "false_alarm_per_series", ".2%"),
    )
    yield f"{'overall':42} " + " ".join(f"{p:>16}" for p in POLICIES)
    for label, key, spec in rows:
        yield f"{label:42} " + " ".join(f"{_fmt(doc['policies'][p][key], spec):>16}" for p in POLICIES)
    yield from _goals(doc, scenarios, by)


def _goals(doc: dict[str, Any], scenarios: Sequence[Scenario], by: dict[tuple[str, str], Any]) -> Iterable[str]:
    bw, ft = doc["policies"]["bellwether"], doc["policies"]["fixed-threshold"]
    faster = (
        ft["detection_intervals_median"] / bw["detection_intervals_median"]
        if bw["detection_intervals_median"] and ft["detection_intervals_median"]
        else None
    )
    goals = [
        ("no false rollback in any healthy scenario", bw["false_rollback_rate"] in (0, None)),
        ("every regression rolled back", bw["missed_rate"] in (0, None)),
        (f"median detection <= {GOAL_MEDIAN:g} intervals", (bw["detection_intervals_median"] or 99) <= GOAL_MEDIAN),
        (f"p95 detection <= {GOAL_P95:g} intervals", (bw["detection_intervals_p95"] or 99) <= GOAL_P95),
        (
            f">= 2x faster than fixed-threshold ({_fmt(faster, '.2f', 'x')}) at fewer false rollbacks",
            faster is not None and faster >= 2 and (bw["false_rollback_rate"] or 0) < (ft["false_rollback_rate"] or 0),
        ),
        ("healthy promotion within 1.25x the steps' floor", (bw["promotion_over_floor"] or 99) <= 1.25),
    ]
    yield ""
    for label, met in goals:
        yield f"  goal: {label}: {'met' if met else 'NOT met'}"
    missed = [
        s.name
        for s in scenarios
        if s.regressed
        and by[(s.name, "bellwether")]["outcomes"].get("rolled-back", 0)
        < sum(by[(s.name, "bellwether")]["outcomes"].values())
    ]
    if missed:
        yield f"  bellwether did not roll back every run of: {', '.join(missed)}"


def run(path: str, scenarios: Sequence[Scenario], seeds: int, jobs: int, as_json: bool, limit: int | None) -> int:
    spec = load(path).spec
    floor, loads, steps_alone = measured_floor(path), least_time(spec), step_floor(spec)
    work = [(path, s.name, p, seed, limit) for s in scenarios for p in POLICIES for seed in range(seeds)]
    began = time.monotonic()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(_one, work, chunksize=max(1, len(work) // (8 * jobs))))
    tallies: dict[tuple[str, str], Tally] = {}
    for (_, name, policy, _, _), r in zip(work, runs, strict=True):
        tallies.setdefault((name, policy), Tally()).runs.append(r)
    doc = figures(tallies, scenarios, floor, loads, steps_alone)
    for line in table(doc, scenarios, seeds, floor, limit):
        print(line)
    print(f"\n{len(work)} simulated rollouts in {time.monotonic() - began:.0f}s of wall time ({jobs} processes)")
    if as_json:
        print(json.dumps(doc))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("-f", "--filename", default=str(DEFAULT_SPEC))
    parser.add_argument(
        "--scenario", action="append", choices=sorted(CATALOG), help="repeatable; default: all that judge"
    )
    parser.add_argument(
        "--bellwether-failure-limit",
        default="spec",
        help="failureLimit for the request-level judge, or `spec` for the spec's (the default: a sequential "
        "Failed rolls back without waiting for it; see docs/analysis.md)",
    )
    args = parser.parse_args(argv)
    chosen = [CATALOG[n] for n in args.scenario] if args.scenario else [s for s in CATALOG.values() if judging(s)]
    limit = None if args.bellwether_failure_limit == "spec" else int(args.bellwether_failure_limit)
    return run(args.filename, chosen, args.seeds, max(1, args.jobs), args.json, limit)


if __name__ == "__main__":
    sys.exit(main())
