"""`bellwether demo` and `bellwether simulate` as a user runs them."""

from __future__ import annotations

import io
import json
import re
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


async def test_the_demo_shows_the_shares_the_world_achieved_and_ends_with_stable_alone() -> None:
    out = io.StringIO()
    assert await demo(out, fast=True) == 0
    text = out.getvalue()
    timeline = text[: text.index("Summary")]
    stable = re.search(r"now serving (\w+)", text[text.index("Summary") :])
    assert stable is not None
    for region in ("us-east", "eu-west", "ap-south"):
        lines = [line for line in timeline.splitlines() if f"] {region}" in line and " traffic " in line]
        assert any("(canary asked 10%)" in line for line in lines)  # the share next to the weight asked
        assert lines[-1].endswith(f"traffic stable {stable[1]} 100%"), lines[-1]
    now = next(line for line in text.splitlines() if "traffic now" in line)
    assert now.count(f"{stable[1]} 100%") == 3


def test_simulate_prints_the_outcome_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "-f", str(EXAMPLE), "--scenario", "latency-regression", "--seed", "1", "--output", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (doc["result"], doc["expected"], doc["asExpected"]) == ("rolled-back", "rolled-back", True)
    assert doc["regions_touched"] == ["us-east"]
    assert any(e["kind"] == "measurement" for e in doc["timeline"])
    assert doc["podCap"] == {"us-east": 5, "eu-west": 5, "ap-south": 3}
    assert all(doc["pod_peak"][r] <= cap for r, cap in doc["podCap"].items())
    asked = [p for p in doc["traffic"]["us-east"] if p["requested"] == 10 and p["achieved"].get(doc["revision"])]
    # 10% is not a share 5 pods can carry: what is reported is what the endpoints gave, 20% or more.
    assert asked and all(p["achieved"][doc["revision"]] >= 20 for p in asked)
    assert all(sum(p["achieved"].values()) in (0, 99, 100, 101) for p in doc["traffic"]["us-east"])


def test_simulate_says_when_a_weight_cannot_be_met(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "-f", str(EXAMPLE), "--scenario", "healthy"]) == 0
    text = capsys.readouterr().out
    assert "pods at most:    us-east 5/5, eu-west 5/5, ap-south 3/3" in text
    assert "10% cannot be met with 2 replicas: 33% was the closest" in text


def test_simulate_says_what_is_wrong_with_an_invalid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "md.yaml"
    bad.write_text("kind: ModelDeployment\nmetadata: {name: x}\nspec:\n  model: {name: m}\n  regions: []\n")
    assert main(["simulate", "-f", str(bad), "--scenario", "healthy"]) == 1
    err = capsys.readouterr().err
    assert "spec.runtime: is required" in err
    assert "spec.regions" in err
