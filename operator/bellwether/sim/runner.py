"""The simulation loop: the operator's own cycle, with virtual time and the simulated world as I/O.

Each tick is one `bellwether.cycle.run`, the function the kopf daemon runs, with the simulated world
behind its ports (`sim/ports.py`): observe, measure what is due, decide, write status, apply (pod
labels for the `replicas` router included), consume a command. Then virtual time moves on by the
cycle's wait. What happened is kept as a timeline for people and benchmarks; the traffic it reports is
what the world's endpoints and routes achieved.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bellwether import cycle
from bellwether.analysis.measure import measure as analysis_measure
from bellwether.analysis.source import MetricSource
from bellwether.api import Measurement, ModelDeploymentSpec, ModelDeploymentStatus, revision_of, template_of
from bellwether.render.names import fit
from bellwether.rollout.types import AnalysisRequest, CommandAction, Decision, Event, Observations, RegionObservation
from bellwether.sim.hooks import MemorySink, RuleGates
from bellwether.sim.ports import SimHome, SimRegions
from bellwether.sim.world import World

Measure = Callable[
    [ModelDeploymentSpec, str, str, Sequence[AnalysisRequest], MetricSource, datetime],
    Awaitable[tuple[Measurement, ...]],
]
Kind = Literal["apply", "phase", "step", "weight", "pods", "measurement", "event", "promoted", "note"]


@dataclass(frozen=True)
class Tick:
    """One decision: when, the canary weight status asked for in each region, what was rolled back, and
    per region the split the plan announced next to the split the world achieved once it was applied."""

    at: float
    requested: dict[str, int]
    phase: str
    rolled_back: str | None
    rollback_reason: str | None = None
    planned: dict[str, dict[str, int]] = field(default_factory=dict)  # region -> revision -> plan weight
    achieved: dict[str, dict[str, int]] = field(default_factory=dict)  # region -> revision -> share


@dataclass(frozen=True)
class Entry:
    at: float  # elapsed virtual seconds
    kind: Kind
    message: str
    region: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class Runner:
    """One ModelDeployment in a simulated world. `measure` is the judge: the production one by default."""

    def __init__(
        self,
        world: World,
        source: MetricSource,
        spec: ModelDeploymentSpec,
        *,
        name: str = "llama-chat",
        namespace: str = "default",
        measure: Measure = analysis_measure,
        min_tick: float = 1.0,
        max_tick: float = 60.0,
        on_entry: Callable[[Entry], None] | None = None,
        gates: cycle.EvaluateGates | None = None,
        notify: cycle.Notify | None = None,
    ) -> None:
        self.world, self.source, self.name, self.namespace = world, source, name, namespace
        self.owner = fit(name)  # the bellwether.dev/deployment label value
        self.measure = measure
        self.min_tick, self.max_tick = min_tick, max_tick
        self.on_entry = on_entry
        self.home = SimHome(name, namespace, spec)
        self.memory = cycle.Memory()
        # In memory unless given the operator's webhooks: what would be sent, where gates would hold.
        self.sink, self.gates = MemorySink(), RuleGates()
        regions = SimRegions(world, self.owner)
        self.ports = cycle.Ports(
            self.home,
            regions,
            self._judge,
            max_requeue=max_tick,
            rng=random.Random(0),
            gates=gates or self.gates,
            notify=notify or self.sink,
            capacity=regions.gpu_room,
        )
        self.applied_at = 0.0
        self.timeline: list[Entry] = []
        self.ticks: list[Tick] = []
        self.measurements: list[tuple[float, Measurement]] = []
        self.decisions = 0
        self.full_since: dict[str, float] = {}  # revision -> when it first served everywhere at full size
        self._weights: dict[str, dict[str, int]] = {}  # region -> last split noted (and the weight asked, at "")
        self._pending: dict[tuple[str, str], str] = {}
        self._scaled: dict[str, int] = {}  # region -> how many of its autoscaler's scalings are noted
        self._note("apply", f"applied ModelDeployment {namespace}/{name}: {self._describe(spec)}")

    # -- driving ---------------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return self.world.clock.elapsed

    @property
    def spec(self) -> ModelDeploymentSpec:
        return self.home.spec

    @property
    def status(self) -> ModelDeploymentStatus:
        return self.home.status

    @property
    def generation(self) -> int:
        return self.home.generation

    @property
    def target(self) -> str:
        return revision_of(template_of(self.spec))

    def apply(self, spec: ModelDeploymentSpec) -> None:
        """A `kubectl apply` of a changed spec: the generation moves on, the loop wakes up."""
        self.home.change(spec)
        self.applied_at = self.elapsed
        self._note("apply", f"applied a new spec (generation {self.generation}): {self._describe(spec)}")

    def command(self, action: CommandAction) -> None:
        """`bellwether <action>` as a person would: an annotation the next cycle consumes once."""
        self.home.command(action, f"sim-{self.generation}-{self.decisions}")
        self._note("apply", f"bellwether {action} (as a person would)")

    async def _judge(
        self, spec: ModelDeploymentSpec, name: str, namespace: str, requests: Sequence[AnalysisRequest], now: datetime
    ) -> tuple[Measurement, ...]:
        return await self.measure(spec, name, namespace, requests, self.source, now)

    async def tick(self) -> cycle.Outcome:
        """One cycle of the operator, then virtual time moves on by its wait."""
        old = self.status
        outcome = await cycle.run(self.ports, self.memory, self.namespace, self.name, self.world.clock.now())
        self.decisions += 1
        if outcome.decision is not None and outcome.observations is not None:
            self._record(old, outcome.observations, outcome.decision, outcome.events)
            self.ticks.append(self._tick(outcome.decision))
        self.world.advance(min(self.max_tick, max(self.min_tick, outcome.requeue_after)))
        return outcome

    def _tick(self, decision: Decision) -> Tick:
        st = decision.status
        reachable = {n: c for n, c in self.world.clusters.items() if not c.unreachable}
        return Tick(
            self.elapsed,
            {r.name: r.weight for r in st.regions},
            st.phase,
            st.progress.rolled_back_revision,
            st.progress.rollback_reason,
            {p.region: {r.revision: r.weight for r in p.revisions} for p in decision.regions},
            {n: c.weights(self.owner, self.elapsed) for n, c in reachable.items()},
        )

    def requested(self, region: str, t: float) -> int:
        """The canary weight status asked for in `region` at `t` (0 before the first decision)."""
        found = 0
        for tick in self.ticks:
            if tick.at > t:
                break
            found = tick.requested.get(region, 0)
        return found

    async def run(self, done: Callable[[Runner], bool], limit: float) -> bool:
        """Tick until `done` (True) or `limit` more virtual seconds have passed (False)."""
        deadline = self.elapsed + limit
        while self.elapsed < deadline:
            await self.tick()
            if done(self):
                return True
        return False

    def settled(self) -> bool:
        """Nothing more will happen by itself: the target is Healthy, or rolled back, or waiting for a person."""
        s = self.status
        if s.progress.draining_revision is not None:
            return False  # traffic moved, but the old pods are still being removed: not the end state yet
        if s.phase in ("RolledBack", "Paused"):
            # Only a state reached since the last apply: a new spec on a rolled-back object starts afresh.
            return any(e.kind == "phase" and e.at >= self.applied_at and e.data["to"] == s.phase for e in self.timeline)
        return s.phase == "Healthy" and s.stable_revision == self.target and s.canary_revision is None

    # -- the timeline ----------------------------------------------------------------------------

    def _note(self, kind: Kind, message: str, region: str | None = None, **data: Any) -> None:
        entry = Entry(self.elapsed, kind, message, region, data)
        self.timeline.append(entry)
        if self.on_entry is not None:
            self.on_entry(entry)

    def _describe(self, spec: ModelDeploymentSpec) -> str:
        regions = ", ".join(
            f"{r.name} ({r.size if r.replicas is not None else f'{r.size}+, autoscaled'})" for r in spec.regions
        )
        return f"model {spec.model.name} {spec.model.version} (revision {revision_of(template_of(spec))}), {regions}"

    def _record(
        self, old: ModelDeploymentStatus, obs: Observations, decision: Decision, events: Sequence[Event]
    ) -> None:
        """The cycle's Events as the operator posts them: the decision's and the cycle's own (GPU fit,
        notifications)."""
        new, measured = self.status, obs.measurements
        by_region: dict[str, list[Measurement]] = {}
        for m in measured:
            self.measurements.append((self.elapsed, m))
            by_region.setdefault(m.region, []).append(m)
        for where, ms in by_region.items():
            line = "; ".join(_measurement_line(m) for m in ms)
            self._note("measurement", line, where, measurements=[m.model_dump(mode="json") for m in ms])
        if (new.wave, new.step) != (old.wave, old.step) and new.canary_revision:
            self._note("step", f"wave {new.wave + 1}, step {new.step + 1}: {new.message or ''}".rstrip(": "))
        said: list[str] = []
        for ev in events:
            if ev.reason == "PhaseChanged":
                continue  # the phase line below says it once
            self._note("event", f"{ev.type} {ev.reason}: {ev.message}", reason=ev.reason, type=ev.type)
            said.append(ev.message)
        if new.phase != old.phase:
            why = (new.message or "").split(": ", 1)[-1]
            told = bool(why) and any(why in m for m in said)  # a RolledBack Event already gave the reason
            message = f"phase {old.phase} → {new.phase}" + (f": {new.message}" if new.message and not told else "")
            self._note("phase", message, to=new.phase)
        self._note_traffic(new)
        for name, region in obs.regions.items():
            for rev, pods in region.pods.items():
                line = f"{pods.unschedulable} pod(s) of {rev} Pending: {pods.problem}" if pods.unschedulable else ""
                if line != self._pending.get((name, rev), ""):
                    self._pending[(name, rev)] = line
                    if line:
                        self._note("pods", line, name, revision=rev)
        self._note_autoscalers()
        self._track_full(obs)

    def _note_autoscalers(self) -> None:
        """A line per scaling an autoscaler did since the last decision (the HPA acts between cycles)."""
        for name, scaler in self.world.autoscalers.items():
            for at, deployment, was, now in scaler.scaled[self._scaled.get(name, 0) :]:
                self._note("note", f"autoscaler scaled {deployment} from {was} to {now} (at {at:.0f}s)", name)
            self._scaled[name] = len(scaler.scaled)

    def _note_traffic(self, status: ModelDeploymentStatus) -> None:
        """The split each region's endpoints (or route) achieve now that the plan is applied, next to
        the canary weight status asks for; a line whenever either changes."""
        asked = {r.name: r.weight for r in status.regions}
        for name, cluster in self.world.clusters.items():
            if cluster.unreachable:
                continue
            weights = cluster.weights(self.owner, self.elapsed)
            key = {**weights, "": asked.get(name, 0) if status.canary_revision else -1}
            if key == self._weights.get(name):
                continue
            self._weights[name] = key
            split = ", ".join(
                f"{_who(rev, status)}{rev} {w}%" for rev, w in sorted(weights.items(), key=lambda kv: -kv[1])
            )
            message = f"traffic {split or 'none'}"
            if status.canary_revision is not None:
                message += f" (canary asked {asked.get(name, 0)}%)"
            self._note("weight", message, name, weights=weights, requested=asked.get(name, 0))

    def _track_full(self, obs: Observations) -> None:
        """When a revision first serves every region alone at full size: the figure behind 'time to promotion'."""

        def present(region: RegionObservation) -> set[str]:
            return {r for r, p in region.pods.items() if p.desired or p.ready}

        for rev in {r for region in obs.regions.values() for r in present(region)}:
            if rev in self.full_since:
                continue
            if all(
                present(region) == {rev}
                and region.pods[rev].ready >= self.spec.region(name).size
                and (region.pods[rev].desired == self.spec.region(name).size or self.spec.region(name).autoscaling)
                for name, region in obs.regions.items()
            ):
                self.full_since[rev] = self.elapsed
                self._note("promoted", f"revision {rev} serves every region at full size", revision=rev)


def _who(revision: str, status: ModelDeploymentStatus) -> str:
    if revision == status.canary_revision:
        return "canary "
    return "stable " if revision == status.stable_revision else ""


def _measurement_line(m: Measurement) -> str:
    value = "no data" if m.value is None else f"{m.value:.4g}"
    versus = f" vs stable {m.baseline:.4g}" if m.baseline is not None else ""
    bound = f" (bound {m.bound})" if m.bound else ""
    reason = f" — {m.reason}" if m.reason and m.verdict != "Successful" else ""
    return f"{m.metric} {value}{versus}{bound}: {m.verdict}{reason}"
