"""`regions[].autoscaling`: good blocks (pasted from an HPA) are read and admitted; bad ones are refused
by the models with a message naming the field, and by the generated CRD at that field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_api_bad_specs import BASE, DELETE, edited, within

from bellwether.api import SpecError, parse
from support.crdkit import admit, load_crd

REGION = "spec.regions[0]"
AUTO = f"{REGION}.autoscaling"
PODS = {
    "type": "Pods",
    "pods": {"metric": {"name": "vllm:num_requests_waiting"}, "target": {"type": "AverageValue", "averageValue": 5}},
}
AUTOSCALED: dict[str, Any] = {
    f"{REGION}.replicas": DELETE,
    AUTO: {"minReplicas": 2, "maxReplicas": 8, "metrics": [PODS]},
}


def autoscaled(**edits: Any) -> dict[str, Any]:
    merged = {**AUTOSCALED, **edits}
    return edited({k: v if v is DELETE else copy.deepcopy(v) for k, v in merged.items()})


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("a Pods metric", autoscaled()),
    ("averageValue as a string", autoscaled(**{f"{AUTO}.metrics[0].pods.target.averageValue": "500m"})),
    (
        "a Resource metric",
        autoscaled(
            **{
                f"{AUTO}.metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                    }
                ]
            }
        ),
    ),
    (
        "KEDA owns the replicas",
        autoscaled(**{AUTO: {"minReplicas": 1, "maxReplicas": 4, "external": {"ownedBy": "keda"}}}),
    ),
    (
        "an HPA behavior, passed through",
        autoscaled(**{f"{AUTO}.behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}}}),
    ),
]

BAD: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "replicas and autoscaling",
        edited({AUTO: copy.deepcopy(AUTOSCALED[AUTO])}),
        f"{REGION}.replicas",
        "exactly one of them",
    ),
    ("neither replicas nor autoscaling", edited({f"{REGION}.replicas": DELETE}), f"{REGION}.replicas", "exactly one"),
    ("min above max", autoscaled(**{f"{AUTO}.minReplicas": 9}), f"{AUTO}.minReplicas", "above maxReplicas"),
    ("min 0", autoscaled(**{f"{AUTO}.minReplicas": 0}), f"{AUTO}.minReplicas", "at least 1"),
    ("no metrics, no external", autoscaled(**{f"{AUTO}.metrics": DELETE}), f"{AUTO}.metrics", "metrics"),
    (
        "metrics and external",
        autoscaled(**{f"{AUTO}.external": {"ownedBy": "keda"}}),
        f"{AUTO}.metrics",
        "not both",
    ),
    (
        "type Resource with a pods source",
        autoscaled(**{f"{AUTO}.metrics[0].type": "Resource"}),
        f"{AUTO}.metrics[0].pods",
        "needs resource",
    ),
    ("unknown metric type", autoscaled(**{f"{AUTO}.metrics[0].type": "Queue"}), f"{AUTO}.metrics[0].type", "'Pods'"),
    (
        "a target without its value",
        autoscaled(**{f"{AUTO}.metrics[0].pods.target": {"type": "AverageValue"}}),
        f"{AUTO}.metrics[0].pods.target.averageValue",
        "is required with target type AverageValue",
    ),
    (
        "a quantity that is not one",
        autoscaled(**{f"{AUTO}.metrics[0].pods.target.averageValue": "five"}),
        f"{AUTO}.metrics[0].pods.target.averageValue",
        "a Kubernetes quantity",
    ),
    (
        "maxSurge 0 beside an autoscaler",
        autoscaled(**{"spec.rollout.maxSurge": "0"}),
        "spec.rollout.maxSurge",
        "above 0",
    ),
    (
        "typo in a metric",
        autoscaled(**{f"{AUTO}.metrics[0].pods.metrc": {}}),
        f"{AUTO}.metrics[0].pods.metrc",
        "metric",
    ),
]


@pytest.mark.parametrize(("case", "doc"), GOOD, ids=[c[0] for c in GOOD])
def test_autoscaling_as_an_hpa_has_it_is_read_and_admitted(case: str, doc: dict[str, Any]) -> None:
    md = parse(doc)
    assert md.spec.regions[0].autoscaling is not None and md.spec.regions[0].replicas is None
    assert admit(load_crd(), doc) == []


@pytest.mark.parametrize(("case", "doc", "path", "allowed"), BAD, ids=[c[0] for c in BAD])
def test_bad_autoscaling_is_refused_by_the_models_and_the_crd_at_the_field(
    case: str, doc: dict[str, Any], path: str, allowed: str
) -> None:
    with pytest.raises(SpecError) as raised:
        parse(doc)
    matching = [p for p in raised.value.problems if p.startswith(f"{path}: ")]
    assert matching and any(allowed in p for p in matching), raised.value.problems
    rejections = admit(load_crd(), doc)
    assert any(within(r.path, path) or within(path, r.path) for r in rejections), [str(r) for r in rejections]


def test_the_base_spec_is_untouched() -> None:
    assert BASE["spec"]["regions"][0] == {"name": "us-east", "replicas": 4}
