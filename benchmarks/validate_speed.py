"""How long `bellwether validate` takes on large files (a 3 MB file once took 14 s); goal: under 1 s of CPU.

    python benchmarks/validate_speed.py

Prints the least CPU time over a few runs (what the work costs, not what a busy machine adds) for a
3 MB file of ~2,200 small ModelDeployments and for one 3 MB ModelDeployment, and the ratio to the goal.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bellwether.cli.main import main
from bellwether.cli.manifests import parse_text

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"
GOAL_SECONDS = 1.0


def cpu_seconds(work: Callable[[], Any], tries: int = 3) -> float:
    best = float("inf")
    for _ in range(tries):
        start = time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            work()
        best = min(best, time.process_time() - start)
    return best


def main_() -> None:
    demo = yaml.safe_load(EXAMPLE.read_text())
    one = yaml.dump(demo, Dumper=yaml.CSafeDumper)
    many = "".join(
        "---\n" + one.replace("name: llama-chat", f"name: m{i}", 1) for i in range(3_000_000 // len(one) + 1)
    )
    env = "".join(f"    - name: VAR_{i}\n      value: value-{i}\n" for i in range(70_000))
    with tempfile.TemporaryDirectory() as tmp:
        many_path, big_path = Path(tmp) / "many.yaml", Path(tmp) / "big.yaml"
        many_path.write_text(many)
        big_path.write_text(EXAMPLE.read_text().replace("  runtime:\n", "  runtime:\n    env:\n" + env, 1))
        rows = [
            ("read 3 MB, ~2,200 ModelDeployments", cpu_seconds(lambda: parse_text(many))),
            ("validate the same file", cpu_seconds(lambda: main(["validate", "-f", str(many_path)]))),
            ("validate one 3 MB ModelDeployment", cpu_seconds(lambda: main(["validate", "-f", str(big_path)]))),
        ]
    print(f"{'work':40} {'CPU s':>7} {'vs goal':>8}")
    for what, seconds in rows:
        print(f"{what:40} {seconds:7.2f} {seconds / GOAL_SECONDS:7.2f}x")


if __name__ == "__main__":
    main_()
