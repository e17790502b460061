"""The Job a Job gate runs: pure, like every other child object.

Its name is derived from the gate, the revision, the wave and the attempt, so the cycle that asks
again while it runs finds the same Job, and a held gate asked again (a new attempt) runs a new one.
It cleans up after itself (`ttlSecondsAfterFinished`) and cannot run forever (`activeDeadlineSeconds`),
so a Job in a remote region (where no owner reference can reach) is gone within a day; in the home
cluster the ModelDeployment owns its Jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bellwether.api import ModelDeploymentSpec
from bellwether.api.hooks import Gate, JobGate
from bellwether.api.units import parse_duration
from bellwether.render import names, owner_reference, region_namespace
from bellwether.rollout.types import GateRequest

GATE_LABEL = "bellwether.dev/gate"
TTL_SECONDS = 86400  # a finished Job (and its pod, with its logs) is kept a day for people to read


def gate_region(spec: ModelDeploymentSpec, request: GateRequest) -> str:
    """Where a Job gate runs: the first region of the wave a confirmPromotion gate would promote,
    the first region otherwise."""
    waves = spec.waves()
    if request.type == "confirmPromotion" and request.wave < len(waves):
        return waves[request.wave][0]
    return spec.regions[0].name


def job_name(name: str, request: GateRequest) -> str:
    return names.fit(f"{name}-{request.gate}-{request.revision}-w{request.wave}-{request.attempt}")


def _url(name: str, namespace: str, region: str, revision: str | None, port: int) -> str:
    if revision is None:
        return ""
    return f"http://{names.revision_name(name, region, revision)}.{namespace}.svc:{port}"


def _env(name: str, namespace: str, spec: ModelDeploymentSpec, request: GateRequest, region: str) -> list[Any]:
    ns = region_namespace(namespace, spec, region)
    port = spec.runtime.port
    ours = {
        "BELLWETHER_NAME": name,
        "BELLWETHER_NAMESPACE": namespace,
        "BELLWETHER_GATE": request.gate,
        "BELLWETHER_GATE_TYPE": request.type,
        "BELLWETHER_REVISION": request.revision,
        "BELLWETHER_STABLE_REVISION": request.stable_revision or "",
        "BELLWETHER_REGION": region,
        "BELLWETHER_WAVE": str(request.wave),
        "BELLWETHER_ATTEMPT": str(request.attempt),
        "BELLWETHER_CANARY_URL": _url(name, ns, region, request.revision, port),
        "BELLWETHER_STABLE_URL": _url(name, ns, region, request.stable_revision, port),
    }
    return [{"name": k, "value": v} for k, v in ours.items()]


def _container(job: JobGate, env: list[Any]) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "gate",
        "image": job.image,
        "args": list(job.args),
        "env": [{"name": e.name, "value": e.value} for e in job.env] + env,
        # The restricted Pod Security profile: a check needs no privilege.
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if job.command is not None:
        container["command"] = list(job.command)
    amounts = {k: v for k, v in (("cpu", job.cpu), ("memory", job.memory)) if v is not None}
    if amounts:
        container["resources"] = {"requests": amounts, "limits": amounts}
    return container


def gate_job(
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    gate: Gate,
    request: GateRequest,
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Job of one attempt of a Job gate, in the namespace of the region it runs in. With `owner`
    (the ModelDeployment object) a Job in its namespace of the home cluster carries its owner
    reference, so deleting the ModelDeployment deletes its Jobs at once, not a day later."""
    assert gate.job is not None
    region = gate_region(spec, request)
    labels = {**names.owner_labels(name, region), names.REVISION: request.revision, GATE_LABEL: request.gate}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [_container(gate.job, _env(name, namespace, spec, request, region))],
    }
    if gate.job.service_account_name is not None:
        pod["serviceAccountName"] = gate.job.service_account_name
    metadata: dict[str, Any] = {
        "name": job_name(name, request),
        "namespace": region_namespace(namespace, spec, region),
        "labels": labels,
    }
    if owner is not None and spec.region(region).cluster is None and metadata["namespace"] == namespace:
        metadata["ownerReferences"] = [owner_reference(owner)]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": gate.job.backoff_limit,
            "activeDeadlineSeconds": int(parse_duration(gate.job.deadline)),
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
