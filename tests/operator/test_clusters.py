"""Applying and observing a region through the real client against an API server stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bellwether.api import revision_of, template_of
from bellwether.api.spec import ModelDeploymentSpec
from bellwether.clusters import ApiError, ClusterConfigError, Clusters, RouteNotInstalled, apply_region, observe_region
from bellwether.clusters.client import KubeClient
from bellwether.clusters.region import RESYNC_SECONDS, resync_slot
from bellwether.render import objects_for_region
from bellwether.render.names import owner_selector
from bellwether.rollout.types import RegionObservation, RegionPlan, RevisionPlan
from bellwether.sim.standins.apiserver import ApiServer
from support.operator_world import kubeconfig_secret, secret
from support.specs import NAMESPACE, spec


def make_spec(router: str = "replicas", version: str = "v1") -> ModelDeploymentSpec:
    rollout = {"steps": [{"setWeight": 50}]}
    return spec(version=version, uri=f"s3://m/{version}", router=router, gateway="inference", rollout=rollout)


def plan_for(region: str, *revs: tuple[ModelDeploymentSpec, str, int, int]) -> RegionPlan:
    return RegionPlan(
        region,
        tuple(RevisionPlan(revision_of(template_of(s)), role, n, w, template_of(s)) for s, role, n, w in revs),  # type: ignore[arg-type]
    )


@pytest.fixture
async def clusters(home: ApiServer, tmp_path: Path) -> AsyncIterator[Clusters]:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(home.kubeconfig(NAMESPACE)))
    async with aiohttp.ClientSession() as session:
        yield Clusters(session, kubeconfig=str(path), secret_ttl=0)  # every call reads Secrets afresh


async def test_apply_is_server_side_idempotent_and_prunes_revisions_not_in_the_plan(
    home: ApiServer, clusters: Clusters
) -> None:
    v1, v2 = make_spec(version="v1"), make_spec(version="v2")
    client = await clusters.home()
    plan = plan_for("us-east", (v1, "stable", 2, 50), (v2, "canary", 1, 50))
    kwargs = {"name": "chat", "region": "us-east", "namespace": NAMESPACE, "router": "replicas"}
    await apply_region(client, objects_for_region("chat", NAMESPACE, v1, plan), **kwargs)  # type: ignore[arg-type]
    versions = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in home.list("deployments")}
    assert len(versions) == 2
    apply_calls = [r for r in home.requests if r[0] == "PATCH"]
    assert all(r[2] == "application/apply-patch+yaml" for r in apply_calls)
    assert all(f["manager"] == "bellwether" for o in home.list("deployments") for f in o["metadata"]["managedFields"])

    # Applying the same plan again changes nothing and, in steady state, writes nothing.
    writes = len([r for r in home.requests if r[0] in ("PATCH", "DELETE")])
    await apply_region(client, objects_for_region("chat", NAMESPACE, v1, plan), **kwargs)  # type: ignore[arg-type]
    assert {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in home.list("deployments")} == versions
    assert len([r for r in home.requests if r[0] in ("PATCH", "DELETE")]) == writes

    # A Deployment deleted by hand is noticed by the observation and applied again.
    canary_name = f"chat-us-east-{plan.revisions[1].revision}"
    await home.delete("deployments", NAMESPACE, canary_name)
    seen = await observe_region(client, name="chat", region="us-east", namespace=NAMESPACE, router="replicas")
    await apply_region(client, objects_for_region("chat", NAMESPACE, v1, plan), observed=seen.observation, **kwargs)  # type: ignore[arg-type]
    assert home.get("deployments", NAMESPACE, canary_name) is not None

    # Someone else's Deployment with similar labels is left alone; the dropped canary goes.
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "chat-us-east-other",
            "namespace": NAMESPACE,
            "labels": {"bellwether.dev/deployment": "chat"},
        },
        "spec": {"replicas": 1},
    }
    await home.put("deployments", other)
    await apply_region(
        client, objects_for_region("chat", NAMESPACE, v1, plan_for("us-east", (v1, "stable", 2, 100))), **kwargs
    )  # type: ignore[arg-type]
    left = sorted(o["metadata"]["name"] for o in home.list("deployments"))
    assert left == sorted([f"chat-us-east-{revision_of(template_of(v1))}", "chat-us-east-other"])
    assert len(home.list("services", NAMESPACE, "bellwether.dev/deployment=chat")) == 2  # stable's + serving


async def test_disruption_budgets_tighten_for_a_rollout_loosen_after_it_and_go_with_their_revision(
    home: ApiServer, clusters: Clusters
) -> None:
    v1, v2 = make_spec(version="v1"), make_spec(version="v2")
    client = await clusters.home()
    kwargs = {"name": "chat", "region": "us-east", "namespace": NAMESPACE, "router": "replicas"}

    def budgets() -> dict[str, object]:
        found = home.list("poddisruptionbudgets", NAMESPACE, "bellwether.dev/deployment=chat")
        return {o["metadata"]["labels"]["bellwether.dev/revision"]: o["spec"]["maxUnavailable"] for o in found}

    rolling = plan_for("us-east", (v1, "stable", 2, 50), (v2, "canary", 1, 50))
    await apply_region(client, objects_for_region("chat", NAMESPACE, v1, rolling), **kwargs)  # type: ignore[arg-type]
    assert budgets() == {revision_of(template_of(v1)): 0, revision_of(template_of(v2)): 0}

    promoted = plan_for("us-east", (v2, "stable", 2, 100))
    await apply_region(client, objects_for_region("chat", NAMESPACE, v2, promoted), **kwargs)  # type: ignore[arg-type]
    assert budgets() == {revision_of(template_of(v2)): 1}

    unbudgeted = v2.model_copy(update={"disruption": v2.disruption.model_copy(update={"budget": False})})
    await apply_region(client, objects_for_region("chat", NAMESPACE, unbudgeted, promoted), **kwargs)  # type: ignore[arg-type]
    assert budgets() == {}


def test_objects_applied_together_are_re_applied_at_spread_times_once_per_resync_period() -> None:
    # 1,000 regions' objects all applied at t=0 (an operator start): when does each come due again?
    selectors = [owner_selector(f"md-{i}", r) for i in range(500) for r in ("a", "b")]

    def due(selector: str, applied: float) -> float:
        slot, t = resync_slot(selector, applied), applied
        while resync_slot(selector, t) == slot:
            t += 1.0
        return t

    first = sorted(due(s, 0.0) for s in selectors)
    assert first[0] > 0 and first[-1] <= RESYNC_SECONDS  # never later than the period
    per_minute = [sum(1 for t in first if m * 60 <= t < (m + 1) * 60) for m in range(int(RESYNC_SECONDS) // 60)]
    assert max(per_minute) < 2 * len(selectors) / len(per_minute), per_minute  # steady, not all at once
    # and from then on, once per period each
    for selector in selectors[:50]:
        again = due(selector, 0.0)
        assert abs(due(selector, again) - again - RESYNC_SECONDS) <= 1.0


async def test_observation_reports_ready_unschedulable_and_stuck_pods(home: ApiServer, clusters: Clusters) -> None:
    v1, v2 = make_spec(version="v1"), make_spec(version="v2")
    client = await clusters.home()
    plan = plan_for("us-east", (v1, "stable", 2, 50), (v2, "canary", 2, 50))
    await apply_region(
        client,
        objects_for_region("chat", NAMESPACE, v1, plan),
        name="chat",
        region="us-east",
        namespace=NAMESPACE,
        router="replicas",
    )
    r1, r2 = (p.revision for p in plan.revisions)
    await home.patch("deployments", NAMESPACE, f"chat-us-east-{r1}", {"status": {"replicas": 2, "readyReplicas": 2}})
    await home.patch(
        "deployments", NAMESPACE, f"chat-us-east-{r2}", {"status": {"replicas": 2, "unavailableReplicas": 2}}
    )
    labels = {
        "app.kubernetes.io/managed-by": "bellwether",
        "app.kubernetes.io/name": "chat",
        "bellwether.dev/deployment": "chat",
        "bellwether.dev/region": "us-east",
        "bellwether.dev/revision": r2,
    }
    pending = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            }
        ],
    }
    pulling = {
        "phase": "Pending",
        "containerStatuses": [
            {"name": "server", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "manifest unknown"}}}
        ],
    }
    await home.put("pods", {"metadata": {"name": "p1", "namespace": NAMESPACE, "labels": labels}, "status": pending})
    await home.put("pods", {"metadata": {"name": "p2", "namespace": NAMESPACE, "labels": labels}, "status": pulling})
    running = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    stable_labels = {**labels, "bellwether.dev/revision": r1}
    serving = {**stable_labels, "bellwether.dev/serving": "true"}
    await home.put("pods", {"metadata": {"name": "s1", "namespace": NAMESPACE, "labels": serving}, "status": running})
    await home.put(
        "pods", {"metadata": {"name": "s2", "namespace": NAMESPACE, "labels": stable_labels}, "status": running}
    )

    found = await observe_region(client, name="chat", region="us-east", namespace=NAMESPACE, router="replicas")
    seen = found.observation
    assert seen.reachable
    assert seen.pods[r1].ready == 2 and seen.pods[r1].problem is None
    assert seen.pods[r2].ready == 0 and seen.pods[r2].unavailable == 2 and seen.pods[r2].unschedulable == 1
    assert seen.pods[r2].problem is not None and "Insufficient nvidia.com/gpu" in seen.pods[r2].problem
    # Traffic goes to ready pods labelled serving, not to every ready pod.
    assert seen.pods[r1].serving == 1 and seen.pods[r2].serving == 0
    assert seen.weights == {r1: 100}
    assert {(p.name, p.ready, p.serving) for p in found.pods} == {
        ("p1", False, False),
        ("p2", False, False),
        ("s1", True, True),
        ("s2", True, False),
    }


async def one_stable(
    home: ApiServer, clusters: Clusters, router: str
) -> tuple[KubeClient, list[dict[str, Any]], str, int]:
    """A region applied with one stable revision of two replicas: the client, its objects, the
    revision and its Deployment's generation."""
    v1 = make_spec(router, version="v1")
    client = await clusters.home()
    plan = plan_for("us-east", (v1, "stable", 2, 100))
    objects = objects_for_region("chat", NAMESPACE, v1, plan)
    await apply_region(client, objects, name="chat", region="us-east", namespace=NAMESPACE, router=router)
    r1 = plan.revisions[0].revision
    generation = home.get("deployments", NAMESPACE, f"chat-us-east-{r1}")["metadata"]["generation"]  # type: ignore[index]
    return client, objects, r1, generation


