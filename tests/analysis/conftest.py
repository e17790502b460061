"""The live Prometheus fixtures: the fleet's exporter and a Prometheus scraping it (see `support.promserver`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bellwether.sim.exporter import FleetExporter
from support.promserver import Prometheus, start_prometheus


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
