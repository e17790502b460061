"""`bellwether simulate -f md.yaml --scenario NAME`: what would this spec do under a named scenario.

Runs the spec on the simulated world through the same engine, rendering and judge as the operator,
prints the timeline and the outcome (or JSON with `--output json`), and exits 0 when the outcome is
the right one for the scenario (a regression rolled back, a healthy revision promoted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from bellwether.api import ModelDeployment, SpecError, parse
from bellwether.sim.scenarios import CATALOG


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="what would this ModelDeployment do under a scenario (no cluster needed)",
        description="Roll a next revision of the spec out on a simulated GPU fleet. Scenarios: "
        + "; ".join(f"{s.name}: {s.summary}" for s in CATALOG.values()),
        epilog="Exit status: 0 when the outcome is the right one for the scenario, 3 when it is not, "
        "1 when the file is not a valid ModelDeployment.",
    )
    p.add_argument("-f", "--filename", required=True, help="a YAML file with one ModelDeployment")
    p.add_argument("--scenario", required=True, choices=sorted(CATALOG), metavar="NAME", help="|".join(CATALOG))
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0): the same seed, the same run")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_simulate)


def load(path: str) -> ModelDeployment:
    """The first ModelDeployment in the file; SpecError with readable lines when there is none or it is bad."""
    try:
        docs = list(yaml.safe_load_all(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as e:
        raise SpecError([f"{path}: {e}"]) from None
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind", "ModelDeployment") == "ModelDeployment":
            return parse(doc)
    raise SpecError([f"{path}: no ModelDeployment in the file"])


def load_or_report(path: str) -> ModelDeployment | None:
    """`load`, or None after printing every problem to stderr (the commands then exit 1)."""
    try:
        return load(path)
    except SpecError as e:
        print(f"{path}: invalid", file=sys.stderr)
        for problem in e.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def _simulate(args: argparse.Namespace) -> int:
    from bellwether.sim.play import play, step_floor
    from bellwether.sim.timeline import Style, clock, line

    md = load_or_report(args.filename)
    if md is None:
        return 1
    scenario = CATALOG[args.scenario]
    style = Style(sys.stdout.isatty() and args.output == "text")
    width = max(len(r.name) for r in md.spec.regions) + 1

    def show(entry: Any) -> None:
        if args.output == "text":
            print(line(entry, style, width), flush=True)

    if args.output == "text":
        print(style(f"Scenario {scenario.name}: {scenario.summary} (seed {args.seed})", "bold"))
    outcome = asyncio.run(
        play(md.spec, scenario, seed=args.seed, name=md.metadata.name, namespace=md.metadata.namespace, on_entry=show)
    )
    ok = scenario.as_expected(md.spec, outcome.result)
    if args.output == "json":
        doc = outcome.as_dict() | {"expected": scenario.expected(md.spec), "asExpected": ok}
        doc["stepFloorSeconds"] = step_floor(md.spec)
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        print()
        print(style(f"Outcome: {outcome.result} (phase {outcome.phase})", "green" if ok else "red"))
        if outcome.reason:
            print(f"  reason:          {outcome.reason}")
        print(f"  revision:        {outcome.previous_revision} → {outcome.revision}")
        print(f"  regions touched: {', '.join(outcome.regions_touched) or 'none'}")
        if outcome.promoted_at is not None:
            took = outcome.promoted_at - outcome.applied_at
            print(f"  full promotion:  {clock(took)} after apply (steps alone take {clock(step_floor(md.spec))})")
        if outcome.detection_seconds is not None:
            n = outcome.detection_seconds / outcome.interval
            print(
                f"  rolled back:     {outcome.detection_seconds:.0f}s ({n:.1f} analysis intervals) after it was visible"
            )
        verdict = "as it should" if ok else f"expected: {scenario.expected(md.spec)}"
        print(f"  {verdict}")
    return 0 if ok else 3
