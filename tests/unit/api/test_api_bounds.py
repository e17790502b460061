"""Durations the engine divides by or waits on have a floor, and the API server and the operator
refuse the same values (an `interval: 0s` once crashed every cycle)."""

from __future__ import annotations

import copy

import pytest
from test_api_bad_specs import BASE, put

from bellwether.api import SpecError, parse
from support.crdkit import admit, load_crd

CASES = [
    ("spec.analysis.interval", "0s", "at least 1s"),
    ("spec.analysis.interval", "1ms", "at least 1s"),
    ("spec.analysis.interval", "999ms", "at least 1s"),
    ("spec.analysis.prometheus.timeout", "0s", "at least 100ms"),
    ("spec.rollout.steps[1].analysis.duration", "0s", "at least 1s"),
    ("spec.rollout.progressDeadline", "1s", "at least 10s"),
]


@pytest.mark.parametrize(("path", "value", "said"), CASES)
def test_a_duration_below_its_floor_is_refused_by_both(path: str, value: str, said: str) -> None:
    doc = copy.deepcopy(BASE)
    put(doc, path, value)
    rejections = admit(load_crd(), doc)
    assert rejections and any(said in r.message for r in rejections), rejections
    with pytest.raises(SpecError) as caught:
        parse(doc)
    assert any(said.replace("at least ", "shorter than ") in p for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(("path", "value"), [("spec.analysis.interval", "1s"), ("spec.rollout.bakeTime", "0s")])
def test_the_floor_itself_and_unbounded_durations_pass(path: str, value: str) -> None:
    doc = copy.deepcopy(BASE)
    put(doc, path, value)
    assert admit(load_crd(), doc) == []
    parse(doc)
