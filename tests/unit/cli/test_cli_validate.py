"""`bellwether validate` reads files as kubectl reads them and fails what `kubectl apply` would fail:
values as go-yaml gives them to the API server, Lists item by item, stdin and directories, files
without a ModelDeployment, queries Prometheus cannot parse; and it reads a 3 MB file in well under a
second."""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bellwether.cli.main import main
from bellwether.cli.manifests import ManifestError, PurePythonParser, parse_text

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
DEMO = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())


def run(capsys: Any, *args: str) -> tuple[int, str]:
    code = main(["validate", *args])
    return code, capsys.readouterr().out


def demo(**metadata: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DEMO)
    doc["metadata"].update(metadata)
    return doc


# --- Values as the API server receives them (go-yaml v2 through sigs.k8s.io/yaml), not as PyYAML makes them.

KUBECTL_READS = [
    ("version: 2026-11-20", "2026-11-20"),  # PyYAML: datetime.date; go-yaml keeps timestamps as strings
    ("version: 2026-11-20T10:00:00Z", "2026-11-20T10:00:00Z"),
    ("v: y", True),  # YAML 1.1 booleans as go-yaml has them, y and n included
    ("v: No", False),
    ("v: on", True),
    ("v: 1e3", 1000),  # PyYAML: the string '1e3'
    ("v: 0o17", 15),
    ("v: 0x1F", 31),
    ("v: 0755", 493),
    ("v: 1_000", 1000),
    ("v: 1:30", "1:30"),  # PyYAML: 90 (sexagesimal)
    ("v: 4.0", 4),  # JSON has no 4.0: Go writes it as 4, an integer
    ("v: 1.10", 1.1),
    ("v: 1e400", "1e400"),  # out of range: Go keeps the text
    ("v: '4'", "4"),
    ("v: !!str 4", "4"),
    ("v: ~", None),
    ("v:", None),
    ("v: -.inf", float("-inf")),
    ("a: &x {b: 1}\nv: {<<: *x, c: 2}", {"c": 2, "b": 1}),
    ("v: {b: 1, <<: {b: 2, d: 3}}", {"b": 1, "d": 3}),  # explicit keys win over merged ones
]


@pytest.mark.parametrize(("text", "value"), KUBECTL_READS, ids=[t for t, _ in KUBECTL_READS])
def test_scalars_read_as_kubectl_sends_them(text: str, value: Any) -> None:
    [(doc, line)] = parse_text(text)
    key = "version" if text.startswith("version") else "v"
    assert doc[key] == value and type(doc[key]) is type(value)
    assert line == 1


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: 1\nb:\n  c: 1\n  c: 2\n", "line 4: mapping key 'c' already defined at line 3"),
        ("a: [1\n", "line 2:"),
        ("a: &x [*x]\n", "refers to a value that contains it"),
        ("a: *nothing\n", "names no anchor"),
        ('{"a": 1, "a": 2}', "duplicate field 'a'"),
        ('{"a": NaN}', "NaN is not JSON"),
        ("? [a]\n: 1\n", "a mapping key must be a string or a number"),
    ],
)
def test_what_kubectl_cannot_read_is_an_error_with_its_line(text: str, said: str) -> None:
    with pytest.raises(ManifestError, match=said.replace("[", r"\[").replace("*", r"\*")):
        parse_text(text)


def test_documents_json_and_the_pure_python_parser_read_alike() -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        text = path.read_text()
        expected = [d for d in yaml.safe_load_all(text) if d is not None]
        assert [v for v, _ in parse_text(text) if v is not None] == expected
        assert parse_text(text, PurePythonParser) == parse_text(text)
    docs = [demo(name="a"), demo(name="b")]
    assert [v for v, _ in parse_text("\n".join(json.dumps(d, indent=1) for d in docs))] == docs
    assert [line for _, line in parse_text("a: 1\n---\n# two\nb: 2\n")] == [1, 2]


# --- What is checked, and what fails.


