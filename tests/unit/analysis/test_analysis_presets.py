"""Presets: one per name the API accepts, each selecting one revision in one region, documented as run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bellwether.analysis.presets import PRESETS, baseline_of, counting_of, kind_of, presets_markdown, query_of
from bellwether.analysis.templating import Variables, render
from bellwether.api.metrics import PRESET_NAMES, Metric

DOC = Path(__file__).resolve().parents[3] / "docs" / "presets.md"


def test_docs_presets_md_is_generated_from_the_presets() -> None:
    assert DOC.read_text() == presets_markdown(), (
        "docs/presets.md drifted: run `bellwether docs presets > docs/presets.md`"
    )


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_selects_one_revision_of_one_deployment_in_one_region(name: str) -> None:
    query = render(PRESETS[name].query, Variables("llama", "ml", "us-east", "5d1e88f0", "canary", 30))
    for matcher in ('namespace="ml"', 'deployment="llama"', 'region="us-east"', 'revision="5d1e88f0"', "[30s]"):
        assert matcher in query, f"{name}: {matcher} missing from {query}"
    assert "{{" not in query
    for series in PRESETS[name].series:
        assert series in query or series.removesuffix("_bucket") in query


def test_a_preset_without_bounds_gets_its_default_and_an_explicit_bound_replaces_it() -> None:
    assert baseline_of(Metric(name="p99", preset="vllm-e2e-latency-p99")) == PRESETS["vllm-e2e-latency-p99"].baseline
    assert baseline_of(Metric(name="p99", preset="vllm-e2e-latency-p99", max=2.0)) is None
    explicit = Metric(name="p99", preset="vllm-e2e-latency-p99", baseline={"maxRatio": 1.1})
    assert baseline_of(explicit) == explicit.baseline
    assert query_of(explicit) == PRESETS["vllm-e2e-latency-p99"].query


def test_custom_queries_are_judged_as_error_rates_when_they_say_so() -> None:
    errors = Metric(name="errors", query='sum(rate(x{code=~"5.."}[{{interval}}]))', max=0.01)
    latency = Metric(name="latency", query="histogram_quantile(0.99, x)", max=2)
    assert (kind_of(errors), kind_of(latency)) == ("error-rate", "latency")


@pytest.mark.parametrize("name", [n for n in PRESET_NAMES if PRESETS[n].counts is not None])
def test_every_request_level_query_counts_one_revision_over_the_whole_window(name: str) -> None:
    counts = PRESETS[name].counts
    assert counts is not None
    queries = [q for q in (counts.buckets, counts.failed, counts.total) if q is not None]
    assert queries and (counts.buckets is None) == (counts.failed is not None)
    for template in queries:
        query = render(template, Variables("llama", "ml", "us-east", "5d1e88f0", "canary", 600))
        for matcher in ('namespace="ml"', 'deployment="llama"', 'region="us-east"', 'revision="5d1e88f0"', "[10m]"):
            assert matcher in query, f"{name}: {matcher} missing from {query}"
        assert "increase(" in query and "rate(" not in query


def test_which_metrics_are_judged_on_their_requests() -> None:
    assert counting_of(Metric(name="p99", preset="vllm-e2e-latency-p99")) is not None
    assert counting_of(Metric(name="p99", preset="vllm-e2e-latency-p99", max=3.0)) is not None
    assert counting_of(Metric(name="avg", preset="triton-request-latency-avg")) is None  # no histogram
    assert counting_of(Metric(name="p99", preset="vllm-e2e-latency-p99", min=0.1)) is None  # a lower bound
    assert counting_of(Metric(name="q", query='sum(rate(x{revision="{{revision}}"}[{{interval}}]))', max=1)) is None


def test_tritons_millisecond_histogram_is_read_in_seconds() -> None:
    triton = PRESETS["triton-first-response-p95"]
    assert triton.query.endswith(" / 1000") and triton.unit == "s"
    assert triton.counts is not None and triton.counts.le_seconds == 0.001 and triton.counts.quantile == 0.95
    others = [PRESETS[n].counts for n in PRESET_NAMES if n != "triton-first-response-p95"]
    assert {c.le_seconds for c in others if c is not None} == {1.0}


@pytest.mark.parametrize("name", ["tgi-queue-duration-p95", "tgi-time-per-token-p95", "triton-first-response-p95"])
def test_the_token_latency_presets_of_triton_and_tgi_are_judged_on_their_requests(name: str) -> None:
    counts = counting_of(Metric(name="m", preset=name))
    assert counts is not None and counts.buckets is not None and kind_of(Metric(name="m", preset=name)) == "latency"


def test_the_presets_page_says_what_each_runtime_does_not_export() -> None:
    page = presets_markdown()
    gaps = page.split("## What each runtime does not export")[1].split("## Queries")[0]
    assert "**Triton**" in gaps and "**TGI**" in gaps and "no time to first token" in gaps
    assert "histogram_latencies=true" in gaps and "decoupled" in gaps
