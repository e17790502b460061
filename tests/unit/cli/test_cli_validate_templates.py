"""`bellwether validate` on ClusterAnalysisTemplates: checked as the API server admits them, their queries
parsed, and the ModelDeployments' references resolved among every file read, stdin and later files
included; a template not in the files is a note unless `--require-templates`."""

from __future__ import annotations

import copy
import io
import sys
from pathlib import Path
from typing import Any

import yaml

from bellwether.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "analysis-templates.yaml"
TEMPLATE, MODEL = list(yaml.safe_load_all(EXAMPLE.read_text()))


def run(capsys: Any, *args: str) -> tuple[int, str]:
    code = main(["validate", *args])
    return code, capsys.readouterr().out


def write(path: Path, *docs: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_the_example_is_valid_with_its_template_resolved(capsys: Any) -> None:
    code, out = run(capsys, "-f", str(EXAMPLE))
    assert code == 0, out
    assert f"{EXAMPLE}: vllm-chat-slo: valid" in out and f"{EXAMPLE}: mistral-chat: valid" in out
    assert "not in the files read" not in out


def test_a_template_in_a_later_file_resolves_the_reference(tmp_path: Path, capsys: Any) -> None:
    model = write(tmp_path / "md.yaml", MODEL)
    template = write(tmp_path / "slo.yaml", TEMPLATE)
    code, out = run(capsys, "-f", model, "-f", template)
    assert code == 0 and "not in the files read" not in out, out


def test_a_template_on_stdin_resolves_a_file_and_stdin_is_read_once(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(yaml.safe_dump(TEMPLATE)))
    code, out = run(capsys, "-f", write(tmp_path / "md.yaml", MODEL), "-f", "-")
    assert code == 0 and "stdin: vllm-chat-slo: valid" in out, out


def test_a_template_not_in_the_files_is_a_note_offline_and_an_error_when_required(tmp_path: Path, capsys: Any) -> None:
    model = write(tmp_path / "md.yaml", MODEL)
    code, out = run(capsys, "-f", model)
    assert code == 0, out
    assert (
        "  note: spec.analysis.templates[0]: ClusterAnalysisTemplate 'vllm-chat-slo' is not in the files read, "
        "not checked: the operator needs it in the cluster" in out
    )
    code, out = run(capsys, "--require-templates", "-f", model)
    assert code == 1
    assert f"{model}: mistral-chat: invalid" in out
    assert "  - spec.analysis.templates[0]: ClusterAnalysisTemplate 'vllm-chat-slo' is not in the files read" in out


def test_a_template_kubectl_would_refuse_is_invalid_and_resolves_nothing(tmp_path: Path, capsys: Any) -> None:
    bad = copy.deepcopy(TEMPLATE)
    bad["spec"]["metrics"][1]["max"] = "0.8"  # quoted: the API server takes no quoted numbers
    bad["spec"]["metrcs"] = []
    code, out = run(capsys, "-f", write(tmp_path / "all.yaml", bad, MODEL))
    assert code == 1
    assert "vllm-chat-slo: invalid" in out
    assert "  - spec.metrics[1].max: must be a number" in out and "no quoted numbers" in out
    assert "  - spec.metrcs: is not a known field; did you mean metrics?" in out
    # the ModelDeployment itself is fine; the reference to the invalid template is only a note
    assert "mistral-chat: valid" in out and "'vllm-chat-slo' is not in the files read" in out


def test_a_template_query_prometheus_cannot_parse_is_invalid(tmp_path: Path, capsys: Any) -> None:
    bad = copy.deepcopy(TEMPLATE)
    bad["spec"]["metrics"][3]["query"] = "sum(rate(x[{{interval}}])"
    bad["metadata"]["namespace"] = "ml"
    code, out = run(capsys, "-f", write(tmp_path / "slo.yaml", bad))
    assert code == 1
    assert "  - spec.metrics[3].query: is not valid PromQL" in out
    bad["spec"]["metrics"][3]["query"] = TEMPLATE["spec"]["metrics"][3]["query"]
    code, out = run(capsys, "-f", write(tmp_path / "slo.yaml", bad))
    assert code == 0
    assert "  note: metadata.namespace is ignored: a ClusterAnalysisTemplate is cluster-scoped" in out


def test_two_templates_giving_one_metric_make_the_modeldeployment_invalid(tmp_path: Path, capsys: Any) -> None:
    other = copy.deepcopy(TEMPLATE)
    other["metadata"]["name"] = "gpu-slo"
    other["spec"]["metrics"] = [other["spec"]["metrics"][3]]  # preemptions, which vllm-chat-slo has too
    model = copy.deepcopy(MODEL)
    model["spec"]["analysis"]["templates"].append({"name": "gpu-slo"})
    code, out = run(capsys, "-f", write(tmp_path / "all.yaml", TEMPLATE, other, model))
    assert code == 1
    assert (
        "  - spec.analysis.templates[1]: ClusterAnalysisTemplate 'gpu-slo' gives metric 'preemptions', as "
        "ClusterAnalysisTemplate 'vllm-chat-slo' does" in out
    )


def test_argo_rollouts_cluster_analysis_templates_are_not_ours(tmp_path: Path, capsys: Any) -> None:
    argo = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ClusterAnalysisTemplate",
        "metadata": {"name": "success-rate"},
        "spec": {"metrics": [{"name": "success-rate", "provider": {"prometheus": {"query": "up"}}}]},
    }
    code, out = run(capsys, "-f", write(tmp_path / "all.yaml", argo, TEMPLATE, MODEL))
    assert code == 0, out
    assert "ClusterAnalysisTemplate success-rate: not a ModelDeployment, not checked" in out


def test_a_file_of_templates_alone_is_checked_not_refused(tmp_path: Path, capsys: Any) -> None:
    code, out = run(capsys, "-f", write(tmp_path / "slo.yaml", TEMPLATE))
    assert code == 0 and "vllm-chat-slo: valid" in out, out
