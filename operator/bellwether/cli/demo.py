"""`bellwether demo`: the README's first command. No cluster, no Prometheus: a simulated 3-region
GPU fleet, one healthy rollout to full promotion and one bad rollout rolled back automatically,
shown as a live timeline and summed up on one screen.

Everything it shows comes from the operator's own engine, rendering and judge, run by the simulator
in virtual time; the short real pauses between lines only make it readable (`--fast` drops them). The
traffic lines are the shares the simulated Services' endpoints achieve, next to the weight asked.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TYPE_CHECKING, TextIO

import yaml

from bellwether.api import ModelDeployment, parse

if TYPE_CHECKING:
    from bellwether.sim.play import Outcome
    from bellwether.sim.runner import Entry, Runner

# Also in examples/demo.yaml (a test keeps the two the same).
DEMO_MANIFEST = """\
apiVersion: bellwether.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: llama-chat
  namespace: ml
spec:
  model:
    name: llama-3.1-8b-instruct
    version: "2026-10-01"
    uri: s3://models/llama-3.1-8b-instruct/2026-10-01
  runtime:
    image: vllm/vllm-openai:v0.11.0
    args: ["--model", "$(MODEL_URI)", "--max-model-len", "8192"]
    port: 8000
    resources:
      gpu: {count: 1, product: NVIDIA-H100-80GB-HBM3}
      cpu: "8"
      memory: 64Gi
    warmupSeconds: 60
  regions:
    - name: us-east
      replicas: 4
      nodeSelector: {topology.kubernetes.io/region: us-east1}
    - name: eu-west
      replicas: 4
      nodeSelector: {topology.kubernetes.io/region: europe-west4}
    - name: ap-south
      replicas: 2
      nodeSelector: {topology.kubernetes.io/region: asia-south1}
  rollout:
    maxSurge: 25%
    waves: [[us-east], [eu-west, ap-south]]
    steps:
      - setWeight: 10
      - analysis: {duration: 2m}
      - setWeight: 50
      - analysis: {duration: 2m}
    bakeTime: 2m
    progressDeadline: 15m
  analysis:
    prometheus: {url: "http://prometheus.monitoring:9090"}
    interval: 30s
    failureLimit: 2
    inconclusiveLimit: 4
    onInconclusive: pause
    metrics:
      - name: p99-latency
        preset: vllm-e2e-latency-p99
      - name: ttft-p95
        preset: vllm-ttft-p95
      - name: error-rate
        preset: vllm-error-rate
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="watch a canary rollout and an automatic rollback on a simulated GPU fleet")
    p.add_argument("--fast", action="store_true", help="no pauses between lines (for scripts and tests)")
    p.add_argument("--seed", type=int, default=7, help="noise seed of the simulated metrics")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    return asyncio.run(demo(sys.stdout, fast=args.fast, seed=args.seed, colour=sys.stdout.isatty()))


class _Screen:
    """Lines for the reader, with a short pause after each unless `fast`."""

    def __init__(self, out: TextIO, fast: bool, colour: bool) -> None:
        from bellwether.sim.timeline import Style

        self.out, self.fast, self.style = out, fast, Style(colour)

    def say(self, text: str = "", pause: float = 0.0) -> None:
        print(text, file=self.out, flush=True)
        if not self.fast and pause:
            time.sleep(pause)

    def show(self, entry: Entry) -> None:
        from bellwether.sim.timeline import line

        self.say(line(entry, self.style, 9), 0.12 if entry.kind == "measurement" else 0.35)


