"""Bad ModelDeployments: each is refused by the models with a message naming the field and what is allowed,
and refused by the generated CRD too (OpenAPI schema, strict field validation or a CEL rule), at that field."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from bellwether.api import SpecError, parse, parse_spec
from support.crdkit import admit, load_crd

DELETE = object()
URL_FROM = {"urlFrom": {"secretKeyRef": {"name": "hooks", "key": "url"}}}
GATE_POINTS = ["preRollout", "postRollback"]

BASE: dict[str, Any] = {
    "apiVersion": "bellwether.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "llama-chat", "namespace": "ml"},
    "spec": {
        "model": {"name": "llama-3.1-8b-instruct", "version": "2026-11-20", "uri": "s3://models/llama/2026-11-20"},
        "runtime": {
            "image": "vllm/vllm-openai:v0.11.0",
            "args": ["--model", "$(MODEL_URI)"],
            "resources": {"gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}, "cpu": "8", "memory": "64Gi"},
        },
        "regions": [
            {"name": "us-east", "replicas": 4},
            {"name": "eu-west", "replicas": 2, "cluster": {"kubeconfigSecret": {"name": "eu", "key": "kubeconfig"}}},
        ],
        "rollout": {
            "waves": [["us-east"], ["eu-west"]],
            "steps": [{"setWeight": 10}, {"analysis": {"duration": "5m"}}, {"setWeight": 50}, {"pause": {}}],
        },
        "analysis": {
            "prometheus": {"url": "http://prometheus.monitoring:9090"},
            "metrics": [
                {"name": "p99-latency", "preset": "vllm-e2e-latency-p99"},
                {"name": "error-rate", "query": 'sum(rate(x{revision="{{revision}}"}[{{interval}}]))', "max": 0.01},
            ],
        },
    },
}


def put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with DELETE, remove) the field at a `spec.a.b[2].c`-style path."""
    keys: list[str | int] = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    parent = doc
    for key in keys[:-1]:
        parent = parent[key]
    if value is not DELETE:
        parent[keys[-1]] = value
    elif keys[-1] in parent:
        del parent[keys[-1]]


def edited(edits: dict[str, Any]) -> dict[str, Any]:
    """BASE with the given paths set or deleted."""
    doc = copy.deepcopy(BASE)
    for path, value in edits.items():
        put(doc, path, value)
    return doc


STEPS = "spec.rollout.steps"
METRIC = "spec.analysis.metrics[1]"

