"""The Deployment and Services of a region: one Deployment and one Service per revision, and one
serving Service that selects the pods the operator labelled serving (with the `replicas` router, the
split is which ready pods carry that label; see `render.serving`).

A revision's pod template holds nothing that changes during its life: no role, weight or serving
label, so promotion, rollback and restarts never make the Deployment controller replace a pod. The
role is on the Deployment's own metadata.

Pods are hardened to pass the *restricted* Pod Security Standard (non-root, no privilege escalation, no
capabilities, RuntimeDefault seccomp). Serving images that insist on root need a spec with their own
image; writable scratch space is given as emptyDir volumes so a read-only image layer is enough.
"""

from __future__ import annotations

import math
from typing import Any

from bellwether.api import Template, dump
from bellwether.api.placement import NODE_KEY, ZONE_KEY, Scheduling, TopologySpread
from bellwether.render import names
from bellwether.rollout.types import RevisionPlan

GPU = "nvidia.com/gpu"
GPU_PRODUCT = "nvidia.com/gpu.product"
CONTAINER = "server"
PORT_NAME = "http"
NON_ROOT_UID = 1000
STARTUP_PERIOD = 10


def _env(template: Template) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "MODEL_URI", "value": template.model.uri},
        {"name": "MODEL_NAME", "value": template.model.name},
        {"name": "MODEL_VERSION", "value": template.model.version},
        {"name": "HOME", "value": "/tmp"},
    ]
    # The user's variables come last, so `$(MODEL_URI)` in them expands; a user value replaces ours.
    user = [dump(e) for e in template.runtime.env]
    overridden = {u["name"] for u in user}
    return [e for e in env if e["name"] not in overridden] + user


def _resources(template: Template) -> dict[str, Any]:
    wanted = template.runtime.resources
    amounts: dict[str, str] = {}
    if wanted.cpu:
        amounts["cpu"] = wanted.cpu
    if wanted.memory:
        amounts["memory"] = wanted.memory
    limits = dict(amounts)
    if wanted.gpu:
        limits[GPU] = str(wanted.gpu.count)  # extended resources: the limit is the request
    out: dict[str, Any] = {}
    if amounts:
        out["requests"] = amounts
    if limits:
        out["limits"] = limits
    return out


def _probes(template: Template) -> dict[str, Any]:
    get = {"path": template.runtime.readiness_path, "port": PORT_NAME}
    # The startup probe covers model loading: twice the declared warmup before the kubelet gives up,
    # so a slow pull of the weights is not mistaken for a crash.
    startup_failures = max(3, math.ceil(2 * template.runtime.warmup_seconds / STARTUP_PERIOD))
    return {
        "startupProbe": {"httpGet": get, "periodSeconds": STARTUP_PERIOD, "failureThreshold": startup_failures},
        "readinessProbe": {"httpGet": get, "periodSeconds": 5, "failureThreshold": 3, "timeoutSeconds": 2},
    }


def _topology_spread(spread: TopologySpread, selector: dict[str, str]) -> list[dict[str, Any]]:
    """One constraint per topology asked for, counting only this revision's pods in the region (its
    labels never change, so neither does the template)."""
    wanted = ((NODE_KEY, spread.nodes), (ZONE_KEY, spread.zones))
    return [
        {
            "maxSkew": spread.max_skew,
            "topologyKey": key,
            "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": dict(selector)},
        }
        for key, when in wanted
        if when is not None
    ]


def _place(spec: dict[str, Any], scheduling: Scheduling | None, selector: dict[str, str]) -> None:
    """`spec.runtime.scheduling` into the pod spec; absent, nothing is added (templates stay as they were)."""
    if scheduling is None:
        return
    if scheduling.tolerations:
        spec["tolerations"] = spec.get("tolerations", []) + [dump(t) for t in scheduling.tolerations]
    if scheduling.priority_class_name:
        spec["priorityClassName"] = scheduling.priority_class_name
    if scheduling.topology_spread is not None:
        constraints = _topology_spread(scheduling.topology_spread, selector)
        if constraints:
            spec["topologySpreadConstraints"] = constraints


def pod_spec(
    template: Template, node_selector: dict[str, str], spread_selector: dict[str, str] | None = None
) -> dict[str, Any]:
    """The pods of one revision; `spread_selector` selects its pods for topology spread."""
    runtime = template.runtime
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": runtime.image,
        "args": list(runtime.args),
        "ports": [{"name": PORT_NAME, "containerPort": runtime.port, "protocol": "TCP"}],
        "env": _env(template),
        "resources": _resources(template),
        **_probes(template),
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if runtime.command:
        container["command"] = list(runtime.command)
    selector = dict(node_selector)
    tolerations: list[dict[str, Any]] = []
    gpu = runtime.resources.gpu
    if gpu is not None:
        if gpu.product:
            selector[GPU_PRODUCT] = gpu.product
        tolerations.append({"key": GPU, "operator": "Exists", "effect": "NoSchedule"})
    spec: dict[str, Any] = {
        "containers": [container],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NON_ROOT_UID,
            "runAsGroup": NON_ROOT_UID,
            "fsGroup": NON_ROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "enableServiceLinks": False,  # hundreds of revisions' env vars would slow every container start
        # Shared memory for tensor-parallel workers; the default 64Mi is too small for NCCL.
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "dshm", "emptyDir": {"medium": "Memory"}}],
    }
    if selector:
        spec["nodeSelector"] = selector
    if tolerations:
        spec["tolerations"] = tolerations
    _place(spec, runtime.scheduling, spread_selector or {})
    return spec


# The template never changes while Bellwether runs a revision; when it does (a region's nodeSelector
# edited, a Bellwether upgrade rendering pods differently) the Deployment replaces one pod at a time and
# never asks for a GPU more than the revision already holds.
STRATEGY = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def deployment(
    name: str, namespace: str, region: str, node_selector: dict[str, str], plan: RevisionPlan
) -> dict[str, Any]:
    labels = names.revision_labels(name, region, plan.revision, plan.role)
    pod_labels = {**names.owner_labels(name, region), names.REVISION: plan.revision}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": names.revision_name(name, region, plan.revision),
            "namespace": namespace,
            "labels": labels,
            "annotations": {"bellwether.dev/model-version": plan.template.model.version},
        },
        "spec": {
            # Left out when the region's autoscaler owns it: applying a count would undo its scaling.
            **({} if plan.autoscaled else {"replicas": plan.replicas}),
            "selector": {"matchLabels": names.pod_selector(name, region, plan.revision)},
            "strategy": STRATEGY,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": pod_spec(plan.template, node_selector, names.pod_selector(name, region, plan.revision)),
            },
        },
    }


def _service(name: str, namespace: str, labels: dict[str, str], selector: dict[str, str], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "selector": selector,
            "ports": [{"name": PORT_NAME, "port": port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def revision_service(name: str, namespace: str, region: str, plan: RevisionPlan) -> dict[str, Any]:
    """One revision's pods: what a route's weighted backends point at."""
    return _service(
        names.revision_name(name, region, plan.revision),
        namespace,
        names.revision_labels(name, region, plan.revision, plan.role),
        names.pod_selector(name, region, plan.revision),
        plan.template.runtime.port,
    )


def serving_service(name: str, namespace: str, region: str, port: int) -> dict[str, Any]:
    """The ready pods the operator labelled serving, of any revision: the `replicas` router's split."""
    return _service(
        names.serving_name(name, region),
        namespace,
        names.owner_labels(name, region),
        {**names.pod_selector(name, region), names.SERVING: "true"},
        port,
    )
