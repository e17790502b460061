"""Every example in `examples/` is read by the models and admitted by the generated CRD, CEL rules included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bellwether.api import ModelDeployment, parse, revision_of, template_of
from bellwether.cli.main import main
from support.crdkit import ROOT, admit, load_crd

EXAMPLES = ROOT / "examples"


def model_deployments() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "ModelDeployment":
                found.append((path.name, doc))
    return found


ALL = model_deployments()


def example(name: str) -> ModelDeployment:
    return parse(next(doc for file, doc in ALL if file == name))


@pytest.mark.parametrize(("file", "doc"), ALL, ids=[f for f, _ in ALL])
def test_example_is_read_by_the_models_and_admitted_by_the_crd(file: str, doc: dict[str, Any]) -> None:
    md = parse(doc)
    assert md.metadata.name == doc["metadata"]["name"]
    assert admit(load_crd(), doc) == []


DOCUMENTED = (
    "vllm-single-region.yaml",
    "triton.yaml",
    "multi-region-waves.yaml",
    "gpu-scarce.yaml",
    "gateway-api.yaml",
)


def test_the_five_documented_examples_exist() -> None:
    assert set(DOCUMENTED) <= {f for f, _ in ALL}


def test_examples_cover_the_runtimes_with_presets_and_custom_queries() -> None:
    images = {md.spec.runtime.image.rsplit(":", 1)[0] for md in (parse(d) for _, d in ALL)}
    assert {
        "vllm/vllm-openai",
        "nvcr.io/nvidia/tritonserver",
        "ghcr.io/huggingface/text-generation-inference",
    } <= images
    for file in DOCUMENTED:
        analysis = example(file).spec.analysis
        assert analysis is not None, file
        assert any(m.preset for m in analysis.metrics) and any(m.query for m in analysis.metrics), file


def test_multi_region_example_has_three_regions_in_two_waves_one_remote() -> None:
    spec = example("multi-region-waves.yaml").spec
    assert len(spec.regions) == 3
    assert len(spec.waves()) == 2
    assert sorted(n for wave in spec.waves() for n in wave) == sorted(r.name for r in spec.regions)
    remote = [r for r in spec.regions if r.cluster is not None]
    assert len(remote) == 1
    assert remote[0].cluster is not None and remote[0].cluster.kubeconfig_secret.key == "kubeconfig"


def test_gpu_scarce_example_never_surges() -> None:
    spec = example("gpu-scarce.yaml").spec
    assert spec.rollout.max_surge == "0"
    assert spec.runtime.resources.gpu is not None and spec.runtime.resources.gpu.count > 1


def test_gateway_api_example_routes_through_an_httproute_parent() -> None:
    traffic = example("gateway-api.yaml").spec.traffic
    assert traffic.router == "gatewayAPI"
    assert traffic.gateway_api is not None and traffic.gateway_api.parent_refs[0].name


def test_each_example_is_its_own_revision() -> None:
    revisions = [revision_of(template_of(parse(doc).spec)) for _, doc in ALL]
    assert len(set(revisions)) == len(revisions)


def test_validate_command_accepts_every_example_and_names_a_bad_one(tmp_path: Path, capsys: Any) -> None:
    files = [str(EXAMPLES / f) for f in sorted({f for f, _ in ALL})]
    assert main(["validate", *[arg for f in files for arg in ("-f", f)]]) == 0
    doc = yaml.safe_load((EXAMPLES / "triton.yaml").read_text())
    doc["spec"]["rollout"]["steps"][2]["setWeight"] = 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    assert main(["validate", "-f", str(bad)]) == 1
    assert "spec.rollout.steps[2].setWeight: must be greater than 20" in capsys.readouterr().out


def test_validate_command_reports_unreadable_files(tmp_path: Path, capsys: Any) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")
    assert main(["validate", "-f", str(broken), "-f", str(tmp_path / "missing.yaml")]) == 1
    out = capsys.readouterr().out
    assert f"{broken}: cannot read" in out and "missing.yaml: cannot read" in out