def test_quoted_numbers_and_a_bad_name_are_refused_as_the_api_server_refuses_them(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "md.yaml"
    text = (EXAMPLES / "demo.yaml").read_text().replace("replicas: 4", 'replicas: "4"', 1)
    path.write_text(text.replace("port: 8000", 'port: "8000"').replace("name: llama-chat", "name: Bad_Name"))
    code, out = run(capsys, "-f", str(path))
    assert code == 1
    assert f"{path}: Bad_Name: invalid" in out
    assert "spec.regions[0].replicas: must be a whole number (got '4'); the API server takes no quoted" in out
    assert "spec.runtime.port: must be a whole number (got '8000')" in out
    assert "metadata.name: must be a Kubernetes object name (a DNS subdomain)" in out


def test_an_unquoted_date_version_is_valid_as_kubectl_reads_it(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "md.yaml"
    path.write_text((EXAMPLES / "demo.yaml").read_text().replace('version: "2026-10-01"', "version: 2026-10-01"))
    assert run(capsys, "-f", str(path))[0] == 0


def test_a_valid_file_keeps_its_notes(capsys: Any) -> None:
    code, out = run(capsys, "-f", str(EXAMPLES / "demo.yaml"))
    assert code == 0
    assert "demo.yaml: llama-chat: valid" in out
    assert "  note: setWeight 10 gives 20% in us-east (4 stable + 1 canary pods serving)" in out


@pytest.mark.parametrize(
    ("disruption", "replicas", "note"),
    [
        ({"maxUnavailable": 0}, 4, "disruption.maxUnavailable 0 allows no eviction in us-east"),
        ({}, 1, "disruption.maxUnavailable 1 lets a drain evict all 1 pod(s) of us-east at once"),
        ({"maxUnavailable": "50%"}, 1, "disruption.maxUnavailable 50% lets a drain evict all 1 pod(s) of us-east"),
    ],
)
def test_budgets_that_block_drains_or_empty_a_region_are_noted(
    tmp_path: Path, capsys: Any, disruption: dict[str, Any], replicas: int, note: str
) -> None:
    doc = demo()
    doc["spec"]["disruption"] = disruption
    doc["spec"]["regions"][0]["replicas"] = replicas
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out = run(capsys, "-f", str(path))
    assert code == 0 and any(line.startswith("  note: ") and note in line for line in out.splitlines()), out


def test_the_default_budgets_need_no_note(capsys: Any) -> None:
    assert "disruption" not in run(capsys, "-f", str(EXAMPLES / "demo.yaml"))[1]


def test_a_query_prometheus_cannot_parse_is_invalid(tmp_path: Path, capsys: Any) -> None:
    doc = demo()
    doc["spec"]["analysis"]["metrics"].append(
        {"name": "errors", "query": 'sum(rate(x{revision="{{revision}}"}[{{interval}}])', "max": 0.01}
    )
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out = run(capsys, "-f", str(path))
    assert code == 1
    assert "spec.analysis.metrics[3].query: is not valid PromQL: unclosed left parenthesis" in out


def test_every_preset_parses_for_every_interval() -> None:
    from bellwether.analysis.presets import PRESETS
    from bellwether.cli.promql import template_problem

    for name, preset in PRESETS.items():
        for interval in (1.0, 30.0, 90.0, 3600.0):
            assert template_problem(preset.query, interval) is None, name


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "no ModelDeployment in it (the file is empty)"),
        ("# only a comment\n---\n", "no ModelDeployment in it (the file is empty)"),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: eu}\n", "no ModelDeployment in it (found Secret eu)"),
    ],
)
def test_a_file_without_a_modeldeployment_fails(tmp_path: Path, capsys: Any, text: str, said: str) -> None:
    path = tmp_path / "md.yaml"
    path.write_text(text)
    code, out = run(capsys, "-f", str(path))
    assert code == 1 and f"{path}: {said}" in out


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"kind": "ModelDeploy"}, "kind: must be ModelDeployment (got 'ModelDeploy')"),
        ({"apiVersion": "v1", "kind": "ModelDeploymnet"}, "kind: must be ModelDeployment (got 'ModelDeploymnet')"),
        ({"apiVersion": "bellwether.dev/v1"}, "apiVersion: must be bellwether.dev/v1alpha1"),
    ],
)
def test_a_misspelt_kind_or_version_is_checked_and_fails(
    tmp_path: Path, capsys: Any, change: dict[str, str], said: str
) -> None:
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump({**demo(), **change}))
    code, out = run(capsys, "-f", str(path))
    assert code == 1 and said in out


def test_other_kinds_beside_a_modeldeployment_are_named_and_left_alone(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "md.yaml"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "eu"}}
    path.write_text(yaml.safe_dump_all([secret, demo()]))
    code, out = run(capsys, "-f", str(path))
    assert code == 0
    assert f"{path}: Secret eu: not a ModelDeployment, not checked" in out and "llama-chat: valid" in out


