"""How many ModelDeployments one operator replica handles, and what each one costs as the count grows.

    python benchmarks/operator_scale.py [--counts 100,1000,3000] [--minutes 1]

For each count N: one `bellwether run` process (as users start it) against three API server stand-ins
(the home cluster, region us-east, and two remote regions reached through kubeconfig Secrets), a
kubelet stand-in that makes Deployments' pods ready, and a Prometheus stand-in answering healthy
values. N ModelDeployments are created at v1 and brought to Healthy in all three regions, then all
are changed to v2 (spread over one analysis interval, as independent rollouts are; `--burst` changes
all at once), so every one runs a canary whose analysis step lasts longer than the benchmark.
Once every canary has been measured and kopf has recorded every change as handled, the window of
`--minutes` starts; it measures the steady state of N rollouts under analysis:

- loop latency: p50/p99 of one rollout cycle, from the operator's `bellwether_reconcile_duration_seconds`
  histogram (interpolated within its buckets, over the window only);
- API requests per object per minute, counted by the stand-ins, and what they are;
- Prometheus queries per object per analysis interval, counted by the Prometheus stand-in, and per
  judged measurement (from the operator's `bellwether_analysis_verdicts_total`): an overloaded
  operator may measure less often (longer intervals), but each measurement it takes must send both
  of its queries (canary and stable), 2.00 per measurement;
- the operator's peak resident memory (VmHWM in /proc, over the whole run, start-up included) and CPU;
- failed API requests (the operator's `bellwether_api_errors_total`) and cycles that raised (its log),
  both of which an overloaded operator must not turn into: it runs cycles less often instead.

Then each figure's growth: the ratio between successive counts, per object for the costs. Constant
per-object costs mean ratios near 1. The stand-ins run in this process on the same machine, so their
CPU is printed too: when it nears 100% the stand-ins, not the operator, set the pace; so is the CPU of
everything else on the machine, which disturbs the figures when it is not near 0.

The operator re-applies each unchanged object once every 300 s, spread evenly over that time
(`clusters.region.resync_slot`): windows shorter than five minutes see part of it, `--minutes 6` all.

Not run in CI; 100 objects take about two minutes. On two cores, 3,000 objects overload the machine
(the operator and the stand-ins each want a core): the figures then describe an overloaded operator.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import hashlib
import itertools
import json
import math
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bellwether.api import parse_spec, revision_of, template_of
from bellwether.api.crd import crd
from bellwether.cli.run import tune_gc
from bellwether.sim.standins.apiserver import CORE, MODEL_DEPLOYMENTS, ApiServer
from bellwether.sim.standins.process import OperatorProcess
from bellwether.sim.standins.prometheus import PrometheusStandIn
from scale_world import EventKubelet, ScaleApiServer, gpu_node

NAMESPACE = "bench"
HOME_REGION = "us-east"
REMOTE_REGIONS = ("eu-west", "ap-south")
OPERATOR_INTERVAL = 30.0  # `bellwether run --interval`, its default
ANALYSIS_INTERVAL = 30.0  # `analysis.interval`, its default
METRICS = 2
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
HISTOGRAM = "bellwether_reconcile_duration_seconds"
TICKS = 100.0  # clock ticks per second in /proc/<pid>/stat
FAILED_CYCLE = re.compile(r"rollout cycle of \S+ failed")  # handlers/operator.py and cycle.py log it so


def model_deployment(name: str, version: str, prometheus: str) -> dict[str, Any]:
    """Two replicas in each of three regions, one wave; a canary at 50% analysed for an hour."""
    where = 'namespace="{{namespace}}",region="{{region}}",revision="{{revision}}"'
    remote = [
        {"name": r, "replicas": 2, "cluster": {"kubeconfigSecret": {"name": f"{r}-kubeconfig", "key": "kubeconfig"}}}
        for r in REMOTE_REGIONS
    ]
    spec = {
        "model": {"name": "llama", "version": version, "uri": f"s3://models/llama/{version}"},
        "runtime": {
            "image": "vllm/vllm-openai:v0.11.0",
            "resources": {"gpu": {"count": 1, "product": GPU_PRODUCT}, "cpu": "4", "memory": "16Gi"},
            "warmupSeconds": 0,
        },
        "regions": [{"name": HOME_REGION, "replicas": 2}, *remote],
        "rollout": {
            "waves": [[HOME_REGION, *REMOTE_REGIONS]],
            "steps": [{"setWeight": 50}, {"analysis": {"duration": "60m"}}],
        },
        "analysis": {
            "prometheus": {"url": prometheus, "timeout": "5s"},
            "interval": f"{ANALYSIS_INTERVAL:g}s",
            "metrics": [
                {
                    "name": "error-rate",
                    "query": f'sum(rate(http_requests_total{{{where},code=~"5.."}}[{{{{interval}}}}]))',
                    "max": 0.05,
                },
                {
                    "name": "p99-latency",
                    "query": "histogram_quantile(0.99, sum by (le) "
                    f"(rate(http_request_duration_seconds_bucket{{{where}}}[{{{{interval}}}}])))",
                    "max": 2.0,
                },
            ],
        },
    }
    assert len(spec["analysis"]["metrics"]) == METRICS  # type: ignore[index]
    return {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def kubeconfig_secret(server: ApiServer) -> dict[str, Any]:
    text = yaml.safe_dump(server.kubeconfig(NAMESPACE))
    return {
        "metadata": {"name": f"{server.name}-kubeconfig", "namespace": NAMESPACE},
        "data": {"kubeconfig": base64.b64encode(text.encode()).decode()},
    }


def status_of(md: dict[str, Any]) -> dict[str, Any]:
    return md.get("status") or {}


def revision(md: dict[str, Any]) -> str:
    return revision_of(template_of(parse_spec(md["spec"])))


# -- what the operator exposes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Histogram:
    buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count), ascending
    count: float

    def minus(self, other: Histogram) -> Histogram:
        before = dict(other.buckets)
        return Histogram(tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets), self.count - other.count)

    def quantile(self, q: float) -> float:
        """As PromQL's histogram_quantile: linear within the bucket; past the last finite bound, that bound."""
        if self.count <= 0:
            return math.nan
        rank = q * self.count
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    return lower
                inside = cumulative - below
                return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = le, cumulative
        return lower


