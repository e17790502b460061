"""Disruption budgets and pod placement: valid Kubernetes objects (checked against the real OpenAPI
schemas, strict), budgets that follow the region's rollout, and placement that never changes the pods
of a spec that does not ask for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bellwether.api import ModelDeploymentSpec, parse, parse_spec, revision_of, template_of
from bellwether.api.resource import SpecError
from bellwether.render import objects_for_region
from bellwether.rollout.types import RegionPlan, RevisionPlan

K8S_VERSION = "1.33"
ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).with_name("golden") / "deployments.json"


def spec_with(**extra: Any) -> ModelDeploymentSpec:
    runtime: dict[str, Any] = {
        "image": "vllm/vllm-openai:v0.11.0",
        "resources": {"gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}},
    }
    runtime.update(extra.pop("runtime", {}))
    return parse_spec(
        {
            "model": {"name": "llama", "version": "v1", "uri": "s3://models/llama/v1"},
            "runtime": runtime,
            "regions": [{"name": "us-east", "replicas": 4}],
            "rollout": {"steps": [{"setWeight": 50}]},
            **extra,
        }
    )


def stable_plan(spec: ModelDeploymentSpec, replicas: int = 4) -> RegionPlan:
    t = template_of(spec)
    return RegionPlan("us-east", (RevisionPlan(revision_of(t), "stable", replicas, 100, t),))


def canary_plan(spec: ModelDeploymentSpec) -> RegionPlan:
    stable = template_of(spec)
    canary = template_of(spec.model_copy(update={"model": spec.model.model_copy(update={"version": "v2"})}))
    return RegionPlan(
        "us-east",
        (
            RevisionPlan(revision_of(stable), "stable", 4, 50, stable),
            RevisionPlan(revision_of(canary), "canary", 1, 50, canary),
        ),
    )


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(spec: ModelDeploymentSpec) -> dict[str, Any]:
    (dep,) = of_kind(objects_for_region("chat", "ml", spec, stable_plan(spec)), "Deployment")
    kubernetes_validate.validate(dep, K8S_VERSION, strict=True)
    pod: dict[str, Any] = dep["spec"]["template"]["spec"]
    return pod


# -- an upgrade of the operator never restarts the pods of an existing spec ----------------------


GOLDEN_EXAMPLES = sorted(json.loads(GOLDEN.read_text()))


@pytest.mark.parametrize("example", GOLDEN_EXAMPLES)
def test_an_existing_example_keeps_its_revision_and_its_deployments_byte_for_byte(example: str) -> None:
    """The golden file holds what the release before placement and disruption budgets rendered for the
    examples of that time: a different revision or pod template would roll (or restart) every pod of
    every existing spec. Examples added since are not in it."""
    golden = json.loads(GOLDEN.read_text())[example]
    (raw,) = [d for d in yaml.safe_load_all((ROOT / "examples" / example).read_text()) if d]
    md = parse(raw)
    t = template_of(md.spec)
    assert revision_of(t) == golden["revision"]
    for region in md.spec.regions:
        plan = RegionPlan(region.name, (RevisionPlan(revision_of(t), "stable", region.replicas, 100, t),))
        objects = objects_for_region(md.metadata.name, md.metadata.namespace, md.spec, plan)
        (dep,) = of_kind(objects, "Deployment")
        rendered = json.dumps(dep, sort_keys=True)
        assert rendered == json.dumps(golden["deployments"][region.name], sort_keys=True), region.name


# -- disruption budgets ---------------------------------------------------------------------------


def test_every_revision_gets_a_valid_budget_that_selects_exactly_its_pods() -> None:
    spec = spec_with()
    objects = objects_for_region("chat", "ml", spec, canary_plan(spec))
    budgets = {b["metadata"]["labels"]["bellwether.dev/revision"]: b for b in of_kind(objects, "PodDisruptionBudget")}
    deployments = {d["metadata"]["labels"]["bellwether.dev/revision"]: d for d in of_kind(objects, "Deployment")}
    assert budgets.keys() == deployments.keys() and len(budgets) == 2
    for rev, budget in budgets.items():
        kubernetes_validate.validate(budget, K8S_VERSION, strict=True)
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployments[rev]["spec"]["template"]["metadata"]["labels"].items()
        others = [d for r, d in deployments.items() if r != rev]
        # One budget per pod: the Eviction API refuses (500) a pod two budgets select.
        assert all(not selector.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in others)


def test_a_region_alone_on_one_revision_lets_drains_take_one_pod_at_a_time() -> None:
    spec = spec_with()
    (budget,) = of_kind(objects_for_region("chat", "ml", spec, stable_plan(spec)), "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1  # a number: the string "1" is not a valid IntOrString
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_a_region_in_a_rollout_allows_no_eviction_of_either_revision() -> None:
    spec = spec_with()
    budgets = of_kind(objects_for_region("chat", "ml", spec, canary_plan(spec)), "PodDisruptionBudget")
    assert [b["spec"]["maxUnavailable"] for b in budgets] == [0, 0]


def test_budgets_follow_the_spec_and_percentages_stay_strings() -> None:
    spec = spec_with(disruption={"maxUnavailable": "25%", "maxUnavailableDuringRollout": 1})
    (steady,) = of_kind(objects_for_region("chat", "ml", spec, stable_plan(spec)), "PodDisruptionBudget")
    rolling = of_kind(objects_for_region("chat", "ml", spec, canary_plan(spec)), "PodDisruptionBudget")
    kubernetes_validate.validate(steady, K8S_VERSION, strict=True)
    assert steady["spec"]["maxUnavailable"] == "25%"
    assert [b["spec"]["maxUnavailable"] for b in rolling] == [1, 1]


def test_budget_false_renders_none() -> None:
    spec = spec_with(disruption={"budget": False})
    assert of_kind(objects_for_region("chat", "ml", spec, canary_plan(spec)), "PodDisruptionBudget") == []


def test_a_budget_in_the_home_namespace_is_owned_by_the_model_deployment() -> None:
    spec = spec_with()
    owner = {"metadata": {"name": "chat", "namespace": "ml", "uid": "u-1"}}
    (budget,) = of_kind(objects_for_region("chat", "ml", spec, stable_plan(spec), owner), "PodDisruptionBudget")
    assert budget["metadata"]["ownerReferences"][0]["uid"] == "u-1"


@pytest.mark.parametrize(
    ("disruption", "field"),
    [
        ({"maxUnavailable": "150%"}, "spec.disruption.maxUnavailable"),
        ({"maxUnavailableDuringRollout": "one"}, "spec.disruption.maxUnavailableDuringRollout"),
        ({"maxUnavailabel": 1}, "spec.disruption.maxUnavailabel"),
    ],
)
def test_a_bad_budget_is_refused_naming_the_field(disruption: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as e:
        spec_with(disruption=disruption)
    assert any(p.startswith(field) for p in e.value.problems), e.value.problems


# -- placement --------------------------------------------------------------------------------------

PLACED = {
    "scheduling": {
        "priorityClassName": "inference-critical",
        "tolerations": [
            {"key": "pool", "operator": "Equal", "value": "h100", "effect": "NoSchedule"},
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 60,
            },
        ],
        "topologySpread": {"nodes": "ScheduleAnyway", "zones": "DoNotSchedule"},
    }
}


def test_scheduling_renders_a_valid_pod_spec_with_tolerations_priority_and_spread() -> None:
    pod = pod_spec(spec_with(runtime=PLACED))
    assert pod["priorityClassName"] == "inference-critical"
    # The GPU taint's toleration stays, first; the pool's own follow.
    assert pod["tolerations"][0] == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert pod["tolerations"][1:] == PLACED["scheduling"]["tolerations"]
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert all(c["maxSkew"] == 1 for c in spread.values())


def test_spread_counts_only_the_revision_s_own_pods_in_the_region() -> None:
    spec = spec_with(runtime={"scheduling": {"topologySpread": {"nodes": "DoNotSchedule"}}})
    deployments = of_kind(objects_for_region("chat", "ml", spec, canary_plan(spec)), "Deployment")
    for dep in deployments:
        labels = dep["spec"]["template"]["metadata"]["labels"]
        (constraint,) = dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
        selector = constraint["labelSelector"]["matchLabels"]
        assert selector.items() <= labels.items()
        assert selector["bellwether.dev/revision"] == labels["bellwether.dev/revision"]


def test_scheduling_is_part_of_the_revision_only_when_set() -> None:
    plain = spec_with()
    assert revision_of(template_of(plain)) == revision_of(template_of(spec_with(runtime={"scheduling": None})))
    placed = spec_with(runtime=PLACED)
    # A placement change is rolled out as a canary: the running revision's pods are never replaced.
    assert revision_of(template_of(placed)) != revision_of(template_of(plain))
    assert "tolerations" in pod_spec(plain) and "topologySpreadConstraints" not in pod_spec(plain)
    assert "priorityClassName" not in pod_spec(plain)


def test_an_empty_topology_spread_adds_no_constraint() -> None:
    pod = pod_spec(spec_with(runtime={"scheduling": {"topologySpread": {}}}))
    assert "topologySpreadConstraints" not in pod


@pytest.mark.parametrize(
    ("scheduling", "field", "words"),
    [
        ({"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]}, "tolerations[0].value", "Exists"),
        ({"tolerations": [{"value": "x"}]}, "tolerations[0].operator", "Exists"),
        ({"tolerations": [{"key": "a", "tolerationSeconds": 5}]}, "tolerations[0].tolerationSeconds", "NoExecute"),
        ({"tolerations": [{"key": "a", "effect": "NoRun"}]}, "tolerations[0].effect", "NoSchedule"),
        ({"topologySpread": {"nodes": "Always"}}, "topologySpread.nodes", "DoNotSchedule"),
        ({"priorityClassName": "Not_A_Name"}, "priorityClassName", "Kubernetes object name"),
    ],
)
def test_bad_scheduling_is_refused_naming_the_field(scheduling: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(SpecError) as e:
        spec_with(runtime={"scheduling": scheduling})
    found = [p for p in e.value.problems if p.startswith(f"spec.runtime.scheduling.{field}")]
    assert found and words in found[0], e.value.problems


def test_the_snippets_of_the_disruption_page_are_valid_specs_that_render_valid_objects() -> None:
    text = (ROOT / "docs" / "disruption.md").read_text()
    snippets = [yaml.safe_load(b.split("```", 1)[0]) for b in text.split("```yaml\n")[1:]]
    assert len(snippets) == 2
    for snippet in snippets:
        extra = snippet["spec"]
        spec = spec_with(**extra)
        for obj in objects_for_region("chat", "ml", spec, canary_plan(spec)):
            if obj["kind"] in ("Deployment", "PodDisruptionBudget"):
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
