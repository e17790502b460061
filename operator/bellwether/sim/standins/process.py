"""The real `bellwether run` process, as users start it, pointed at an API server stand-in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from bellwether.sim.standins.apiserver import ApiServer


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
