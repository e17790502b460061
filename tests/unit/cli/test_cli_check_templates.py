"""`bellwether check` runs the metrics of the ClusterAnalysisTemplates a ModelDeployment names, merged as
the operator merges them: templates from its files first, then from the cluster (an API server stand-in
on a loopback port), and says which template it cannot find."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_cli_check import StandIn, spec_doc

from bellwether.cli.check import MARKS
from bellwether.cli.main import main
from bellwether.sim.standins.apiserver import ApiServer

SLO: dict[str, Any] = {
    "apiVersion": "bellwether.dev/v1alpha1",
    "kind": "ClusterAnalysisTemplate",
    "metadata": {"name": "fleet-slo"},
    "spec": {
        "metrics": [
            {"name": "from-template", "query": 'sum(rate(ok_total{job="other"}[{{interval}}]))', "max": 1},
            {"name": "ok", "query": 'sum(rate(none_total{job="other"}[{{interval}}]))', "max": 1},  # replaced inline
        ]
    },
}


@pytest.fixture(scope="module")
def prometheus() -> Iterator[StandIn]:
    server = StandIn(targets=False)
    server.start()
    yield server
    server.stop()


def naming(url: str) -> dict[str, Any]:
    doc = spec_doc(url)
    doc["spec"]["analysis"]["interval"] = "2m"
    doc["spec"]["analysis"]["metrics"] = doc["spec"]["analysis"]["metrics"][:1]  # "ok"
    doc["spec"]["analysis"]["templates"] = [{"name": "fleet-slo"}]
    return doc


def checked(capsys: Any, *args: str) -> tuple[int, dict[str, str], str]:
    code = main(["check", *args, "--revision", "abc"])
    out, err = capsys.readouterr()
    verdicts = [line.split() for line in out.splitlines() if line.startswith("  ")]
    marks = {words[1]: words[0] for words in verdicts if words[0] in MARKS.values()}
    return code, marks, err


def test_a_template_in_the_same_file_is_merged_and_its_queries_run(
    prometheus: StandIn, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all([SLO, naming(prometheus.url)]))
    code, marks, err = checked(capsys, "-f", str(path))
    # the inline "ok" wins over the template's (which would be EMPTY); the template adds its own metric
    assert (code, marks) == (0, {"ok": "ok", "from-template": "ok"}), err


def test_templates_from_another_file(prometheus: StandIn, tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "md.yaml").write_text(yaml.safe_dump(naming(prometheus.url)))
    templates = tmp_path / "templates"
    templates.mkdir()
    broken = copy.deepcopy(SLO)
    broken["spec"]["metrics"][0]["query"] = 'sum(rate(none_total{job="other"}[{{interval}}]))'
    (templates / "slo.yaml").write_text(yaml.safe_dump(broken))
    code, marks, _ = checked(capsys, "-f", str(tmp_path / "md.yaml"), "--templates", str(templates))
    assert code == 3 and marks == {"ok": "ok", "from-template": "EMPTY"}


def test_a_template_nowhere_to_be_found_is_named(prometheus: StandIn, tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "md.yaml").write_text(yaml.safe_dump(naming(prometheus.url)))
    code, _, err = checked(capsys, "-f", str(tmp_path / "md.yaml"), "--kubeconfig", str(tmp_path / "none"))
    assert code == 1
    assert "ClusterAnalysisTemplate 'fleet-slo' not in the files, and no cluster to read it from" in err


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ApiServer, Path]]:
    loop = asyncio.new_event_loop()
    server = ApiServer("home")
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(server.kubeconfig()))
    yield server, kubeconfig
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_templates_are_read_from_the_cluster(
    prometheus: StandIn, tmp_path: Path, capsys: Any, cluster: tuple[ApiServer, Path]
) -> None:
    server, kubeconfig = cluster
    (tmp_path / "md.yaml").write_text(yaml.safe_dump(naming(prometheus.url)))
    code, _, err = checked(capsys, "-f", str(tmp_path / "md.yaml"), "--kubeconfig", str(kubeconfig))
    assert code == 1 and "spec.analysis.templates[0]: ClusterAnalysisTemplate 'fleet-slo' not found" in err
    server.objects[("clusteranalysistemplates", None, "fleet-slo")] = copy.deepcopy(SLO)
    code, marks, err = checked(capsys, "-f", str(tmp_path / "md.yaml"), "--kubeconfig", str(kubeconfig))
    assert (code, marks) == (0, {"ok": "ok", "from-template": "ok"}), err
