"""The operator's own Prometheus metrics, served on `/metrics` by `bellwether run`.

Counters and the cycle histogram are per operator (labels from small fixed sets). The gauges below them
are per ModelDeployment, kube-state-metrics style: one series per object and phase, per region, per
metric and region. Their label values come from bounded sets only (the six phases, three condition
types and statuses; the spec's regions
and metrics, which the CRD caps), and every series an object set is removed when the object is deleted
or when its status no longer has what the series described (a region or metric taken out of the spec).
docs/observability.md lists them with the dashboard and alerts built on them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from bellwether.analysis.presets import baseline_of
from bellwether.api import Measurement, ModelDeploymentSpec, ModelDeploymentStatus
from bellwether.api.spec import Metric
from bellwether.api.status import Phase

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
# Up to minutes: a cycle slower than the interval (30 s by default) must land in a bucket of its own.
RECONCILE_SECONDS = Histogram(
    "bellwether_reconcile_duration_seconds",
    "One rollout cycle: observe every region, analyse, decide, apply, write status.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
CYCLE_INTERVAL = Gauge(
    "bellwether_cycle_interval_seconds",
    "The longest wait between two rollout cycles of one ModelDeployment (`bellwether run --interval`).",
)
API_ERRORS = Counter(
    "bellwether_api_errors_total", "Failed Kubernetes API requests, by cluster and verb.", ["cluster", "verb"]
)

# -- per ModelDeployment -------------------------------------------------------------------------------

PHASES: tuple[str, ...] = get_args(Phase)
CONDITION_STATUSES = ("True", "False", "Unknown")
# The last verdict of a metric in a region, as a number a graph and an alert can read.
VERDICT_VALUES = {"Successful": 1.0, "Inconclusive": 0.0, "Failed": -1.0}

PHASE = Gauge(
    "bellwether_rollout_phase",
    "1 for the ModelDeployment's current phase, 0 for the other phases.",
    ["namespace", "name", "phase"],
)
CONDITION = Gauge(
    "bellwether_rollout_condition",
    "1 for each condition's current status (True, False or Unknown), 0 for its other two.",
    ["namespace", "name", "condition", "status"],
)
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
VERDICT = Gauge(
    "bellwether_analysis_verdict",
    "The last verdict of a metric in a region: 1 Successful, 0 Inconclusive, -1 Failed.",
    ["namespace", "name", "metric", "region"],
)
MEASURED = Gauge(
    "bellwether_analysis_value",
    "The last measured value of a metric in a region, of the canary and of stable (in the metric's unit).",
    ["namespace", "name", "metric", "region", "role"],
)
BOUND = Gauge(
    "bellwether_analysis_bound",
    "The bound the canary's last value was held to: max, the tightest upper bound (an absolute max, "
    "or the ratio to stable's value, floored); min, an absolute lower bound.",
    ["namespace", "name", "metric", "region", "kind"],
)

Series = tuple[Gauge, tuple[str, ...]]
# (namespace, name) -> every series set for that object, so it can be removed without knowing its labels.
_objects: dict[tuple[str, str], set[Series]] = {}


NOTIFICATIONS = Counter(
    "bellwether_notifications_total",
    "Notifications by outcome: delivered, retried (a retry scheduled), failed (given up), dropped (queue full).",
    ["outcome"],
)


def count_notification(outcome: str) -> None:
    NOTIFICATIONS.labels(outcome=outcome).inc()


def count_api_error(cluster: str, verb: str) -> None:
    API_ERRORS.labels(cluster=cluster, verb=verb).inc()


def record(namespace: str, name: str, status: ModelDeploymentStatus, spec: ModelDeploymentSpec | None) -> None:
    """The gauges of one ModelDeployment from the status just written; series it no longer has go.
    `spec` gives the bounds (none are shown without it)."""
    values: dict[Series, float] = {}
    for phase in PHASES:
        values[(PHASE, (namespace, name, phase))] = 1.0 if status.phase == phase else 0.0
    for c in status.conditions:
        for state in CONDITION_STATUSES:
            values[(CONDITION, (namespace, name, c.type, state))] = 1.0 if c.status == state else 0.0
    for r in status.regions:
        values[(CANARY_WEIGHT, (namespace, name, r.name))] = r.weight
        values[(CANARY_SHARE, (namespace, name, r.name))] = r.share
    metrics = {m.name: m for m in (spec.analysis.metrics if spec and spec.analysis else [])}
    for m in latest(status.analysis):
        values.update(_measurement(namespace, name, m, metrics.get(m.metric)))
    for (gauge, labels), value in values.items():
        gauge.labels(*labels).set(value)
    _drop(_objects.get((namespace, name), set()) - values.keys())
    _objects[(namespace, name)] = set(values)


def forget(namespace: str, name: str) -> None:
    """Remove every series of a deleted ModelDeployment."""
    _drop(_objects.pop((namespace, name), set()))


def latest(measurements: Iterable[Measurement]) -> list[Measurement]:
    """The newest measurement of each metric in each region (status keeps a few of each)."""
    newest: dict[tuple[str, str], Measurement] = {}
    for m in measurements:
        key = (m.metric, m.region)
        if key not in newest or m.at >= newest[key].at:
            newest[key] = m
    return list(newest.values())


def bounds(metric: Metric, stable: float | None) -> dict[str, float]:
    """A metric's bounds as numbers, for its value now: the ratio to stable needs stable's value."""
    uppers = [] if metric.max is None else [metric.max]
    baseline = baseline_of(metric)
    if baseline is not None and stable is not None:
        uppers.append(baseline.max_ratio * max(stable, baseline.min_value))
    out = {"max": min(uppers)} if uppers else {}
    if metric.min is not None:
        out["min"] = metric.min
    return out


def _measurement(namespace: str, name: str, m: Measurement, metric: Metric | None) -> dict[Series, float]:
    key = (namespace, name, m.metric, m.region)
    out: dict[Series, float] = {(VERDICT, key): VERDICT_VALUES[m.verdict]}
    for role, value in (("canary", m.value), ("stable", m.baseline)):
        if value is not None:
            out[(MEASURED, (*key, role))] = value
    for kind, value in (bounds(metric, m.baseline) if metric is not None else {}).items():
        out[(BOUND, (*key, kind))] = value
    return out


def _drop(series: Iterable[Series]) -> None:
    for gauge, labels in series:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)
