from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bellwether.api import ModelDeploymentSpec, parse


def _core_missing() -> str | None:
    """The loop tests need the engine and the judge; name what is missing instead of failing to import."""
    import importlib.util

    import bellwether.rollout

    missing = [f"bellwether.rollout.{f}" for f in ("decide", "analysis_due") if not hasattr(bellwether.rollout, f)]
    if importlib.util.find_spec("bellwether.analysis.measure") is None:
        missing.append("bellwether.analysis.measure")
    return ", ".join(missing) or None


MISSING = _core_missing()
collect_ignore = ["test_scenarios.py", "test_cli.py"] if MISSING else []


def pytest_report_header() -> str | None:
    return f"tests/sim: loop tests not collected, missing {MISSING}" if MISSING else None


DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"


@pytest.fixture
def demo_spec() -> ModelDeploymentSpec:
    return parse(yaml.safe_load(DEMO.read_text())).spec
