"""An autoscaled region applied through the real client against an API server stand-in that keeps
server-side apply's field ownership: the HPA's count survives every apply, the HPA follows the plan.

Given a region with `autoscaling`, when Bellwether applies its plans cycle after cycle while "the HPA"
(here: a merge patch of spec.replicas by another manager, as the controller's scale writes are) moves
the count, then the count is never reset by an apply that leaves `replicas` out, Bellwether writes a
count only where the plan holds one, and the HPA object targets the revision the plan names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bellwether.api import parse_spec, revision_of, template_of
from bellwether.api.spec import ModelDeploymentSpec
from bellwether.clusters import ApiError, Clusters, KubeClient, apply_region, observe_region
from bellwether.render import objects_for_region
from bellwether.render.autoscaler import REPLICAS_MANAGER, replica_claims
from bellwether.rollout.types import RegionObservation, RegionPlan, RevisionPlan
from bellwether.sim.standins.apiserver import CORE, HPAS, ApiServer
from support.specs import NAMESPACE

REGION = "us-east"


def make_spec(version: str, *, autoscaled: bool = True) -> ModelDeploymentSpec:
    metric = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "vllm:num_requests_waiting"},
            "target": {"type": "AverageValue", "averageValue": 5},
        },
    }
    sizing: dict[str, Any] = (
        {"autoscaling": {"minReplicas": 2, "maxReplicas": 10, "metrics": [metric]}} if autoscaled else {"replicas": 6}
    )
    return parse_spec(
        {
            "model": {"name": "llama", "version": version, "uri": f"s3://m/{version}"},
            "runtime": {"image": "vllm/vllm-openai:v0.11.0", "resources": {"gpu": {"count": 1}}},
            "regions": [{"name": REGION, **sizing}],
            "rollout": {"steps": [{"setWeight": 50}]},
        }
    )


V1, V2 = make_spec("v1"), make_spec("v2")
R1, R2 = revision_of(template_of(V1)), revision_of(template_of(V2))


def rev(spec: ModelDeploymentSpec, role: str, replicas: int, *, autoscaled: bool = False) -> RevisionPlan:
    return RevisionPlan(revision_of(template_of(spec)), role, replicas, 50, template_of(spec), autoscaled=autoscaled)  # type: ignore[arg-type]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[ApiServer, KubeClient]]:
    server = ApiServer("home", resources=[*CORE, HPAS])
    await server.start()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(server.kubeconfig(NAMESPACE)))
    async with aiohttp.ClientSession() as session:
        yield server, await Clusters(session, kubeconfig=str(path), secret_ttl=0).home()
    await server.stop()


async def cycle(
    server: ApiServer,
    client: KubeClient,
    spec: ModelDeploymentSpec,
    plan: RegionPlan,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> RegionObservation:
    """Observe, then apply `plan` as the operator's port does (claims from the observation);
    `meanwhile` runs between the two, as another controller's write may."""
    seen = await observe_region(client, name="chat", region=REGION, namespace=NAMESPACE, router="replicas")
    if meanwhile is not None:
        await meanwhile()
    await apply_region(
        client,
        objects_for_region("chat", NAMESPACE, spec, plan),
        name="chat",
        region=REGION,
        namespace=NAMESPACE,
        router="replicas",
        observed=seen.observation,
        claims=replica_claims("chat", spec, plan, seen.observation),
        autoscaled=spec.region(REGION).autoscaling is not None,
    )
    return seen.observation


def replicas(server: ApiServer, revision: str) -> int | None:
    dep = server.get("deployments", NAMESPACE, f"chat-{REGION}-{revision}")
    return None if dep is None else dep["spec"].get("replicas")


def hpa_targets(server: ApiServer) -> list[str]:
    return [h["spec"]["scaleTargetRef"]["name"] for h in server.list("horizontalpodautoscalers", NAMESPACE)]


async def autoscaler_scales(server: ApiServer, revision: str, count: int) -> None:
    await server.patch("deployments", NAMESPACE, f"chat-{REGION}-{revision}", {"spec": {"replicas": count}})


