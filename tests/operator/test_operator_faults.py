"""Faults around the operator: the Kubernetes API answering with errors, late or not at all, a watch
that drops, a remote region that cannot be reached, Prometheus down or slow, two operator replicas
acting at once, replicas whose clocks disagree.

Each test injects one fault at the HTTP level of a stand-in, where the real operator process meets
it, and checks what docs/operations.md promises: never promote on missing evidence, never remove
stable capacity without a ready replacement, recover when the fault clears.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bellwether.clusters import Clusters
from bellwether.handlers.reconcile import Context, reconcile
from bellwether.sim.standins.apiserver import Fault
from bellwether.sim.standins.kubelet import backends
from bellwether.sim.standins.process import OperatorProcess
from support.invariants import check_capacity, check_status_history, statuses
from support.operator_world import World, model_deployment
from support.specs import NAME, NAMESPACE, revision
from support.waiting import eventually

REPLICAS = 2
QUICK = {  # one wave of both clusters, a short analysis, a short bake
    "waves": [["us-east", "eu-west"]],
    "steps": [{"setWeight": 50}, {"analysis": {"duration": "1s"}}],
    "bakeTime": "1s",
    "progressDeadline": "10m",
}


async def serving(world: World, version: str = "v1", **overrides: Any) -> str:
    """Given `version` rolled out and Healthy in both clusters; returns its revision."""
    md = model_deployment(world.prometheus.url, version, rollout=copy.deepcopy(QUICK), **overrides)
    await world.home.put("modeldeployments", copy.deepcopy(md))
    await eventually(lambda: world.status().get("phase") == "Healthy", what=f"{version} Healthy")
    return revision(md)


async def roll_out(world: World, version: str = "v2", **overrides: Any) -> str:
    md = model_deployment(world.prometheus.url, version, rollout=copy.deepcopy(QUICK), **overrides)
    await world.change(md)
    return revision(md)


def healthy_on(world: World, rev: str) -> bool:
    status = world.status()
    return (
        status.get("phase") == "Healthy"
        and status.get("stableRevision") == rev
        and all(set(world.deployments(s)) == {rev} for s in (world.home, world.remote))
    )


def region(world: World, name: str) -> dict[str, Any]:
    return next((r for r in world.status().get("regions") or [] if r["name"] == name), {})


def degraded(world: World) -> str:
    found = [c for c in world.status().get("conditions") or [] if c["type"] == "Degraded" and c["status"] == "True"]
    return str(found[0].get("message", "")) if found else ""


def events(world: World, reason: str) -> list[dict[str, Any]]:
    return [e for e in world.home.list("events", NAMESPACE) if e.get("reason") == reason]


def held(world: World, old: str, new: str, promoted: bool = True) -> None:
    """The invariants over the whole history: capacity in both regions, status only moving forward."""
    for server, name in ((world.home, "us-east"), (world.remote, "eu-west")):
        check_capacity(server, NAME, name, REPLICAS)
    check_status_history(world.home, NAME, old, new, promoted)


async def test_conflicts_drop_the_cycles_decision_and_the_rollout_completes(world: World) -> None:
    # Given v1 serving in both clusters
    r1 = await serving(world)

    # When the next status writes and Deployment applies are refused with 409 Conflict (as when someone
    # else changed the object first), while v2 rolls out
    conflict = "the object has been modified; please apply your changes to the latest version and try again"
    faults = [
        Fault(409, "Conflict", conflict, method="PATCH", path="/status", times=3),
        Fault(409, "Conflict", conflict, method="PATCH", path="/deployments/", times=2),
    ]
    world.home.faults += faults
    r2 = await roll_out(world)

    # Then every refused write is decided again from a fresh read, and the rollout completes
    await eventually(lambda: healthy_on(world, r2), timeout=30, what="v2 Healthy")
    assert [f.hits for f in faults] == [3, 2]
    # with no step taken twice and no event posted for a decision that was not recorded
    held(world, r1, r2)
    assert len(events(world, "RolloutStarted")) == 1 and len(events(world, "Promoted")) == 1


async def test_too_many_requests_waits_as_long_as_the_server_asks(world: World) -> None:
    # Given v1 serving in both clusters
    r1 = await serving(world)

    # When the remote API server throttles a Deployment write with 429 and Retry-After: 1
    throttle = Fault(429, "TooManyRequests", "too many requests", retry_after=1, method="PATCH", path="/deployments/")
    world.remote.faults.append(throttle)
    throttle.times = 1
    r2 = await roll_out(world)

    # Then the request is made again no sooner than asked, within the same cycle: no error surfaces
    await eventually(lambda: healthy_on(world, r2), timeout=30, what="v2 Healthy")
    answers = [(t, status) for t, method, path, status in world.remote.answers if "/deployments/" in path]
    first = next(i for i, (_, status) in enumerate(answers) if status == 429)
    assert [status for _, status in answers[first : first + 2]] == [429, 200]
    assert answers[first + 1][0] - answers[first][0] >= 0.95
    assert not [s for _, s in statuses(world.home, NAME) if "429" in (s.message or "") + str(s.conditions)]
    held(world, r1, r2)


async def test_server_errors_are_reported_and_nothing_moves_until_they_stop(world: World) -> None:
    # Given v1 serving in both clusters
    r1 = await serving(world)
    stable_remote = copy.deepcopy(world.deployments(world.remote)[r1]["spec"])

    # When the remote API server answers 500 to everything, while v2 rolls out
    broken = Fault(500, "InternalError", "etcdserver: request timed out")
    world.remote.faults.append(broken)
    r2 = await roll_out(world)

    # Then (after a few quick retries) status names the region and the error, and nothing promotes
    await eventually(lambda: "eu-west: list failed: 500" in degraded(world), what="the read error in status")

    # When only its writes fail
    broken.method = "WRITE"

    # Then status names the failed apply instead, and still nothing promotes
    await eventually(lambda: "eu-west: apply failed: 500" in degraded(world), what="the write error in status")
    await asyncio.sleep(1.0)
    assert world.status().get("stableRevision") == r1 and world.status().get("canaryWeight", 0) < 100
    assert world.deployments(world.remote)[r1]["spec"] == stable_remote
    # Home keeps serving at full size too (stable gives up a pod only for a ready canary pod).
    assert len(backends(world.home, NAMESPACE, f"{NAME}-us-east")) >= REPLICAS

    # When the errors stop, the rollout completes and the condition clears
    world.remote.faults.remove(broken)
    await eventually(lambda: healthy_on(world, r2), timeout=30, what="v2 Healthy")
    assert not degraded(world)
    held(world, r1, r2)


async def test_a_hung_api_server_times_out_and_is_reported_as_unreachable(world: World) -> None:
    # Given v1 serving, and this test driving the rollout cycles itself with a 1 s request timeout
    r1 = await serving(world)
    world.operator.stop()
    stable_remote = copy.deepcopy(world.deployments(world.remote)[r1]["spec"])
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        ctx = Context(Clusters(session, str(world.operator.kubeconfig)), max_requeue=0.3)

        # When the remote API server stops answering (requests hang) and v2 is rolled out
        world.remote.faults.append(hang := Fault(delay=3))  # longer than the 1 s timeout
        r2 = await roll_out(world)

        # Then a cycle ends after the timeout, with the region reported unreachable and left alone
        started = asyncio.get_running_loop().time()
        outcome = await reconcile(ctx, NAMESPACE, NAME)
        assert asyncio.get_running_loop().time() - started < 5
        assert "eu-west" in outcome.errors and "unreachable" in outcome.errors["eu-west"]
        assert region(world, "eu-west").get("phase") == "Unreachable"
        assert world.status().get("stableRevision") == r1
        assert world.deployments(world.remote)[r1]["spec"] == stable_remote

        # When it answers again, the next cycles roll v2 out there too
        world.remote.faults.remove(hang)

        async def cycle() -> bool:
            await reconcile(ctx, NAMESPACE, NAME)
            return r2 in world.deployments(world.remote)

        await eventually(cycle, what="the canary in eu-west")
        assert not (await reconcile(ctx, NAMESPACE, NAME)).errors


async def test_a_slow_region_holds_back_no_other_region(world: World) -> None:
    # Given v1 serving, the remote region listed first
    regions = model_deployment(world.prometheus.url)["spec"]["regions"][::-1]
    r1 = await serving(world, regions=regions)

    # When the remote API server takes 15 s over every write, and v2 is rolled out
    world.remote.faults.append(slow := Fault(delay=15, method="WRITE"))
    r2 = await roll_out(world, regions=regions)

    # Then the home region gets its canary well before even one remote write is answered (a loaded
    # machine may take seconds for a cycle, never 15), not after the remote region's writes
    await eventually(lambda: r2 in world.deployments(world.home), timeout=12, what="the canary at home")
    assert r2 not in world.deployments(world.remote)

    # And when the remote region is quick again, the rollout completes in both
    world.remote.faults.remove(slow)
    await eventually(lambda: healthy_on(world, r2), timeout=30, what="v2 Healthy")
    held(world, r1, r2)


async def test_a_dropped_watch_delays_nothing_and_a_deletion_missed_meanwhile_is_handled(world: World) -> None:
    # Given v1 serving in both clusters
    await serving(world)

    # When every watch is cut, history is compacted (resuming gets 410 Gone) and watches fail for a while
    down = Fault(500, "InternalError", "watch unavailable", watch=True)
    world.home.faults.append(down)
    world.home.expire_history()
    world.home.drop_watches()
    await eventually(lambda: down.hits > 0, what="a failed watch")

    # Then rollouts go on: each object's loop reads the API itself, it does not wait for watch events
    r2 = await roll_out(world)
    await eventually(lambda: r2 in world.deployments(world.remote), what="the canary without a watch")

    # When the ModelDeployment is deleted before the watch is back
    serving_until = world.remote.changes("deployments")[-1][0]
    await world.home.delete("modeldeployments", NAMESPACE, NAME)
    await asyncio.sleep(0.5)
    world.home.faults.remove(down)

    # Then the operator lists again, sees the deletion, and cleans up the remote cluster
    await eventually(lambda: world.md() is None, timeout=30, what="the ModelDeployment gone")
    assert world.remote.list("deployments", NAMESPACE) == [] and world.remote.list("services", NAMESPACE) == []
    check_capacity(world.remote, NAME, "eu-west", REPLICAS, until=serving_until)


async def test_an_unreachable_region_is_reported_never_promoted_and_recovers(world: World) -> None:
    # Given v1 serving in both clusters
    r1 = await serving(world)

    # When the remote cluster drops every connection for a while, and v2 is rolled out
    cut = Fault(drop=True)
    world.remote.faults.append(cut)
    r2 = await roll_out(world)

    # Then status says the region is unreachable and why, and nothing promotes
    await eventually(lambda: region(world, "eu-west").get("phase") == "Unreachable", what="eu-west Unreachable")
    assert "unreachable" in (region(world, "eu-west").get("message") or "")
    assert "eu-west" in degraded(world)
    await asyncio.sleep(1.5)  # many cycles, and the home region's analysis passing meanwhile
    assert world.status().get("stableRevision") == r1
    assert world.status().get("phase") != "Healthy"
    assert world.deployments(world.home)[r1]["spec"]["replicas"] == REPLICAS

    # When the region is back, the rollout goes on and completes, and the condition clears
    world.remote.faults.remove(cut)
    await eventually(lambda: healthy_on(world, r2), timeout=30, what="v2 Healthy")
    assert not degraded(world)
    held(world, r1, r2)


async def test_prometheus_down_or_slow_is_inconclusive_and_never_promotes(world: World) -> None:
    # Given v1 serving in both clusters
    r1 = await serving(world)

    # When Prometheus is down while v2's analysis runs, then answers later than its 2s timeout
    world.prometheus.down = True
    outage = datetime.now(UTC)
    r2 = await roll_out(world)

    def inconclusive(because: str) -> bool:
        found = [m for m in world.status().get("analysis") or [] if m["verdict"] == "Inconclusive"]
        return any(because in (m.get("reason") or "") for m in found)

    await eventually(lambda: inconclusive("503"), what="inconclusive measurements while down")
    world.prometheus.down, world.prometheus.delay = False, 2.5
    await eventually(lambda: inconclusive("timed out"), what="inconclusive measurements while slow")
    world.prometheus.delay = 0.0
    recovered = datetime.now(UTC)

    # Then while it was down or slow, every measurement was Inconclusive and nothing was promoted
    await eventually(lambda: healthy_on(world, r2), timeout=30, what="v2 Healthy once Prometheus is back")
    measured = {(m.metric, m.region, m.at): m for _, s in statuses(world.home, NAME) for m in s.analysis}
    # (a cycle that began just before the recovery may have queried just after it: a second's margin)
    until = recovered - timedelta(seconds=1)
    during = [m for m in measured.values() if outage <= datetime.fromisoformat(m.at) < until]
    assert len(during) >= 4 and all(m.verdict == "Inconclusive" and m.reason for m in during), during
    for _, status in statuses(world.home, NAME):
        at = datetime.fromisoformat(status.progress.step_started_at or recovered.isoformat())
        if status.stable_revision == r2:
            assert at >= recovered - timedelta(seconds=3), "promoted on measurements taken while Prometheus was out"
    held(world, r1, r2)


async def test_slow_answers_do_not_stretch_the_interval_between_measurements(world: World, tmp_path: Path) -> None:
    # Given v1 serving, an operator re-checking only every 30 s (its default: between measurements it
    # wakes only when one is due), and Prometheus answering every query 0.8 s late (within its timeout)
    await serving(world)
    world.operator.stop()
    operator = OperatorProcess(world.home, tmp_path, NAMESPACE, interval=30.0, name="operator-30s")
    operator.start()
    try:
        world.prometheus.delay = 0.8

        # When v2's ten-minute analysis measures every 2 s for a while
        v2 = model_deployment(world.prometheus.url, "v2")
        v2["spec"]["analysis"]["interval"] = "2s"
        r2 = revision(v2)
        await world.change(v2)

        def measured_at() -> list[datetime]:
            found = {m.at for _, s in statuses(world.home, NAME) if s.canary_revision == r2 for m in s.analysis}
            return sorted(datetime.fromisoformat(at) for at in found)

        await eventually(lambda: len(measured_at()) >= 6, timeout=40, what="six measurements of v2")
    finally:
        operator.stop()
        print(operator.output()[-3000:])

    # Then they came one interval apart: the time each cycle took (its slow queries) was not added to
    # the wait before the next one
    gaps = sorted((b - a).total_seconds() for a, b in itertools.pairwise(measured_at()))
    assert gaps[len(gaps) // 2] < 2.3, gaps


async def test_two_replicas_acting_at_once_take_each_step_once(world: World, tmp_path: Path) -> None:
    # Given two operator replicas running at once, both believing they are the only one
    second = OperatorProcess(world.home, tmp_path, NAMESPACE, name="operator-2")
    second.start()
    try:
        r1 = await serving(world)

        # When v2 is rolled out to a pause that waits for a person, and the person promotes it
        rollout = copy.deepcopy(QUICK) | {"steps": [{"setWeight": 50}, {"pause": {}}]}
        v2 = model_deployment(world.prometheus.url, "v2", rollout=rollout)
        r2 = revision(v2)
        await world.change(v2)
        await eventually(lambda: world.status().get("phase") == "Paused", what="Paused")
        command = {"action": "promote-full", "id": "c-1"}
        annotation = {"bellwether.dev/command": json.dumps(command)}  # what `bellwether promote --full` writes
        await world.home.patch("modeldeployments", NAMESPACE, NAME, {"metadata": {"annotations": annotation}})

        # Then the state converges, and each step was recorded and announced once
        await eventually(lambda: healthy_on(world, r2), timeout=30, what="v2 Healthy")
        assert world.status()["progress"]["lastCommand"] == "c-1"
        for reason in ("Deploying", "RolloutStarted", "PromotedFull", "Promoted"):
            assert len(events(world, reason)) == 1, (reason, [e["message"] for e in events(world, reason)])
        held(world, r1, r2)
        for replica in (world.operator, second):  # and both were handling it all along
            assert "Updating is processed: 1 succeeded" in replica.output()
    finally:
        second.stop()
        print(second.output()[-4000:])


async def test_replicas_with_skewed_clocks_never_promote_without_evidence(world: World) -> None:
    # Given v1 serving, and Prometheus with no data about v2 yet
    r1 = await serving(world)
    rule = world.prometheus.rule
    world.prometheus.rule = lambda query: None if r2 in query else rule(query)
    r2 = await roll_out(world)
    # its pods ready and its analysis step begun (a clock an hour ahead would otherwise find a canary
    # still loading past progressDeadline, and roll it back: not what this test is about)
    await eventually(
        lambda: world.status().get("canaryRevision") == r2 and world.status().get("step", 0) >= 1,
        what="v2 at its analysis step",
    )

    # When two more replicas, one with its clock an hour ahead and one an hour behind, run cycles
    # alongside the operator
    skews = (timedelta(hours=1), -timedelta(hours=1))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        replicas = [Context(Clusters(session, str(world.operator.kubeconfig)), max_requeue=0.3) for _ in skews]

        async def cycles(count: int) -> None:
            for _ in range(count):
                for ctx, skew in zip(replicas, skews, strict=True):
                    await reconcile(ctx, NAMESPACE, NAME, now=datetime.now(UTC) + skew)
                if healthy_on(world, r2):
                    return
                await asyncio.sleep(0.1)

        await cycles(10)

        # Then their timed steps may seem over (or far off), but with no evidence v2 is promoted nowhere
        assert world.status().get("stableRevision") == r1 and world.status().get("canaryRevision") == r2
        assert all(s.stable_revision == r1 for _, s in statuses(world.home, NAME))

        # When data arrives, the three replicas together finish the rollout
        world.prometheus.rule = rule
        await cycles(100)
    await eventually(lambda: healthy_on(world, r2), timeout=20, what="v2 Healthy")
    held(world, r1, r2)


async def test_idle_objects_recheck_at_spread_times_so_a_restart_does_not_keep_them_in_step(world: World) -> None:
    # Given v1 Healthy: nothing is due, so the next cycle is the periodic re-check (the operator's interval)
    await serving(world)
    world.operator.stop()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        ctx = Context(Clusters(session, str(world.operator.kubeconfig)), max_requeue=30.0)

        # When cycles run at the same moment, as every object's does after an operator restart
        waits = [(await reconcile(ctx, NAMESPACE, NAME)).requeue_after for _ in range(20)]

    # Then each waits up to 10% less than the interval, never more, and they do not all wait alike
    assert all(27.0 <= w <= 30.0 for w in waits), waits
    assert len({round(w, 3) for w in waits}) > 10, waits
