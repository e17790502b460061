"""Decision quality: how often Bellwether rolls back a healthy revision, how often it lets a bad one
through, how quickly it catches one, and how long a healthy rollout takes — against a fixed-threshold
policy (one bound per metric, `failureLimit` failed checks) run on the same scenarios and seeds.

    python benchmarks/decision_quality.py [--seeds 10] [-f examples/demo.yaml] [--scenario NAME ...]

Everything runs in the simulated world (virtual time), through the operator's engine, rendering and
metrics port; only the judge differs between the two policies. The figures describe the simulator's
fleet model (lognormal latencies, Poisson errors, a shared regional load cycle), not a real fleet.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bellwether.api import ModelDeploymentSpec
from bellwether.cli.simulate import load
from bellwether.sim.fleet import Profile
from bellwether.sim.play import Outcome, play, step_floor
from bellwether.sim.scenarios import CATALOG, Scenario
from bellwether.sim.threshold import MARGINS, bounds_for, fixed_threshold

DEFAULT_SPEC = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"
GOAL_INTERVALS = 2.0


@dataclass
class Tally:
    runs: int = 0
    rollbacks: int = 0
    promoted: int = 0
    results: dict[str, int] = field(default_factory=dict)
    detection: list[float] = field(default_factory=list)  # seconds from visible to rolled back
    promotion: list[float] = field(default_factory=list)  # seconds from apply to serving everywhere

    def add(self, o: Outcome) -> None:
        self.runs += 1
        self.results[o.result] = self.results.get(o.result, 0) + 1
        self.rollbacks += o.result == "rolled-back"
        self.promoted += o.result == "promoted"
        if o.detection_seconds is not None:
            self.detection.append(o.detection_seconds)
        if o.promoted_at is not None:
            self.promotion.append(o.promoted_at - o.applied_at)


def _mean(xs: Sequence[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _fmt(x: float | None, unit: str = "s") -> str:
    return "-" if x is None else f"{x:.0f}{unit}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    if b == 0:
        return "=" if a == 0 else "inf"
    return f"{a / b:.2f}x"


async def run(spec: ModelDeploymentSpec, scenarios: Sequence[Scenario], seeds: int) -> int:
    policies = {
        "bellwether": None,
        "fixed-threshold": fixed_threshold(bounds_for(spec, Profile())),
    }
    interval = 30.0
    tallies: dict[tuple[str, str], Tally] = {}
    began = time.monotonic()
    for sc in scenarios:
        for policy, measure in policies.items():
            tally = tallies.setdefault((sc.name, policy), Tally())
            for seed in range(seeds):
                outcome = await play(spec, sc, seed=seed, measure=measure)
                interval = outcome.interval
                tally.add(outcome)
        print(f"  ran {sc.name} ({time.monotonic() - began:.0f}s)", file=sys.stderr, flush=True)

    floor = step_floor(spec)
    print(
        f"Decision quality over {seeds} seeds per scenario; analysis interval {interval:.0f}s; "
        f"steps alone take {floor:.0f}s per rollout"
    )
    print(
        f"Fixed-threshold policy: bound = metric max, or healthy level x {MARGINS['e2e_p99']} (latency), "
        f"x {MARGINS['error_rate']} (errors); failureLimit as in the spec"
    )
    head = f"{'scenario':28} {'policy':16} {'outcomes':34} {'false rb':>8} {'missed':>7} {'detect':>7} {'(int.)':>6} {'promote':>8}"
    print()
    print(head)
    print("-" * len(head))
    overall: dict[str, dict[str, list[float]]] = {
        p: {"false": [], "missed": [], "detect": [], "promote": []} for p in policies
    }
    for sc in scenarios:
        for policy in policies:
            t = tallies[(sc.name, policy)]
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(t.results.items()))
            false_rb = t.rollbacks / t.runs if sc.regressed is False else None
            missed = (t.runs - t.rollbacks) / t.runs if sc.regressed else None
            detect = _mean(t.detection)
            promote = _mean(t.promotion) if sc.regressed is False else None
            o = overall[policy]
            if false_rb is not None:
                o["false"].append(false_rb)
            if missed is not None:
                o["missed"].append(missed)
            o["detect"] += t.detection
            if promote is not None:
                o["promote"] += t.promotion
            print(
                f"{sc.name:28} {policy:16} {outcomes:34} "
                f"{_fmt(None if false_rb is None else 100 * false_rb, '%'):>8} "
                f"{_fmt(None if missed is None else 100 * missed, '%'):>7} {_fmt(detect):>7} "
                f"{'-' if detect is None else f'{detect / interval:.1f}':>6} {_fmt(promote):>8}"
            )
    print()
    print("Overall")
    figures = {p: {k: _mean(v) for k, v in o.items()} for p, o in overall.items()}
    bw, ft = figures["bellwether"], figures["fixed-threshold"]
    rows = (
        ("false-rollback rate on healthy revisions", "false", 100, "%"),
        ("missed regressions", "missed", 100, "%"),
        ("regression visible -> rolled back", "detect", 1, "s"),
        ("apply -> full promotion (healthy)", "promote", 1, "s"),
    )
    print(f"  {'':42} {'bellwether':>11} {'fixed-thr.':>11} {'ratio':>7}")
    for label, key, scale, unit in rows:
        a, b = bw[key], ft[key]
        print(
            f"  {label:42} {_fmt(None if a is None else a * scale, unit):>11} "
            f"{_fmt(None if b is None else b * scale, unit):>11} {_ratio(a, b):>7}"
        )
    if bw["detect"] is not None:
        print(f"  detection in analysis intervals: {bw['detect'] / interval:.1f} (goal <= {GOAL_INTERVALS:.0f})")
    if bw["promote"] is not None:
        print(f"  full promotion vs the steps' floor ({floor:.0f}s): {bw['promote'] / floor:.2f}x")
    goals = [
        (
            "no false rollback in healthy and warm-up-spike",
            all(
                tallies[(n, "bellwether")].rollbacks == 0
                for n in ("healthy", "warm-up-spike")
                if (n, "bellwether") in tallies
            ),
        ),
        (
            "every regression caught",
            all(
                tallies[(s.name, "bellwether")].rollbacks == tallies[(s.name, "bellwether")].runs
                for s in scenarios
                if s.regressed
            ),
        ),
        (
            "detection within 2 intervals of being visible",
            all(
                d <= GOAL_INTERVALS * interval
                for s in scenarios
                if s.regressed
                for d in tallies[(s.name, "bellwether")].detection
            ),
        ),
    ]
    print()
    for label, met in goals:
        print(f"  goal: {label}: {'met' if met else 'NOT met'}")
    print(
        f"\n{sum(t.runs for t in tallies.values())} simulated rollouts in {time.monotonic() - began:.1f}s of wall time"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("-f", "--filename", default=str(DEFAULT_SPEC))
    parser.add_argument("--scenario", action="append", choices=sorted(CATALOG), help="repeatable; default: all")
    args = parser.parse_args(argv)
    spec = load(args.filename).spec
    scenarios = [CATALOG[n] for n in args.scenario] if args.scenario else list(CATALOG.values())
    return asyncio.run(run(spec, scenarios, args.seeds))


if __name__ == "__main__":
    sys.exit(main())
