"""Deterministic names and labels of child objects.

Names are derived, never stored: the operator finds last cycle's objects again by recomputing them, so
they must not depend on anything but the ModelDeployment name, the region and the revision. Kubernetes
caps names and label values at 63 characters; longer ones are cut and given a hash of the full value,
so two long names that share a prefix still differ.
"""

from __future__ import annotations

import hashlib

from bellwether.rollout.types import Role

MAX_LENGTH = 63

NAME = "app.kubernetes.io/name"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "bellwether"
DEPLOYMENT = "bellwether.dev/deployment"
REGION = "bellwether.dev/region"
REVISION = "bellwether.dev/revision"
ROLE = "bellwether.dev/role"
# On pods, set by the operator (never in a pod template): the pod receives traffic through the serving
# Service. Serving pods also get a higher deletion cost, so a ReplicaSet scaling down removes the
# pods without traffic first.
SERVING = "bellwether.dev/serving"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
# On the Deployments of an autoscaled region: tells the next apply there may be an HPA of ours to remove.
AUTOSCALED = "bellwether.dev/autoscaled"


def fit(value: str, limit: int = MAX_LENGTH) -> str:
    """`value` if short enough, else a prefix plus 8 hex digits of its hash (same input, same output)."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: limit - 9].rstrip('-.')}-{digest}"


def revision_name(name: str, region: str, revision: str) -> str:
    """The Deployment and Service of one revision in one region: `<name>-<region>-<revision>`."""
    return fit(f"{name}-{region}-{revision}")


def serving_name(name: str, region: str) -> str:
    """The serving Service and the route of a region: `<name>-<region>`."""
    return fit(f"{name}-{region}")


def owner_labels(name: str, region: str) -> dict[str, str]:
    """Labels shared by everything Bellwether creates for one ModelDeployment in one region."""
    return {
        NAME: fit(name),
        MANAGED_BY: MANAGER,
        DEPLOYMENT: fit(name),
        REGION: region,
    }


def owner_selector(name: str, region: str) -> str:
    """A label selector for the objects of one ModelDeployment in one region."""
    return ",".join(f"{k}={v}" for k, v in owner_labels(name, region).items())


def revision_labels(name: str, region: str, revision: str, role: Role) -> dict[str, str]:
    return {**owner_labels(name, region), REVISION: revision, ROLE: role}


def pod_selector(name: str, region: str, revision: str | None = None) -> dict[str, str]:
    """What a Service or Deployment selects on; the role is left out so a promotion never re-creates pods."""
    selector = {DEPLOYMENT: fit(name), REGION: region}
    if revision is not None:
        selector[REVISION] = revision
    return selector