def test_the_items_of_a_list_are_checked_one_by_one(tmp_path: Path, capsys: Any) -> None:
    bad = demo(name="Bad_Name")
    typed = {"apiVersion": "v1", "kind": "List", "items": [demo(name="one"), bad]}
    untyped = {
        "apiVersion": "bellwether.dev/v1alpha1",
        "kind": "ModelDeploymentList",
        "items": [{k: v for k, v in demo(name="two").items() if k not in ("apiVersion", "kind")}],
    }
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump_all([typed, untyped]))
    code, out = run(capsys, "-f", str(path))
    assert code == 1
    assert f"{path} (line 1, items[0]): one: valid" in out
    assert f"{path} (line 1, items[1]): Bad_Name: invalid" in out
    assert "items[0]): two: valid" in out


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO((EXAMPLES / "triton.yaml").read_text()))
    code, out = run(capsys, "-f", "-")
    assert code == 0 and out.startswith("stdin: reranker: valid")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out = run(capsys, "-f", "-")
    assert code == 1 and "stdin: no ModelDeployment in it (the file is empty)" in out


def test_a_directory_is_read_recursively(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(demo(name="a")))
    (tmp_path / "nested" / "b.yml").write_text(yaml.safe_dump(demo(name="b")))
    (tmp_path / "nested" / "deeper" / "c.json").write_text(json.dumps(demo(name="c")))
    (tmp_path / "nested" / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    (tmp_path / "README.md").write_text("kind: ModelDeployment\n")  # not a manifest
    code, out = run(capsys, "-f", str(tmp_path))
    assert code == 0, out
    assert [line.split(": ")[1] for line in out.splitlines() if line.endswith(": valid")] == ["a", "b", "c"]
    assert "secret.yaml: no ModelDeployment in it (found Secret s), skipped" in out
    (tmp_path / "nested" / "deeper" / "c.json").write_text(json.dumps(demo(name="C")))
    assert run(capsys, "-f", str(tmp_path))[0] == 1


def test_a_directory_without_any_modeldeployment_fails(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    code, out = run(capsys, "-f", str(tmp_path))
    assert code == 1 and f"{tmp_path}: no ModelDeployment in any of its 1 files" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = run(capsys, "-f", str(empty))
    assert code == 1 and "cannot read: no .yaml, .yml, .json files in the directory" in out


def test_examples_directory_is_valid(capsys: Any) -> None:
    code, out = run(capsys, "-f", str(EXAMPLES))
    assert code == 0, out
    assert "argocd-application.yaml: no ModelDeployment in it (found Application llama-chat), skipped" in out


# --- Large files: read in full and judged (how fast is benchmarks/validate_speed.py's business).


def many_modeldeployments(size: int) -> str:
    """About `size` bytes of YAML: copies of the demo ModelDeployment, each with its own name."""
    one = yaml.dump(DEMO, Dumper=yaml.CSafeDumper)
    copies = size // len(one) + 1
    return "".join("---\n" + one.replace("name: llama-chat", f"name: m{i}", 1) for i in range(copies))


def test_a_3mb_file_of_modeldeployments_is_read_document_by_document() -> None:
    text = many_modeldeployments(3_000_000)
    docs = parse_text(text)
    assert len(docs) > 2000


def test_a_3mb_modeldeployment_is_refused_with_a_readable_message(tmp_path: Path, capsys: Any) -> None:
    env = "".join(f"    - name: VAR_{i}\n      value: value-{i}\n" for i in range(70_000))
    path = tmp_path / "big.yaml"
    path.write_text((EXAMPLES / "demo.yaml").read_text().replace("  runtime:\n", "  runtime:\n    env:\n" + env, 1))
    assert path.stat().st_size > 3_000_000
    code = main(["validate", "-f", str(path)])
    out = capsys.readouterr().out
    assert code == 1 and re.search(r"spec.runtime.env: must have at most \d+ items", out), out


def test_validate_imports_no_operator_runtime() -> None:
    """`bellwether validate` runs in CI jobs and pre-commit hooks: no kopf, no HTTP stack."""
    code = (
        "import sys, io, contextlib\n"
        "from bellwether.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['validate', '-f', {str(EXAMPLES)!r}]) == 0\n"
        "print(sorted(m for m in ('kopf', 'aiohttp', 'kubernetes_asyncio', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
