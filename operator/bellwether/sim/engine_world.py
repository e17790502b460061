"""A small pure world for driving the engine alone: pods that start after a delay, GPU pools, measurements.

It applies a decision's region plans the way Kubernetes would (new pods become ready `start_seconds`
after they are asked for; pods beyond a region's pod capacity stay unschedulable; removed revisions
disappear at once) and feeds the engine the measurements a test's `judge` returns. Like the real measure step, a window
that starts before the canary's warm-up ended is Inconclusive whatever the judge says, and a live
stable revision's value is recorded as the measurement's baseline (`stable_values`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bellwether.api import Measurement, ModelDeploymentSpec, ModelDeploymentStatus, parse_spec
from bellwether.api.status import Verdict
from bellwether.rollout import analysis_due, decide, gates_due
from bellwether.rollout.types import (
    AnalysisRequest,
    Decision,
    GateOutcome,
    GateRequest,
    GateResult,
    ManualCommand,
    Observations,
    RegionObservation,
    RevisionPods,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# A verdict, or one with its reason, or with its reason and an Inconclusive's cause ("pending", "error").
Judge = Callable[[AnalysisRequest, str, datetime], Verdict | tuple[Verdict, str] | tuple[Verdict, str, str]]
WARMING = "canary still warming up"
# A gate's answer: (outcome, HTTP status or None)
Gatekeeper = Callable[[GateRequest, datetime], tuple[GateOutcome, int | None]]


def open_gates(_req: GateRequest, _now: datetime) -> tuple[GateOutcome, int | None]:
    return "passed", 200


def passing(_req: AnalysisRequest, _metric: str, _now: datetime) -> Verdict:
    return "Successful"


@dataclass
class Pods:
    desired: int = 0
    started: list[datetime] = field(default_factory=list)  # when each scheduled pod was created


@dataclass
class World:
    spec: ModelDeploymentSpec
    judge: Judge = passing
    start_seconds: float = 20.0
    capacity: dict[str, int] = field(default_factory=dict)  # pods a region's GPU pool can hold
    now: datetime = T0
    tick: float = 10.0
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    pods: dict[str, dict[str, Pods]] = field(default_factory=dict)
    unreachable: set[str] = field(default_factory=set)
    never_ready: set[str] = field(default_factory=set)  # revisions whose pods never become ready
    generation: int = 1
    command: ManualCommand | None = None
    decisions: list[Decision] = field(default_factory=list)
    requests: list[AnalysisRequest] = field(default_factory=list)  # every analysis request, in order
    measured: list[Measurement] = field(default_factory=list)  # every measurement fed to the engine
    stable_values: dict[str, float] = field(default_factory=dict)  # metric -> what a live stable measures
    check_replay: bool = False
    gatekeeper: Gatekeeper = open_gates
    gate_requests: list[tuple[datetime, GateRequest]] = field(default_factory=list)  # every gate asked, when

    def ready(self, region: str, rev: str | None) -> int:
        pods = self.pods.get(region, {}).get(rev or "")
        if pods is None or rev in self.never_ready:
            return 0
        return sum(1 for t in pods.started if (self.now - t).total_seconds() >= self.start_seconds)

    def observe(self, measurements: tuple[Measurement, ...] = ()) -> Observations:
        regions = {}
        for r in self.spec.regions:
            if r.name in self.unreachable:
                regions[r.name] = RegionObservation(r.name, reachable=False, error="connection refused")
                continue
            seen = {}
            for rev, p in self.pods.get(r.name, {}).items():
                ready = self.ready(r.name, rev)
                unsched = p.desired - len(p.started)
                problem = "0/3 nodes have a free nvidia.com/gpu" if unsched else None
                if rev in self.never_ready:
                    problem = "ImagePullBackOff: image not found"
                seen[rev] = RevisionPods(p.desired, ready, unsched, p.desired - ready, problem)
            regions[r.name] = RegionObservation(r.name, pods=seen)
        return Observations(self.generation, regions, measurements, self.command)

    def measure(self) -> tuple[Measurement, ...]:
        assert self.spec.analysis is not None
        requests = analysis_due(self.spec, self.status, self.now)
        self.requests += requests
        measured = tuple(self._measure(req, m.name) for req in requests for m in self.spec.analysis.metrics)
        self.measured += measured
        return measured

    def _measure(self, req: AnalysisRequest, metric: str) -> Measurement:
        window_start = self.now - timedelta(seconds=req.window_seconds)
        judged = self.judge(req, metric, self.now)
        verdict, reason, cause = (*judged, None)[:3] if isinstance(judged, tuple) else (judged, None, None)
        if window_start < datetime.fromisoformat(req.warmup_until):
            verdict, reason, cause = "Inconclusive", WARMING, "pending"
        baseline = self.stable_values.get(metric) if req.stable_revision is not None else None
        at = self.now.isoformat()
        return Measurement(
            metric=metric,
            region=req.region,
            revision=req.canary_revision,
            verdict=verdict,
            baseline=baseline,
            reason=reason,
            cause=cause,
            at=at,
        )

    def apply(self, decision: Decision) -> None:
        for plan in decision.regions:
            region = self.pods.setdefault(plan.region, {})
            if plan.region in self.unreachable:
                continue
            wanted = {p.revision: p.replicas for p in plan.revisions}
            for rev in list(region):
                if rev not in wanted:
                    del region[rev]
            for rev, n in wanted.items():
                pods = region.setdefault(rev, Pods())
                pods.desired = n
                del pods.started[n:]
            cap = self.capacity.get(plan.region)
            for rev, n in wanted.items():
                pods = region[rev]
                while len(pods.started) < n:
                    used = sum(len(p.started) for p in region.values())
                    if cap is not None and used >= cap:
                        break
                    pods.started.append(self.now)

    def ask_gates(self) -> tuple[GateResult, ...]:
        answers = []
        for req in gates_due(self.spec, self.status, self.now):
            self.gate_requests.append((self.now, req))
            outcome, code = self.gatekeeper(req, self.now)
            answers.append(GateResult(req.gate, req.revision, req.wave, outcome, f"HTTP {code}", code))
        return tuple(answers)

    def step(self) -> Decision:
        obs = replace(self.observe(self.measure()), gates=self.ask_gates())
        decision = decide(self.spec, self.status, obs, self.now)
        if self.check_replay:
            # A restart re-decides from the same inputs, or replays the decision it already applied.
            assert decide(self.spec, self.status, obs, self.now) == decision
            replay = decide(self.spec, decision.status, obs, self.now)
            assert replay.regions == decision.regions
            assert replay.status.model_dump(exclude={"conditions", "message"}) == decision.status.model_dump(
                exclude={"conditions", "message"}
            )
        self.decisions.append(decision)
        self.status = decision.status
        self.command = None
        self.apply(decision)
        self.now += timedelta(seconds=self.tick)
        return decision

    def run_until(self, done: Callable[[World], bool], limit: int = 500) -> None:
        for _ in range(limit):
            self.step()
            if done(self):
                return
        raise AssertionError(f"not done after {limit} decisions: {self.status.phase} {self.status.message}")

    def settle(self, limit: int = 500) -> None:
        """Run until Healthy (and not baking) or RolledBack with nothing left to drain."""
        self.run_until(lambda w: _settled(w.status), limit)

    def change(self, **changes: Any) -> None:
        self.spec = make_spec_like(self.spec, **changes)
        self.generation += 1


def _settled(st: ModelDeploymentStatus) -> bool:
    quiet = st.progress.draining_revision is None and st.progress.bake_started_at is None
    return quiet and st.phase in ("Healthy", "RolledBack")


def make_spec_like(spec: ModelDeploymentSpec, **changes: Any) -> ModelDeploymentSpec:
    doc = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    if "version" in changes:
        doc["model"]["version"] = changes.pop("version")
    if "replicas" in changes:
        for r in doc["regions"]:
            r["replicas"] = changes["replicas"].get(r["name"], r["replicas"])
        changes.pop("replicas")
    assert not changes, changes
    return parse_spec(doc)