# (case, edits, the field path the message must name, what it must say is allowed)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing image", {"spec.runtime.image": DELETE}, "spec.runtime.image", "is required"),
    ("gpu count 0", {"spec.runtime.resources.gpu.count": 0}, "spec.runtime.resources.gpu.count", "at least 1"),
    ("gpu count negative", {"spec.runtime.resources.gpu.count": -2}, "spec.runtime.resources.gpu.count", "at least 1"),
    (
        "unknown router",
        {"spec.traffic": {"router": "nginx"}},
        "spec.traffic.router",
        "one of 'replicas', 'gatewayAPI' or 'istio'",
    ),
    ("weight 120", {f"{STEPS}[2].setWeight": 120}, f"{STEPS}[2].setWeight", "at most 100"),
    ("decreasing weights", {f"{STEPS}[2].setWeight": 5}, f"{STEPS}[2].setWeight", "greater than 10"),
    ("repeated weight", {f"{STEPS}[2].setWeight": 10}, f"{STEPS}[2].setWeight", "must increase"),
    (
        "wave names an unknown region",
        {"spec.rollout.waves": [["us-east"], ["ap-south"]]},
        "spec.rollout.waves[1][0]",
        "allowed: us-east, eu-west",
    ),
    (
        "wave leaves a region out",
        {"spec.rollout.waves": [["us-east"]]},
        "spec.rollout.waves",
        "every region is in exactly one wave",
    ),
    (
        "region in two waves",
        {"spec.rollout.waves": [["us-east", "eu-west"], ["eu-west"]]},
        "spec.rollout.waves[1][0]",
        "exactly one wave",
    ),
    ("empty wave", {"spec.rollout.waves": [["us-east", "eu-west"], []]}, "spec.rollout.waves[1]", "at least one"),
    ("duplicate region", {"spec.regions[1].name": "us-east"}, "spec.regions[1].name", "must be unique"),
    ("no regions", {"spec.regions": []}, "spec.regions", "at least 1 item"),
    ("bad region name", {"spec.regions[0].name": "US_East"}, "spec.regions[0].name", "lowercase letters"),
    ("replicas -1", {"spec.regions[0].replicas": -1}, "spec.regions[0].replicas", "at least 0"),
    ("bad duration", {"spec.rollout.bakeTime": "5 minutes"}, "spec.rollout.bakeTime", "like 30s, 5m"),
    ("bad pause duration", {f"{STEPS}[3].pause.duration": "soon"}, f"{STEPS}[3].pause.duration", "like 30s, 5m"),
    ("maxSurge 150%", {"spec.rollout.maxSurge": "150%"}, "spec.rollout.maxSurge", "from 0% to 100%"),
    ("maxSurge negative", {"spec.rollout.maxSurge": -1}, "spec.rollout.maxSurge", "a percentage like 25%"),
    (
        "toleration with Exists and a value",
        {"spec.runtime.scheduling": {"tolerations": [{"key": "pool", "operator": "Exists", "value": "h100"}]}},
        "spec.runtime.scheduling.tolerations[0].value",
        "takes no value",
    ),
    (
        "toleration with neither key nor Exists",
        {"spec.runtime.scheduling": {"tolerations": [{"value": "h100"}]}},
        "spec.runtime.scheduling.tolerations[0].operator",
        "must be Exists",
    ),
    (
        "tolerationSeconds without NoExecute",
        {"spec.runtime.scheduling": {"tolerations": [{"key": "pool", "tolerationSeconds": 30}]}},
        "spec.runtime.scheduling.tolerations[0].tolerationSeconds",
        "only for effect NoExecute",
    ),
    (
        "unknown spread policy",
        {"spec.runtime.scheduling": {"topologySpread": {"zones": "Always"}}},
        "spec.runtime.scheduling.topologySpread.zones",
        "'DoNotSchedule' or 'ScheduleAnyway'",
    ),
    (
        "priority class not an object name",
        {"spec.runtime.scheduling": {"priorityClassName": "Inference_Critical"}},
        "spec.runtime.scheduling.priorityClassName",
        "a Kubernetes object name",
    ),
    (
        "disruption budget over 100%",
        {"spec.disruption": {"maxUnavailable": "150%"}},
        "spec.disruption.maxUnavailable",
        "from 0% to 100%",
    ),
    (
        "step with two kinds",
        {f"{STEPS}[0]": {"setWeight": 10, "pause": {}}},
        f"{STEPS}[0]",
        "exactly one of setWeight, pause or analysis",
    ),
    ("empty step", {f"{STEPS}[3]": {}}, f"{STEPS}[3]", "exactly one of setWeight, pause or analysis"),
    (
        "gatewayAPI router without its block",
        {"spec.traffic": {"router": "gatewayAPI"}},
        "spec.traffic.gatewayAPI",
        "parentRefs",
    ),
    (
        "gatewayAPI without parentRefs",
        {"spec.traffic": {"router": "gatewayAPI", "gatewayAPI": {"hostnames": ["a.example.com"]}}},
        "spec.traffic.gatewayAPI.parentRefs",
        "is required",
    ),
    (
        "analysis step without spec.analysis",
        {"spec.analysis": DELETE},
        "spec.analysis",
        "add spec.analysis with at least one metric",
    ),
    (
        "default steps without spec.analysis",
        {"spec.analysis": DELETE, "spec.rollout.steps": DELETE},
        "spec.analysis",
        "default steps",
    ),
    ("metric with query and preset", {f"{METRIC}.preset": "vllm-error-rate"}, METRIC, "exactly one of them"),
    ("metric with neither", {f"{METRIC}.query": DELETE}, METRIC, "a query or a preset"),
    (
        "unknown preset",
        {"spec.analysis.metrics[0].preset": "vllm-p99"},
        "spec.analysis.metrics[0].preset",
        "'vllm-e2e-latency-p99'",
    ),
    (
        "unknown template variable",
        {f"{METRIC}.query": 'rate(x{pod="{{pod}}"}[{{interval}}])'},
        f"{METRIC}.query",
        "{{pod}}, not a template variable; allowed: {{name}}, {{namespace}}, {{region}}",
    ),
    (
        "unclosed template variable",
        {f"{METRIC}.query": 'rate(x{region="{{ region }"}[5m])'},
        f"{METRIC}.query",
        "starts no template variable; allowed: {{name}}",
    ),
    ("query without a bound", {f"{METRIC}.max": DELETE}, METRIC, "max, min or baseline"),
    ("min above max", {f"{METRIC}.min": 0.5}, f"{METRIC}.min", "must not be above max"),
    ("duplicate metric", {f"{METRIC}.name": "p99-latency"}, f"{METRIC}.name", "must be unique"),
    (
        "unknown onInconclusive",
        {"spec.analysis.onInconclusive": "ignore"},
        "spec.analysis.onInconclusive",
        "one of 'pause' or 'rollback'",
    ),
    (
        "prometheus url without scheme",
        {"spec.analysis.prometheus.url": "prometheus:9090"},
        "spec.analysis.prometheus.url",
        "http://",
    ),
    (
        "unknown field typo",
        {"spec.runtime.warmupSecond": 60},
        "spec.runtime.warmupSecond",
        "did you mean warmupSeconds",
    ),
    ("cpu not a quantity", {"spec.runtime.resources.cpu": "eight"}, "spec.runtime.resources.cpu", "such as 8, 500m"),
    ("port out of range", {"spec.runtime.port": 70000}, "spec.runtime.port", "at most 65535"),
    (
        "remote cluster secret without key",
        {"spec.regions[1].cluster.kubeconfigSecret": {"name": "eu"}},
        "spec.regions[1].cluster.kubeconfigSecret.key",
        "is required",
    ),
    (
        "baseline ratio not above 1",
        {f"{METRIC}.baseline": {"maxRatio": 1.0}},
        f"{METRIC}.baseline.maxRatio",
        "greater than 1",
    ),
    ("weight not a number", {f"{STEPS}[0].setWeight": "ten"}, f"{STEPS}[0].setWeight", "whole number"),
    ("interval 0s", {"spec.analysis.interval": "0s"}, "spec.analysis.interval", "shorter than 1s"),
    ("interval 1ms", {"spec.analysis.interval": "1ms"}, "spec.analysis.interval", "shorter than 1s"),
    (
        "analysis step of 0s",
        {f"{STEPS}[1].analysis.duration": "0s"},
        f"{STEPS}[1].analysis.duration",
        "shorter than 1s",
    ),
    ("query timeout 0s", {"spec.analysis.prometheus.timeout": "0s"}, "spec.analysis.prometheus.timeout", "100ms"),
    ("progressDeadline 1s", {"spec.rollout.progressDeadline": "1s"}, "spec.rollout.progressDeadline", "10s"),
    ("gpu count 65", {"spec.runtime.resources.gpu.count": 65}, "spec.runtime.resources.gpu.count", "at most 64"),
    ("replicas 1001", {"spec.regions[0].replicas": 1001}, "spec.regions[0].replicas", "at most 1000"),
    ("warm-up over two hours", {"spec.runtime.warmupSeconds": 7201}, "spec.runtime.warmupSeconds", "at most 7200"),
    ("warm-up a fraction", {"spec.runtime.warmupSeconds": 60.5}, "spec.runtime.warmupSeconds", "whole number"),
    (
        "env name with a space",
        {"spec.runtime.env": [{"name": "MY VAR", "value": "1"}]},
        "spec.runtime.env[0].name",
        "an environment variable name",
    ),
    ("readiness path without /", {"spec.runtime.readinessPath": "health"}, "spec.runtime.readinessPath", "with /"),
    (
        "remote namespace not a DNS label",
        {"spec.regions[1].namespace": "ML_Serving"},
        "spec.regions[1].namespace",
        "a DNS label",
    ),
    ("metric name uppercase", {f"{METRIC}.name": "Error-Rate"}, f"{METRIC}.name", "lowercase letters"),
    ("failureLimit above 100", {"spec.analysis.failureLimit": 101}, "spec.analysis.failureLimit", "at most 100"),
    ("memory in GB", {"spec.runtime.resources.memory": "64GB"}, "spec.runtime.resources.memory", "such as 8, 500m"),
    ("empty image", {"spec.runtime.image": ""}, "spec.runtime.image", "at least 1 character"),
    ("empty model version", {"spec.model.version": ""}, "spec.model.version", "at least 1 character"),
    ("version an unquoted number", {"spec.model.version": 1.1}, "spec.model.version", "must be a string"),
    ("33 steps", {"spec.rollout.steps": [{"pause": {}}] * 33}, "spec.rollout.steps", "at most 32 items"),
    ("steps not a list", {"spec.rollout.steps": {"setWeight": 10}}, "spec.rollout.steps", "must be a list"),
    (
        "kubeconfig Secret name not an object name",
        {"spec.regions[1].cluster.kubeconfigSecret.name": "EU_Kube"},
        "spec.regions[1].cluster.kubeconfigSecret.name",
        "a Kubernetes object name",
    ),
    ("istio router without its block", {"spec.traffic": {"router": "istio"}}, "spec.traffic.istio", "hosts"),
    (
        "baseline ratio above 100",
        {f"{METRIC}.baseline": {"maxRatio": 101}},
        f"{METRIC}.baseline.maxRatio",
        "at most 100",
    ),
    ("maxSurge a fraction", {"spec.rollout.maxSurge": "0.5"}, "spec.rollout.maxSurge", "a percentage like 25%"),
    ("no metrics", {"spec.analysis.metrics": []}, "spec.analysis.metrics", "at least 1 item"),
    (
        "node selector value a number",
        {"spec.regions[0].nodeSelector": {"zone": 1}},
        "spec.regions[0].nodeSelector.zone",
        "must be a string",
    ),
    ("typo in a step", {f"{STEPS}[0]": {"setWeigth": 10}}, f"{STEPS}[0].setWeigth", "did you mean setWeight"),
    ("no metadata.name", {"metadata.name": DELETE}, "metadata.name", "is required"),
    (
        "gate with url and urlFrom",
        {"spec.rollout.gates": [{"name": "g", "type": "preRollout", "webhook": {"url": "http://g", **URL_FROM}}]},
        "spec.rollout.gates[0].webhook",
        "exactly one of url or urlFrom",
    ),
    (
        "gate of an unknown type",
        {"spec.rollout.gates": [{"name": "g", "type": "preDeploy", "webhook": {"url": "http://g"}}]},
        "spec.rollout.gates[0].type",
        "'preRollout'",
    ),
    (
        "duplicate gate name",
        {"spec.rollout.gates": [{"name": "g", "type": t, "webhook": {"url": "http://g"}} for t in GATE_POINTS]},
        "spec.rollout.gates",
        "gate names must be unique",
    ),
    (
        "gate timeout of 5m",
        {"spec.rollout.gates": [{"name": "g", "type": "preRollout", "webhook": {"url": "http://g", "timeout": "5m"}}]},
        "spec.rollout.gates[0].webhook.timeout",
        "from 100ms to 1m",
    ),
    (
        "gate with a webhook and a job",
        {
            "spec.rollout.gates": [
                {"name": "g", "type": "preRollout", "webhook": {"url": "http://g"}, "job": {"image": "e"}}
            ]
        },
        "spec.rollout.gates[0]",
        "exactly one of webhook or job",
    ),
    (
        "job gate deadline of 2d",
        {"spec.rollout.gates": [{"name": "g", "type": "preRollout", "job": {"image": "e", "deadline": "48h"}}]},
        "spec.rollout.gates[0].job.deadline",
        "from 10s to 24h",
    ),
    ("notification without a url", {"spec.notifications": [{"name": "n"}]}, "spec.notifications[0]", "url or urlFrom"),
    (
        "notification of an unknown event",
        {"spec.notifications": [{"name": "n", "url": "http://n", "events": ["Deployed"]}]},
        "spec.notifications[0].events[0]",
        "'RolloutStarted'",
    ),
    (
        "notification url without scheme",
        {"spec.notifications": [{"name": "n", "url": "hooks.slack.com/x"}]},
        "spec.notifications[0].url",
        "http://",
    ),
    ("kind ModelDeploy", {"kind": "ModelDeploy"}, "kind", "must be ModelDeployment"),
]

