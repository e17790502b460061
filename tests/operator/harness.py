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

    def __init__(self, home: ApiServer, workdir: Path, namespace: str, interval: float = 0.3) -> None:
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(home.kubeconfig(namespace)))
        self.log = workdir / "operator.log"
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.args = [
            sys.executable,
            "-c",
            "from bellwether.cli.main import entrypoint; entrypoint()",
            "run",
            "--standalone",
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
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        self.proc = subprocess.Popen(self.args, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env)

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
    ready (unless the cluster is told to hold them back)."""

    def __init__(self, *servers: ApiServer) -> None:
        self.servers = servers
        self.hold: set[str] = set()  # names of servers whose pods never become ready
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for server in self.servers:
                if server.name in self.hold:
                    continue
                for dep in server.list("deployments"):
                    want = int(dep["spec"].get("replicas", 1))
                    status = dep.get("status") or {}
                    if status.get("readyReplicas") != want or status.get("replicas") != want:
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
