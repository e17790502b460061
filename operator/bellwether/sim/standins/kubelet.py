"""Plays the control plane of clusters served by API server stand-ins (`controllers`), and says
which pods back a Service, as its EndpointSlices do."""

from __future__ import annotations

import asyncio
import traceback
from dataclasses import dataclass

from bellwether.sim.standins.apiserver import ApiServer
from bellwether.sim.standins.controllers import ControlPlane, GpuPool

REVISION_LABEL = "bellwether.dev/revision"


class Kubelet:
    """Plays the control plane of some clusters (`controllers`): the Deployment and ReplicaSet
    controllers roll each Deployment's pods by its strategy, the scheduler binds them (to GPU nodes when
    the cluster has a `GpuPool`), kubelets make them ready `delay` seconds after they are bound (never,
    while the cluster is held), and the EndpointSlice controller puts the selected ready pods behind each
    Service. Deleted pods stay terminating for `grace` seconds (default 0: gone at once)."""

    def __init__(
        self,
        *servers: ApiServer,
        delay: float = 0.0,
        grace: float | None = None,
        gpus: dict[str, GpuPool] | None = None,
    ) -> None:
        self.servers = servers
        self.delay = delay
        self.hold: set[str] = set()  # names of servers whose pods never become ready
        self.planes = {s.name: ControlPlane(s) for s in servers}
        for name, pool in (gpus or {}).items():
            self.planes[name].pool = pool
        if grace is not None:
            for server in servers:
                server.pod_grace = grace
        self.errors: list[BaseException] = []
        self._task: asyncio.Task[None] | None = None

    def gpus(self, server: ApiServer, pool: GpuPool | None) -> None:
        """Give a cluster a GPU pool (None: unlimited)."""
        self.planes[server.name].pool = pool

    async def _run(self) -> None:
        while True:
            for server in self.servers:
                try:
                    await self.planes[server.name].step(self.delay, server.name in self.hold)
                except Exception as e:  # a bug in a stand-in must fail the test, not hang it
                    self.errors.append(e)
                    traceback.print_exc()
            await asyncio.sleep(0.1)

    def __enter__(self) -> Kubelet:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.errors and exc[0] is None:
            raise AssertionError(f"the control plane stand-in failed: {self.errors[0]!r}") from self.errors[0]


@dataclass(frozen=True)
class Backend:
    """A pod behind a Service, as its EndpointSlices say."""

    pod: str
    uid: str
    revision: str | None  # the pod's bellwether.dev/revision label
    ready: bool
    serving: bool
    terminating: bool


def backends(server: ApiServer, namespace: str, service: str, *, ready: bool = True) -> list[Backend]:
    """Which pods back `service` right now: the endpoints of its EndpointSlices (whoever wrote them),
    only those ready for traffic unless `ready` is False."""
    pods = {p["metadata"]["uid"]: p for p in server.list("pods", namespace)}
    out: list[Backend] = []
    for piece in server.list("endpointslices", namespace, f"kubernetes.io/service-name={service}"):
        for ep in piece.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            conditions = ep.get("conditions") or {}
            is_ready = conditions.get("ready") is not False  # unset means ready
            if ready and not is_ready:
                continue
            pod = pods.get(ref.get("uid", ""))
            revision = ((pod or {}).get("metadata", {}).get("labels") or {}).get(REVISION_LABEL)
            out.append(
                Backend(
                    pod=ref.get("name", ""),
                    uid=ref.get("uid", ""),
                    revision=revision,
                    ready=is_ready,
                    serving=conditions.get("serving", is_ready) is not False,
                    terminating=bool(conditions.get("terminating")),
                )
            )
    return sorted(out, key=lambda b: b.pod)
