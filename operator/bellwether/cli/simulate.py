"""`bellwether simulate -f md.yaml --scenario NAME`: what would this spec do under a named scenario.

Runs the spec on the simulated world through the same engine, rendering and judge as the operator,
prints the timeline and the outcome (or JSON with `--output json`), and exits 0 when the outcome is
the right one for the scenario (a regression rolled back, a healthy revision promoted). The traffic it
reports is what the simulated endpoints and routes achieved, next to the weight each step asked for,
and the most pods and GPUs each region held next to what `maxSurge` allows.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
from typing import Any

from bellwether.api import ModelDeployment, ModelDeploymentSpec, SpecError
from bellwether.cli.validate import load_one
from bellwether.rollout.replicas import surge_count
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
    p.add_argument(
        "-f",
        "--filename",
        required=True,
        help="a YAML file with one ModelDeployment (and the ClusterAnalysisTemplates it names)",
    )
    p.add_argument("--scenario", required=True, choices=sorted(CATALOG), metavar="NAME", help="|".join(CATALOG))
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0): the same seed, the same run")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument(
        "--webhooks",
        action="store_true",
        help="call the spec's webhooks for real: notifications are sent and gates asked at their url "
        "(urlFrom and authorizationFrom name Secrets, which the simulation has none of: those gates hold "
        "and those notifications are reported as not sent)",
    )
    p.set_defaults(func=_simulate)


def load(path: str) -> ModelDeployment:
    """The first ModelDeployment in the file, read and checked as `validate` does (and so as the API
    server would); SpecError with readable lines when there is none or it is bad."""
    why = io.StringIO()
    md = load_one(path, why)
    if md is None:
        raise SpecError([line.strip() for line in why.getvalue().splitlines() if line.strip()])
    return md


def load_or_report(path: str) -> ModelDeployment | None:
    """`load`, or None after printing every problem to stderr (the commands then exit 1). The
    ClusterAnalysisTemplates it names are taken from the same file."""
    from bellwether.cli.templates import resolve_from_files

    md = load_one(path, sys.stderr)
    return resolve_from_files(md, [path], sys.stderr) if md is not None else None


def pod_caps(spec: ModelDeploymentSpec) -> dict[str, int]:
    """Pods each region may hold at any moment: replicas + maxSurge."""
    return {r.name: r.size + surge_count(spec.rollout.max_surge, r.size) for r in spec.regions}


def canary_shares(points: list[dict[str, Any]], revision: str) -> list[tuple[int, list[int]]]:
    """(weight asked, the canary shares achieved while it was asked, in order) for each weight asked;
    nothing asked and the revision alone (promoted) or absent is left out."""
    out: list[tuple[int, list[int]]] = []
    for p in points:
        asked, got = int(p["requested"]), int(p["achieved"].get(revision, 0))
        if asked == 0 and got in (0, 100):
            continue
        if not out or out[-1][0] != asked:
            out.append((asked, []))
        if not out[-1][1] or out[-1][1][-1] != got:
            out[-1][1].append(got)
    return out


def _report_capacity_and_traffic(outcome: Any, spec: ModelDeploymentSpec) -> None:
    caps = pod_caps(spec)
    # An autoscaled region has no fixed cap: its autoscaler moves the count, maxSurge bounds what the canary adds.
    peaks = ", ".join(
        f"{r} {outcome.pod_peak[r]}" + (f"/{caps[r]}" if spec.region(r).autoscaling is None else " (autoscaled)")
        for r in caps
    )
    print(f"  pods at most:    {peaks} (replicas + maxSurge)")
    print(f"  GPUs at most:    {', '.join(f'{r} {outcome.gpu_peak[r]}' for r in caps)}")
    print("  canary traffic:  weight asked → share achieved, per region")
    for region, points in outcome.traffic.items():
        shares = canary_shares(points, outcome.revision)
        text = "   ".join(f"{asked}% → {', '.join(f'{g}%' for g in got)}" for asked, got in shares)
        print(f"    {region:10} {text or 'none'}")
        replicas = spec.region(region).size
        for asked, got in shares:
            best = min([g for g in got if g] or [0], key=lambda g: abs(g - asked))
            if asked not in (0, 100) and best != asked:
                with_ = f"{replicas} replicas" if spec.region(region).autoscaling is None else "the live count"
                print(f"    {'':10} {asked}% cannot be met with {with_}: {best}% was the closest")


DRAIN_SECONDS = 30.0  # how long `--webhooks` waits for the last notifications before exiting


async def play_with_webhooks(spec: ModelDeploymentSpec, scenario: Any, **kwargs: Any) -> Any:
    """`play`, with the operator's HTTP gates and notifications instead of the in-memory ones."""
    import aiohttp

    from bellwether.hooks import Notifier, webhook_gates
    from bellwether.hooks.secrets import from_secrets
    from bellwether.sim.hooks import RuleGates
    from bellwether.sim.play import play

    async with aiohttp.ClientSession() as session:
        hooks, jobs = webhook_gates(session, from_secrets({})), RuleGates()

        async def gates(spec: ModelDeploymentSpec, name: str, ns: str, requests: Any, now: Any) -> Any:
            """Webhook gates for real; Job gates, which the simulation cannot run, in memory."""
            ran = {g.name for g in spec.rollout.gates if g.job is not None}
            asked = await hooks(spec, name, ns, [r for r in requests if r.gate not in ran], now)
            return asked + await jobs(spec, name, ns, [r for r in requests if r.gate in ran], now)

        notifier = Notifier(session, from_secrets({}))
        notifier.start()
        try:
            outcome = await play(spec, scenario, gates=gates, notify=notifier, **kwargs)
            if not await notifier.drain(DRAIN_SECONDS):
                print(f"some notifications were still being sent after {DRAIN_SECONDS:g}s", file=sys.stderr)
        finally:
            await notifier.stop()
    return outcome


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
    run = play_with_webhooks if args.webhooks else play
    outcome = asyncio.run(
        run(md.spec, scenario, seed=args.seed, name=md.metadata.name, namespace=md.metadata.namespace, on_entry=show)
    )
    ok = scenario.as_expected(md.spec, outcome.result)
    if args.output == "json":
        doc = outcome.as_dict() | {"expected": scenario.expected(md.spec), "asExpected": ok}
        doc["stepFloorSeconds"] = step_floor(md.spec)
        doc["podCap"] = pod_caps(md.spec)
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
        _report_capacity_and_traffic(outcome, md.spec)
        verdict = "as it should" if ok else f"expected: {scenario.expected(md.spec)}"
        print(f"  {verdict}")
    return 0 if ok else 3
