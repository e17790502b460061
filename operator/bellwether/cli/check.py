"""`bellwether check -f md.yaml --prometheus URL`: run every metric query before a rollout needs it.

A query that returns nothing (a label that is spelled differently in your scrape configuration, a
metric your runtime version does not export) would otherwise surface mid-rollout as inconclusive
analysis and a paused rollout. This renders each metric for each region, exactly as the operator will,
queries the live Prometheus, and says what the judge would make of each answer: a number it can use
(ok), no series (EMPTY), a refused query or an answer of the wrong shape such as several series
(ERROR), a number it cannot use such as NaN or an infinity (INCONCLUSIVE), or a number outside the
metric's absolute bounds (FAILED). It also reads how often Prometheus scrapes the targets each query
selects, and warns when a range (`{{interval}}`) is shorter than four scrape intervals: `rate()` then
sees too few samples and returns nothing, which no label fix cures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from bellwether.api import ModelDeployment, revision_of, template_of
from bellwether.api.spec import Metric

if TYPE_CHECKING:
    from bellwether.cli.scrape import Target

MARKS = {"data": "ok", "empty": "EMPTY", "error": "ERROR", "inconclusive": "INCONCLUSIVE", "failed": "FAILED"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="run a ModelDeployment's metric queries against a live Prometheus",
        description="Render every metric for every region as the operator will, run it against Prometheus and "
        "judge each answer as the analysis judge would: ok, EMPTY (no series), ERROR (refused, or not one "
        "series), INCONCLUSIVE (NaN or an infinity) or FAILED (outside max/min). Warns when a query's range "
        "is shorter than four scrape intervals of the targets it reads (from Prometheus' /api/v1/targets). "
        "The metrics of the ClusterAnalysisTemplates it names are checked too, as the operator merges them.",
        epilog="Exit status: 0 when every query returns a number the judge accepts; 3 when any is empty, "
        "fails, is NaN or infinite, or breaks an absolute bound; 1 when the file is not a valid "
        "ModelDeployment or a ClusterAnalysisTemplate it names cannot be found or used; 2 for a usage error.",
    )
    p.add_argument("-f", "--filename", required=True, help="a YAML file with one ModelDeployment, or - for stdin")
    p.add_argument("--prometheus", metavar="URL", help="default: spec.analysis.prometheus.url")
    p.add_argument(
        "--revision",
        action="append",
        metavar="REV",
        help="revision label to query (repeatable; default: the revision this spec describes). "
        "Use the stable revision from `bellwether status` to check against live traffic.",
    )
    p.add_argument("--token-file", metavar="PATH", help="a file holding a bearer token for Prometheus")
    p.add_argument(
        "--templates",
        action="append",
        metavar="FILE",
        help="a file or directory of ClusterAnalysisTemplates the ModelDeployment names (repeatable); those in "
        "neither it nor the -f file are read from the cluster",
    )
    p.add_argument("--kubeconfig", help="to read ClusterAnalysisTemplates from (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_check)


@dataclass(frozen=True)
class Result:
    metric: str
    region: str
    revision: str
    outcome: str  # data | empty | error | inconclusive | failed
    value: float | None
    detail: str
    query: str
    verdict: str = "Inconclusive"  # the judge's: Successful | Failed | Inconclusive
    scrape_interval: float | None = None  # seconds, of the slowest target the query reads
    warning: str | None = None  # a range too short for the scrape interval


def outcome_of(metric: Metric, sample: Any, warning: str | None) -> tuple[str, str, str]:
    """(outcome, detail, verdict) as the judge sees the sample. The sample stands in for stable too:
    absolute bounds and the refusal of unusable numbers are judged, a baseline ratio (canary against
    stable) needs two revisions and is not."""
    from bellwether.analysis.judge import judge

    judged = judge(metric, sample, sample)
    if sample.error is not None:
        return "error", sample.error, judged.verdict
    if judged.verdict == "Successful":
        return "data", f"{sample.value:g}", judged.verdict
    if judged.verdict == "Failed":
        return "failed", judged.reason or "outside its bounds", judged.verdict
    if sample.value is None:
        if warning:
            return (
                "empty",
                "no series: the range is too short for the scrape interval (see the warning)",
                "Inconclusive",
            )
        earlier = f" (the window has {len(sample.series)} earlier points)" if sample.series else ""
        return (
            "empty",
            f"no series{earlier}: check the label names and values, and that this revision serves",
            (judged.verdict),
        )
    return "inconclusive", judged.reason or f"{sample.value}", judged.verdict


async def scrape_targets(url: str, token: str | None, timeout: float) -> tuple[list[Target], str | None]:
    """The active targets and their scrape intervals, or why they could not be read."""
    import aiohttp

    from bellwether.cli.scrape import targets_of

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    where = f"{url.rstrip('/')}/api/v1/targets"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(where, params={"state": "active"}, headers=headers) as response,
        ):
            body = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        return [], f"cannot read {where}: {str(e) or type(e).__name__}"
    if not isinstance(body, dict) or body.get("status") != "success":
        return [], f"{where} answered HTTP {status} without targets"
    return targets_of(body.get("data")), None


async def run_checks(md: ModelDeployment, url: str, revisions: list[str], token: str | None) -> list[Result]:
    results, _ = await run_checks_and_targets(md, url, revisions, token)
    return results


async def run_checks_and_targets(
    md: ModelDeployment, url: str, revisions: list[str], token: str | None
) -> tuple[list[Result], str | None]:
    """Every metric for every region and revision, judged; and why scrape intervals are unknown, if they are."""
    from bellwether.analysis.prometheus import PrometheusSource
    from bellwether.analysis.source import Window
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
        samples, (targets, unknown) = await asyncio.gather(
            asyncio.gather(*(source.sample(metric, window) for metric, window in jobs)),
            scrape_targets(url, token, timeout),
        )
    results = [_result(m, w, s, targets) for (m, w), s in zip(jobs, samples, strict=True)]
    return results, unknown


def _result(metric: Metric, window: Any, sample: Any, targets: list[Target]) -> Result:
    from bellwether.analysis.prometheus import rendered
    from bellwether.analysis.templating import TemplateError
    from bellwether.cli.scrape import check_ranges, warning

    try:
        query = rendered(metric, window)
    except TemplateError as e:
        query = str(e)
    checks = check_ranges(query, targets)
    warned = warning(checks, window.step)
    outcome, detail, verdict = outcome_of(metric, sample, warned)
    scrape = max((c.scrape_seconds for c in checks), default=None)
    flat = " ".join(query.split())
    return Result(
        metric.name, window.region, window.revision, outcome, sample.value, detail, flat, verdict, scrape, warned
    )


def _check(args: argparse.Namespace) -> int:
    from bellwether.cli.templates import resolve_for_check
    from bellwether.cli.validate import load_one

    md = load_one(args.filename, sys.stderr)
    if md is not None:
        md = resolve_for_check(args, md, sys.stderr)
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
    results, unknown = asyncio.run(run_checks_and_targets(md, url, revisions, token))
    if args.output == "json":
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        _print(results, url, unknown)
    return 0 if all(r.outcome == "data" for r in results) else 3


def _print(results: list[Result], url: str, unknown: str | None) -> None:
    print(f"Prometheus {url}")
    if unknown:
        print(f"  scrape intervals unknown, ranges not checked against them: {unknown}")
    width = max(len(r.metric) for r in results)
    mark_width = max(len(m) for m in MARKS.values())
    for r in results:
        print(f"  {MARKS[r.outcome]:<{mark_width}} {r.metric:<{width}}  {r.region:<12} {r.revision:<12} {r.detail}")
        if r.outcome != "data":
            print(f"  {'':<{mark_width}} query: {r.query}")
        if r.warning:
            print(f"  {'':<{mark_width}} warning: {r.warning}")
    counts = {k: sum(r.outcome == k for r in results) for k in MARKS}
    line = f"{counts['data']} returned data, {counts['empty']} empty, {counts['error']} failed"
    if counts["inconclusive"]:
        line += f", {counts['inconclusive']} inconclusive (a number the judge cannot use)"
    if counts["failed"]:
        line += f", {counts['failed']} judged Failed (outside max/min)"
    print(line)
