"""The canary's walk through waves and steps.

One call advances as far as the observations allow (several steps if nothing needs waiting for), so
deciding again with the applied result changes nothing: the rollout only moves when time passes, pods
become ready, measurements arrive or a command is given.
"""

from __future__ import annotations

from bellwether.api.hooks import GateType
from bellwether.api.reasons import Reason
from bellwether.api.spec import StepAnalysis
from bellwether.api.units import format_duration, parse_duration
from bellwether.rollout import gates
from bellwether.rollout.clock import elapsed
from bellwether.rollout.due import judged_regions, references
from bellwether.rollout.judging import count, describe, record, reset, weigh
from bellwether.rollout.live import live_replicas
from bellwether.rollout.pausing import pause_inconclusive, paused
from bellwether.rollout.plans import ready, region_plan
from bellwether.rollout.replicas import split
from bellwether.rollout.rollback import promote_fully, roll_back
from bellwether.rollout.state import Work
from bellwether.rollout.window import analysis_start


def wave_regions(work: Work) -> list[str]:
    return work.spec.waves()[work.status.wave]


def unreachable(work: Work, regions: list[str]) -> list[str]:
    return [r for r in regions if not (seen := work.obs.regions.get(r)) or not seen.reachable]


def _short_regions(work: Work, regions: list[str], weight: int) -> list[str]:
    """Regions whose canary does not yet have the ready pods this weight asks for."""
    canary = work.status.canary_revision
    short = []
    for name in regions:
        have = ready(work.obs, name, canary)
        if work.spec.region(name).autoscaling is not None:
            # Beside an autoscaled stable the canary's count follows the live one: the plan has it.
            plan = region_plan(work.spec, work.status, work.obs, name)
            want = next((r.replicas for r in plan.revisions if r.revision == canary), 0)
        else:
            replicas = live_replicas(work.spec, work.status, work.obs, name)
            _, want = split(replicas, weight, work.spec.rollout.max_surge, have)
        if have < want:
            short.append(name)
    return short


def _emit_weight(work: Work, regions: list[str], weight: int) -> None:
    """The step's weight is in place: say what share the routing gives, which may differ from it."""
    canary = work.status.canary_revision
    shares = []
    for name in regions:
        plan = region_plan(work.spec, work.status, work.obs, name)
        shares.append(f"{name} {next((r.weight for r in plan.revisions if r.revision == canary), 0)}%")
    work.emit("Normal", "WeightSet", f"{canary} at weight {weight}%; share as routed: {', '.join(shares)}")


def _next_step(work: Work) -> None:
    st = work.status
    st.step += 1
    p = st.progress
    p.step_started_at = work.stamp
    reset(work)


def _pods_problem(work: Work, regions: list[str]) -> tuple[str, str]:
    canary = work.status.canary_revision or ""
    for name in regions:
        seen = work.obs.regions.get(name)
        pods = seen.pods.get(canary) if seen is not None else None
        if pods is not None and pods.unschedulable > 0:
            why = pods.problem or "no node has room (e.g. no free GPU)"
            return "Unschedulable", f"canary pods unschedulable in {name}: {why}"
    for name in regions:
        seen = work.obs.regions.get(name)
        pods = seen.pods.get(canary) if seen is not None else None
        if pods is not None and pods.problem:
            return "NeverReady", f"canary pods never became ready in {name}: {pods.problem}"
    return "NeverReady", f"canary pods never became ready in {', '.join(regions)}"


# A problem Kubernetes reports for the canary's pods, seen again this long after it was first seen,
# rolls back without waiting for progressDeadline: two cycles apart while waiting for pods.
CONFIRM_SECONDS = 5.0