def observing(
    home: ApiServer, client: KubeClient, router: str
) -> Callable[[], Awaitable[tuple[RegionObservation, int]]]:
    """Observe the region, and count the pod lists it took."""
    pods_path = f"/api/v1/namespaces/{NAMESPACE}/pods"

    async def observe() -> tuple[RegionObservation, int]:
        before = sum(1 for _, path, _ in home.requests if path == pods_path)
        seen = await observe_region(client, name="chat", region="us-east", namespace=NAMESPACE, router=router)
        return seen.observation, sum(1 for _, path, _ in home.requests if path == pods_path) - before

    return observe


async def test_a_routed_region_whose_deployments_are_all_ready_is_observed_without_reading_its_pods(
    home: ApiServer, clusters: Clusters
) -> None:
    client, _, r1, generation = await one_stable(home, clusters, "gatewayAPI")
    dep_name = f"chat-us-east-{r1}"
    observe = observing(home, client, "gatewayAPI")

    # Every replica ready, status current: the pods can say nothing more, so they are not read.
    ready = {"observedGeneration": generation, "replicas": 2, "readyReplicas": 2}
    await home.patch("deployments", NAMESPACE, dep_name, {"status": ready})
    seen, pod_reads = await observe()
    assert seen.pods[r1].ready == 2 and pod_reads == 0

    # One replica not ready, or a status the controller has not caught up with: the pods are read.
    for status in ({**ready, "readyReplicas": 1}, {**ready, "observedGeneration": generation - 1}):
        await home.patch("deployments", NAMESPACE, dep_name, {"status": status})
        seen, pod_reads = await observe()
        assert pod_reads == 1, status