async def scrape(port: int) -> tuple[Histogram, float, float]:
    """The reconcile histogram, the count of failed API requests and of judged measurements, from the
    operator's /metrics."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    buckets: list[tuple[float, float]] = []
    count, errors, verdicts = 0.0, 0.0, 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == HISTOGRAM + "_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == HISTOGRAM + "_count":
                count = sample.value
            elif sample.name == "bellwether_api_errors_total":
                errors += sample.value
            elif sample.name == "bellwether_analysis_verdicts_total":
                verdicts += sample.value
    return Histogram(tuple(sorted(buckets)), count), errors, verdicts


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def machine_cpu_seconds() -> float:
    """CPU time spent by every process on the machine (from /proc/stat), to see what else was running."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def request_kind(method: str, path: str, content_type: str) -> str:
    parts = [p for p in path.split("/") if p]
    rest = parts[parts.index("namespaces") + 2 :] if "namespaces" in parts[:-1] else []  # [plural, name, sub]
    if method == "GET":
        if len(rest) == 1:
            return "list/watch"
        if rest and rest[0] in ("secrets", "modeldeployments"):
            return "get " + ("Secret" if rest[0] == "secrets" else "ModelDeployment")
        return "get other"
    if method == "PATCH":
        if content_type == "application/apply-patch+yaml":
            return "apply"
        return "status patch" if parts[-1] == "status" else "patch"
    if method == "POST" and "events" in parts:
        return "Event"
    return method.lower()


# -- one run -------------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    at: float
    requests: dict[str, int]
    answered: dict[str, int]
    queries: int
    histogram: Histogram
    api_errors: float
    verdicts: float
    operator_cpu: float
    standin_cpu: float
    machine_cpu: float