def _failing(work: Work, regions: list[str]) -> str | None:
    """What Kubernetes says will keep the canary's pods from becoming ready by themselves, if anything:
    a crash loop, an OOM kill, an image that cannot be pulled, a restart storm, or pods the scheduler
    cannot place while nothing of ours is terminating to make room."""
    canary = work.status.canary_revision or ""
    for name in regions:
        seen = work.obs.regions.get(name)
        pods = seen.pods.get(canary) if seen is not None else None
        if seen is None or pods is None or not pods.problem:
            continue
        if pods.unschedulable == 0:
            return f"canary pods failing in {name}: {pods.problem}"
        if work.spec.rollout.on_unschedulable == "rollback" and seen.terminating == 0:
            return f"canary pods unschedulable in {name}: {pods.problem}"
    return None


def _wait_for_pods(work: Work, regions: list[str], weight: int) -> bool:
    """True when ready; otherwise rolls back on a failure Kubernetes reports (seen on two cycles) or
    past the progress deadline."""
    p = work.status.progress
    short = _short_regions(work, regions, weight)
    failing = _failing(work, short) if short else None
    if failing != p.pods_failing:
        p.pods_failing, p.pods_failing_since = failing, (work.stamp if failing else None)
    if not short:
        return True
    work.waiting_on_pods = True
    if failing is not None and elapsed(p.pods_failing_since, work.now) >= CONFIRM_SECONDS:
        reason: Reason = "PodsFailing" if failing.startswith("canary pods failing") else "Unschedulable"
        roll_back(work, reason, f"{failing} (reported by Kubernetes since {p.pods_failing_since})")
        return False
    deadline = parse_duration(work.spec.rollout.progress_deadline)
    if elapsed(work.status.progress.step_started_at, work.now) > deadline:
        _cause, why = _pods_problem(work, short)
        roll_back(work, "ProgressDeadlineExceeded", f"{why} (progressDeadline {format_duration(deadline)} exceeded)")
    else:
        work.status.message = f"waiting for canary pods in {', '.join(short)}" + (f": {failing}" if failing else "")
    return False


def _analysis(work: Work, step: StepAnalysis, regions: list[str]) -> bool:
    """Judge the step's measurements; True once the duration has passed since warm-up, with evidence.

    Too many failures roll back; too many inconclusive results pause or roll back, as the spec says.
    """
    spec_analysis = work.spec.analysis
    p = work.status.progress
    if spec_analysis is None:
        return True
    if p.step_started_at is None:
        p.step_started_at = work.stamp  # a lost timestamp restarts the step's clock, never skips it
    start = analysis_start(work.spec, work.status) or p.step_started_at
    early = parse_duration(step.min_duration) if step.min_duration is not None else None
    weighed = weigh(work, regions, start, parse_duration(step.duration), early=early)
    if weighed.outcome == "failed":
        roll_back(work, "AnalysisFailed", weighed.why)
    elif weighed.outcome == "inconclusive":
        if spec_analysis.on_inconclusive == "rollback":
            roll_back(work, "AnalysisInconclusive", weighed.why)
        else:
            pause_inconclusive(work, weighed.why)
    return weighed.outcome == "passed"


def _wait_for_regions(work: Work, lost: list[str]) -> None:
    """Nothing changes in a cluster Bellwether cannot see; past `regionTimeout` the rollout fails."""
    p = work.status.progress
    work.waiting_on_pods = True
    errors = [(work.obs.regions[r].error if r in work.obs.regions else None) or "not observed" for r in lost]
    where = ", ".join(f"{r} ({e})" for r, e in zip(lost, errors, strict=True))
    p.unreachable_since = p.unreachable_since or work.stamp
    timeout = parse_duration(work.spec.rollout.region_timeout)
    if elapsed(p.unreachable_since, work.now) > timeout:
        why = f"region unreachable for more than regionTimeout {format_duration(timeout)}: {where}"
        roll_back(work, "RegionUnreachable", why)
        return
    work.status.message = f"waiting: region unreachable: {where}"


