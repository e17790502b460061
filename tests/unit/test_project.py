"""Project-level guarantees: the source layout cannot shadow the standard library, the layering holds,
the CLI stays light, and CI runs every check the README promises."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stdlib_operator_module_is_not_shadowed_by_the_source_root() -> None:
    # `python -c` puts the working directory first on sys.path: exactly where `operator/` would shadow it.
    code = "import operator, sys; print(operator.__file__); print(operator.itemgetter(1)([0, 42]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    location, value = out.split()
    assert Path(location).parent == Path(sysconfig.get_paths()["stdlib"])
    assert value == "42"
    assert not (ROOT / "operator" / "__init__.py").exists()


def test_import_layering_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint_imports, "import-linter is part of the [test] extra"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


def test_console_scripts_point_at_the_cli() -> None:
    scripts = {e.name: e.value for e in entry_points(group="console_scripts") if e.name.endswith("bellwether")}
    assert scripts["bellwether"] == "bellwether.cli.main:entrypoint"
    assert scripts["kubectl-bellwether"] == "bellwether.cli.main:kubectl_plugin"


def test_crd_command_imports_no_operator_runtime() -> None:
    """`bellwether crd`, `docs` and `validate` run in CI jobs and pre-commit hooks: no kopf, no HTTP stack."""
    code = (
        "import sys, io, contextlib\n"
        "from bellwether.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['crd']) == 0 and main(['docs']) == 0\n"
        "print(sorted(m for m in ('kopf', 'aiohttp', 'kubernetes_asyncio', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ci_runs_every_check_and_the_readme_runs_ci() -> None:
    test_script = (ROOT / ".ci" / "test").read_text()
    for check in ("ruff check", "ruff format --check", "mypy", "lint-imports", "pytest"):
        assert check in test_script, check
    assert "bash .ci/install" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in readme[2:6] if line and not line.startswith("```")]
    assert commands[1] == "bash .ci/run"


def _imports(path: Path) -> set[str]:
    """The top-level modules a file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _is_sys_path(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "path" and ast.unparse(node.value) == "sys"


def _edits_sys_path(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ("insert", "append", "extend") and _is_sys_path(node.value):
            return True
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        )
        if any(_is_sys_path(t) for t in targets):  # sys.path = [...], sys.path += [...]
            return True
    return False


def test_tests_share_code_through_the_support_package_and_benchmarks_through_bellwether() -> None:
    """Shared code is imported by name (tests/ is on pytest's path), never found by editing sys.path;
    conftest.py files hold fixtures, not imports; the benchmarks run without the tests."""
    tests = ROOT / "tests"
    sources = sorted([*tests.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")])
    assert [str(p.relative_to(ROOT)) for p in sources if _edits_sys_path(p)] == []
    assert [str(p.relative_to(ROOT)) for p in sources if "conftest" in _imports(p)] == []
    in_tests = {p.stem for p in tests.rglob("*.py")} | {"support"}
    benchmarks = {p.name: _imports(p) & in_tests for p in (ROOT / "benchmarks").glob("*.py")}
    assert benchmarks and all(not found for found in benchmarks.values()), benchmarks
