"""The models and the CRD agree: for random edits of a valid spec, the operator accepts exactly what
`kubectl apply` accepts. A disagreement either way is a bug: the API server would store an object the
operator cannot read, or refuse one the operator would run."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from crdkit import admit, load_crd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_bad_specs import BASE, DELETE, METRIC, STEPS, put

from bellwether.api import SpecError, parse

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
