"""Every reason a condition or an Event of Bellwether can carry: one list that the code is type-checked
against (mypy refuses a reason not in it) and that the docs and tests iterate.

docs/troubleshooting.md says what each one means and what to do; a test fails when one is missing there.
"""

from __future__ import annotations

from typing import Literal, get_args

Reason = Literal[
    # Conditions: Available
    "AllRegionsServing",
    "ReplicasShort",
    # Conditions: Progressing
    "RolloutInProgress",
    "Complete",
    "Paused",
    "InconclusiveAnalysis",
    "RolledBack",
    "Degraded",
    # Conditions: Degraded (and the rollbacks they name)
    "Healthy",
    "AnalysisFailed",
    "AnalysisInconclusive",
    "ProgressDeadlineExceeded",
    "PodsFailing",
    "Unschedulable",
    "RegionUnreachable",
    "ReplicasUnavailable",
    "BakeFailed",
    "BakeInconclusive",
    "Aborted",
    "ClusterError",
    "InvalidSpec",
    "InvalidAnalysisTemplate",
    "CycleFailed",
    "ObjectTooLarge",
    "GateFailed",
    # Conditions: Progressing (a gate holds the canary); Events too
    "GateHeld",
    # Events only
    "Deploying",
    "RolloutStarted",
    "RolloutRestarted",
    "RolloutCancelled",
    "WeightSet",
    "WavePromoted",
    "Promoted",
    "BakeSucceeded",
    "BakeEnded",
    "PhaseChanged",
    "Resumed",
    "PromotedStep",
    "PromotedFull",
    "CommandIgnored",
    "Retry",
    "GatePassed",
    "NotificationFailed",
    "InsufficientGPUs",
]

REASONS: tuple[str, ...] = get_args(Reason)


def as_reason(value: str | None, default: Reason) -> Reason:
    """A reason read back from status (written as text), or `default` when it is not one of ours."""
    return value if value in REASONS else default  # type: ignore[return-value]