@dataclass
class Figures:
    count: int
    bring_up: float  # seconds from the operator's start until every object is measured on v2
    window: float
    p50: float
    p99: float
    cycles: float
    api_per_minute: float  # per object
    api_kinds: dict[str, float]  # per object per minute
    queries_per_interval: float  # per object
    measured_per_interval: float  # judged measurements (one metric in one region) per object
    queries_per_measurement: float  # 2.0: canary and stable, every query sent
    peak_rss_mib: float
    operator_cpu: float  # share of one core over the window
    standin_cpu: float
    other_cpu: float  # everything else on the machine: when high, the figures are disturbed
    api_errors: float
    refused: dict[int, int]  # answers >= 400 in the window, by status
    not_progressing: int
    failed_cycles: int  # over the whole run: cycles that raised (the log's "rollout cycle of ... failed")


class Run:
    def __init__(self, count: int, minutes: float, workdir: Path, burst: bool = False) -> None:
        self.count, self.minutes, self.workdir, self.burst = count, minutes, workdir, burst
        watched = ("ModelDeployment", "CustomResourceDefinition", "Namespace")
        self.home = ScaleApiServer("home", [*CORE, MODEL_DEPLOYMENTS], watched=watched)
        self.remotes = [ScaleApiServer(name, [*CORE]) for name in REMOTE_REGIONS]
        self.servers = [self.home, *self.remotes]
        self.prometheus = PrometheusStandIn(lambda query: 0.001)
        self.names = [f"md-{i:05d}" for i in range(count)]

    def objects(self) -> list[dict[str, Any]]:
        return [self.home.get("modeldeployments", NAMESPACE, name) or {} for name in self.names]

    def statuses(self) -> list[dict[str, Any]]:
        return [status_of(md) for md in self.objects()]

    async def until(self, what: str, done: Any, timeout: float, operator: OperatorProcess) -> None:
        """Wait until `done(ModelDeployment)` holds for every object, saying how many are there every 15 s. Past
        `timeout`, go on with a warning naming the stragglers' phases: a few objects stuck elsewhere
        (say, paused after inconclusive analysis) do not make the others' figures wrong."""
        started = time.monotonic()
        said = started
        while True:
            objects = self.objects()
            ok = sum(1 for md in objects if done(md))
            if ok == self.count:
                return
            now = time.monotonic()
            if operator.proc is not None and operator.proc.poll() is not None:
                raise RuntimeError(f"the operator exited:\n{operator.output()[-3000:]}")
            if now - started > timeout:
                phases = Counter(status_of(md).get("phase", "no status") for md in objects if not done(md))
                stuck = ", ".join(f"{n} {phase}" for phase, n in phases.most_common())
                print(f"  WARNING: {ok}/{self.count} {what} after {timeout:.0f}s; going on (the others: {stuck})")
                return
            if now - said >= 15:
                print(f"    {ok}/{self.count} {what} after {now - started:.0f}s", flush=True)
                said = now
            await asyncio.sleep(1.0)

    async def snapshot(self, operator: OperatorProcess) -> Snapshot:
        assert operator.proc is not None
        histogram, errors, verdicts = await scrape(operator.metrics_port)
        return Snapshot(
            at=time.monotonic(),
            requests={s.name: len(s.requests) for s in self.servers},
            answered={s.name: len(s.answered) for s in self.servers},
            queries=len(self.prometheus.queries),
            histogram=histogram,
            api_errors=errors,
            verdicts=verdicts,
            operator_cpu=cpu_seconds(operator.proc.pid),
            standin_cpu=own_cpu_seconds(),
            machine_cpu=machine_cpu_seconds(),
        )

    async def go(self) -> Figures:
        for server in self.servers:
            await server.start()
            await server.put("namespaces", {"metadata": {"name": NAMESPACE}})
            for index in range(3):  # a pod's index is its node: room for every object's pods and surge
                await server.put("nodes", gpu_node(index, GPU_PRODUCT, gpus=2 * self.count))
        await self.prometheus.start()
        await self.home.put("customresourcedefinitions", crd())
        for remote in self.remotes:
            await self.home.put("secrets", kubeconfig_secret(remote))
        v1 = [model_deployment(name, "v1", self.prometheus.url) for name in self.names]
        r1, r2 = revision(v1[0]), revision(model_deployment("x", "v2", self.prometheus.url))
        for md in v1:
            await self.home.put("modeldeployments", md)
        operator = OperatorProcess(self.home, self.workdir, NAMESPACE, interval=OPERATOR_INTERVAL)
        with EventKubelet(*self.servers):
            operator.start()
            try:
                return await self._measure(operator, r1, r2)
            finally:
                operator.stop()
                for server in self.servers:
                    await server.stop()
                await self.prometheus.stop()

    async def _measure(self, operator: OperatorProcess, r1: str, r2: str) -> Figures:
        started = time.monotonic()
        budget = 120 + self.count * 0.3
        print(f"  {self.count} ModelDeployments x 3 regions: bringing v1 up", flush=True)
        await self.until(
            "Healthy on v1",
            lambda md: status_of(md).get("phase") == "Healthy" and status_of(md).get("stableRevision") == r1,
            budget,
            operator,
        )
        print(f"  changing all to v2 after {time.monotonic() - started:.0f}s", flush=True)
        spec = model_deployment("x", "v2", self.prometheus.url)["spec"]
        changing = time.monotonic()
        for i, name in enumerate(self.names):
            if not self.burst:  # independent rollouts: the changes spread over one analysis interval
                await asyncio.sleep(max(0.0, changing + i * ANALYSIS_INTERVAL / self.count - time.monotonic()))
            await self.home.patch("modeldeployments", NAMESPACE, name, {"spec": copy.deepcopy(spec)})

        def measured(md: dict[str, Any]) -> bool:
            # kopf records a spec change as handled (a patch of its own, then a wake-up of the loop) in
            # its own time, under load after the canary is measured: that belongs to the bring-up.
            handled = md["metadata"].get("annotations", {}).get("bellwether.dev/last-handled-configuration")
            # kopf keeps a digest of the spec it handled (handlers/operator.py DigestDiffBaseStorage)
            spec = json.dumps(md.get("spec"), sort_keys=True, separators=(",", ":"))
            if json.loads(handled or "{}").get("spec", {}).get("sha256") != hashlib.sha256(spec.encode()).hexdigest():
                return False
            s = status_of(md)
            regions = {m.get("region") for m in s.get("analysis") or []}
            return s.get("canaryRevision") == r2 and len(regions) == 1 + len(REMOTE_REGIONS)

        await self.until("canaries measured in every region", measured, budget, operator)
        bring_up = time.monotonic() - started
        print(f"  every canary measured after {bring_up:.0f}s; measuring for {self.minutes:g} min", flush=True)
        before = await self.snapshot(operator)
        await asyncio.sleep(self.minutes * 60)
        after = await self.snapshot(operator)
        assert operator.proc is not None
        memory = proc_status(operator.proc.pid)
        window = after.at - before.at
        kinds: Counter[str] = Counter()
        refused: Counter[int] = Counter()
        for server in self.servers:
            for method, path, ctype in server.requests[before.requests[server.name] : after.requests[server.name]]:
                kinds[request_kind(method, path, ctype)] += 1
            answers = server.answered[before.answered[server.name] : after.answered[server.name]]
            refused.update(status for status in answers if status >= 400)
        per_object_minute = self.count * window / 60
        intervals = self.count * window / ANALYSIS_INTERVAL  # per-object analysis intervals in the window
        histogram = after.histogram.minus(before.histogram)
        return Figures(
            count=self.count,
            bring_up=bring_up,
            window=window,
            p50=histogram.quantile(0.5),
            p99=histogram.quantile(0.99),
            cycles=histogram.count,
            api_per_minute=sum(kinds.values()) / per_object_minute,
            api_kinds={k: n / per_object_minute for k, n in kinds.most_common()},
            queries_per_interval=(after.queries - before.queries) / intervals,
            measured_per_interval=(after.verdicts - before.verdicts) / intervals,
            queries_per_measurement=(after.queries - before.queries) / max(after.verdicts - before.verdicts, 1.0),
            peak_rss_mib=memory["VmHWM"] / 1024,
            operator_cpu=(after.operator_cpu - before.operator_cpu) / window,
            standin_cpu=(after.standin_cpu - before.standin_cpu) / window,
            other_cpu=max(
                0.0,
                (after.machine_cpu - before.machine_cpu) / window
                - (after.operator_cpu - before.operator_cpu) / window
                - (after.standin_cpu - before.standin_cpu) / window,
            ),
            api_errors=after.api_errors - before.api_errors,
            refused=dict(refused),
            not_progressing=sum(1 for s in self.statuses() if s.get("phase") != "Progressing"),
            failed_cycles=len(FAILED_CYCLE.findall(operator.output())),
        )


