"""`bellwether demo` and `bellwether simulate` as a user runs them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from bellwether.cli.demo import DEMO_MANIFEST, demo
from bellwether.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"


def test_the_example_file_is_the_demos_manifest() -> None:
    assert yaml.safe_load(EXAMPLE.read_text()) == yaml.safe_load(DEMO_MANIFEST)


async def test_the_demo_promotes_a_healthy_revision_then_rolls_back_a_bad_one() -> None:
    out = io.StringIO()
    assert await demo(out, fast=True) == 0
    text = out.getvalue()
    summary = text[text.index("Summary") :]
    assert "promoted" in summary and "rolled-back" in summary
    why = next(line for line in summary.splitlines() if "why:" in line)
    assert "eu-west" in why and ("latency" in why or "ttft" in why)  # p99 or time to first token: both latencies
    assert "\x1b[" not in text  # no colour unless stdout is a terminal
    assert "eu-west" in next(line for line in summary.splitlines()[3:] if "regions touched" in line)


def test_simulate_prints_the_outcome_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "-f", str(EXAMPLE), "--scenario", "latency-regression", "--seed", "1", "--output", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (doc["result"], doc["expected"], doc["asExpected"]) == ("rolled-back", "rolled-back", True)
    assert doc["regions_touched"] == ["us-east"]
    assert any(e["kind"] == "measurement" for e in doc["timeline"])


def test_simulate_says_what_is_wrong_with_an_invalid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "md.yaml"
    bad.write_text("kind: ModelDeployment\nmetadata: {name: x}\nspec:\n  model: {name: m}\n  regions: []\n")
    assert main(["simulate", "-f", str(bad), "--scenario", "healthy"]) == 1
    err = capsys.readouterr().err
    assert "spec.runtime: is required" in err
    assert "spec.regions" in err
