"""When the analysis of a step (or of the bake) starts: once the canary has warmed up, never before.

Warm-up is the model loading, not the model serving: a window that overlaps it says nothing about the
revision, and an Inconclusive from it would only count against `inconclusiveLimit`. So no measurement
is asked for until one full interval fits after warm-up, and a step's analysis duration (and the bake
time) counts from the end of warm-up: a step cannot pass on time spent warming up.

Derived from status alone, so `analysis_due` (before a decision) and `decide` agree on it.
"""

from __future__ import annotations

from bellwether.api import ModelDeploymentSpec, ModelDeploymentStatus
from bellwether.rollout.clock import not_before, plus


def analysis_start(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> str | None:
    """When warm-up ends for the current step's canary (or the baking revision); None if nothing is judged.

    In a step, the canary warms up from when its pods for the step were all ready, or from the step's
    start if that is later; in the bake, from the promotion. A person's `resume` starts the analysis
    over from then.
    """
    p = status.progress
    if status.canary_revision is not None:
        since = p.step_started_at
        if since is None:
            return None
        warm_from = p.ready_since if p.ready_since is not None and not_before(p.ready_since, since) else since
    elif p.bake_started_at is not None:
        warm_from = p.bake_started_at
    else:
        return None
    warm = plus(warm_from, spec.runtime.warmup_seconds)
    # Resumed after the duration ran out: the analysis starts over, without waiting for a warm-up again.
    return p.resumed_at if p.resumed_at is not None and not_before(p.resumed_at, warm) else warm
