"""Built-in queries for the runtimes people serve models with: vLLM, Triton, TGI and plain HTTP.

Every preset selects one revision of one ModelDeployment in one region through the labels Bellwether
puts on its pods (`bellwether.dev/deployment`, `/region`, `/revision`), which the scrape
configuration turns into the series labels `deployment`, `region` and `revision` next to
Prometheus' own `namespace` (docs/presets.md shows the relabelling). A preset returns one number per
evaluation, so the judge can compare it with the stable revision's over the same window.

A preset metric may leave its bounds out; then the preset's defaults apply: a latency must stay within a
ratio of stable's (judged statistically, see `judge`), an error rate within a ratio of stable's above a
floor, so a 0.1 % baseline does not turn one failed request into a "3x regression".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bellwether.api.metrics import PRESET_NAMES, Baseline, Metric

Kind = Literal["latency", "error-rate"]

SELECTOR = 'namespace="{{namespace}}",deployment="{{name}}",region="{{region}}",revision="{{revision}}"'


@dataclass(frozen=True)
class Preset:
    query: str
    kind: Kind
    unit: str
    runtime: str
    series: tuple[str, ...]  # the metric names the runtime must export
    about: str
    baseline: Baseline


def _quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{{{SELECTOR}}}[{{{{interval}}}}])))"


def _error_ratio(part: str, whole: str) -> str:
    # An error series often appears only with the first error: `or vector(0)` reads its absence as zero.
    return f"(sum(rate({part}[{{{{interval}}}}])) or vector(0)) / sum(rate({whole}[{{{{interval}}}}]))"


def _select(metric: str, extra: str = "") -> str:
    return f"{metric}{{{SELECTOR}{',' + extra if extra else ''}}}"


LATENCY = Baseline(max_ratio=1.3)
ERRORS = Baseline(max_ratio=2.0, min_value=0.005)

PRESETS: dict[str, Preset] = {
    "vllm-e2e-latency-p99": Preset(
        _quantile(0.99, "vllm:e2e_request_latency_seconds"),
        "latency",
        "s",
        "vLLM",
        ("vllm:e2e_request_latency_seconds_bucket",),
        "p99 of end-to-end request latency",
        LATENCY,
    ),
    "vllm-ttft-p95": Preset(
        _quantile(0.95, "vllm:time_to_first_token_seconds"),
        "latency",
        "s",
        "vLLM",
        ("vllm:time_to_first_token_seconds_bucket",),
        "p95 of time to first token",
        LATENCY,
    ),
    "vllm-inter-token-latency-p95": Preset(
        _quantile(0.95, "vllm:inter_token_latency_seconds"),
        "latency",
        "s",
        "vLLM",
        ("vllm:inter_token_latency_seconds_bucket",),
        "p95 of the time between output tokens (vLLM >= 0.10; older releases call it time_per_output_token)",
        LATENCY,
    ),
    "vllm-error-rate": Preset(
        _error_ratio(_select("http_requests_total", 'status=~"5.."'), _select("http_requests_total")),
        "error-rate",
        "ratio",
        "vLLM",
        ("http_requests_total",),
        "share of HTTP responses with a 5xx status (the OpenAI server's `status` label: 2xx, 4xx, 5xx)",
        ERRORS,
    ),
    "triton-request-latency-avg": Preset(
        f"sum(rate({_select('nv_inference_request_duration_us')}[{{{{interval}}}}])) / "
        f"sum(rate({_select('nv_inference_request_success')}[{{{{interval}}}}])) / 1e6",
        "latency",
        "s",
        "Triton",
        ("nv_inference_request_duration_us", "nv_inference_request_success"),
        "mean request latency (Triton exports cumulative microseconds, not a histogram)",
        LATENCY,
    ),
    "triton-failure-rate": Preset(
        f"(sum(rate({_select('nv_inference_request_failure')}[{{{{interval}}}}])) or vector(0)) / "
        f"(sum(rate({_select('nv_inference_request_success')}[{{{{interval}}}}])) + "
        f"sum(rate({_select('nv_inference_request_failure')}[{{{{interval}}}}])))",
        "error-rate",
        "ratio",
        "Triton",
        ("nv_inference_request_success", "nv_inference_request_failure"),
        "failed inference requests over all inference requests",
        ERRORS,
    ),
    "tgi-request-duration-p99": Preset(
        _quantile(0.99, "tgi_request_duration"),
        "latency",
        "s",
        "TGI",
        ("tgi_request_duration_bucket",),
        "p99 of request duration",
        LATENCY,
    ),
    "tgi-error-rate": Preset(
        _error_ratio(_select("tgi_request_failure"), _select("tgi_request_count")),
        "error-rate",
        "ratio",
        "TGI",
        ("tgi_request_failure", "tgi_request_count"),
        "failed requests over all requests",
        ERRORS,
    ),
    "http-latency-p99": Preset(
        _quantile(0.99, "http_request_duration_seconds"),
        "latency",
        "s",
        "any HTTP server",
        ("http_request_duration_seconds_bucket",),
        "p99 of HTTP request duration (the Prometheus client libraries' conventional histogram)",
        LATENCY,
    ),
    "http-error-rate": Preset(
        _error_ratio(_select("http_requests_total", 'code=~"5.."'), _select("http_requests_total")),
        "error-rate",
        "ratio",
        "any HTTP server",
        ("http_requests_total",),
        "share of HTTP responses with a 5xx `code` label",
        ERRORS,
    ),
}
assert set(PRESETS) == set(PRESET_NAMES), "every preset the API accepts has a query, and no other"

_ERROR_WORDS = ("error", "fail", "5..", "5xx")


def query_of(metric: Metric) -> str:
    """The PromQL template a metric runs: its own query, or its preset's."""
    if metric.query is not None:
        return metric.query
    assert metric.preset is not None
    return PRESETS[metric.preset].query


