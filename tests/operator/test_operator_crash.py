"""Crash safety: the operator is SIGKILLed at seeded random points while it rolls revisions out, and
started again; every rollout must end as if nothing had happened.

One operator runs four rollouts side by side, one per scenario (one region or two clusters in two
waves; a good revision promoted or a failing one rolled back), so every kill point hits all four at
whatever stage each one is. A kill point is a write the operator sends to an API server (home or
remote): the process dies at that moment and the write either lands or is lost with the connection.
Kills come while v1 is created, while v2 rolls out, and while the ModelDeployments are deleted. Then,
over the full history of writes the API server stand-ins received:

- each rollout ends Healthy on the new revision, or RolledBack on the old one, as without kills;
- no region ever had fewer ready replicas than it asks for, and no step was ever applied twice over;
- no object is orphaned: only the final revision is left, and deleting a ModelDeployment leaves
  nothing behind in either cluster;
- status only moves forward: generations, waves and steps never go back, a failing revision is never
  promoted and a good one never rolled back, and the promotion history only grows.

`BELLWETHER_CRASH_RUNS=N` repeats it N times with different seeds (default 1); `BELLWETHER_CRASH_SEED`
changes the first seed.
"""

from __future__ import annotations

import asyncio
import copy
import os
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bellwether.api.crd import crd
from bellwether.sim.standins.apiserver import ApiServer
from bellwether.sim.standins.kubelet import Kubelet
from bellwether.sim.standins.process import OperatorProcess
from bellwether.sim.standins.prometheus import PrometheusStandIn, labels_in
from support.invariants import check_capacity, check_status_history
from support.operator_world import kubeconfig_secret, model_deployment
from support.specs import NAMESPACE, revision
from support.waiting import eventually

RUNS = int(os.environ.get("BELLWETHER_CRASH_RUNS", "1"))
FIRST_SEED = int(os.environ.get("BELLWETHER_CRASH_SEED", "8"))
KILLS = (1, 3, 1)  # while v1 is created, while v2 rolls out, while the ModelDeployments are deleted
REPLICAS = 2


@dataclass(frozen=True)
class Scenario:
    name: str  # also the ModelDeployment's name
    regions: tuple[str, ...]  # us-east lives in the home cluster, eu-west in the remote one
    waves: tuple[tuple[str, ...], ...]
    bad_in: str | None  # the region where v2 fails its analysis (None: v2 is good)

    def spec(self, prometheus: str, version: str) -> dict[str, Any]:
        # The model version carries the name, so each scenario's revisions are its own.
        md = model_deployment(prometheus, f"{self.name}-{version}")
        md["metadata"]["name"] = self.name
        md["spec"]["regions"] = [r for r in md["spec"]["regions"] if r["name"] in self.regions]
        md["spec"]["rollout"]["waves"] = [list(w) for w in self.waves]
        md["spec"]["rollout"]["steps"] = [{"setWeight": 50}, {"analysis": {"duration": "1s"}}]
        return md


BOTH = ("us-east", "eu-west")
SCENARIOS = [
    Scenario("one-promoted", ("us-east",), (("us-east",),), None),
    Scenario("one-rolled-back", ("us-east",), (("us-east",),), "us-east"),
    Scenario("waves-promoted", BOTH, (("us-east",), ("eu-west",)), None),
    Scenario("waves-rolled-back-in-second", BOTH, (("us-east",), ("eu-west",)), "eu-west"),
]


@dataclass
class Killer:
    """Counts the operator's writes and SIGKILLs it at a random one (1 to `gap` writes after it was
    armed or last killed), as often as armed for; the write then lands or is lost, at random too."""

    operator: OperatorProcess
    rng: random.Random
    gap: int = 20
    points: list[str] = field(default_factory=list)
    died: asyncio.Event = field(default_factory=asyncio.Event)
    _left: int = 0
    _countdown: int = 0

    def arm(self, kills: int, gap: int | None = None) -> None:
        self.gap = gap or self.gap
        self._left, self._countdown = kills, self.rng.randint(1, self.gap)

    def on_write(self, method: str, path: str) -> bool:
        proc = self.operator.proc
        if self._left <= 0 or proc is None or proc.poll() is not None:
            return True
        self._countdown -= 1
        if self._countdown > 0:
            return True
        self.operator.kill()
        lands = self.rng.random() < 0.5
        self.points.append(f"{method} {path} ({'landed' if lands else 'lost'})")
        self._left, self._countdown = self._left - 1, self.rng.randint(1, self.gap)
        self.died.set()
        return lands

    async def restart_forever(self) -> None:
        while True:
            await self.died.wait()
            self.died.clear()
            await asyncio.sleep(self.rng.uniform(0.0, 0.3))
            self.operator.start()


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[list[int]]:
    """Kill points survived per run (of all scenarios at once), printed when the module is done."""
    runs: list[int] = []
    yield runs
    line = f"crash safety: {len(runs)} runs x {len(SCENARIOS)} rollouts, kill points survived: {sum(runs)} {runs}"
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        print("\n" + line)


