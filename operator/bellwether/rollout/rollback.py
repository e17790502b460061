"""Rollback, reverting and starting a canary: the transitions that move revisions around."""

from __future__ import annotations

from bellwether.api import HistoryEntry, Template
from bellwether.api.reasons import Reason
from bellwether.api.status import HISTORY_TEMPLATES, MAX_HISTORY
from bellwether.api.units import parse_duration
from bellwether.rollout import gates
from bellwether.rollout.judging import reset
from bellwether.rollout.pausing import clear_pause
from bellwether.rollout.state import Work


def _forget_waits(work: Work) -> None:
    p = work.status.progress
    p.pods_failing = p.pods_failing_since = p.unreachable_since = None


def start_canary(work: Work, revision: str, template: Template) -> None:
    st = work.status
    old = st.canary_revision
    if old is not None and old != revision:
        # A spec change mid-rollout: the old canary drains while stable takes its regions back.
        st.progress.draining_revision = old
        st.progress.draining_template = st.progress.canary_template
        work.emit("Normal", "RolloutRestarted", f"spec changed mid-rollout: {old} replaced by {revision}, from stable")
    else:
        work.emit("Normal", "RolloutStarted", f"canary {revision} started; stable is {st.stable_revision}")
    st.canary_revision = revision
    st.progress.canary_template = template
    st.wave = 0
    st.step = 0
    st.canary_weight = 0
    p = st.progress
    p.rollout_started_at = p.step_started_at = p.wave_started_at = work.stamp
    p.ready_since = None
    reset(work)
    p.promoted_regions = []
    clear_pause(work)
    p.bake_started_at = None
    p.previous_revision = None
    p.rollback_reason = p.rollback_message = None
    p.rolled_back_revision = None  # a new revision supersedes the one rolled back
    _forget_waits(work)
    gates.forget(work)


def roll_back(work: Work, reason: Reason, message: str) -> None:
    """Remove the canary everywhere it reached; every region returns to the stable revision."""
    st = work.status
    p = st.progress
    canary = st.canary_revision
    if canary is None:
        return
    p.draining_revision = canary
    p.draining_template = p.canary_template
    p.rolled_back_revision = canary
    p.rollback_reason, p.rollback_message = reason, message
    p.canary_template = None
    clear_pause(work)
    p.promoted_regions = []
    st.canary_revision = None
    st.wave = st.step = st.canary_weight = 0
    _forget_waits(work)
    work.emit("Warning", "RolledBack", f"{canary} rolled back to {st.stable_revision}: {message}")
    gates.ask(work, "postRollback", canary)


def promote_fully(work: Work, revision: str, template: Template) -> None:
    """The canary becomes stable everywhere; the previous stable is kept in history for a bake revert."""
    st = work.status
    p = st.progress
    previous = st.stable_revision
    entry = HistoryEntry(revision=revision, model=template.model.version, promoted_at=work.stamp, template=template)
    st.history = _trimmed([entry] + [h for h in st.history if h.revision != revision])
    st.stable_revision = revision
    st.canary_revision = None
    st.wave = st.step = st.canary_weight = 0
    p.canary_template = None
    p.previous_revision = previous
    p.promoted_regions = []
    reset(work)
    clear_pause(work)
    _forget_waits(work)
    baking = work.spec.analysis is not None and previous is not None and _bake_seconds(work) > 0
    p.bake_started_at = work.stamp if baking else None
    work.emit("Normal", "Promoted", f"{revision} promoted in every region" + (", baking" if baking else ""))


def revert_bake(work: Work, reason: Reason, message: str) -> None:
    """A failed (or aborted) bake: the previous revision (from history) becomes stable again."""
    st = work.status
    p = st.progress
    bad = st.stable_revision
    previous = p.previous_revision
    entry = next((h for h in st.history if h.revision == previous), None)
    bad_entry = next((h for h in st.history if h.revision == bad), None)
    if entry is None or bad is None:
        return
    st.history = _trimmed([entry] + [h for h in st.history if h.revision not in (bad, previous)])
    st.stable_revision = previous
    p.draining_revision = bad
    p.draining_template = bad_entry.template if bad_entry is not None else None
    p.rolled_back_revision = bad
    p.rollback_reason, p.rollback_message = reason, message
    p.bake_started_at = None
    p.previous_revision = None
    reset(work)
    clear_pause(work)
    work.emit("Warning", "RolledBack", f"{bad} reverted to {previous} during bake: {message}")
    gates.ask(work, "postRollback", bad)


def _trimmed(history: list[HistoryEntry]) -> list[HistoryEntry]:
    """At most MAX_HISTORY entries, templates only where a revert may need them (status stays small)."""
    return [
        h if i < HISTORY_TEMPLATES or h.template is None else h.model_copy(update={"template": None})
        for i, h in enumerate(history[:MAX_HISTORY])
    ]


def _bake_seconds(work: Work) -> float:
    return parse_duration(work.spec.rollout.bake_time)