async def test_the_autoscalers_count_survives_every_apply_and_the_hpa_follows_the_plan(
    cluster: tuple[ApiServer, KubeClient],
) -> None:
    server, client = cluster
    # First deploy: stable at minReplicas, created with its count, and an HPA on it.
    await cycle(server, client, V1, RegionPlan(REGION, (rev(V1, "stable", 2),), autoscaler=R1))
    assert replicas(server, R1) == 2
    assert hpa_targets(server) == [f"chat-{REGION}-{R1}"]
    managers = {
        f["manager"] for f in server.get("deployments", NAMESPACE, f"chat-{REGION}-{R1}")["metadata"]["managedFields"]
    }
    assert managers == {"bellwether", REPLICAS_MANAGER}

    # The HPA scales stable to 6; the next applies leave the count out and it stays 6 (not 1, not 2).
    await autoscaler_scales(server, R1, 6)
    for _ in range(2):
        await cycle(server, client, V1, RegionPlan(REGION, (rev(V1, "stable", 6, autoscaled=True),), autoscaler=R1))
        assert replicas(server, R1) == 6
    await autoscaler_scales(server, R1, 7)
    seen = await cycle(server, client, V1, RegionPlan(REGION, (rev(V1, "stable", 7, autoscaled=True),), autoscaler=R1))
    assert seen.autoscaled and replicas(server, R1) == 7

    # A step: the canary gets its count beside stable's live one, which is still the HPA's.
    step = RegionPlan(REGION, (rev(V2, "canary", 7), rev(V1, "stable", 7, autoscaled=True)), autoscaler=R1)
    await cycle(server, client, V2, step)
    assert (replicas(server, R1), replicas(server, R2)) == (7, 7)

    # The hand-over at 100%: Bellwether holds stable's count (forced) and the HPA is held (removed).
    handover = RegionPlan(REGION, (rev(V2, "canary", 7), rev(V1, "stable", 3)), autoscaler=None)
    await cycle(server, client, V2, handover)
    assert (replicas(server, R1), replicas(server, R2)) == (3, 7)
    assert hpa_targets(server) == []

    # Promoted: the new revision keeps its count and its pods, the HPA comes back on it, the old goes.
    promoted = RegionPlan(REGION, (rev(V2, "stable", 7, autoscaled=True),), autoscaler=R2)
    await cycle(server, client, V2, promoted)
    await cycle(server, client, V2, promoted)
    assert replicas(server, R2) == 7 and replicas(server, R1) is None
    assert hpa_targets(server) == [f"chat-{REGION}-{R2}"]

    # Back to fixed replicas: the HPA goes, and the count is the spec's again.
    fixed = make_spec("v2", autoscaled=False)
    await cycle(server, client, fixed, RegionPlan(REGION, (rev(fixed, "stable", 6),)))
    assert hpa_targets(server) == [] and replicas(server, R2) == 6


async def test_without_the_separate_claim_the_stand_in_would_reset_the_count_as_kubernetes_does(
    cluster: tuple[ApiServer, KubeClient],
) -> None:
    server, client = cluster
    await cycle(server, client, V1, RegionPlan(REGION, (rev(V1, "stable", 2),), autoscaler=R1))
    await autoscaler_scales(server, R1, 6)
    # The same replicas-less Deployment applied by the main manager alone: the field it owned is dropped.
    objects = objects_for_region("chat", NAMESPACE, V1, RegionPlan(REGION, (rev(V1, "stable", 6, autoscaled=True),)))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    server.applied.pop((("deployments", NAMESPACE, deployment["metadata"]["name"]), REPLICAS_MANAGER), None)
    await client.apply(deployment)
    assert replicas(server, R1) is None  # defaulted to 1 by the API server


async def test_a_count_the_autoscaler_moved_after_the_observation_is_not_put_back(
    cluster: tuple[ApiServer, KubeClient],
) -> None:
    server, client = cluster
    await cycle(server, client, V1, RegionPlan(REGION, (rev(V1, "stable", 2),), autoscaler=R1))
    await autoscaler_scales(server, R1, 4)
    await cycle(server, client, V1, RegionPlan(REGION, (rev(V1, "stable", 4, autoscaled=True),), autoscaler=R1))
    # The HPA moves stable to 6 after the operator saw 4: the claim at 4 conflicts (it is not forced) and
    # is dropped, as the API server refuses an unforced apply of a field another manager set since.
    plan = RegionPlan(REGION, (rev(V1, "stable", 4, autoscaled=True),), autoscaler=R1)
    await cycle(server, client, V1, plan, meanwhile=lambda: autoscaler_scales(server, R1, 6))
    assert replicas(server, R1) == 6
    seen = await cycle(server, client, V1, RegionPlan(REGION, (rev(V1, "stable", 6, autoscaled=True),), autoscaler=R1))
    assert seen.autoscaled and replicas(server, R1) == 6


async def test_the_stand_in_refuses_an_unforced_apply_of_a_field_another_manager_set(
    cluster: tuple[ApiServer, KubeClient],
) -> None:
    server, client = cluster
    await cycle(server, client, V1, RegionPlan(REGION, (rev(V1, "stable", 2),), autoscaler=R1))
    await autoscaler_scales(server, R1, 6)
    name = f"chat-{REGION}-{R1}"
    scale = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"replicas": 3},
    }
    with pytest.raises(ApiError) as refused:
        await client.apply(scale, force=False, manager="someone")
    assert refused.value.status == 409 and "spec.replicas" in str(refused.value)
    assert replicas(server, R1) == 6  # nothing changed
    await client.apply({**scale, "spec": {"replicas": 6}}, force=False, manager="someone")  # same value: shared
    await client.apply(scale, force=True, manager="someone")  # forced: taken
    assert replicas(server, R1) == 3
