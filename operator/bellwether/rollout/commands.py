"""Manual commands: each id is consumed once (recorded in status), so a restart never re-applies one.

They act on a canary in progress and on a bake: pause and resume it, promote (a bake: accept the
revision now), abort (a bake: revert to the previous revision).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import get_args

from bellwether.rollout import gates
from bellwether.rollout.bake import finish_bake
from bellwether.rollout.judging import reset
from bellwether.rollout.pausing import clear_pause
from bellwether.rollout.rollback import revert_bake, roll_back
from bellwether.rollout.state import Work
from bellwether.rollout.types import CommandAction, ManualCommand

COMMAND_ANNOTATION = "bellwether.dev/command"
ACTIONS = set(get_args(CommandAction))


def read_command(annotations: Mapping[str, str]) -> ManualCommand | None:
    """The manual command in the annotation, if it is well-formed; a malformed one is ignored."""
    raw = annotations.get(COMMAND_ANNOTATION)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("action") not in ACTIONS or not isinstance(data.get("id"), str):
        return None
    return ManualCommand(action=data["action"], id=data["id"])


def apply_command(work: Work) -> None:
    command = work.obs.command
    st = work.status
    p = st.progress
    if command is None or command.id == p.last_command:
        return
    p.last_command = command.id
    action = command.action
    baking = st.canary_revision is None and p.bake_started_at is not None
    if action == "retry":
        if p.rolled_back_revision is not None:
            work.emit("Normal", "Retry", f"retrying {p.rolled_back_revision}")
            p.rolled_back_revision = None
        return
    if st.canary_revision is None and not baking:
        work.emit("Normal", "CommandIgnored", f"{action}: no rollout in progress")
        return
    if action == "pause":
        p.paused_by_user = True
        work.emit("Normal", "Paused", "paused by user")
    elif action == "resume":
        clear_pause(work)
        # The analysis starts over: its full duration and evidence again (failures seen still count).
        p.inconclusives = p.successes = 0
        p.evidence = []
        p.resumed_at = work.stamp
        work.emit("Normal", "Resumed", "resumed by user: analysis measures again, for its full duration")
    elif action == "abort":
        if baking:
            revert_bake(work, "Aborted", "aborted by user")
        else:
            roll_back(work, "Aborted", "aborted by user")
    elif baking:
        finish_bake(work, "BakeEnded", f"{st.stable_revision} accepted by user ({action}): bake ended early")
    elif gates.open_held(work, action):
        clear_pause(work)  # the gate the canary waits for opens; the next one still asks
    elif action == "promote":
        clear_pause(work)
        steps = work.spec.rollout.steps
        if st.step < len(steps):
            st.step += 1
            p.step_started_at = work.stamp
            reset(work)
        work.emit("Normal", "PromotedStep", "step promoted by user")
    elif action == "promote-full":
        clear_pause(work)
        st.wave = len(work.spec.waves()) - 1
        st.step = len(work.spec.rollout.steps)
        p.step_started_at = work.stamp
        work.emit("Normal", "PromotedFull", "full promotion requested by user")
