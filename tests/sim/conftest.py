from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bellwether.api import ModelDeploymentSpec, parse

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"


@pytest.fixture
def demo_spec() -> ModelDeploymentSpec:
    return parse(yaml.safe_load(DEMO.read_text())).spec
