"""Play a scenario: deploy the spec, let it settle, roll out a next revision that behaves as the
scenario says, and report what Bellwether did and how quickly."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bellwether.api import ModelDeploymentSpec, revision_of, template_of
from bellwether.api.units import parse_duration
from bellwether.cycle import EvaluateGates, Notify
from bellwether.sim.cluster import Cluster
from bellwether.sim.runner import Entry, Measure, Runner
from bellwether.sim.scenarios import CATALOG, Scenario
from bellwether.sim.source import SimMetricSource
from bellwether.sim.world import World

Result = Literal["promoted", "rolled-back", "paused", "failed", "unfinished"]
SETTLE_LIMIT = 4 * 3600.0
ATTENTION_SECONDS = 600.0


@dataclass
class Outcome:
    scenario: str
    seed: int
    result: Result
    phase: str
    reason: str | None
    previous_revision: str
    revision: str
    regions_touched: list[str]
    applied_at: float  # elapsed virtual seconds when the new revision was applied
    onset_at: float | None = None  # when a regression became visible at the size that must be caught
    rolled_back_at: float | None = None
    promoted_at: float | None = None  # when the revision first served every region at full size
    interval: float = 30.0
    decisions: int = 0
    serving: dict[str, dict[str, int]] = field(default_factory=dict)  # ready pods by region, revision at the end
    gpu_peak: dict[str, int] = field(default_factory=dict)  # most GPUs held at once during the rollout
    pod_peak: dict[str, int] = field(default_factory=dict)  # most pods (Pending ones too) at once, what maxSurge caps
    gpu_capacity: dict[str, int] = field(default_factory=dict)
    # Per region, over time: the split the world achieved (endpoints or route) and the canary weight asked.
    traffic: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    timeline: list[Entry] = field(default_factory=list)

    @property
    def detection_seconds(self) -> float | None:
        if self.onset_at is None or self.rolled_back_at is None:
            return None
        return self.rolled_back_at - self.onset_at

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "timeline"}
        out["detection_seconds"] = self.detection_seconds
        out["timeline"] = [
            {"at": e.at, "kind": e.kind, "region": e.region, "message": e.message, **e.data} for e in self.timeline
        ]
        return out


def next_revision(spec: ModelDeploymentSpec) -> ModelDeploymentSpec:
    """The same spec with the model version bumped: a new revision, nothing else changed."""
    version = f"{spec.model.version}-next"
    model = spec.model.model_copy(update={"version": version, "uri": f"{spec.model.uri}-next"})
    return spec.model_copy(update={"model": model})


def step_floor(spec: ModelDeploymentSpec) -> float:
    """The least time any rollout of this spec can take: every timed step of every wave, in a row."""
    per_wave = 0.0
    for s in spec.rollout.steps:
        if s.analysis is not None:
            per_wave += parse_duration(s.analysis.duration)
        elif s.pause is not None and s.pause.duration is not None:
            per_wave += parse_duration(s.pause.duration)
    return per_wave * len(spec.waves())


def least_time(spec: ModelDeploymentSpec) -> float:
    """The least time a rollout of this spec takes in the simulator, whatever judges it: the timed steps,
    plus what no judge can shorten. In every wave each `setWeight` waits for its new canary pods to load
    (the simulator loads a model in `warmupSeconds`), an analysis after it first waits out the warm-up,
    and the wave's move to 100% loads pods once more. Shorter analyses (`minDuration`) are not assumed."""
    load = warm = float(spec.runtime.warmup_seconds)
    per_wave, steps = 0.0, spec.rollout.steps
    for i, s in enumerate(steps):
        if s.set_weight is not None:
            per_wave += load
            later = next((t for t in steps[i + 1 :] if t.set_weight is None), None)
            per_wave += warm if later is not None and later.analysis is not None else 0.0
        elif s.analysis is not None:
            per_wave += parse_duration(s.analysis.duration)
        elif s.pause is not None and s.pause.duration is not None:
            per_wave += parse_duration(s.pause.duration)
    return (per_wave + load) * len(spec.waves())