def _background(work: Work) -> bool:
    """Judge the canary wherever it serves outside a running analysis step (promoted waves, pauses,
    a paused analysis step, steps between analyses): failures past `failureLimit` roll it back as in a step. True if so."""
    analysis, st = work.spec.analysis, work.status
    if analysis is None:
        return False
    steps = work.spec.rollout.steps
    # A paused analysis step judges its wave here too: paused, the step itself does not.
    stepping = st.step < len(steps) and steps[st.step].analysis is not None and not paused(work)
    current = set(wave_regions(work)) if stepping else set()
    regions = [r for r in judged_regions(work.spec, st) if r not in current]
    if not regions:
        return False
    since = analysis_start(work.spec, st) or st.progress.step_started_at
    p = st.progress
    kept = (p.inconclusives, p.successes, list(p.evidence))
    worst = count(work, record(work, regions, since, references(st)))
    # Only failures count here: judging in the background never pauses the rollout, nor passes a step.
    p.inconclusives, p.successes, p.evidence = kept
    if worst is None or (st.progress.failures <= analysis.failure_limit and not worst.sequential):
        return False
    where = "a promoted wave" if worst.region not in wave_regions(work) else "outside an analysis step"
    detail = (
        f"{describe(worst)} (judged in {where}); {st.progress.failures} failed > failureLimit {analysis.failure_limit}"
    )
    roll_back(work, "AnalysisFailed", detail)
    return True


def _gate_open(work: Work, type_: GateType, wave: int) -> bool:
    """True when the gates of this point let the canary through; a failed one rolls it back, a held
    one pauses it (and judging goes on in the background), one not answered yet waits a moment."""
    st = work.status
    verdict, why = gates.check(work, type_, st.canary_revision or "", wave)
    if verdict == "open":
        return True
    if verdict == "failed":
        roll_back(work, "GateFailed", why)
        return False
    work.gate_message = why  # held (work.gated): phase Paused, derived with the others
    return False


def advance(work: Work) -> None:
    """Move the canary on; stops at the first thing to wait for."""
    spec, st = work.spec, work.status
    if _background(work):
        return
    steps = spec.rollout.steps
    waves = spec.waves()
    for _ in range(len(steps) * len(waves) + len(waves) + 1):
        if st.canary_revision is None or paused(work):
            return
        regions = wave_regions(work)
        if lost := unreachable(work, regions):
            _wait_for_regions(work, lost)
            return
        st.progress.unreachable_since = None
        if st.wave == 0 and st.step == 0 and st.canary_weight == 0 and not _gate_open(work, "preRollout", 0):
            return
        if st.step < len(steps):
            step = steps[st.step]
            if step.set_weight is not None:
                st.canary_weight = step.set_weight
                if not _wait_for_pods(work, regions, step.set_weight):
                    return
                st.progress.ready_since = work.stamp
                _emit_weight(work, regions, step.set_weight)
            elif step.pause is not None:
                if step.pause.duration is None:
                    work.held = True
                    return
                if elapsed(st.progress.step_started_at, work.now) < parse_duration(step.pause.duration):
                    return
            elif step.analysis is not None:
                if not _wait_for_pods(work, regions, st.canary_weight):
                    return
                if not _analysis(work, step.analysis, regions):
                    return
            _next_step(work)
            continue
        if not _promote_wave(work, regions):
            return


def _promote_wave(work: Work, regions: list[str]) -> bool:
    """After the last step the wave goes to 100%, and is promoted once its canary is fully ready and
    its confirmPromotion gates open. True when the next wave starts."""
    st, waves = work.status, work.spec.waves()
    st.canary_weight = 100
    every = [r for names in waves[: st.wave + 1] for r in names]
    if not _wait_for_pods(work, every, 100) or not _gate_open(work, "confirmPromotion", st.wave):
        return False
    work.emit("Normal", "WavePromoted", f"wave {st.wave + 1}/{len(waves)} ({', '.join(regions)}) promoted")
    st.progress.promoted_regions = every
    if st.wave + 1 >= len(waves):
        template = st.progress.canary_template
        if template is not None and st.canary_revision is not None:
            promote_fully(work, st.canary_revision, template)
        return False
    st.wave += 1
    st.step = 0
    st.canary_weight = 0
    st.progress.wave_started_at = work.stamp
    _next_step(work)
    st.step = 0
    return True
