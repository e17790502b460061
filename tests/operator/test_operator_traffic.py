"""What the product promises about pods and traffic, checked where Kubernetes makes it true or false:
the pods the control plane stand-in runs and the endpoints it puts behind the serving Service.

- a promotion, a bake and an operator restart never replace a pod that served (same pod UIDs, one
  ReplicaSet per revision Deployment for its whole life);
- the serving Service's ready endpoints are the split status reports (`regions[].share`);
- a rolled-back revision leaves the endpoints within a cycle of the decision, and stable takes
  everything back;
- pods per region never exceed `replicas + maxSurge`, and fit a GPU pool of that size; a surge that
  the free GPUs cannot take is a Warning Event as it is asked for.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from typing import Any

import pytest

from bellwether.clusters.gpus import REREAD_SECONDS
from bellwether.sim.standins.apiserver import ApiServer
from bellwether.sim.standins.controllers import GpuPool, is_ready
from bellwether.sim.standins.kubelet import Backend, backends
from support.invariants import check_capacity, endpoint_timeline, pod_events
from support.operator_world import World, model_deployment
from support.specs import NAME, NAMESPACE, revision, two_regions
from support.waiting import eventually

INTERVAL = 0.3  # the operator fixture's --interval
CYCLES = 2  # "within a cycle or two" of a decision
SLACK = 0.5  # a controller round (0.1 s) and the cycle's own requests


def regions(world: World) -> dict[str, ApiServer]:
    return {"us-east": world.home, "eu-west": world.remote}


def rollout(steps: list[dict[str, Any]], waves: list[list[str]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "waves": waves or [["us-east", "eu-west"]],
        "steps": steps,
        "bakeTime": "1s",
        "progressDeadline": "10m",
        **extra,
    }


def spec(world: World, version: str, plan: dict[str, Any], replicas: int = 2) -> dict[str, Any]:
    return model_deployment(world.prometheus.url, version, rollout=copy.deepcopy(plan), regions=two_regions(replicas))


def serving(server: ApiServer, region: str) -> list[Backend]:
    return backends(server, NAMESPACE, f"{NAME}-{region}")


def split(server: ApiServer, region: str) -> Counter[str | None]:
    return Counter(b.revision for b in serving(server, region))


def share(found: Counter[str | None], canary: str) -> int:
    total = sum(found.values())
    return round(100 * found[canary] / total) if total else 0


def pods_of(server: ApiServer, rev: str, ready: bool = True) -> dict[str, dict[str, Any]]:
    found = server.list("pods", NAMESPACE, f"bellwether.dev/deployment={NAME},bellwether.dev/revision={rev}")
    return {
        p["metadata"]["uid"]: p
        for p in found
        if not p["metadata"].get("deletionTimestamp") and (is_ready(p) or not ready)
    }


def region_status(world: World, name: str) -> dict[str, Any]:
    return next((r for r in world.status().get("regions") or [] if r["name"] == name), {})


def healthy_on(world: World, rev: str) -> bool:
    status = world.status()
    return (
        status.get("phase") == "Healthy"
        and status.get("stableRevision") == rev
        and all(set(world.deployments(s)) == {rev} for s in regions(world).values())
    )


async def serve(world: World, md: dict[str, Any]) -> str:
    await world.home.put("modeldeployments", copy.deepcopy(md))
    rev = revision(md)
    await eventually(lambda: healthy_on(world, rev), timeout=30, what=f"{rev} Healthy")
    return rev


async def settle(check: Any, timeout: float) -> Any:
    """`check()` once it is truthy, or its last value after `timeout` seconds (for a clearer failure)."""
    try:
        return await eventually(check, timeout=timeout)
    except AssertionError:
        return check()


def replicasets_ever(server: ApiServer, rev: str) -> dict[str, list[str]]:
    """Deployment uid of revision `rev` -> the names of every ReplicaSet ever created for it."""
    deployments = {
        o["metadata"]["uid"]
        for _, kind, o in server.changes("deployments")
        if kind == "ADDED" and (o["metadata"].get("labels") or {}).get("bellwether.dev/revision") == rev
    }
    out: dict[str, list[str]] = {uid: [] for uid in deployments}
    for _, kind, rs in server.changes("replicasets"):
        owner = next((r["uid"] for r in rs["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
        if kind == "ADDED" and owner in out:
            out[owner].append(rs["metadata"]["name"])
    return out


async def test_promotion_bake_and_a_restart_keep_the_pods_that_passed_analysis(world: World) -> None:
    # Given v1 serving in both clusters
    plan = rollout([{"setWeight": 50}, {"analysis": {"duration": "4s"}}])
    r1 = await serve(world, spec(world, "v1", plan))

    # When v2 is rolled out, and its canary pods are ready in both clusters
    v2 = spec(world, "v2", plan)
    r2 = revision(v2)
    await world.change(v2)
    canary = {
        name: await eventually(lambda s=server: pods_of(s, r2), what=f"a ready canary pod in {name}")
        for name, server in regions(world).items()
    }
    passed = {name: set(found) for name, found in canary.items()}

    # And the operator is restarted during the analysis
    world.operator.stop()
    world.operator.start()

    # Then after the analysis, promotion and bake, the pods that passed analysis serve v2
    await eventually(lambda: healthy_on(world, r2), timeout=40, what="v2 Healthy")
    for name, server in regions(world).items():
        now = set(pods_of(server, r2))
        replaced = passed[name] - now
        gone = [e.name for e in pod_events(server, NAME, name) if e.revision == r2 and e.kind == "DELETED"]
        assert not replaced, f"{name}: the canary pods {sorted(replaced)} were replaced (v2 pods deleted: {gone})"
        assert not gone, f"{name}: v2 pods were deleted during its rollout: {gone}"
        assert len(now) == 2
        # one ReplicaSet per revision Deployment for its whole life: its pod template never changed
        for rev in (r1, r2):
            for dep, names in replicasets_ever(server, rev).items():
                assert len(names) == 1, f"{name}: the {rev} Deployment {dep} had ReplicaSets {names}"


async def test_the_serving_endpoints_are_the_split_status_reports(world: World) -> None:
    # Given v1 serving in both clusters
    plan = rollout([{"setWeight": 50}, {"analysis": {"duration": "10m"}}])
    r1 = await serve(world, spec(world, "v1", plan))

    # When v2 is at its 50% step, with 2 replicas per region
    v2 = spec(world, "v2", plan)
    r2 = revision(v2)
    await world.change(v2)
    await eventually(lambda: world.status().get("canaryWeight") == 50, what="weight 50")
    for name, server in regions(world).items():
        await eventually(lambda s=server: pods_of(s, r2), what=f"a ready canary pod in {name}")

    # Then each serving Service has one stable and one canary pod ready behind it, and status says 50
    for name, server in regions(world).items():
        found = await settle(lambda s=server, n=name: split(s, n) == {r1: 1, r2: 1} and split(s, n), 3.0)
        assert found == {r1: 1, r2: 1}, f"{name} endpoints: {split(server, name)} (v1 {r1}, v2 {r2})"
    for _ in range(5):  # and they agree for as long as the step lasts
        for name, server in regions(world).items():
            found, reported = split(server, name), region_status(world, name)
            assert reported.get("weight") == 50, reported
            assert reported.get("share") == share(found, r2) == 50, f"{name}: status {reported}, endpoints {found}"
        await asyncio.sleep(INTERVAL)

    # When the user promotes fully
    command = {"action": "promote-full", "id": "c-1"}
    annotation = {"bellwether.dev/command": json.dumps(command)}
    await world.home.patch("modeldeployments", NAMESPACE, NAME, {"metadata": {"annotations": annotation}})

    # Then only v2's pods are behind the serving Services
    await eventually(lambda: healthy_on(world, r2), timeout=30, what="v2 Healthy")
    for name, server in regions(world).items():
        found = await settle(lambda s=server, n=name: split(s, n) == {r2: 2} and split(s, n), 3.0)
        assert found == {r2: 2}, f"{name} endpoints after promotion: {split(server, name)}"


async def test_a_rolled_back_revision_leaves_the_endpoints_within_a_cycle(world: World) -> None:
    # Given v1 serving, pods that take a while to be ready (a model loads on its GPUs)
    world.kubelet.delay = 2.5
    plan = rollout([{"setWeight": 50}, {"analysis": {"duration": "2s"}}], waves=[["us-east"], ["eu-west"]])
    r1 = await serve(world, spec(world, "v1", plan))

    # When v2 is promoted in us-east (the first wave), then fails its analysis in eu-west
    v2 = spec(world, "v2", plan)
    r2 = revision(v2)
    world.bad[("eu-west", r2)] = 0.5
    await world.change(v2)
    await eventually(lambda: world.status().get("phase") == "RolledBack", timeout=60, what="RolledBack")

    # Then within a cycle or two of the decision no endpoint of v2 is left in either region
    decided = next(
        at
        for at, _, _, o in world.home.history("modeldeployments")
        if (o.get("status") or {}).get("phase") == "RolledBack"
    )
    await asyncio.sleep(CYCLES * INTERVAL + SLACK)
    bound = CYCLES * INTERVAL + SLACK
    for name, server in regions(world).items():
        timeline = [
            (at - decided, Counter(revs.values()))
            for at, _, revs in endpoint_timeline(server, NAMESPACE, f"{NAME}-{name}")
        ]
        at_bound = [found for t, found in timeline if t <= bound][-1:]  # what served `bound` s after
        late = [(round(t, 2), dict(found)) for t, found in timeline if t > bound and found[r2]]
        shown = [(round(t, 2), dict(found)) for t, found in timeline if t > -1]
        assert not (at_bound and at_bound[0][r2]), f"{name}: v2 still served {bound:.1f}s after the rollback: {shown}"
        assert not late, f"{name}: v2 served again after the rollback: {late}"

    # And stable's pods serve everything again, in both regions
    for name, server in regions(world).items():
        found = await settle(lambda s=server, n=name: split(s, n) == {r1: 2} and split(s, n), 15.0)
        assert found == {r1: 2}, f"{name} endpoints after the rollback: {split(server, name)}"


@pytest.mark.parametrize(("replicas", "max_surge"), [(2, "25%"), (4, "1"), (2, "0")])
async def test_pods_per_region_never_exceed_replicas_plus_surge(world: World, replicas: int, max_surge: str) -> None:
    # Given v1 serving, in two waves, with this surge
    plan = rollout(
        [{"setWeight": 50}, {"analysis": {"duration": "1s"}}], waves=[["us-east"], ["eu-west"]], maxSurge=max_surge
    )
    await serve(world, spec(world, "v1", plan, replicas))

    # When v2 rolls out and is promoted everywhere
    r2 = await serve_change(world, spec(world, "v2", plan, replicas))
    await eventually(lambda: healthy_on(world, r2), timeout=40, what="v2 Healthy")

    # And v3 is promoted in us-east, then fails in eu-west and is rolled back everywhere
    v3 = spec(world, "v3", plan, replicas)
    world.bad[("eu-west", revision(v3))] = 0.5
    await world.change(v3)
    await eventually(lambda: world.status().get("phase") == "RolledBack", timeout=40, what="v3 RolledBack")
    await eventually(lambda: healthy_everywhere(world, r2, replicas), timeout=30, what="v2 back everywhere")

    # Then at no moment did a region have more pods than replicas + maxSurge (nor fewer ready serving
    # pods than replicas while a surge was allowed, but after the rollback decision)
    for name, server in regions(world).items():
        check_capacity(server, NAME, name, replicas, max_surge=max_surge, home=world.home)


@pytest.mark.parametrize("max_surge", ["25%", "0"])
async def test_a_rollout_fits_a_gpu_pool_of_replicas_plus_surge(world: World, max_surge: str) -> None:
    # Given clusters with GPUs for exactly replicas + maxSurge pods of 2 GPUs each (2 + 1, or 2 with no
    # surge: a full pool) on tainted GPU nodes, where a pod takes a second to load its model
    world.kubelet.delay = 1.0
    room = 2 + (1 if max_surge == "25%" else 0)
    for server in regions(world).values():
        world.kubelet.gpus(server, GpuPool(nodes=room, per_node=2, tainted=True))
    plan = rollout([{"setWeight": 50}, {"analysis": {"duration": "1s"}}], maxSurge=max_surge)
    await serve(world, spec(world, "v1", plan))

    # When v2 rolls out and is promoted
    r2 = await serve_change(world, spec(world, "v2", plan))
    done = await settle(lambda: healthy_on(world, r2), 30.0)

    # Then no pod ever waited for a GPU, and the rollout completed
    for name, server in regions(world).items():
        pending = [
            (p["metadata"]["name"], p["metadata"]["labels"].get("bellwether.dev/revision"))
            for _, _, p in server.changes("pods")
            if any(
                c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        ]
        assert not pending, f"{name}: pods found no free GPU: {sorted(set(pending))}"
    assert done, f"v2 not Healthy: {world.status().get('phase')} {world.status().get('message')}"
    assert not [e["message"] for e in world.home.list("events", NAMESPACE) if e.get("reason") == "InsufficientGPUs"]


async def test_a_surge_the_free_gpus_cannot_take_is_a_warning_naming_the_shortfall(world: World) -> None:
    # Given clusters whose GPUs the stable pods fill (2 pods of 2 GPUs on 2 nodes of 2), and a surge
    for server in regions(world).values():
        world.kubelet.gpus(server, GpuPool(nodes=2, per_node=2, tainted=True))
    plan = rollout([{"setWeight": 50}, {"analysis": {"duration": "1s"}}], maxSurge="25%")
    await serve(world, spec(world, "v1", plan))
    await asyncio.sleep(REREAD_SECONDS)  # the counts may lag the operator's own writes by that much

    # When v2 rolls out: its canary pod finds no GPU
    r2 = await serve_change(world, spec(world, "v2", plan))
    await eventually(lambda: world.status().get("phase") == "RolledBack", timeout=30, what="v2 rolled back")

    # Then a Warning said so for each region of the wave as the surge was asked for, once
    warnings = [e for e in world.home.list("events", NAMESPACE) if e.get("reason") == "InsufficientGPUs"]
    assert sorted(e["message"].split(":")[0] for e in warnings) == ["eu-west", "us-east"]
    for warning in warnings:
        assert warning["type"] == "Warning"
        assert f": the surge asks for 1 new canary pod of {r2} (2 nvidia.com/gpu each)" in warning["message"]
        assert "the 2 nodes they may run on have 0 free: room for 0" in warning["message"]
    assert "canary pods unschedulable" in (world.status().get("message") or "")  # and the scheduler's word acted on


async def serve_change(world: World, md: dict[str, Any]) -> str:
    await world.change(md)
    return revision(md)


def healthy_everywhere(world: World, rev: str, replicas: int) -> bool:
    return all(
        set(world.deployments(s)) == {rev} and len(pods_of(s, rev)) == replicas and split(s, n) == {rev: replicas}
        for n, s in regions(world).items()
    )