async def test_a_steady_replicas_region_reuses_its_pod_list_until_something_changes(
    home: ApiServer, clusters: Clusters
) -> None:
    client, objects, r1, generation = await one_stable(home, clusters, "replicas")
    dep_name = f"chat-us-east-{r1}"
    labels = {
        "app.kubernetes.io/managed-by": "bellwether",
        "app.kubernetes.io/name": "chat",
        "bellwether.dev/deployment": "chat",
        "bellwether.dev/region": "us-east",
        "bellwether.dev/revision": r1,
        "bellwether.dev/serving": "true",
    }
    running = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    for pod in ("a", "b"):
        await home.put("pods", {"metadata": {"name": pod, "namespace": NAMESPACE, "labels": labels}, "status": running})
    await home.patch(
        "deployments",
        NAMESPACE,
        dep_name,
        {"status": {"observedGeneration": generation, "replicas": 2, "readyReplicas": 2}},
    )
    observe = observing(home, client, "replicas")
    seen, reads = await observe()
    assert reads == 1 and seen.pods[r1].serving == 2
    seen, reads = await observe()
    assert reads == 0 and seen.pods[r1].serving == 2 and seen.weights == {r1: 100}, "steady: the last list serves"

    # A pod no longer ready: the Deployment's status (and resourceVersion) changes, the pods are read.
    await home.patch("pods", NAMESPACE, "b", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    await home.patch("deployments", NAMESPACE, dep_name, {"status": {"readyReplicas": 1}})
    seen, reads = await observe()
    assert reads == 1 and seen.pods[r1].serving == 1
    seen, reads = await observe()
    assert reads == 1, "not steady (a pod not ready, the Deployment short): read every time"

    # Ready again, then a serving label written by the operator: the next observation reads them.
    await home.patch("pods", NAMESPACE, "b", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    await home.patch("deployments", NAMESPACE, dep_name, {"status": {"readyReplicas": 2}})
    seen, reads = await observe()
    assert reads == 1 and seen.pods[r1].serving == 2
    await apply_region(
        client, objects, name="chat", region="us-east", namespace=NAMESPACE, router="replicas", serving={"b": False}
    )
    seen, reads = await observe()
    assert reads == 1 and seen.pods[r1].serving == 1


async def test_route_weights_are_applied_and_observed(home: ApiServer, clusters: Clusters) -> None:
    v1, v2 = make_spec("gatewayAPI", "v1"), make_spec("gatewayAPI", "v2")
    client = await clusters.home()
    plan = plan_for("us-east", (v1, "stable", 2, 90), (v2, "canary", 1, 10))
    await apply_region(
        client,
        objects_for_region("chat", NAMESPACE, v1, plan),
        name="chat",
        region="us-east",
        namespace=NAMESPACE,
        router="gatewayAPI",
    )
    seen = await observe_region(client, name="chat", region="us-east", namespace=NAMESPACE, router="gatewayAPI")
    assert seen.observation.weights == {p.revision: p.weight for p in plan.revisions}


async def test_a_route_kind_that_is_not_installed_fails_before_anything_is_applied(
    home: ApiServer, remote: ApiServer, clusters: Clusters
) -> None:
    await home.put("secrets", kubeconfig_secret(remote))
    v1 = make_spec("gatewayAPI", "v1")
    client = await clusters.for_region(NAMESPACE, v1.region("eu-west"))
    plan = plan_for("eu-west", (v1, "stable", 2, 100))
    with pytest.raises(RouteNotInstalled, match="install the Gateway API CRDs"):
        await apply_region(
            client,
            objects_for_region("chat", NAMESPACE, v1, plan),
            name="chat",
            region="eu-west",
            namespace=NAMESPACE,
            router="gatewayAPI",
        )
    assert remote.list("deployments") == []


async def test_remote_regions_come_from_kubeconfig_secrets_with_errors_that_say_what_to_fix(
    home: ApiServer, remote: ApiServer, clusters: Clusters
) -> None:
    region = make_spec().region("eu-west")
    with pytest.raises(ClusterConfigError, match="Secret ml/eu-west-kubeconfig not found"):
        await clusters.for_region(NAMESPACE, region)

    await home.put("secrets", secret("eu-west-kubeconfig", {"config": "x"}))
    with pytest.raises(ClusterConfigError, match="has no key 'kubeconfig'"):
        await clusters.for_region(NAMESPACE, region)

    await home.delete("secrets", NAMESPACE, "eu-west-kubeconfig")
    await home.put("secrets", secret("eu-west-kubeconfig", {"kubeconfig": "clusters: [oops"}))
    with pytest.raises(ClusterConfigError, match="not a usable kubeconfig"):
        await clusters.for_region(NAMESPACE, region)

    await home.delete("secrets", NAMESPACE, "eu-west-kubeconfig")
    await home.put("secrets", kubeconfig_secret(remote))
    client = await clusters.for_region(NAMESPACE, region)
    await client.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "probe", "namespace": NAMESPACE},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    assert remote.get("services", NAMESPACE, "probe") is not None
    assert (
        "PATCH",
        f"/api/v1/namespaces/{NAMESPACE}/services/probe",
        "application/apply-patch+yaml",
    ) in remote.requests


async def test_a_kubeconfig_secret_is_read_once_per_ttl_however_many_cycles_need_it(
    home: ApiServer, remote: ApiServer, tmp_path: Path
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(home.kubeconfig(NAMESPACE)))
    secret_path = f"/api/v1/namespaces/{NAMESPACE}/secrets/eu-west-kubeconfig"
    region = make_spec().region("eu-west")

    def reads() -> int:
        return sum(1 for method, p, _ in home.requests if method == "GET" and p == secret_path)

    await home.put("secrets", kubeconfig_secret(remote))
    async with aiohttp.ClientSession() as session:
        clusters = Clusters(session, kubeconfig=str(path), secret_ttl=1.0)
        # Many cycles (of one ModelDeployment or of many naming the Secret) within the TTL: one GET.
        first = await clusters.for_region(NAMESPACE, region)
        for _ in range(20):
            assert await clusters.for_region(NAMESPACE, region) is first
        assert reads() == 1

        # A broken Secret takes effect once the TTL has passed, with the error saying what to fix.
        await home.delete("secrets", NAMESPACE, "eu-west-kubeconfig")
        await home.put("secrets", secret("eu-west-kubeconfig", {"kubeconfig": "clusters: [oops"}))
        await asyncio.sleep(1.1)
        with pytest.raises(ClusterConfigError, match="not a usable kubeconfig"):
            await clusters.for_region(NAMESPACE, region)
        assert reads() == 2

        # So does a deleted one (not found is remembered for the TTL too), and a fixed one.
        await home.delete("secrets", NAMESPACE, "eu-west-kubeconfig")
        await asyncio.sleep(1.1)
        for _ in range(5):
            with pytest.raises(ClusterConfigError, match="not found"):
                await clusters.for_region(NAMESPACE, region)
        assert reads() == 3
        await home.put("secrets", kubeconfig_secret(remote))
        await asyncio.sleep(1.1)
        assert (await clusters.for_region(NAMESPACE, region)).cluster == "eu-west"


async def test_an_unreachable_region_is_an_error_not_an_empty_region(
    home: ApiServer, remote: ApiServer, clusters: Clusters
) -> None:
    await home.put("secrets", kubeconfig_secret(remote))
    client = await clusters.for_region(NAMESPACE, make_spec().region("eu-west"))
    await remote.stop()
    with pytest.raises(ApiError) as caught:
        await observe_region(client, name="chat", region="eu-west", namespace=NAMESPACE, router="replicas")
    assert caught.value.status == 0 and caught.value.cluster == "eu-west"


def test_pod_problems_kubernetes_reports_are_named() -> None:
    from bellwether.clusters.region import _pod_problem

    def pod(**status: object) -> dict[str, object]:
        return {"metadata": {"name": "p"}, "status": status}

    oom = {"name": "server", "ready": False, "restartCount": 1, "lastState": {"terminated": {"reason": "OOMKilled"}}}
    crash = {"name": "server", "ready": False, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    storm = {"name": "server", "ready": False, "restartCount": 4, "lastState": {"terminated": {"exitCode": 137}}}
    fine = {"name": "server", "ready": True, "restartCount": 4}
    assert _pod_problem(pod(containerStatuses=[oom])) == (
        False,
        "OOMKilled: container server exceeded its memory limit (1 restarts)",
    )
    assert _pod_problem(pod(containerStatuses=[crash])) == (False, "CrashLoopBackOff")
    assert _pod_problem(pod(containerStatuses=[storm])) == (
        False,
        "container server restarted 4 times, last exit code 137",
    )
    assert _pod_problem(pod(containerStatuses=[fine])) == (False, None)  # restarted, but serving now
