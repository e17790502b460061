"""`bellwether demo`: the README's first command. No cluster, no Prometheus: a simulated 3-region
GPU fleet, one healthy rollout to full promotion and one bad rollout rolled back automatically,
shown as a live timeline and summed up on one screen.

Everything it shows comes from the operator's own engine, rendering and judge, run by the simulator
in virtual time; the short real pauses between lines only make it readable (`--fast` drops them).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TextIO

import yaml

from bellwether.api import parse

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


async def demo(out: TextIO, *, fast: bool = False, seed: int = 7, colour: bool = False) -> int:
    from bellwether.sim.fleet import Behaviour
    from bellwether.sim.play import Outcome, roll, start
    from bellwether.sim.runner import Entry
    from bellwether.sim.scenarios import CATALOG, Scenario
    from bellwether.sim.timeline import Style, clock, line

    style = Style(colour)
    md = parse(yaml.safe_load(DEMO_MANIFEST))
    spec = md.spec
    began = time.monotonic()

    def say(text: str = "", pause: float = 0.0) -> None:
        print(text, file=out, flush=True)
        if not fast and pause:
            time.sleep(pause)

    def show(entry: Entry) -> None:
        say(line(entry, style, 9), 0.12 if entry.kind == "measurement" else 0.35)

    say(style("Bellwether demo — a simulated GPU fleet, the operator's real engine and judge", "bold"))
    say(f"  ModelDeployment {md.metadata.namespace}/{md.metadata.name}: {spec.model.name}, 1 H100 per replica")
    for r in spec.regions:
        say(
            f"  {r.name:9} {r.replicas} replicas   nodes labelled {', '.join(f'{k}={v}' for k, v in r.node_selector.items())}"
        )
    say(
        f"  waves {' → '.join('+'.join(w) for w in spec.waves())}; steps 10% → analysis 2m → 50% → analysis 2m; bake 2m"
    )
    say("  judged every 30s against the stable revision: p99 latency, time to first token, error rate", 1.0)

    say()
    say(style(f"▶ 1. First deploy of {spec.model.version}", "bold"), 0.5)
    runner = await start(spec, seed=seed, name=md.metadata.name, namespace=md.metadata.namespace, on_entry=show)

    good = spec.model_copy(
        update={
            "model": spec.model.model_copy(
                update={"version": "2026-11-20", "uri": "s3://models/llama-3.1-8b-instruct/2026-11-20"}
            )
        }
    )
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

    def summary(n: int, title: str, o: Outcome) -> None:
        took = (o.promoted_at if o.result == "promoted" else o.rolled_back_at) or runner.world.clock.elapsed
        verdict = style(o.result, "green" if o.result == "promoted" else "red")
        say(f"  {n}. {title}: {verdict} after {clock(took - o.applied_at)} of virtual time")
        if o.result != "promoted" and o.reason:
            say(f"     why: {o.reason}")
        say(
            f"     regions touched: {', '.join(o.regions_touched) or 'none'}; now serving {runner.status.stable_revision}"
        )

    say()
    say(style("Summary", "bold"))
    summary(2, f"model 2026-11-20 ({first.revision})", first)
    summary(3, f"vLLM v0.11.1 ({second.revision})", second)
    failed = sum(1 for _, m in runner.measurements if m.verdict == "Failed")
    say(
        f"  {len(runner.measurements)} measurements ({failed} failed), {runner.decisions} decisions, "
        f"{clock(runner.world.clock.elapsed)} of virtual time in {time.monotonic() - began:.1f}s"
    )
    say("  Try: bellwether simulate -f examples/demo.yaml --scenario slow-burn   (or gpu-shortage, error-spike, …)")
    ok = first.result == "promoted" and second.result == "rolled-back"
    return 0 if ok else 1
