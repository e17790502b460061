"""The models, `bellwether validate` and the CRD agree. For random edits of a valid spec the operator
accepts exactly what `kubectl apply` accepts, and `bellwether validate` (strict, as the API server is)
too, quoted numbers and object names included; over the whole bad-input catalog validate and the CRD
(schema + CEL, and ObjectMeta as the API server checks it) refuse every input at the same field. A
disagreement either way is a bug: the API server would store an object the operator cannot read, or
refuse one the operator would run, or `validate` would call valid what `kubectl apply` refuses."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_bad_specs import (
    BASE,
    CASES,
    DELETE,
    METRIC,
    QUERY_CASES,
    STEPS,
    VALID_CASES,
    WIRE_CASES,
    edited,
    put,
    within,
)

from bellwether.api import SpecError, parse
from bellwether.cli.admission import admission
from bellwether.cli.promql import query_problems
from support.crdkit import admit, load_crd

DURATIONS = ["5m", "1h30m", "500ms", "0s", "5 minutes", "", "1d", "9" * 40 + "s"]
CHOICES: dict[str, list[Any]] = {
    f"{STEPS}[0].setWeight": [-1, 0, 10, 50, 100, 101],
    f"{STEPS}[2].setWeight": [0, 10, 11, 100],
    f"{STEPS}[3]": [
        {},
        {"pause": {}},
        {"pause": {"duration": "1m"}},
        {"setWeight": 60, "pause": {}},
        {"setWeight": 90},
    ],
    "spec.rollout.steps": [DELETE, [], [{"pause": {}}], [{"analysis": {"duration": "1m"}}]],
    "spec.rollout.maxSurge": [0, 1, -1, "0", "25%", "100%", "101%", "007%", "x", "1.5", "%", "000000001"],
    "spec.rollout.waves": [
        DELETE,
        [["eu-west", "us-east"]],
        [["us-east"]],
        [["us-east"], []],
        [["us-east", "us-east"], ["eu-west"]],
        [["ap-south"], ["us-east", "eu-west"]],
    ],
    "spec.rollout.bakeTime": DURATIONS,
    "spec.analysis.interval": DURATIONS,
    "spec.regions[0].name": ["us-east", "eu-west", "US_East", "a", "-a", "a" * 64],
    "spec.regions[1].replicas": [-1, 0, 1000, 1001],
    "spec.analysis": [DELETE],
    f"{METRIC}.query": [
        DELETE,
        "up{x='{{ name }}'}",
        "up{pod='{{pod}}'}",
        "up{x='{{}}'}",
        "up{x='{{ name }'}",
        "up{x='{'}",
        "",
    ],
    f"{METRIC}.preset": ["vllm-error-rate", "bogus"],
    "spec.analysis.metrics": [DELETE, []],
    "spec.analysis.templates": [
        DELETE,
        [],
        [{"name": "chat-slo"}],
        [{"name": "chat-slo"}, {"name": "chat-slo"}],
        [{"name": "Chat_SLO"}],
        [{"name": f"t{i}"} for i in range(9)],
    ],
    f"{METRIC}.max": [DELETE, 1, -1],
    f"{METRIC}.min": [0, 0.5, 2],
    f"{METRIC}.name": ["p99-latency", "Error", "error_rate.v2"],
    "spec.traffic": [
        {},
        {"router": "gatewayAPI"},
        {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": []}},
        {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}},
        {"router": "istio", "istio": {"hosts": ["chat.example.com"]}},
        {"router": "nginx"},
    ],
    "spec.runtime.resources.gpu.count": [0, 1, 64, 65],
    "spec.runtime.port": [0, 8000, 65536],
}

edits = st.dictionaries(st.sampled_from(sorted(CHOICES)), st.just(None), min_size=1, max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: st.sampled_from(CHOICES[k]) for k in keys})
)


def models_accept(doc: dict[str, Any]) -> bool:
    try:
        parse(doc)
    except SpecError:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(edits)
def test_models_and_crd_accept_the_same_specs(change: dict[str, Any]) -> None:
    doc = copy.deepcopy(BASE)
    # Whole blocks first, then edits inside them, deletions last; an edit whose parent is gone is moot.
    for path, value in sorted(change.items(), key=lambda kv: (kv[1] is DELETE, len(kv[0]))):
        with contextlib.suppress(KeyError, IndexError):
            put(doc, path, value)
    refused = admit(load_crd(), doc)
    assert models_accept(doc) == (not refused), [str(r) for r in refused]
    assert (admission(doc).problems == []) == (not refused), admission(doc).problems


def validate_problems(doc: dict[str, Any]) -> list[str]:
    """What `bellwether validate` says about one document: the API server's checks, then PromQL."""
    verdict = admission(doc)
    return verdict.problems + (query_problems(verdict.model) if verdict.model else [])