def _gpu_peak(cluster: Cluster, since: float) -> int:
    """GPUs held by scheduled pods, at the worst moment since `since`."""
    held = [p for p in cluster.pods if p.scheduled is not None]
    moments = [since] + [p.scheduled for p in held if p.scheduled is not None and p.scheduled >= since]
    return max(
        sum(p.gpus for p in held if p.scheduled is not None and p.scheduled <= t and p.alive(t)) for t in moments
    )


def _pod_peak(cluster: Cluster, owner: str, since: float) -> int:
    """Pods that existed at once, at the worst moment since `since`."""
    moments = [since] + [p.created for p in cluster.pods if p.owner == owner and p.created >= since]
    return max(len(cluster.live_pods(owner, t)) for t in moments)


def _changes(cluster: Cluster, owner: str, since: float) -> set[float]:
    """Every moment since `since` at which a region's traffic may have changed."""
    out = {since}
    for p in cluster.pods:
        if p.owner != owner:
            continue
        out.update(t for t in (p.ready_at, p.deleted) if t is not None and t >= since)
        out.update(t for t, _ in p.label_history if t >= since)
    for history in (cluster.route_history.get(owner, []), cluster.serving_history.get(owner, [])):
        out.update(t for t, _ in history if t >= since)
    return out


def traffic(runner: Runner, region: str, since: float) -> list[dict[str, Any]]:
    """The region's split over time since `since`, as achieved, next to the canary weight asked for:
    one point per change of either."""
    cluster = runner.world.clusters[region]
    moments = _changes(cluster, runner.owner, since) | {t.at for t in runner.ticks if t.at >= since}
    out: list[dict[str, Any]] = []
    for t in sorted(moments):
        point = {"at": t, "achieved": cluster.weights(runner.owner, t), "requested": runner.requested(region, t)}
        if not out or (out[-1]["achieved"], out[-1]["requested"]) != (point["achieved"], point["requested"]):
            out.append(point)
    return out


async def start(
    spec: ModelDeploymentSpec,
    *,
    seed: int = 0,
    scenario: Scenario | None = None,
    name: str = "llama-chat",
    namespace: str = "default",
    measure: Measure | None = None,
    on_entry: Callable[[Entry], None] | None = None,
    gates: EvaluateGates | None = None,
    notify: Notify | None = None,
) -> Runner:
    """A world for the spec (shaped by the scenario's GPU pools) with the spec deployed and settled.
    Gates and notifications stay in memory unless `gates` / `notify` reach real webhooks."""
    world = World.for_spec(spec, seed=seed, pools=scenario.pools(spec) if scenario else None)
    extra: dict[str, Any] = {"measure": measure} if measure is not None else {}
    runner = Runner(
        world,
        SimMetricSource(world),
        spec,
        name=name,
        namespace=namespace,
        on_entry=on_entry,
        gates=gates,
        notify=notify,
        **extra,
    )
    await settle(runner)
    return runner


def waiting_for_promote(runner: Runner) -> bool:
    """Paused at a `pause` step without a duration: what a person ends with `bellwether promote`."""
    s, steps = runner.status, runner.spec.rollout.steps
    if s.phase != "Paused" or s.progress.paused_by_user or not 0 <= s.step < len(steps):
        return False
    pause = steps[s.step].pause
    return pause is not None and pause.duration is None


async def settle(runner: Runner) -> None:
    """Run until nothing more happens by itself, playing the person who promotes past manual pauses.

    An inconclusive pause is not the end: the canary serves on and is judged in the background, so
    the world runs on for ATTENTION_SECONDS (a person's time to look) and a failure meanwhile rolls
    it back, as it would in a cluster."""
    deadline = runner.elapsed + SETTLE_LIMIT
    while await runner.run(Runner.settled, deadline - runner.elapsed):
        if waiting_for_promote(runner):
            runner.command("promote")
            continue
        if _judged_while_paused(runner):
            await runner.run(lambda r: r.status.phase != "Paused", min(ATTENTION_SECONDS, deadline - runner.elapsed))
        return


def _judged_while_paused(runner: Runner) -> bool:
    s = runner.status
    return s.phase == "Paused" and s.progress.paused_reason is not None and s.canary_revision is not None


