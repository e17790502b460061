"""The pieces around the operator under test: the real `bellwether run` process, a kubelet stand-in
that makes Deployments ready, and a waiting helper."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from apiserver import ApiServer

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
    """Plays the Deployment controller and kubelets of some clusters: every Deployment's pods become
    ready (unless the cluster is told to hold them back), `delay` seconds after a scale-up; pods of a
    scale-down stop being ready at once."""

    def __init__(self, *servers: ApiServer, delay: float = 0.0) -> None:
        self.servers = servers
        self.delay = delay
        self.hold: set[str] = set()  # names of servers whose pods never become ready
        self._task: asyncio.Task[None] | None = None
        self._since: dict[tuple[str, str], tuple[int, float]] = {}  # (server, uid) -> (replicas, seen at)

    def _due(self, server: ApiServer, dep: dict[str, Any], want: int) -> bool:
        ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
        if want <= ready or self.delay <= 0:
            return True
        now = asyncio.get_running_loop().time()
        key = (server.name, dep["metadata"]["uid"])
        if self._since.get(key, (None,))[0] != want:
            self._since[key] = (want, now)
        return now - self._since[key][1] >= self.delay

    async def _run(self) -> None:
        while True:
            for server in self.servers:
                if server.name in self.hold:
                    continue
                for dep in server.list("deployments"):
                    want = int(dep["spec"].get("replicas", 1))
                    status = dep.get("status") or {}
                    if status.get("readyReplicas") != want or status.get("replicas") != want:
                        if not self._due(server, dep, want):
                            continue
                        meta = dep["metadata"]
                        ready = {
                            "replicas": want,
                            "readyReplicas": want,
                            "availableReplicas": want,
                            "updatedReplicas": want,
                        }
                        with contextlib.suppress(KeyError):
                            await server.patch("deployments", meta["namespace"], meta["name"], {"status": ready})
            await asyncio.sleep(0.1)

    def __enter__(self) -> Kubelet:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


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