CATALOG = CASES + WIRE_CASES


@pytest.mark.parametrize(("case", "edits", "path", "allowed"), CATALOG, ids=[c[0] for c in CATALOG])
def test_validate_and_the_crd_refuse_every_bad_input_at_the_same_field(
    case: str, edits: dict[str, Any], path: str, allowed: str
) -> None:
    doc = edited(edits)
    refused = admit(load_crd(), doc)
    problems = validate_problems(doc)
    assert refused, f"kubectl apply would accept it: {problems}"
    assert any(within(r.path, path) or within(path, r.path) for r in refused), [str(r) for r in refused]
    named = [p for p in problems if p.startswith(f"{path}: ")]
    assert named, f"validate names no problem at {path}: {problems}"
    assert any(allowed in p for p in named), named


@pytest.mark.parametrize(("case", "query", "said"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_validate_refuses_queries_prometheus_cannot_parse_though_the_api_server_admits_them(
    case: str, query: str, said: str
) -> None:
    doc = edited({f"{METRIC}.query": query})
    assert admit(load_crd(), doc) == []  # the one documented difference: the API server has no PromQL parser
    assert [p for p in validate_problems(doc) if p.startswith(f"{METRIC}.query: ") and said in p], validate_problems(
        doc
    )


@pytest.mark.parametrize(("case", "edits"), VALID_CASES, ids=[c[0] for c in VALID_CASES])
def test_validate_and_the_crd_admit_inputs_that_only_look_wrong(case: str, edits: dict[str, Any]) -> None:
    doc = edited(edits)
    assert admit(load_crd(), doc) == []
    assert validate_problems(doc) == []


# Edits of the wire form the operator's lax parsing would forgive: quoted numbers, object names.
WIRE_CHOICES: dict[str, list[Any]] = {
    "spec.regions[0].replicas": [4, "4", 4.5, True, None],
    "spec.runtime.port": [8000, "8000", None, 0],
    f"{STEPS}[0].setWeight": [10, "10", 10.0],
    f"{METRIC}.max": [0.01, 1, "0.01", False],
    "metadata.name": ["llama-chat", "Bad_Name", "llama.v2", "llama-", "a..b", "x" * 254],
    "metadata.namespace": ["ml", "ml.serving", "ML", DELETE],
    "metadata.labels": [{}, {"app.kubernetes.io/name": "x"}, {"a b": "x"}, {"k": "-v"}],
    "spec.model.version": ["2026-11-20", 2026, ""],
    "spec.rollout.maxSurge": [0, "0", "25%", "101%", 1.5],
}
wire_edits = st.dictionaries(st.sampled_from(sorted(WIRE_CHOICES)), st.just(None), min_size=1, max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: st.sampled_from(WIRE_CHOICES[k]) for k in keys})
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(wire_edits)
def test_validate_accepts_exactly_what_the_crd_accepts(change: dict[str, Any]) -> None:
    doc = copy.deepcopy(BASE)
    for path, value in change.items():
        put(doc, path, value)
    refused = admit(load_crd(), doc)
    assert (validate_problems(doc) == []) == (not refused), ([str(r) for r in refused], validate_problems(doc))
