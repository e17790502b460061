"""Built-in queries for the runtimes people serve models with: vLLM, Triton, TGI and plain HTTP.

Every preset selects one revision of one ModelDeployment in one region through the labels Bellwether
puts on its pods (`bellwether.dev/deployment`, `/region`, `/revision`), which the scrape
configuration turns into the series labels `deployment`, `region` and `revision` next to
Prometheus' own `namespace` (docs/presets.md shows the relabelling).

A preset has two kinds of query. `query` returns one number per evaluation (a p99, an error ratio):
what dashboards, `bellwether check` and the per-interval judge read. `counts` returns what the
requests did over a whole window (a histogram's bucket increases, or failed and total requests),
which is what the request-level judge decides on (docs/analysis.md). Triton exports no request
latency histogram, only a cumulative sum and count, so its mean latency keeps the per-interval
judgment; its optional first-response histogram is in milliseconds (`le_seconds` reads its edges).

A preset metric may leave its bounds out; then the preset's defaults apply: a latency must stay within a
ratio of stable's, an error rate within a ratio of stable's above a floor, so a 0.1 % baseline does not
turn one failed request into a "3x regression".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bellwether.api.metrics import PRESET_NAMES, Baseline, Metric

Kind = Literal["latency", "error-rate"]

SELECTOR = 'namespace="{{namespace}}",deployment="{{name}}",region="{{region}}",revision="{{revision}}"'


@dataclass(frozen=True)
class Counting:
    """The request-level queries of a preset, each one series over the window `[{{interval}}]`
    (rendered with the window's length): a latency's bucket increases by `le` and the quantile its
    bound is about, or an error rate's failed and total requests."""

    buckets: str | None = None
    quantile: float | None = None
    failed: str | None = None
    total: str | None = None
    le_seconds: float = 1.0  # seconds per unit of the histogram's `le` (Triton's are milliseconds)


@dataclass(frozen=True)
class Preset:
    query: str
    kind: Kind
    unit: str
    runtime: str
    series: tuple[str, ...]  # the metric names the runtime must export
    about: str
    baseline: Baseline
    counts: Counting | None = None


def _quantile(q: float, histogram: str, per_second: float = 1.0) -> str:
    """The q-quantile in seconds; `per_second`: the histogram's units in a second (1000 for ms)."""
    query = f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{{{SELECTOR}}}[{{{{interval}}}}])))"
    return query if per_second == 1.0 else f"{query} / {per_second:g}"


def _buckets(q: float, histogram: str, per_second: float = 1.0) -> Counting:
    return Counting(
        buckets=f"sum by (le) (increase({histogram}_bucket{{{SELECTOR}}}[{{{{interval}}}}]))",
        quantile=q,
        le_seconds=1.0 / per_second,
    )


def _increase(series: str) -> str:
    return f"sum(increase({series}[{{{{interval}}}}]))"