async def demo(out: TextIO, *, fast: bool = False, seed: int = 7, colour: bool = False) -> int:
    from bellwether.sim.fleet import Behaviour
    from bellwether.sim.play import roll, start
    from bellwether.sim.scenarios import CATALOG, Scenario

    screen = _Screen(out, fast, colour)
    style, say = screen.style, screen.say
    md = parse(yaml.safe_load(DEMO_MANIFEST))
    spec = md.spec
    began = time.monotonic()
    _intro(screen, md)

    say()
    say(style(f"▶ 1. First deploy of {spec.model.version}", "bold"), 0.5)
    runner = await start(spec, seed=seed, name=md.metadata.name, namespace=md.metadata.namespace, on_entry=screen.show)

    model = spec.model.model_copy(
        update={"version": "2026-11-20", "uri": "s3://models/llama-3.1-8b-instruct/2026-11-20"}
    )
    good = spec.model_copy(update={"model": model})
    say()
    say(style("▶ 2. Roll out model 2026-11-20 (healthy)", "bold"), 0.5)
    first = await roll(runner, good, CATALOG["healthy"], seed)

    bad = good.model_copy(update={"runtime": good.runtime.model_copy(update={"image": "vllm/vllm-openai:v0.11.1"})})
    regression = Scenario(
        "demo-regression",
        "vLLM v0.11.1 is 1.8x slower on eu-west's GPUs",
        Behaviour(latency_factor=1.8, regions=frozenset({"eu-west"})),
        regressed=True,
    )
    say()
    say(style("▶ 3. Roll out vLLM v0.11.1 (slower in eu-west only)", "bold"), 0.5)
    second = await roll(runner, bad, regression, seed)
    ok = _summary(screen, runner, first, second, began)
    return 0 if ok and first.result == "promoted" and second.result == "rolled-back" else 1


def _intro(screen: _Screen, md: ModelDeployment) -> None:
    spec, say = md.spec, screen.say
    say(screen.style("Bellwether demo — a simulated GPU fleet, the operator's real engine and judge", "bold"))
    say(f"  ModelDeployment {md.metadata.namespace}/{md.metadata.name}: {spec.model.name}, 1 H100 per replica")
    for r in spec.regions:
        labels = ", ".join(f"{k}={v}" for k, v in r.node_selector.items())
        say(f"  {r.name:9} {r.size} replicas   nodes labelled {labels}")
    waves = " → ".join("+".join(w) for w in spec.waves())
    say(f"  waves {waves}; steps 10% → analysis 2m → 50% → analysis 2m; bake 2m")
    say("  judged every 30s against the stable revision: p99 latency, time to first token, error rate", 1.0)


def _summary(screen: _Screen, runner: Runner, first: Outcome, second: Outcome, began: float) -> bool:
    """The two rollouts in a few lines, and the traffic the world's endpoints carry now; True when
    stable serves every region alone."""
    from bellwether.sim.timeline import clock

    style, say = screen.style, screen.say
    elapsed = runner.world.clock.elapsed

    def one(n: int, title: str, o: Outcome) -> None:
        took = (o.promoted_at if o.result == "promoted" else o.rolled_back_at) or elapsed
        verdict = style(o.result, "green" if o.result == "promoted" else "red")
        say(f"  {n}. {title}: {verdict} after {clock(took - o.applied_at)} of virtual time")
        if o.result != "promoted" and o.reason:
            say(f"     why: {o.reason}")
        say(
            f"     regions touched: {', '.join(o.regions_touched) or 'none'}; now serving {runner.status.stable_revision}"
        )

    say()
    say(style("Summary", "bold"))
    one(2, f"model 2026-11-20 ({first.revision})", first)
    one(3, f"vLLM v0.11.1 ({second.revision})", second)
    now = {n: c.weights(runner.owner, elapsed) for n, c in runner.world.clusters.items()}
    shares = "; ".join(f"{n} {', '.join(f'{r} {w}%' for r, w in ws.items()) or 'none'}" for n, ws in now.items())
    say(f"  traffic now (endpoints): {shares}")
    failed = sum(1 for _, m in runner.measurements if m.verdict == "Failed")
    say(
        f"  {len(runner.measurements)} measurements ({failed} failed), {runner.decisions} decisions, "
        f"{clock(elapsed)} of virtual time in {time.monotonic() - began:.1f}s"
    )
    say("  Try: bellwether simulate -f examples/demo.yaml --scenario slow-burn   (or gpu-shortage, error-spike, …)")
    return all(ws == {runner.status.stable_revision: 100} for ws in now.values())