# -- report ---------------------------------------------------------------------------------------------


def seconds(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def report(figures: list[Figures]) -> None:
    print()
    head = f"{'objects':>8} {'p50':>8} {'p99':>8} {'API/obj/min':>12} {'queries/obj/interval':>21}"
    print(
        head + f" {'peak RSS':>10} {'op CPU':>7} {'stand-in CPU':>13} {'other CPU':>10} {'cycles':>7} {'bring-up':>9}"
    )
    for f in figures:
        print(
            f"{f.count:>8} {seconds(f.p50):>8} {seconds(f.p99):>8} {f.api_per_minute:>12.2f}"
            f" {f.queries_per_interval:>21.2f} {f.peak_rss_mib:>7.0f} MiB {f.operator_cpu:>6.0%}"
            f" {f.standin_cpu:>13.0%} {f.other_cpu:>10.0%} {f.cycles:>7.0f} {f.bring_up:>8.0f}s"
        )
    expected = (1 + len(REMOTE_REGIONS)) * METRICS * 2
    print(f"(queries expected per object per interval: {expected} = 3 regions x {METRICS} metrics x canary+stable)")
    for f in figures:
        print(f"{f.count:>8} objects: {f.failed_cycles} cycles failed over the whole run (bring-up included)")
        print(
            f"{f.count:>8} objects: {f.measured_per_interval:.2f} of {expected // 2} measurements per object per"
            f" interval taken, {f.queries_per_measurement:.2f} queries per measurement (2.00: every query sent)"
        )
    for f in figures:
        kinds = ", ".join(f"{k} {n:.2f}" for k, n in f.api_kinds.items())
        print(f"{f.count:>8} objects, API requests per object per minute: {kinds}")
        if f.api_errors or f.refused or f.not_progressing:
            statuses = ", ".join(f"{n} x {status}" for status, n in sorted(f.refused.items())) or "none"
            print(
                f"{'':>8} failed API requests seen by the operator: {f.api_errors:.0f} (the stand-ins answered "
                f"{statuses}); objects not Progressing at the end: {f.not_progressing}"
            )
    if len(figures) < 2:
        return
    print("\ngrowth (per-object costs: 1.00 = constant per object)")
    print(f"{'ratio':>12} {'p50':>6} {'p99':>6} {'API/obj':>8} {'queries/obj':>12} {'peak RSS':>9} {'RSS/obj':>8}")
    for small, large in itertools.pairwise(figures):

        def ratio(a: float, b: float) -> str:
            return "n/a" if not a or math.isnan(a) or math.isnan(b) else f"{b / a:.2f}"

        rss_small, rss_large = small.peak_rss_mib / small.count, large.peak_rss_mib / large.count
        print(
            f"{f'{large.count}/{small.count}':>12} {ratio(small.p50, large.p50):>6} {ratio(small.p99, large.p99):>6}"
            f" {ratio(small.api_per_minute, large.api_per_minute):>8}"
            f" {ratio(small.queries_per_interval, large.queries_per_interval):>12}"
            f" {ratio(small.peak_rss_mib, large.peak_rss_mib):>9} {ratio(rss_small, rss_large):>8}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--counts", default="100,1000,3000", help="comma-separated object counts (default 100,1000,3000)"
    )
    parser.add_argument("--minutes", type=float, default=1.0, help="length of the measured window (default 1)")
    parser.add_argument(
        "--burst",
        action="store_true",
        help="change every object at the same instant (a GitOps sync of all of them) instead of over one interval",
    )
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    tune_gc()  # the stand-ins hold three clusters' objects: their full collections would stall their answers
    figures = []
    for count in counts:
        with tempfile.TemporaryDirectory(prefix=f"bellwether-scale-{count}-") as workdir:
            figures.append(asyncio.run(Run(count, args.minutes, Path(workdir), args.burst).go()))
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