async def roll(runner: Runner, new_spec: ModelDeploymentSpec, scenario: Scenario, seed: int = 0) -> Outcome:
    """Apply `new_spec`, whose revision behaves as the scenario says, and run until it settles."""
    world = runner.world
    previous = runner.target
    revision = revision_of(template_of(new_spec))
    world.fleet.behaviours[revision] = scenario.behaviour_for(new_spec)
    applied_at = world.clock.elapsed
    if scenario.outage_after is not None and isinstance(runner.source, SimMetricSource):
        runner.source.outages.append((applied_at + scenario.outage_after, math.inf))
    runner.apply(new_spec)
    await settle(runner)
    return outcome(runner, scenario, previous, revision, applied_at, seed)


def outcome(runner: Runner, scenario: Scenario, previous: str, revision: str, applied_at: float, seed: int) -> Outcome:
    """What became of `revision`, applied at `applied_at` over `previous`: the figures `simulate` reports."""
    world, status, spec = runner.world, runner.status, runner.spec
    since = [e for e in runner.timeline if e.at >= applied_at]
    rolled_back_at = next((e.at for e in since if e.kind == "phase" and e.data["to"] == "RolledBack"), None)
    degraded = next((c for c in status.conditions if c.type == "Degraded" and c.status == "True"), None)
    warnings = [e.message.split(": ", 1)[-1] for e in since if e.data.get("type") == "Warning"]
    warning = warnings[-1] if warnings else None  # e.g. why it paused
    clusters = world.clusters.items()
    return Outcome(
        scenario=scenario.name,
        seed=seed,
        result=_result(runner, revision),
        phase=status.phase,
        reason=degraded.message if degraded else (warning or status.message),
        previous_revision=previous,
        revision=revision,
        regions_touched=[n for n, c in clusters if any(p.revision == revision for p in c.pods)],
        applied_at=applied_at,
        onset_at=_onset(runner, scenario, revision),
        rolled_back_at=rolled_back_at,
        promoted_at=runner.full_since.get(revision),
        interval=parse_duration(spec.analysis.interval) if spec.analysis else 30.0,
        decisions=runner.decisions,
        serving={n: {r: p.ready for r, p in c.observe(runner.owner).pods.items()} for n, c in clusters},
        gpu_peak={n: _gpu_peak(c, applied_at) for n, c in clusters},
        pod_peak={n: _pod_peak(c, runner.owner, applied_at) for n, c in clusters},
        traffic={n: traffic(runner, n, applied_at) for n, _ in clusters},
        gpu_capacity={n: c.gpu_capacity() for n, c in clusters},
        timeline=since,
    )


def _result(runner: Runner, revision: str) -> Result:
    status = runner.status
    if status.phase == "RolledBack":
        return "rolled-back"
    if status.phase == "Healthy" and status.stable_revision == revision:
        return "promoted"
    if status.phase == "Paused":
        return "paused"
    return "failed" if status.phase == "Degraded" else "unfinished"


def _onset(runner: Runner, scenario: Scenario, revision: str) -> float | None:
    """When a regression became visible: the analysis may look at it (served past the warm-up) and it
    has reached the size that must be caught. None for a healthy revision."""
    if not scenario.regressed:
        return None
    behaviour = runner.world.fleet.behaviour(revision)
    affected = [
        p.ready_at
        for n, c in runner.world.clusters.items()
        if behaviour.regions is None or n in behaviour.regions
        for p in c.pods
        if p.revision == revision and p.ready_at is not None and (p.deleted is None or p.deleted > p.ready_at)
    ]
    warmup = float(runner.spec.runtime.warmup_seconds)
    return min(affected) + max(scenario.visible_after(), warmup) if affected else None


async def play(
    spec: ModelDeploymentSpec,
    scenario: Scenario | str,
    *,
    seed: int = 0,
    name: str = "llama-chat",
    namespace: str = "default",
    measure: Measure | None = None,
    on_entry: Callable[[Entry], None] | None = None,
    gates: EvaluateGates | None = None,
    notify: Notify | None = None,
) -> Outcome:
    """Deploy the spec, let it settle, then roll out its next revision under the scenario."""
    sc = CATALOG[scenario] if isinstance(scenario, str) else scenario
    runner = await start(
        spec,
        seed=seed,
        scenario=sc,
        name=name,
        namespace=namespace,
        measure=measure,
        on_entry=on_entry,
        gates=gates,
        notify=notify,
    )
    return await roll(runner, next_revision(spec), sc, seed)
