"""Real Prometheus servers (Debian's package) on loopback ports, fed by the simulated fleet's exporter.

A module of its own, not the conftest, so test modules import it by a name no other tier's conftest has.

Two kinds. `prometheus` scrapes the exporter live, every second, for what needs a live server: the
per-interval queries, an outage, `bellwether check`. `history` starts on TSDB blocks backfilled with
`promtool tsdb create-blocks-from openmetrics` from the same request model: twenty minutes of canary
and stable traffic exist the moment it is ready, sampled every 5 s as a real scrape would. The
request-level judge is tested there, at many points of that history, with nothing depending on
whether scrapes keep time on a loaded machine (live 1 s scrapes with 3 s windows found no data under
load; a backfilled block cannot miss a sample).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from bellwether.sim.exporter import FleetExporter

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


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


def _installed(binary: str) -> None:
    if not os.path.exists(binary):
        message = "Debian's prometheus is not installed (.ci/install installs it: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def start_prometheus(tmp: Path, targets: list[int]) -> Prometheus:
    _installed(PROMETHEUS)
    port = _free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: fleet\n"
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: [{', '.join(f'127.0.0.1:{t}' for t in targets)}]}}]\n"
    )
    prom = _run(config, tmp / "data", port)
    for target in targets:
        prom.wait_for_scrapes(target)
    return prom


def _run(config: Path, data: Path, port: int) -> Prometheus:
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
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
    return prom


def backfilled(tmp: Path, exporter: FleetExporter, start: float, end: float, scrape: float = 5.0) -> Prometheus:
    """A Prometheus whose TSDB already holds the exporter's series from `start` to `end`."""
    _installed(PROMTOOL)
    metrics = tmp / "history.om"
    with metrics.open("w") as out:
        exporter.write_openmetrics(out, start, end, scrape)
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(metrics), str(tmp / "data")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = tmp / "prometheus.yml"
    config.write_text("global: {scrape_interval: 5s}\nscrape_configs: []\n")
    return _run(config, tmp / "data", _free_port())