# Refused by the API server and by `bellwether validate`, which reads as strictly (types, metadata, the
# resource), but not by the operator's own lax parsing: it only reads objects the API server admitted.
WIRE_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("quoted replicas", {"spec.regions[0].replicas": "4"}, "spec.regions[0].replicas", "no quoted numbers"),
    ("quoted port", {"spec.runtime.port": "8000"}, "spec.runtime.port", "no quoted numbers"),
    ("quoted weight", {f"{STEPS}[0].setWeight": "10"}, f"{STEPS}[0].setWeight", "no quoted numbers"),
    ("quoted gpu count", {"spec.runtime.resources.gpu.count": "1"}, "spec.runtime.resources.gpu.count", "quoted"),
    ("quoted max", {f"{METRIC}.max": "0.01"}, f"{METRIC}.max", "no quoted numbers"),
    ("quoted failureLimit", {"spec.analysis.failureLimit": "2"}, "spec.analysis.failureLimit", "no quoted numbers"),
    ("replicas true", {"spec.regions[0].replicas": True}, "spec.regions[0].replicas", "whole number"),
    ("name with capitals and _", {"metadata.name": "Bad_Name"}, "metadata.name", "a Kubernetes object name"),
    ("name ending in -", {"metadata.name": "llama-"}, "metadata.name", "a Kubernetes object name"),
    ("name with an empty part", {"metadata.name": "llama..chat"}, "metadata.name", "each dot-separated part"),
    ("name of 254 characters", {"metadata.name": "a" * 254}, "metadata.name", "at most 253"),
    ("namespace with a dot", {"metadata.namespace": "ml.serving"}, "metadata.namespace", "a DNS label"),
    ("label key with a space", {"metadata.labels": {"team name": "ml"}}, "metadata.labels", "a qualified name"),
    ("label value too long", {"metadata.labels": {"team": "x" * 64}}, "metadata.labels.team", "a label value"),
    ("label value a number", {"metadata.labels": {"tier": 1}}, "metadata.labels", "a mapping of strings"),
    ("annotation key with two /", {"metadata.annotations": {"a/b/c": "x"}}, "metadata.annotations", "qualified"),
    ("finalizer with a space", {"metadata.finalizers": ["my finalizer"]}, "metadata.finalizers", "qualified"),
    ("unknown metadata field", {"metadata.nmae": "x"}, "metadata.nmae", "did you mean name"),
    ("unknown top-level field", {"specs": {}}, "specs", "is not a known field"),
    ("a snake_case field name", {"spec.runtime.warmup_seconds": 60}, "spec.runtime.warmup_seconds", "warmupSeconds"),
    ("no kind", {"kind": DELETE}, "kind", "is required"),
    ("no apiVersion", {"apiVersion": DELETE}, "apiVersion", "is required"),
]