def kind_of(metric: Metric) -> Kind:
    """Error rates and latencies are judged differently; a custom query says which by its name or text."""
    if metric.preset is not None:
        return PRESETS[metric.preset].kind
    text = f"{metric.name} {metric.query or ''}".lower()
    return "error-rate" if any(w in text for w in _ERROR_WORDS) else "latency"


def baseline_of(metric: Metric) -> Baseline | None:
    """The metric's baseline bound, or its preset's default when it sets no bound at all."""
    if metric.baseline is not None or metric.preset is None:
        return metric.baseline
    if metric.max is not None or metric.min is not None:
        return None
    return PRESETS[metric.preset].baseline


def presets_markdown() -> str:
    """docs/presets.md, generated so the documented queries are the ones that run."""
    out = [
        "# Metric presets",
        "",
        "<!-- Generated by `bellwether docs presets` from bellwether/analysis/presets.py; a test fails when it drifts. -->",
        "",
        "A metric may name a `preset` instead of writing a `query`. Every preset selects one revision of one",
        "ModelDeployment in one region through these series labels:",
        "",
        "| Series label | Comes from the pod label | Value |",
        "| --- | --- | --- |",
        "| `namespace` | (the pod's namespace) | the region's namespace (`regions[].namespace`, default the ModelDeployment's) |",
        "| `deployment` | `bellwether.dev/deployment` | the ModelDeployment's name |",
        "| `region` | `bellwether.dev/region` | the region's name in the spec |",
        "| `revision` | `bellwether.dev/revision` | the revision hash (`kubectl get mdep` shows it) |",
        "",
        "Pods carry no role label: a revision's role changes at promotion and its pods must not (a pod label",
        "in the template would make Kubernetes replace every pod). Select by `revision`; `{{role}}` in a query",
        "is the role the operator gives the revision it is measuring.",
        "",
        "With the Prometheus Operator, a PodMonitor that copies the pod labels under those names:",
        "",
        "```yaml",
        "apiVersion: monitoring.coreos.com/v1",
        "kind: PodMonitor",
        "metadata: {name: bellwether-serving, namespace: ml}",
        "spec:",
        "  selector:",
        "    matchLabels: {app.kubernetes.io/managed-by: bellwether}",
        "  podMetricsEndpoints:",
        "    - port: http",
        "      relabelings:",
        "        - {sourceLabels: [__meta_kubernetes_pod_label_bellwether_dev_deployment], targetLabel: deployment}",
        "        - {sourceLabels: [__meta_kubernetes_pod_label_bellwether_dev_region], targetLabel: region}",
        "        - {sourceLabels: [__meta_kubernetes_pod_label_bellwether_dev_revision], targetLabel: revision}",
        "```",
        "",
        "When a preset metric sets no bound, its default applies: latencies at most "
        f"{LATENCY.max_ratio:g}x stable, error rates at most {ERRORS.max_ratio:g}x stable with stable floored at "
        f"{ERRORS.min_value:g}. A ratio breach fails a measurement only with statistical evidence "
        "(see [concepts](concepts.md)). Run `bellwether check -f md.yaml --prometheus URL` to see every query "
        "return data before a rollout depends on it.",
        "",
        "| Preset | Runtime | Measures | Needs these series | Default bound |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, p in PRESETS.items():
        series = ", ".join(f"`{s}`" for s in p.series)
        floor = f", stable floored at {p.baseline.min_value:g}" if p.baseline.min_value else ""
        out.append(
            f"| `{name}` | {p.runtime} | {p.about} ({p.unit}) | {series} | <= {p.baseline.max_ratio:g}x stable{floor} |"
        )
    out += ["", "## Queries", ""]
    for name, p in PRESETS.items():
        out += [f"### `{name}`", "", "```promql", p.query, "```", ""]
    return "\n".join(out).rstrip() + "\n"
