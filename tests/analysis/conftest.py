"""A real Prometheus (Debian's package) on a loopback port, scraping the simulated fleet's exporter every second."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bellwether.sim.exporter import FleetExporter

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_for_scrapes(self, port: int, timeout: float = 30.0) -> None:
        """Until the exporter's target is up: the first data point exists."""
        deadline = time.monotonic() + timeout
        query = urllib.parse.quote(f'up{{instance="127.0.0.1:{port}"}} == 1')
        while time.monotonic() < deadline:
            try:
                if _get(f"{self.url}/api/v1/query?query={query}")["data"]["result"]:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"Prometheus did not scrape the exporter on port {port} within {timeout}s")


def start_prometheus(tmp: Path, targets: list[int]) -> Prometheus:
    if not os.path.exists(PROMETHEUS):
        message = "Debian's prometheus is not installed (.ci/install installs it: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: fleet\n"
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: [{', '.join(f'127.0.0.1:{t}' for t in targets)}]}}]\n"
    )
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    prom = Prometheus(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            urllib.request.urlopen(f"{prom.url}/-/ready", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    for target in targets:
        prom.wait_for_scrapes(target)
    return prom


@pytest.fixture(scope="session")
def fleet() -> Iterator[FleetExporter]:
    exporter = FleetExporter(namespace="ml", name="llama", seed=7)
    exporter.start()
    yield exporter
    exporter.stop()


@pytest.fixture(scope="session")
def prometheus(fleet: FleetExporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    prom = start_prometheus(tmp_path_factory.mktemp("prometheus"), [fleet.port])
    yield prom
    prom.stop()