def _errors(part: str, whole: str) -> Counting:
    # No error series yet (it appears with the first error) reads as none failed, not as no data.
    return Counting(failed=f"{_increase(part)} or vector(0)", total=_increase(whole))


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
        _buckets(0.99, "vllm:e2e_request_latency_seconds"),
    ),
    "vllm-ttft-p95": Preset(
        _quantile(0.95, "vllm:time_to_first_token_seconds"),
        "latency",
        "s",
        "vLLM",
        ("vllm:time_to_first_token_seconds_bucket",),
        "p95 of time to first token",
        LATENCY,
        _buckets(0.95, "vllm:time_to_first_token_seconds"),
    ),
    "vllm-inter-token-latency-p95": Preset(
        _quantile(0.95, "vllm:inter_token_latency_seconds"),
        "latency",
        "s",
        "vLLM",
        ("vllm:inter_token_latency_seconds_bucket",),
        "p95 of the time between output tokens (vLLM >= 0.10; older releases call it time_per_output_token)",
        LATENCY,
        _buckets(0.95, "vllm:inter_token_latency_seconds"),
    ),
    "vllm-error-rate": Preset(
        _error_ratio(_select("http_requests_total", 'status=~"5.."'), _select("http_requests_total")),
        "error-rate",
        "ratio",
        "vLLM",
        ("http_requests_total",),
        "share of HTTP responses with a 5xx status (the OpenAI server's `status` label: 2xx, 4xx, 5xx)",
        ERRORS,
        _errors(_select("http_requests_total", 'status=~"5.."'), _select("http_requests_total")),
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
        Counting(
            failed=f"{_increase(_select('nv_inference_request_failure'))} or vector(0)",
            total=f"{_increase(_select('nv_inference_request_success'))} + "
            f"({_increase(_select('nv_inference_request_failure'))} or vector(0))",
        ),
    ),
    "triton-first-response-p95": Preset(
        _quantile(0.95, "nv_inference_first_response_histogram_ms", 1000),
        "latency",
        "s",
        "Triton",
        ("nv_inference_first_response_histogram_ms_bucket",),
        "p95 of the time from request to first response of a decoupled (streaming) model: Triton's "
        "histogram in milliseconds, off unless `--metrics-config histogram_latencies=true`; the first "
        "response is the backend's first chunk, which is the first token only if the backend streams "
        "token by token",
        LATENCY,
        _buckets(0.95, "nv_inference_first_response_histogram_ms", 1000),
    ),
    "tgi-request-duration-p99": Preset(
        _quantile(0.99, "tgi_request_duration"),
        "latency",
        "s",
        "TGI",
        ("tgi_request_duration_bucket",),
        "p99 of request duration",
        LATENCY,
        _buckets(0.99, "tgi_request_duration"),
    ),
    "tgi-queue-duration-p95": Preset(
        _quantile(0.95, "tgi_request_queue_duration"),
        "latency",
        "s",
        "TGI",
        ("tgi_request_queue_duration_bucket",),
        "p95 of the time a request waits in TGI's queue before it joins a batch: the waiting part of "
        "time to first token, which TGI does not export (prefill time is per batch, not per request)",
        LATENCY,
        _buckets(0.95, "tgi_request_queue_duration"),
    ),
    "tgi-time-per-token-p95": Preset(
        _quantile(0.95, "tgi_request_mean_time_per_token_duration"),
        "latency",
        "s",
        "TGI",
        ("tgi_request_mean_time_per_token_duration_bucket",),
        "p95 of each request's mean time per generated token (inference time over generated tokens, "
        "so prefill included): the closest TGI comes to inter-token latency",
        LATENCY,
        _buckets(0.95, "tgi_request_mean_time_per_token_duration"),
    ),
    "tgi-error-rate": Preset(
        _error_ratio(_select("tgi_request_failure"), _select("tgi_request_count")),
        "error-rate",
        "ratio",
        "TGI",
        ("tgi_request_failure", "tgi_request_count"),
        "failed requests over all requests",
        ERRORS,
        _errors(_select("tgi_request_failure"), _select("tgi_request_count")),
    ),
    "http-latency-p99": Preset(
        _quantile(0.99, "http_request_duration_seconds"),
        "latency",
        "s",
        "any HTTP server",
        ("http_request_duration_seconds_bucket",),
        "p99 of HTTP request duration (the Prometheus client libraries' conventional histogram)",
        LATENCY,
        _buckets(0.99, "http_request_duration_seconds"),
    ),
    "http-error-rate": Preset(
        _error_ratio(_select("http_requests_total", 'code=~"5.."'), _select("http_requests_total")),
        "error-rate",
        "ratio",
        "any HTTP server",
        ("http_requests_total",),
        "share of HTTP responses with a 5xx `code` label",
        ERRORS,
        _errors(_select("http_requests_total", 'code=~"5.."'), _select("http_requests_total")),
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
    out = _intro()
    for name, p in PRESETS.items():
        series = ", ".join(f"`{s}`" for s in p.series)
        floor = f", stable floored at {p.baseline.min_value:g}" if p.baseline.min_value else ""
        out.append(
            f"| `{name}` | {p.runtime} | {p.about} ({p.unit}) | {series} | <= {p.baseline.max_ratio:g}x stable{floor} |"
        )
    out += ["", *_GAPS]
    out += ["", "## Queries", ""]
    out += [
        "Each preset's `query` returns one number per interval. The request-level queries below it count over",
        "the whole analysis window (`{{interval}}` is then the window's length) and run as instant queries at",
        "its end.",
        "",
    ]
    for name, p in PRESETS.items():
        out += [f"### `{name}`", "", "```promql", p.query, "```", ""]
        out += _counting_markdown(p.counts)
    return "\n".join(out).rstrip() + "\n"


def _intro() -> list[str]:
    return [
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
        f"{ERRORS.min_value:g}. A preset is judged on its requests: the canary's and stable's histogram bucket "
        "increases, or failed and total requests, since the analysis started, with sequential tests whose "
        "error rates hold however often they are looked at (see [analysis](analysis.md)); its `query` is what "
        "dashboards and `bellwether check` read. Run `bellwether check -f md.yaml --prometheus URL` to see every "
        "query return data before a rollout depends on it.",
        "",
        "| Preset | Runtime | Measures | Needs these series | Default bound |",
        "| --- | --- | --- | --- | --- |",
    ]


_GAPS = [
    "## What each runtime does not export",
    "",
    "A preset exists only where the runtime exports the series it needs. Where it does not:",
    "",
    "- **Triton** exports no request latency histogram: `nv_inference_request_duration_us`,",
    "  `nv_inference_queue_duration_us` and `nv_inference_compute_infer_duration_us` are cumulative",
    "  microseconds, so only a mean can be computed (`triton-request-latency-avg`, judged per interval: a",
    "  regression of the slowest requests that hardly moves the mean goes unseen). For the mean queue or",
    "  compute time, write a query: `sum(rate(nv_inference_queue_duration_us{...}[{{interval}}])) /",
    "  sum(rate(nv_inference_request_success{...}[{{interval}}])) / 1e6`. Its only histogram,",
    "  `nv_inference_first_response_histogram_ms` (`triton-first-response-p95`), is experimental, off",
    "  unless `--metrics-config histogram_latencies=true`, and exists for decoupled models only. Triton",
    "  has no inter-token latency. Triton's vLLM backend can report vLLM's own histograms",
    "  (`vllm:time_to_first_token_seconds`, ...) on Triton's endpoint; the vLLM latency presets read those.",
    "- **TGI** exports no time to first token: `tgi-queue-duration-p95` is its waiting part, and",
    '  `tgi_batch_forward_duration{method="prefill"}` is per batch, not per request. Its',
    "  `tgi_request_mean_time_per_token_duration` is inference time over generated tokens, prefill",
    "  included, not the gap between tokens. TGI records its request histograms for successful requests",
    "  only: a canary that fails fast looks fast, so judge `tgi-error-rate` beside them.",
    "- **Any HTTP server** gives request duration and status codes, nothing about tokens.",
]


def _counting_markdown(counts: Counting | None) -> list[str]:
    if counts is None:
        return ["No request-level queries: this metric is judged per interval.", ""]
    if counts.buckets is not None:
        return [
            f"Bucket increases (judged at p{(counts.quantile or 0) * 100:g}):",
            "",
            "```promql",
            counts.buckets,
            "```",
            "",
        ]
    return ["Failed and total requests:", "", "```promql", counts.failed or "", counts.total or "", "```", ""]


def counting_of(metric: Metric) -> Counting | None:
    """The request-level queries a metric is judged by, or None for per-interval judgment: a query of
    the user's returns one number, Triton's mean latency has no histogram, and a lower bound (`min`)
    on a latency or an error rate is not a share of requests."""
    if metric.preset is None or metric.min is not None:
        return None
    return PRESETS[metric.preset].counts
