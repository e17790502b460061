"""Manual commands: each id is consumed once (recorded in status), so a restart never re-applies one."""

from __future__ import annotations

from bellwether.rollout.rollback import roll_back
from bellwether.rollout.state import Work


def apply_command(work: Work) -> None:
    command = work.obs.command
    st = work.status
    p = st.progress
    if command is None or command.id == p.last_command:
        return
    p.last_command = command.id
    action = command.action
    active = st.canary_revision is not None
    if action == "retry":
        if p.rolled_back_revision is not None:
            work.emit("Normal", "Retry", f"retrying {p.rolled_back_revision}")
            p.rolled_back_revision = None
        return
    if not active:
        work.emit("Normal", "CommandIgnored", f"{action}: no rollout in progress")
        return
    if action == "pause":
        p.paused_by_user = True
        st.phase = "Paused"
        work.emit("Normal", "Paused", "paused by user")
    elif action == "resume":
        p.paused_by_user = False
        p.inconclusives = 0
        work.emit("Normal", "Resumed", "resumed by user")
    elif action == "abort":
        roll_back(work, "Aborted", "aborted by user")
    elif action == "promote":
        p.paused_by_user = False
        steps = work.spec.rollout.steps
        if st.step < len(steps):
            st.step += 1
            p.step_started_at = work.stamp
            p.failures = p.inconclusives = p.successes = 0
        work.emit("Normal", "PromotedStep", "step promoted by user")
    elif action == "promote-full":
        p.paused_by_user = False
        st.wave = len(work.spec.waves()) - 1
        st.step = len(work.spec.rollout.steps)
        p.step_started_at = work.stamp
        work.emit("Normal", "PromotedFull", "full promotion requested by user")
