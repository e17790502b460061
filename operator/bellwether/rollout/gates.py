"""Gates: webhooks the rollout waits for, decided here, asked by the cycle's ports.

The engine asks through status, as it asks for measurements: reaching a gate point (preRollout before
the canary's first step, confirmPromotion before a wave is promoted, postRollback after a rollback)
writes a `Waiting` entry per gate of that type into `status.gates`. `gates_due` turns the entries
that are due into requests; the cycle's port calls the webhooks (I/O, bounded by their timeouts);
the answers come back as observations and `record` turns them into `Passed`, `Held` or `Failed` by
the gate's `onFailure` / `onTimeout` policy. A held gate is asked again every `interval`. So a restart
loses nothing: what was asked, answered and is still due lives in status.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus
from bellwether.api.hooks import MAX_GATES, Gate, GatePhase, GateStatus, GateType
from bellwether.api.units import parse_duration
from bellwether.rollout.clock import parse
from bellwether.rollout.state import Work
from bellwether.rollout.types import GateRequest, GateResult

Verdict = Literal["open", "waiting", "failed"]
NOW = datetime(1970, 1, 1, tzinfo=UTC)  # "due at once": before any `now`
POLL_SECONDS = 5.0  # an answer still pending (a Job running) is asked for again this soon
KEPT = 2 * MAX_GATES  # entries in status: the current rollout's, and a rollback's still being asked


def _gate(spec: ModelDeploymentSpec, entry: GateStatus) -> Gate | None:
    return next((g for g in spec.rollout.gates if g.name == entry.name and g.type == entry.type), None)


def _next_ask(gate: Gate, entry: GateStatus) -> datetime | None:
    """When an entry is asked (again): a new one at once, a pending one (its Job running) a few
    seconds after, a Held one an interval after its last answer; None: it is not asked any more."""
    if entry.phase not in ("Waiting", "Held"):
        return None
    if entry.at is None:
        return NOW
    wait = POLL_SECONDS if entry.phase == "Waiting" else parse_duration(gate.interval)
    return parse(entry.at) + timedelta(seconds=wait)


def _due_at(spec: ModelDeploymentSpec, entry: GateStatus) -> datetime | None:
    gate = _gate(spec, entry)
    return None if gate is None else _next_ask(gate, entry)


def gates_due(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> list[GateRequest]:
    """The gates to ask now: every Waiting entry, and every Held one whose interval has passed."""
    due = []
    for entry in status.gates:
        at = _due_at(spec, entry)
        if at is not None and at <= now:
            due.append(
                GateRequest(
                    entry.name, entry.type, entry.revision, status.stable_revision, entry.wave, entry.attempts + 1
                )
            )
    return due


def seconds_until_gate(spec: ModelDeploymentSpec, status: ModelDeploymentStatus, now: datetime) -> float | None:
    """Seconds until some gate is to be asked; None if none is."""
    waits = []
    for entry in status.gates:
        at = _due_at(spec, entry)
        if at is not None:
            waits.append(max(0.0, (at - now).total_seconds()))
    return min(waits) if waits else None


def _phase(gate: Gate, result: GateResult) -> GatePhase:
    if result.outcome == "pending":
        return "Waiting"
    if result.outcome == "passed":
        return "Passed"
    policy = gate.on_timeout if result.outcome == "timeout" else gate.on_failure
    return "Held" if policy == "hold" else "Failed"


def record(work: Work) -> None:
    """The answers observed this cycle, into status (each for the entry it was asked for), with an
    Event when a gate passes, fails, or is held for a new reason."""
    st = work.status
    entries = list(st.gates)
    for result in work.obs.gates:
        i = next(
            (
                i
                for i, e in enumerate(entries)
                if (e.name, e.revision, e.wave) == (result.gate, result.revision, result.wave)
            ),
            None,
        )
        if i is None or (gate := _gate(work.spec, entries[i])) is None or entries[i].phase in ("Passed", "Failed"):
            continue  # no longer asked: the rollout moved on, or the gate left the spec
        old = entries[i]
        phase = _phase(gate, result)
        entries[i] = old.model_copy(
            update={
                "phase": phase,
                "attempts": old.attempts + (result.outcome != "pending"),
                "code": result.code,
                "message": result.message[:1024],
                "at": work.stamp,
            }
        )
        if phase != old.phase or result.code != old.code:
            _emit(work, entries[i])
    st.gates = entries


def _emit(work: Work, entry: GateStatus) -> None:
    what = f"{entry.type} gate {entry.name} for {entry.revision}"
    if entry.phase == "Waiting":
        return  # still running: the answer is to come
    if entry.phase == "Passed":
        work.emit("Normal", "GatePassed", f"{what} passed: {entry.message}")
    elif entry.phase == "Held":
        every = next((g.interval for g in work.spec.rollout.gates if g.name == entry.name), "")
        work.emit("Warning", "GateHeld", f"{what} holds: {entry.message}; asked again every {every}")
    else:
        work.emit("Warning", "GateFailed", f"{what} failed: {entry.message}")


def ask(work: Work, type_: GateType, revision: str, wave: int = 0) -> None:
    """Make sure every gate of `type_` has an entry for (revision, wave): a new one is Waiting."""
    st = work.status
    entries = list(st.gates)
    for gate in work.spec.rollout.gates:
        if gate.type != type_:
            continue
        if not any((e.name, e.revision, e.wave) == (gate.name, revision, wave) for e in entries):
            entries.append(GateStatus(name=gate.name, type=gate.type, revision=revision, wave=wave))
    st.gates = entries[-KEPT:]


def check(work: Work, type_: GateType, revision: str, wave: int = 0) -> tuple[Verdict, str]:
    """Whether the gates of `type_` let `revision` through (asking them if they have not been), and
    what to tell people: open, waiting (not yet answered, or held), or failed (roll back)."""
    ask(work, type_, revision, wave)
    mine = [
        e
        for e in work.status.gates
        if e.type == type_ and (e.revision, e.wave) == (revision, wave) and _gate(work.spec, e) is not None
    ]
    failed = next((e for e in mine if e.phase == "Failed"), None)
    if failed is not None:
        return "failed", f"{type_} gate {failed.name} failed: {failed.message}"
    held = [e for e in mine if e.phase == "Held"]
    if held:
        work.gated = True
        return "waiting", "; ".join(f"{type_} gate {e.name} holds: {e.message}" for e in held)
    waiting = [e for e in mine if e.phase == "Waiting"]
    if waiting:
        return "waiting", "; ".join(
            f"waiting for {type_} gate {e.name}" + (f": {e.message}" if e.message else "") for e in waiting
        )
    return "open", ""


def open_held(work: Work, by: str) -> bool:
    """A person's `promote` opens the gates the canary waits for now (never a postRollback one);
    True if there were any."""
    st = work.status
    opened = []
    for i, e in enumerate(st.gates):
        if e.type != "postRollback" and e.revision == st.canary_revision and e.phase in ("Waiting", "Held"):
            st.gates[i] = e.model_copy(
                update={"phase": "Passed", "message": f"opened by user ({by})", "at": work.stamp}
            )
            opened.append(e.name)
    if opened:
        work.emit("Normal", "GatePassed", f"gate {', '.join(opened)} opened by user ({by})")
    return bool(opened)


def forget(work: Work) -> None:
    """A new rollout (a retried revision too) asks its gates afresh: every entry goes, except
    postRollback ones still being asked."""
    work.status.gates = [e for e in work.status.gates if e.type == "postRollback" and e.phase in ("Waiting", "Held")]
