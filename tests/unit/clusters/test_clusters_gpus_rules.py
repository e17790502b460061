"""Which nodes a pod may run on and what it requests, by Kubernetes' own rules (the scheduler's
TaintToleration and NodeResourcesFit filters, `v1.Toleration.ToleratesTaint`)."""

from __future__ import annotations

from typing import Any

import pytest

from bellwether.clusters.gpus import may_run, requested, tolerated

GPU = "nvidia.com/gpu"
TAINT = {"key": GPU, "value": "present", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("toleration", "ok"),
    [
        ({"key": GPU, "operator": "Exists"}, True),
        ({"key": GPU, "operator": "Exists", "effect": "NoSchedule"}, True),
        ({"key": GPU, "operator": "Exists", "effect": "NoExecute"}, False),  # another effect
        ({"operator": "Exists"}, True),  # no key: every taint
        ({"key": GPU, "value": "present"}, True),  # operator defaults to Equal
        ({"key": GPU, "operator": "Equal", "value": "absent"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_a_toleration_matches_a_taint_as_kubernetes_matches_it(toleration: dict[str, Any], ok: bool) -> None:
    assert tolerated(TAINT, [toleration]) is ok


def test_only_taints_that_keep_pods_off_need_a_toleration() -> None:
    assert tolerated({"key": GPU, "effect": "PreferNoSchedule"}, [])
    assert not tolerated({"key": GPU, "effect": "NoExecute"}, [])


def node(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "n", "labels": {"nvidia.com/gpu.product": "H100"}},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_a_pod_may_run_on_ready_uncordoned_nodes_its_selector_and_tolerations_allow() -> None:
    pod = {"nodeSelector": {"nvidia.com/gpu.product": "H100"}, "tolerations": [{"key": GPU, "operator": "Exists"}]}
    assert may_run(node(taints=[TAINT]), pod)
    assert not may_run(node(taints=[TAINT]), {**pod, "tolerations": []})
    assert not may_run(node(unschedulable=True), pod)
    assert not may_run(node(), {**pod, "nodeSelector": {"nvidia.com/gpu.product": "A100"}})
    down = node()
    down["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
    assert not may_run(down, pod)


def test_a_pod_requests_its_containers_sum_or_its_largest_init_container() -> None:
    def c(gpus: int, *, as_request: bool = False) -> dict[str, Any]:
        return {"resources": {("requests" if as_request else "limits"): {GPU: str(gpus)}}}

    assert requested({"containers": [c(2), c(1, as_request=True)]}, GPU) == 3  # a limit alone is the request
    assert requested({"containers": [c(1)], "initContainers": [c(4)]}, GPU) == 4
    assert requested({"containers": [{"name": "cpu-only"}]}, GPU) == 0
