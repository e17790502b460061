"""The operator's own Prometheus metrics, served on `/metrics` by `bellwether run`."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ROLLOUTS_STARTED = Counter("bellwether_rollouts_started_total", "Rollouts of a new revision started.", ["namespace"])
ROLLOUTS_PROMOTED = Counter(
    "bellwether_rollouts_promoted_total", "Revisions promoted to stable in every region.", ["namespace"]
)
ROLLOUTS_ROLLED_BACK = Counter(
    "bellwether_rollouts_rolled_back_total", "Rollouts rolled back, by reason.", ["namespace", "reason"]
)
ANALYSIS_VERDICTS = Counter(
    "bellwether_analysis_verdicts_total", "Judged measurements, by metric and verdict.", ["metric", "verdict"]
)
RECONCILE_SECONDS = Histogram(
    "bellwether_reconcile_duration_seconds",
    "One rollout cycle: observe every region, analyse, decide, apply, write status.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
API_ERRORS = Counter(
    "bellwether_api_errors_total", "Failed Kubernetes API requests, by cluster and verb.", ["cluster", "verb"]
)


def count_api_error(cluster: str, verb: str) -> None:
    API_ERRORS.labels(cluster=cluster, verb=verb).inc()
