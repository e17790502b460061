"""The pieces around the operator under test: the real `bellwether run` process, the stand-in of a
cluster's control plane (controllers, scheduler, kubelets), what backs a Service, and a waiting helper."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from apiserver import ApiServer
from controllers import ControlPlane, GpuPool

REVISION_LABEL = "bellwether.dev/revision"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """`bellwether run` as users start it, pointed at the home stand-in through a kubeconfig file."""

    def __init__(
        self,
        home: ApiServer,
        workdir: Path,
        namespace: str,
        interval: float = 0.3,
        *,
        name: str = "operator",
        peering: str | None = None,
        priority: int | None = None,
    ) -> None:
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(home.kubeconfig(namespace)))
        self.log = workdir / f"{name}.log"
        self.metrics_port = free_port()
        self.health_port = free_port()
        scope = ["--standalone"] if peering is None else ["--peering", peering]
        scope += [] if priority is None else ["--priority", str(priority)]
        self.args = [
            sys.executable,
            "-c",
            "from bellwether.cli.main import entrypoint; entrypoint()",
            "run",
            *scope,
            "--namespace",
            namespace,
            "--kubeconfig",
            str(self.kubeconfig),
            "--metrics-port",
            str(self.metrics_port),
            "--health-port",
            str(self.health_port),
            "--interval",
            str(interval),
            "--log-format",
            "text",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or start again: the log of every life of the process is kept, one after the other)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no finalizers, requests in flight are cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            with self.log.open("ab") as log:
                log.write(b"\n----- killed -----\n")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Kubelet:
    """Plays the control plane of some clusters (`controllers.py`): the Deployment and ReplicaSet
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


async def eventually(
    check: Callable[[], T | None] | Callable[[], Awaitable[T | None]], timeout: float = 20.0, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last: {last!r}")