# Admitted by the API server (it cannot parse PromQL), refused by `bellwether validate`: Prometheus
# would refuse them at every measurement.
QUERY_CASES: list[tuple[str, str, str]] = [
    ("unclosed (", 'sum(rate(x{revision="{{revision}}"}[{{interval}}])', "unclosed left parenthesis"),
    ("unknown function", 'sum(rat(x{revision="{{revision}}"}[{{interval}}]))', "unknown function"),
    ("rate of an instant vector", 'sum(rate(x{revision="{{revision}}"}))', "expected type matrix"),
    ("a range vector", 'x{revision="{{revision}}"}[{{interval}}]', "returns a range vector"),
    ("a broken regex", 'sum(rate(x{code=~"5(.."}[{{interval}}]))', "regex"),
    ("a dangling operator", 'sum(rate(x{revision="{{revision}}"}[{{interval}}])) /', "not valid PromQL"),
]

# Inputs that look wrong and are not: both the API server and `bellwether validate` admit them.
VALID_CASES: list[tuple[str, dict[str, Any]]] = [
    ("null port: the default applies", {"spec.runtime.port": None}),
    ("null cluster: the home cluster", {"spec.regions[0].cluster": None}),
    ("maxSurge 0 as a number", {"spec.rollout.maxSurge": 0}),
    ("a toleration of every taint", {"spec.runtime.scheduling": {"tolerations": [{"operator": "Exists"}]}}),
    ("no disruption budgets", {"spec.disruption": {"budget": False}}),
    ("a dotted name", {"metadata.name": "llama.v2"}),
    ("a 253-character name", {"metadata.name": ("a" * 62 + ".") * 4 + "a"}),
    ("prefixed labels", {"metadata.labels": {"app.kubernetes.io/name": "llama", "empty": ""}}),
    ("status is ignored on create", {"status": {"phase": "Exploded"}}),
    ("no namespace: kubectl's context gives it", {"metadata.namespace": DELETE}),
]


