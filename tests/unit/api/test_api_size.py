"""The largest ModelDeployment the CRD accepts stays within the API server's limits for its whole life:
~1.5 MB per object in etcd, 256 KiB of annotations (what `kubectl apply` keeps as last-applied), over
any number of rollouts. A 385 KB spec once bricked its object: kopf's annotation refused, then every
status write "request is too large" after a few rollouts, with nothing in status saying so."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bellwether.api import SpecError, dump, parse, parse_spec
from bellwether.api.metrics import MAX_METRICS, MAX_QUERY_TEXT
from bellwether.api.spec import MAX_REGIONS, MAX_RUNTIME_TEXT
from bellwether.api.status import MAX_MEASUREMENTS, MAX_REASON
from support.crdkit import admit, load_crd

ETCD_OBJECT_LIMIT = 1_500_000
ANNOTATIONS_LIMIT = 262_144


def name(prefix: str, i: int, length: int) -> str:
    return (f"{prefix}{i}-" + "x" * length)[: length - 1] + "z"


def largest_spec(version: str = "v1") -> dict[str, Any]:
    """Every field at its bound: strings at maxLength, lists at maxItems, the text budgets full."""
    query = (
        'sum(rate(http_requests_total{namespace="{{namespace}}",revision="{{revision}}",code=~"5.."}[{{interval}}]))'
    )
    per_query = MAX_QUERY_TEXT // MAX_METRICS
    env_name = 32
    args_budget = MAX_RUNTIME_TEXT - 64 * env_name
    regions = [name("r", i, 63) for i in range(MAX_REGIONS)]
    return {
        "model": {"name": "m" * 253, "version": (version + "-" + "v" * 128)[:128], "uri": "s3://" + "u" * 2043},
        "runtime": {
            "image": "i" * 512,
            "args": ["a" * 4096] * (args_budget // 4096) + ["a" * (args_budget % 4096)],
            "env": [
                {"name": name("E", i, env_name), "valueFrom": {"secretKeyRef": {"name": "s" * 253, "key": "k" * 253}}}
                for i in range(64)
            ],
            "resources": {"gpu": {"count": 8, "product": "p" * 63}, "cpu": "1" * 32, "memory": "1" * 30 + "Gi"},
            "readinessPath": "/" + "h" * 1023,
        },
        "regions": [
            {
                "name": r,
                "replicas": 1000,
                "namespace": name("n", i, 63),
                "nodeSelector": {"a" * 253 + "/" + name("k", j, 63): "v" * 63 for j in range(8)},
                "cluster": {"kubeconfigSecret": {"name": "s" * 253, "key": "k" * 253}},
            }
            for i, r in enumerate(regions)
        ],
        "rollout": {
            "waves": [regions],
            "steps": [{"setWeight": 50}, {"analysis": {"duration": "30s"}}],
            "bakeTime": "0s",
        },
        "analysis": {
            "prometheus": {"url": "http://" + "p" * 2041},
            "metrics": [
                {"name": name("m", i, 63), "query": query + " " * (per_query - len(query)), "max": 0.01}
                for i in range(MAX_METRICS)
            ],
        },
    }


def doc(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "chat", "namespace": "ml"},
        "spec": spec,
    }


def test_the_largest_spec_is_accepted_by_both_and_fits_an_annotation() -> None:
    spec = largest_spec()
    assert admit(load_crd(), doc(spec)) == []
    parse(doc(spec))
    size = len(json.dumps(spec, separators=(",", ":")))
    # kubectl's client-side apply keeps the whole object in one annotation: it must fit.
    assert size < ANNOTATIONS_LIMIT - 8_192, size


def test_a_spec_over_its_text_budget_is_refused_by_both_with_a_readable_message() -> None:
    spec = largest_spec()
    spec["runtime"]["args"].append("a" * 4096)
    rejections = admit(load_crd(), doc(spec))
    assert any("args, command and env together must be at most 65536 characters" in r.message for r in rejections)
    with pytest.raises(SpecError) as caught:
        parse(doc(spec))
    assert any("at most 65536 fit" in p for p in caught.value.problems)


def test_ten_rollouts_of_the_largest_spec_keep_the_object_under_the_limits() -> None:
    from datetime import UTC, datetime, timedelta

    from bellwether.api import Measurement, ModelDeploymentStatus
    from bellwether.rollout import decide
    from bellwether.rollout.types import Observations, RegionObservation, RevisionPods

    status = ModelDeploymentStatus()
    now = datetime(2026, 12, 2, tzinfo=UTC)
    biggest = 0
    for rollout in range(10):
        spec = parse_spec(largest_spec(f"v{rollout}"))
        for _ in range(6):  # start, canary ready, measured, promoted: every phase writes its status
            pods = {
                r: RevisionPods(1000, 1000, serving=1000)
                for r in filter(None, (status.stable_revision, status.canary_revision))
            }
            measured = tuple(
                Measurement(
                    metric=m.name,
                    region=r.name,
                    verdict="Successful",
                    value=0.001,
                    baseline=0.001,
                    bound="<= 0.01",
                    reason="x" * MAX_REASON,
                    at=now.isoformat(),
                )
                for r in spec.regions
                for m in (spec.analysis.metrics if spec.analysis else [])
            )
            regions = {r.name: RegionObservation(r.name, pods=pods) for r in spec.regions}
            status = decide(spec, status, Observations(rollout + 1, regions, measured), now).status
            now += timedelta(seconds=40)
            obj = doc(json.loads(json.dumps(dump(spec))))
            obj["status"] = dump(status)
            biggest = max(biggest, len(json.dumps(obj, separators=(",", ":"))))
        assert len(status.analysis) <= MAX_MEASUREMENTS
    print(f"largest object over 10 rollouts: {biggest} bytes")
    assert biggest < ETCD_OBJECT_LIMIT, biggest
    assert sum(h.template is not None for h in status.history) <= 2