@dataclass
class CrashWorld:
    servers: dict[str, ApiServer]  # region -> the API server stand-in of its cluster
    prometheus: PrometheusStandIn
    operator: OperatorProcess
    bad: set[tuple[str, str]]  # (region, revision) answering with a high error rate

    @property
    def home(self) -> ApiServer:
        return self.servers["us-east"]

    def status(self, name: str) -> dict[str, Any]:
        md = self.home.get("modeldeployments", NAMESPACE, name)
        return (md or {}).get("status") or {}

    def ours(self, name: str, region: str, plural: str) -> list[dict[str, Any]]:
        return self.servers[region].list(
            plural, NAMESPACE, f"bellwether.dev/deployment={name},bellwether.dev/region={region}"
        )

    def revisions(self, name: str, region: str) -> dict[str, int]:
        return {
            d["metadata"]["labels"]["bellwether.dev/revision"]: int(d["spec"]["replicas"])
            for d in self.ours(name, region, "deployments")
        }

    def settled(self, scenario: Scenario, phase: str, stable: str) -> bool:
        status = self.status(scenario.name)
        return (
            status.get("phase") == phase
            and status.get("stableRevision") == stable
            and all(self.revisions(scenario.name, r) == {stable: REPLICAS} for r in scenario.regions)
        )


@pytest.fixture
async def crash_world(home: ApiServer, remote: ApiServer, tmp_path: Path) -> AsyncIterator[CrashWorld]:
    bad: set[tuple[str, str]] = set()

    def error_rate(query: str) -> float:
        labels = labels_in(query)
        return 0.4 if (labels.get("region", ""), labels.get("revision", "")) in bad else 0.001

    prometheus = PrometheusStandIn(error_rate)
    await prometheus.start()
    for server in (home, remote):
        await server.put("namespaces", {"metadata": {"name": NAMESPACE}})
    await home.put("customresourcedefinitions", crd())
    await home.put("secrets", kubeconfig_secret(remote))
    operator = OperatorProcess(home, tmp_path, NAMESPACE)
    with Kubelet(home, remote, delay=0.3):
        try:
            yield CrashWorld({"us-east": home, "eu-west": remote}, prometheus, operator, bad)
        finally:
            operator.stop()
            print(operator.output()[-8000:])  # shown by pytest when a test fails
            await prometheus.stop()


@pytest.mark.parametrize("seed", [FIRST_SEED + run for run in range(RUNS)])
async def test_rollouts_survive_the_operator_being_killed_anywhere(
    crash_world: CrashWorld, seed: int, tally: list[int]
) -> None:
    world, home = crash_world, crash_world.home
    killer = Killer(world.operator, random.Random(seed))
    home.on_write = world.servers["eu-west"].on_write = killer.on_write
    restarts = asyncio.get_running_loop().create_task(killer.restart_forever())
    v1 = {s.name: s.spec(world.prometheus.url, "v1") for s in SCENARIOS}
    v2 = {s.name: s.spec(world.prometheus.url, "v2") for s in SCENARIOS}
    r1 = {name: revision(md) for name, md in v1.items()}
    r2 = {name: revision(md) for name, md in v2.items()}
    try:
        # Given v1 of every scenario rolled out, the operator killed while it creates them
        killer.arm(KILLS[0])
        world.operator.start()
        for md in v1.values():
            await home.put("modeldeployments", copy.deepcopy(md))
        for s in SCENARIOS:
            await eventually(lambda s=s: world.settled(s, "Healthy", r1[s.name]), timeout=30, what=f"{s.name} v1")

        # When v2 is rolled out, good or failing its analysis in one region, under more kills
        killer.arm(KILLS[1])
        for s in SCENARIOS:
            if s.bad_in:
                world.bad.add((s.bad_in, r2[s.name]))
            await home.patch("modeldeployments", NAMESPACE, s.name, {"spec": v2[s.name]["spec"]})

        # Then each ends as without the kills: v2 everywhere, or v1 everywhere and RolledBack
        final = {s.name: (r1[s.name], "RolledBack") if s.bad_in else (r2[s.name], "Healthy") for s in SCENARIOS}
        for s in SCENARIOS:
            stable, phase = final[s.name]
            await eventually(
                lambda s=s, p=phase, r=stable: world.settled(s, p, r), timeout=40, what=f"{s.name} {phase}"
            )
            # and nothing else is left running: the final revision's Service and the serving one
            for region in s.regions:
                services = {svc["metadata"]["name"] for svc in world.ours(s.name, region, "services")}
                assert services == {f"{s.name}-{region}", f"{s.name}-{region}-{stable}"}, (s.name, region)

        # When the ModelDeployments are deleted (the operator killed while it cleans up)
        serving_until = {region: server.changes("deployments")[-1][0] for region, server in world.servers.items()}
        killer.arm(KILLS[2], gap=4)  # deleting makes few writes
        for s in SCENARIOS:
            await home.delete("modeldeployments", NAMESPACE, s.name)

        # Then neither cluster keeps anything of them
        for s in SCENARIOS:
            await eventually(lambda s=s: home.get("modeldeployments", NAMESPACE, s.name) is None, what=f"{s.name} gone")
            for region in s.regions:
                assert world.ours(s.name, region, "deployments") == [], (s.name, region)
                assert world.ours(s.name, region, "services") == [], (s.name, region)

        # And over the whole history: capacity held in every region, status only moved forward
        for s in SCENARIOS:
            for region in s.regions:
                check_capacity(world.servers[region], s.name, region, REPLICAS, serving_until[region])
            check_status_history(home, s.name, r1[s.name], r2[s.name], promoted=s.bad_in is None)
    finally:
        restarts.cancel()
        print(f"kill points of seed {seed}:", *killer.points, sep="\n  ")
    assert len(killer.points) == sum(KILLS), "the operator made fewer writes than the kill points need"
    tally.append(len(killer.points))
