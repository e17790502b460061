"""One rollout cycle for one ModelDeployment, the same for every driver.

observe every region -> ask the engine what to measure and which gates to ask -> measure and ask them
-> decide -> write status (guarded) -> apply each region's plan -> consume the command -> hand the
notifications over (never waiting for their delivery) -> when to come back.

The kopf daemon (`handlers/`), the simulator (`sim/`: `demo`, `simulate`, the benchmarks) and the
in-process tests all call `run`, each with its own ports: a home cluster holding the object, regions
to observe and apply to, a judge, gates and a notifier. No kopf, no client, no HTTP here: the ports are the I/O.

Decide, record, then act. The status write carries the version of the object the cycle read; if
anything changed it meanwhile (the user's spec, a command, another operator replica), the port raises
`StaleRead` and the cycle ends there, applying nothing: the next cycle decides from a fresh read. So
two replicas never both take a step, and no plan decided on a stale read is applied over a newer one.
A crash between the write and the apply leaves status ahead of the clusters, which the next cycle
(level-based) catches up with. Failures to apply are reported by the next cycle's status write.
"""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from bellwether import rollout
from bellwether.api import Measurement, ModelDeploymentSpec, ModelDeploymentStatus, SpecError, Template, parse_spec
from bellwether.api.reasons import Reason
from bellwether.api.spec import Region
from bellwether.api.templates import TemplateProblem, referenced, resolve
from bellwether.render import objects_for_region
from bellwether.render.routers import router_of
from bellwether.render.serving import Seen, serving_changes
from bellwether.rollout.capacity import shortfall, surge
from bellwether.rollout.commands import read_command
from bellwether.rollout.conditions import invalid_spec, with_errors
from bellwether.rollout.notices import Notice, notices
from bellwether.rollout.types import (
    AnalysisRequest,
    Decision,
    Event,
    GateRequest,
    GateResult,
    GpuRoom,
    Observations,
    RegionPlan,
)

log = logging.getLogger("bellwether")

CONFLICT_REQUEUE = 0.5  # seconds: after a refused status write, decide again from a fresh read soon
ERROR_REQUEUE = 1.0  # seconds: after an apply failed (or stopped failing), report it soon
REQUEUE_JITTER = 0.1  # share of the periodic re-check's wait taken off at random
TOO_LARGE_REQUEUE = 60.0


class StaleRead(Exception):
    """The object changed after this cycle read it; its decision must not be recorded."""


class TooLarge(Exception):
    """The home cluster refused the status write for the object's size."""


