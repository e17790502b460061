"""Every Kubernetes permission the operator uses, as data: the Helm chart's RBAC is checked against it.

Remote regions need the same rules (minus the ModelDeployment, ClusterAnalysisTemplate, Secret and
kopf ones) for the identity in their kubeconfig Secret; nodes, and pods in every namespace, only for
the GPU count before a surge (`clusters.gpus`), which is off where they are not granted.
"""

from __future__ import annotations

from typing import Any

RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["bellwether.dev"],
        "resources": ["modeldeployments"],
        "verbs": ["get", "list", "watch", "patch"],
        "why": "watch ModelDeployments; finalizer, kopf's annotations, consuming manual-command annotations",
    },
    {
        "apiGroups": ["bellwether.dev"],
        "resources": ["clusteranalysistemplates"],
        "verbs": ["get"],
        "why": "read the ClusterAnalysisTemplates a ModelDeployment names in spec.analysis.templates, every cycle",
    },
    {
        "apiGroups": ["bellwether.dev"],
        "resources": ["modeldeployments/status"],
        "verbs": ["get", "patch"],
        "why": "write the rollout status in one patch per reconcile",
    },
    {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "list", "create", "patch", "delete"],
        "why": "serving replicas per revision: server-side apply, observe readiness, remove old revisions",
    },
    {
        "apiGroups": [""],
        "resources": ["services"],
        "verbs": ["get", "list", "create", "patch", "delete"],
        "why": "a Service per revision and the serving Service",
    },
    {
        "apiGroups": ["policy"],
        "resources": ["poddisruptionbudgets"],
        "verbs": ["get", "list", "create", "patch", "delete"],
        "why": "a PodDisruptionBudget per revision, so node drains never thin a region below its plan",
    },
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["list", "patch"],
        "why": "unschedulable pods and image pull failures, reported in status; the serving label and "
        "deletion cost that put a pod in (or take it out of) the replicas router's traffic",
    },
    {
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get"],
        "why": "kubeconfigs of remote regions and Prometheus bearer tokens, named in the spec",
    },
    {
        "apiGroups": ["", "events.k8s.io"],
        "resources": ["events"],
        "verbs": ["create", "patch"],
        "why": "an Event on every phase change and rollback",
    },
    {
        "apiGroups": ["autoscaling"],
        "resources": ["horizontalpodautoscalers"],
        "verbs": ["get", "list", "create", "patch", "delete"],
        "why": "the HorizontalPodAutoscaler of a region with spec.regions[].autoscaling",
    },
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["get", "create", "patch"],
        "why": "Job gates (spec.rollout.gates[].job): the Job of each attempt, and how it ended",
    },
    {
        "apiGroups": ["gateway.networking.k8s.io"],
        "resources": ["httproutes"],
        "verbs": ["get", "list", "create", "patch", "delete"],
        "why": "traffic weights with traffic.router: gatewayAPI",
    },
    {
        "apiGroups": ["networking.istio.io"],
        "resources": ["virtualservices"],
        "verbs": ["get", "list", "create", "patch", "delete"],
        "why": "traffic weights with traffic.router: istio",
    },
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
        "why": "kopf discovers the ModelDeployment resource",
    },
    {
        "apiGroups": [""],
        "resources": ["namespaces"],
        "verbs": ["get", "list", "watch"],
        "why": "kopf follows the watched namespaces with --namespace; the operator finds ModelDeployments left "
        "in namespaces being deleted",
    },
    {
        "apiGroups": [""],
        "resources": ["nodes"],
        "verbs": ["list"],
        "why": "before a surge, count the GPUs free on the nodes its pods may run on (with the pods of every "
        "namespace, which only a cluster-wide installation may list; a Warning Event when they fall short)",
    },
    {
        "apiGroups": ["kopf.dev"],
        "resources": ["kopfpeerings", "clusterkopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
        "why": "peering between operator replicas (only one acts at a time)",
    },
]
