"""The chart rendered once per session for each set of values the delivery tests look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.chartkit import VALUES, Helm, Rendered, helm_binary, render


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(helm_binary())


@pytest.fixture(scope="session")
def helm_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm")


@pytest.fixture(scope="session")
def rendered(helm: Helm, helm_tmp: Path) -> dict[str, Rendered]:
    """Every values set, rendered lazily: a test asking for one set does not pay for the others."""
    return _LazyRenders(helm, helm_tmp)


class _LazyRenders(dict[str, Rendered]):
    def __init__(self, helm: Helm, tmp: Path) -> None:
        super().__init__()
        self.helm, self.tmp = helm, tmp

    def __missing__(self, name: str) -> Rendered:
        self[name] = render(self.helm, VALUES[name], self.tmp)
        return self[name]