class Home(Protocol):
    """Where ModelDeployments live."""

    async def read(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def write_status(self, obj: Mapping[str, Any], status: ModelDeploymentStatus) -> bool:
        """Write `status` if the object is still as read (else StaleRead; TooLarge for size); False if
        nothing changed."""
        ...

    async def consume_command(self, namespace: str, name: str) -> None: ...

    async def read_template(self, name: str) -> dict[str, Any] | None:
        """A ClusterAnalysisTemplate as stored, None when none has that name; TemplateProblem when it
        cannot be read."""
        ...


class Regions(Protocol):
    """The clusters the regions run in. `observe` never raises: a region it cannot see comes back
    unreachable, with the error. `apply` returns why it failed, or None."""

    async def observe(self, obj: Mapping[str, Any], spec: ModelDeploymentSpec, region: Region) -> Seen: ...

    async def apply(
        self,
        obj: Mapping[str, Any],
        spec: ModelDeploymentSpec,
        plan: RegionPlan,
        objects: Sequence[dict[str, Any]],
        serving: Mapping[str, bool] | None,
        observed: Seen,
    ) -> str | None: ...


# (spec, name, namespace, requests, now) -> judged measurements
Measure = Callable[
    [ModelDeploymentSpec, str, str, Sequence[AnalysisRequest], datetime], Awaitable[tuple[Measurement, ...]]
]
# (spec, name, namespace, requests, now) -> each gate's answer; bounded by the gates' timeouts
EvaluateGates = Callable[
    [ModelDeploymentSpec, str, str, Sequence[GateRequest], datetime], Awaitable[tuple[GateResult, ...]]
]


# (region, template) -> the GPUs free for that revision's pods there; None: not known (no GPUs asked
# for, or the cluster does not let the operator read its nodes)
GpuCapacity = Callable[[Region, Template], Awaitable[GpuRoom | None]]


class Notify(Protocol):
    """Hands notifications over for delivery without waiting for it (a bounded background queue), and
    returns what went wrong since the last call (an unreadable Secret, a receiver that kept failing),
    in words without secrets: the cycle reports those as Events. `spec` is None when it is invalid
    (only installation-wide receivers are told then)."""

    async def __call__(
        self, namespace: str, name: str, spec: ModelDeploymentSpec | None, notices: Sequence[Notice]
    ) -> Sequence[str]: ...


@dataclass
class Ports:
    home: Home
    regions: Regions
    measure: Measure
    max_requeue: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    gates: EvaluateGates | None = None  # None: a driver that calls no webhooks (every gate answers so)
    notify: Notify | None = None  # None: notifications are not sent
    capacity: GpuCapacity | None = None  # None: surges are not checked against free GPUs


@dataclass
class Memory:
    """What a driver keeps between cycles; losing it (a restart) costs one cycle of reporting."""

    # (namespace, name) -> region -> why its last apply failed; reported by the next status write
    apply_errors: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # (namespace, name) -> (the spec as read, as parsed): a spec changes far less often than cycles run
    specs: dict[tuple[str, str], tuple[dict[str, Any], ModelDeploymentSpec]] = field(default_factory=dict)

    def parse(self, namespace: str, name: str, raw: dict[str, Any]) -> ModelDeploymentSpec:
        """parse_spec, reusing the last result while the spec reads the same."""
        cached = self.specs.get((namespace, name))
        if cached is not None and cached[0] == raw:
            return cached[1]
        spec = parse_spec(raw)  # a SpecError leaves the cache as it was
        self.specs[(namespace, name)] = (raw, spec)
        return spec

    def forget(self, namespace: str, name: str) -> None:
        self.apply_errors.pop((namespace, name), None)
        self.specs.pop((namespace, name), None)


@dataclass(frozen=True)
class Outcome:
    events: tuple[Event, ...] = ()
    requeue_after: float = 30.0
    status_patched: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    previous: ModelDeploymentStatus | None = None  # status as read
    status: ModelDeploymentStatus | None = None  # status as written
    observations: Observations | None = None
    decision: Decision | None = None


def iso(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def run(ports: Ports, memory: Memory, namespace: str, name: str, now: datetime) -> Outcome:
    """One cycle; its `requeue_after` counts from the cycle's start."""
    try:
        return await _run(ports, memory, namespace, name, now)
    except StaleRead as e:
        log.info("%s/%s changed during the cycle (%s); deciding again", namespace, name, e)
        return Outcome(requeue_after=min(CONFLICT_REQUEUE, ports.max_requeue))


async def _run(ports: Ports, memory: Memory, namespace: str, name: str, now: datetime) -> Outcome:
    obj = await ports.home.read(namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        memory.forget(namespace, name)
        return Outcome(requeue_after=ports.max_requeue)
    generation = int(obj["metadata"].get("generation", 1))
    old = _status(obj)
    try:
        spec = await _resolved(ports.home, memory.parse(namespace, name, obj.get("spec") or {}))
    except SpecError as e:
        reason: Reason = "InvalidAnalysisTemplate" if isinstance(e, TemplateProblem) else "InvalidSpec"
        invalid = invalid_spec(old, e.problems, generation, iso(now), reason)
        patched = await ports.home.write_status(obj, invalid)
        events: tuple[Event, ...] = (Event("Warning", reason, "; ".join(e.problems)),) if patched else ()
        events += await _notify(ports, namespace, name, None, events, invalid, now)
        return Outcome(
            events=events,
            requeue_after=ports.max_requeue,
            status_patched=patched,
            previous=old,
            status=invalid,
        )
    seen = {
        s.observation.name: s
        for s in await asyncio.gather(*(ports.regions.observe(obj, spec, r) for r in spec.regions))
    }
    observed = {n: s.observation for n, s in seen.items()}
    command = read_command(obj["metadata"].get("annotations") or {})
    obs = Observations(generation, observed, (), command)
    decision, obs = await _decide(ports, name, namespace, spec, old, obs, now)
    unseen = {r.name: r.error or "unreachable" for r in observed.values() if not r.reachable}
    reported = {**memory.apply_errors.get((namespace, name), {}), **unseen}
    new = with_errors(decision.status, reported, generation, iso(now))
    try:
        patched = await ports.home.write_status(obj, new)  # StaleRead here: nothing is applied
    except TooLarge as e:
        return await _too_large(ports, obj, old, str(e), generation, now)
    # the GPU count is read beside the writes (it was decided on what the cycle observed before them)
    warned, failed = await asyncio.gather(
        _gpu_fit(ports, spec, decision.regions, seen), _apply(ports, obj, spec, decision.regions, seen)
    )
    if failed:
        memory.apply_errors[(namespace, name)] = failed
    else:
        memory.apply_errors.pop((namespace, name), None)
    if command is not None and new.progress.last_command == command.id:
        await ports.home.consume_command(namespace, name)  # consumed: never applied twice
    changed = failed.keys() != reported.keys() - unseen.keys()  # status must learn of new or fixed failures
    told = await _notify(ports, namespace, name, spec, decision.events + warned, new, now)
    return Outcome(
        events=decision.events + warned + told,
        requeue_after=pace(decision.requeue_after, ports.max_requeue, changed, ports.rng),
        status_patched=patched,
        errors={**unseen, **failed},
        previous=old,
        status=new,
        observations=obs,
        decision=decision,
    )


async def _notify(
    ports: Ports,
    namespace: str,
    name: str,
    spec: ModelDeploymentSpec | None,
    events: Sequence[Event],
    status: ModelDeploymentStatus,
    now: datetime,
) -> tuple[Event, ...]:
    """Hand the notifications of this cycle's Events to the port (it never waits for delivery); what
    went wrong with earlier ones comes back as Warning Events."""
    if ports.notify is None:
        return ()
    problems = await ports.notify(namespace, name, spec, notices(namespace, name, events, status, iso(now)))
    return tuple(Event("Warning", "NotificationFailed", p) for p in problems)


async def _no_gates(
    spec: ModelDeploymentSpec, name: str, namespace: str, requests: Sequence[GateRequest], now: datetime
) -> tuple[GateResult, ...]:
    why = "this driver calls no webhooks"
    return tuple(GateResult(r.gate, r.revision, r.wave, "failed", why) for r in requests)


async def _resolved(home: Home, spec: ModelDeploymentSpec) -> ModelDeploymentSpec:
    """The spec with the metrics of the ClusterAnalysisTemplates it names, read afresh every cycle: a
    template edited is measured from the next cycle on (it is not part of the revision)."""
    names = referenced(spec)
    if not names:
        return spec
    found = await asyncio.gather(*(home.read_template(n) for n in names))
    return resolve(spec, dict(zip(names, found, strict=True)))


def _status(obj: Mapping[str, Any]) -> ModelDeploymentStatus:
    try:
        return ModelDeploymentStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        meta = obj["metadata"]
        log.warning("status of %s/%s is unreadable; starting from an empty status", meta["namespace"], meta["name"])
        return ModelDeploymentStatus()


def pace(requeue_after: float, max_requeue: float, errors_changed: bool, rng: random.Random) -> float:
    """When to come back: what the engine asked for, at most `max_requeue`; soon when status must learn
    of a failure. With nothing due (the periodic re-check) up to 10% early, at random, so objects that
    started together (every one of them, after an operator restart) spread out instead of staying in step."""
    requeue = min(max(requeue_after, 0.1), max_requeue)
    if requeue_after > max_requeue:
        requeue *= rng.uniform(1 - REQUEUE_JITTER, 1.0)
    return min(requeue, ERROR_REQUEUE) if errors_changed else requeue


# How long after its due time a real timer wakes: one firing a hair early would find the measurement not
# yet due and come back a second later. Virtual clocks (the simulator) wake exactly on time.
LATE_BY = 0.05


def wall_wait(requeue_after: float | None, took: float, max_requeue: float) -> float:
    """The real-time wait before the next cycle, counted from this cycle's start as the decision's "due in
    N seconds" is: counted from its end, each cycle would come later by the time the last one took, and
    objects slowed by a busy moment would pile onto the ones due after them. None: the cycle raised before
    it could decide (the home cluster failed); the next one starts over from a fresh read after the
    longest wait."""
    delay = max_requeue if requeue_after is None else requeue_after
    return max(0.0, delay + LATE_BY - took)


# A cycle at least this long, during which the process computed at least this share of the time, was
# slowed by the operator's own load (cycles crowding its one core), not by a slow server.
CROWDED_SECONDS = 1.0
CROWDED_SHARE = 0.9


def crowded_backoff(took: float, computed: float, rng: random.Random) -> float:
    """Extra wait after a cycle slowed by a saturated operator: a random part of the time it took.

    Cycles due together (a sync that changed every ModelDeployment at once) stay due together one
    interval later, and the next, crowding the core each time. Each one slowed by the crowd moves a
    random amount later, so the crowd thins out within a few intervals; a cycle that waited on a slow
    server while the process idled keeps its schedule."""
    if took < CROWDED_SECONDS or computed < CROWDED_SHARE * took:
        return 0.0
    return rng.uniform(0.0, took)


async def _decide(
    ports: Ports,
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    old: ModelDeploymentStatus,
    obs: Observations,
    now: datetime,
) -> tuple[Decision, Observations]:
    """Measure what is due and decide; a failure of either (a bug: the schema refuses what the engine
    cannot run) still ends in a decision, so status says so and progressDeadline keeps counting."""
    try:
        requests = rollout.analysis_due(spec, old, now)
        asked = rollout.gates_due(spec, old, now)
        gates = ports.gates or _no_gates
        measurements, answers = await asyncio.gather(
            ports.measure(spec, name, namespace, requests, now) if requests else _nothing(),
            gates(spec, name, namespace, asked, now) if asked else _nothing(),
        )
        obs = replace(obs, measurements=measurements, gates=answers)
        return rollout.decide(spec, old, obs, now), obs
    except Exception as e:  # the last line of defence: never a cycle that fails silently, over and over
        log.exception("the rollout cycle of %s/%s failed", namespace, name)
        return rollout.after_failure(spec, old, obs, now, _failure(e)), obs


async def _nothing() -> tuple[Any, ...]:
    return ()


def _failure(error: Exception) -> str:
    """The exception and where it was raised, for status and an Event: enough to report the bug."""
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno} ({where.name})" if where else ""
    return f"{type(error).__name__}: {error}{at}"


async def _too_large(
    ports: Ports, obj: Mapping[str, Any], old: ModelDeploymentStatus, error: str, generation: int, now: datetime
) -> Outcome:
    """Never a silent stall: a status refused for size is replaced by one condition saying so (small
    enough to fit), nothing is applied, and the cycle is tried again later."""
    message = f"status could not be written, the object is too large: {error[:500]}; nothing applied"
    small = old.model_copy(update={"analysis": [], "message": message})
    log.error("%s/%s: %s", obj["metadata"]["namespace"], obj["metadata"]["name"], message)
    try:
        patched = await ports.home.write_status(
            obj, rollout.degraded(small, "ObjectTooLarge", message, generation, iso(now))
        )
    except TooLarge as e:
        log.error("the smaller status was refused too: %s", e)
        patched = False
    return Outcome(
        events=(Event("Warning", "ObjectTooLarge", message),), requeue_after=TOO_LARGE_REQUEUE, status_patched=patched
    )


async def _gpu_fit(
    ports: Ports, spec: ModelDeploymentSpec, plans: Sequence[RegionPlan], seen: Mapping[str, Seen]
) -> tuple[Event, ...]:
    """Before a surge: a Warning for each region whose free GPUs cannot take the new pods."""
    if ports.capacity is None:
        return ()
    capacity = ports.capacity
    surges = [
        found
        for plan in plans
        if plan.region in seen and seen[plan.region].observation.reachable
        for found in [surge(plan, seen[plan.region].observation)]
        if found is not None
    ]

    async def one(region: str, template: Template) -> GpuRoom | None:
        try:
            return await capacity(spec.region(region), template)
        except Exception as e:  # advice only: never a reason for the cycle to fail
            log.warning("could not count the free GPUs in %s: %s", region, e)
            return None

    rooms = await asyncio.gather(*(one(s.region, s.revision.template) for s in surges))
    warnings = (
        shortfall(s, room, spec.rollout.on_unschedulable) for s, room in zip(surges, rooms, strict=True) if room
    )
    return tuple(w for w in warnings if w is not None)


async def _apply(
    ports: Ports,
    obj: Mapping[str, Any],
    spec: ModelDeploymentSpec,
    plans: Sequence[RegionPlan],
    seen: Mapping[str, Seen],
) -> dict[str, str]:
    """Every region's plan at once (a slow region delays no other); regions that could not be observed
    are left alone. Returns why each failure failed."""
    meta = obj["metadata"]
    routed_by_pods = router_of(spec).by_pods

    async def one(plan: RegionPlan) -> str | None:
        found = seen[plan.region]
        objects = objects_for_region(meta["name"], meta["namespace"], spec, plan, owner=obj)
        serving = serving_changes(plan, found.pods) if routed_by_pods else None
        return await ports.regions.apply(obj, spec, plan, objects, serving, found)

    reached = [p for p in plans if p.region in seen and seen[p.region].observation.reachable]
    results = await asyncio.gather(*(one(plan) for plan in reached))
    return {plan.region: why for plan, why in zip(reached, results, strict=True) if why is not None}
