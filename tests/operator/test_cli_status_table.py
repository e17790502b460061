"""`bellwether status` shows what a person needs: phase, revisions, each region, the latest measurement."""

from __future__ import annotations

from bellwether.cli.control import render_status


def test_the_status_table_shows_regions_the_latest_measurements_and_conditions() -> None:
    obj = {
        "metadata": {"name": "chat", "namespace": "ml"},
        "status": {
            "phase": "Progressing",
            "stableRevision": "7c9f2a1b",
            "canaryRevision": "5d1e88f0",
            "canaryWeight": 10,
            "canaryShare": "20%",
            "step": 1,
            "message": "step 2/5 in us-east: analysis 3/10 measurements successful",
            "regions": [
                {
                    "name": "us-east",
                    "replicas": 4,
                    "stableReady": 4,
                    "canaryReady": 1,
                    "weight": 10,
                    "share": 20,
                    "phase": "Analyzing",
                },
                {"name": "eu-west", "stableReady": None, "phase": "Unreachable", "message": "Secret ml/x not found"},
            ],
            "analysis": [
                {"metric": "p99", "region": "us-east", "verdict": "Failed", "value": 9.0, "at": "2026-11-22T18:00:00Z"},
                {
                    "metric": "p99",
                    "region": "us-east",
                    "verdict": "Successful",
                    "value": 1.8234,
                    "baseline": 1.74,
                    "bound": "<= 1.5x stable",
                    "at": "2026-11-22T18:00:30Z",
                },
            ],
            "conditions": [{"type": "Progressing", "status": "True", "reason": "Analyzing", "message": "step 2/5"}],
        },
    }
    text = render_status(obj)
    assert "ModelDeployment ml/chat  phase: Progressing" in text
    assert "canary weight: 10% (share as routed: 20%)" in text
    regions_section = text.split("REGIONS\n", 1)[1].split("\n\n", 1)[0]
    region_lines = {line.split()[0]: line for line in regions_section.splitlines()[1:]}
    assert "Analyzing" in region_lines["us-east"] and "10%" in region_lines["us-east"]
    # The share the pods give next to the weight asked for, ready stable pods against the wanted count.
    assert region_lines["us-east"].split()[2:6] == ["4/4", "1", "10%", "20%"]
    assert region_lines["eu-west"].split()[2] == "?"  # not seen: unknown, not zero
    assert "Unreachable" in region_lines["eu-west"] and "Secret ml/x not found" in region_lines["eu-west"]
    # Only the newest measurement per region and metric is shown.
    assert "1.823" in text and "Successful" in text and "Failed" not in text
    assert "<= 1.5x stable" in text
    assert "Progressing  True" in text


def test_a_new_object_without_status_still_renders() -> None:
    text = render_status({"metadata": {"name": "chat", "namespace": "ml"}})
    assert "phase: Pending" in text and "stable: -" in text


def test_the_status_table_shows_each_gates_last_answer() -> None:
    gate = {
        "name": "change-freeze",
        "type": "preRollout",
        "revision": "5d1e88f0",
        "phase": "Held",
        "attempts": 3,
        "code": 503,
        "message": "HTTP 503: change freeze until 18:00 UTC",
    }
    text = render_status(
        {"metadata": {"name": "chat", "namespace": "ml"}, "status": {"phase": "Paused", "gates": [gate]}}
    )
    section = text.split("GATES\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section[0].split() == ["NAME", "TYPE", "REVISION", "PHASE", "ATTEMPTS", "LAST", "ANSWER"]
    assert section[1].split()[:5] == ["change-freeze", "preRollout", "5d1e88f0", "Held", "3"]
    assert section[1].endswith("HTTP 503: change freeze until 18:00 UTC")
    assert "GATES" not in render_status({"metadata": {"name": "chat", "namespace": "ml"}})
