"""`bellwether check -f md.yaml --prometheus URL`: run every metric query before a rollout needs it.

A query that returns nothing (a label that is spelled differently in your scrape configuration, a
metric your runtime version does not export) would otherwise surface mid-rollout as inconclusive
analysis and a paused rollout. This renders each metric for each region, exactly as the operator will,
queries the live Prometheus, and says which return data, which are empty and which fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass

from bellwether.api import ModelDeployment, revision_of, template_of


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="run a ModelDeployment's metric queries against a live Prometheus",
        description="Render every metric for every region as the operator will and run it against Prometheus, "
        "reporting which return data, which are empty and which fail.",
        epilog="Exit status: 0 when every query returns a number, 3 when any is empty or fails, "
        "1 when the file is not a valid ModelDeployment.",
    )
    p.add_argument("-f", "--filename", required=True, help="a YAML file with one ModelDeployment")
    p.add_argument("--prometheus", metavar="URL", help="default: spec.analysis.prometheus.url")
    p.add_argument(
        "--revision",
        action="append",
        metavar="REV",
        help="revision label to query (repeatable; default: the revision this spec describes). "
        "Use the stable revision from `bellwether status` to check against live traffic.",
    )
    p.add_argument("--token-file", metavar="PATH", help="a file holding a bearer token for Prometheus")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_check)


@dataclass(frozen=True)
class Result:
    metric: str
    region: str
    revision: str
    outcome: str  # data | empty | error
    value: float | None
    detail: str
    query: str


async def run_checks(md: ModelDeployment, url: str, revisions: list[str], token: str | None) -> list[Result]:
    from bellwether.analysis.prometheus import PrometheusSource, rendered
    from bellwether.analysis.source import Window
    from bellwether.analysis.templating import TemplateError
    from bellwether.api.units import parse_duration

    spec = md.spec
    assert spec.analysis is not None
    interval = parse_duration(spec.analysis.interval)
    timeout = parse_duration(spec.analysis.prometheus.timeout)
    end = time.time()
    name, namespace = md.metadata.name, md.metadata.namespace or "default"
    jobs = [
        (metric, Window(name, namespace, region.name, revision, "canary", end - 3 * interval, end, interval))
        for region in spec.regions
        for revision in revisions
        for metric in spec.analysis.metrics
    ]
    async with PrometheusSource(url, timeout, token) as source:
        samples = await asyncio.gather(*(source.sample(metric, window) for metric, window in jobs))
    results = []
    for (metric, window), sample in zip(jobs, samples, strict=True):
        try:
            query = rendered(metric, window)
        except TemplateError as e:
            query = str(e)
        if sample.error is not None:
            outcome, detail = "error", sample.error
        elif sample.value is None and not sample.series:
            outcome, detail = "empty", "no series: check the label names and values, and that this revision serves"
        else:
            value = sample.value if sample.value is not None else sample.series[-1]
            outcome, detail = "data", f"{value:g}"
        results.append(
            Result(metric.name, window.region, window.revision, outcome, sample.value, detail, " ".join(query.split()))
        )
    return results


def _check(args: argparse.Namespace) -> int:
    from bellwether.cli.simulate import load_or_report

    md = load_or_report(args.filename)
    if md is None:
        return 1
    if md.spec.analysis is None:
        print(f"{args.filename}: no spec.analysis, nothing to check", file=sys.stderr)
        return 0
    url = args.prometheus or md.spec.analysis.prometheus.url
    revisions = args.revision or [revision_of(template_of(md.spec))]
    token = None
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
    results = asyncio.run(run_checks(md, url, revisions, token))
    if args.output == "json":
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        _print(results, url)
    return 0 if all(r.outcome == "data" for r in results) else 3


def _print(results: list[Result], url: str) -> None:
    print(f"Prometheus {url}")
    width = max(len(r.metric) for r in results)
    for r in results:
        mark = {"data": "ok   ", "empty": "EMPTY", "error": "ERROR"}[r.outcome]
        print(f"  {mark} {r.metric:<{width}}  {r.region:<12} {r.revision:<12} {r.detail}")
        if r.outcome != "data":
            print(f"        query: {r.query}")
    counts = {k: sum(r.outcome == k for r in results) for k in ("data", "empty", "error")}
    print(f"{counts['data']} returned data, {counts['empty']} empty, {counts['error']} failed")
