"""The operator's own Prometheus metrics, served on `/metrics` by `bellwether run`."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

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
# One series per ModelDeployment and region (bounded by the objects the operator runs), removed with it.
CANARY_WEIGHT = Gauge(
    "bellwether_canary_weight_percent",
    "The canary's share of traffic the current step asks for, per region.",
    ["namespace", "name", "region"],
)
CANARY_SHARE = Gauge(
    "bellwether_canary_share_percent",
    "The canary's share of traffic as routed (the replicas router: its serving pods' part), per region.",
    ["namespace", "name", "region"],
)
API_ERRORS = Counter(
    "bellwether_api_errors_total", "Failed Kubernetes API requests, by cluster and verb.", ["cluster", "verb"]
)


NOTIFICATIONS = Counter(
    "bellwether_notifications_total",
    "Notifications by outcome: delivered, retried (a retry scheduled), failed (given up), dropped (queue full).",
    ["outcome"],
)


def count_notification(outcome: str) -> None:
    NOTIFICATIONS.labels(outcome=outcome).inc()


def count_api_error(cluster: str, verb: str) -> None:
    API_ERRORS.labels(cluster=cluster, verb=verb).inc()


def record_traffic(namespace: str, name: str, regions: list[tuple[str, int, int]]) -> None:
    """Per region (name, requested weight, achieved share) of one ModelDeployment."""
    for region, weight, share in regions:
        CANARY_WEIGHT.labels(namespace=namespace, name=name, region=region).set(weight)
        CANARY_SHARE.labels(namespace=namespace, name=name, region=region).set(share)


def forget_traffic(namespace: str, name: str, regions: list[str]) -> None:
    for region in regions:
        for gauge in (CANARY_WEIGHT, CANARY_SHARE):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name, region)