def test_base_is_valid_for_models_and_crd() -> None:
    parse(BASE)
    assert admit(load_crd(), BASE) == []


def test_there_are_many_distinct_bad_specs() -> None:
    names = [c[0] for c in CASES] + [c[0] for c in WIRE_CASES] + [c[0] for c in QUERY_CASES]
    assert len(names) >= 60
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(("case", "edits", "path", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_models_name_the_field_and_what_is_allowed(case: str, edits: dict[str, Any], path: str, allowed: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse(edited(edits))
    problems = raised.value.problems
    matching = [p for p in problems if p.startswith(f"{path}: ")]
    assert matching, f"no problem names {path}: {problems}"
    assert any(allowed in p for p in matching), matching
    assert not any("should match pattern" in p or "^" in p for p in problems), "a raw regex reached the user"


def within(outer: str, inner: str) -> bool:
    """`spec.rollout.steps` contains `spec.rollout.steps[2].setWeight`; `spec.region` does not contain `spec.regions`."""
    return inner == outer or inner.startswith((outer + ".", outer + "["))


@pytest.mark.parametrize(("case", "edits", "path", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_crd_refuses_it_at_the_same_field(case: str, edits: dict[str, Any], path: str, allowed: str) -> None:
    rejections = admit(load_crd(), edited(edits))
    assert rejections, "kubectl apply would accept what the operator refuses"
    assert any(within(r.path, path) or within(path, r.path) for r in rejections), [str(r) for r in rejections]


def test_explicit_nulls_mean_absent_for_models_and_crd() -> None:
    doc = edited({f"{STEPS}[0]": {"setWeight": 10, "pause": None}, "spec.regions[0].cluster": None})
    parse(doc)
    assert admit(load_crd(), doc) == []


@pytest.mark.parametrize(("field", "value"), [("kind", "Deployment"), ("apiVersion", "bellwether.dev/v1")])
def test_other_kinds_and_versions_are_refused(field: str, value: str) -> None:
    with pytest.raises(SpecError, match=f"^{field}: must be "):
        parse({**BASE, field: value})


def test_spec_alone_gets_paths_from_spec_even_for_cross_field_problems() -> None:
    spec = edited({"spec.regions[1].name": "us-east", "spec.rollout.waves": DELETE})["spec"]
    with pytest.raises(SpecError) as raised:
        parse_spec(spec)
    assert raised.value.problems == [
        "spec.regions[1].name: 'us-east' is already the name of regions[0]; region names must be unique"
    ]
