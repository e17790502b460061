"""The user docs stay true to the code: reasons, the Argo CD snippet, the plugin's commands and output, links."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bellwether.api import ModelDeploymentStatus
from bellwether.api.reasons import REASONS
from bellwether.cli.control import ACTIONS, render_status
from bellwether.cli.main import build_parser, main
from bellwether.clusters.permissions import RULES
from bellwether.rollout.notices import NOTIFICATION_SCHEMA, document, notices, slack
from bellwether.rollout.types import Event

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HEALTH_LUA = ROOT / "deploy" / "argocd" / "health.lua"
HEALTH_KEY = "resource.customizations.health.bellwether.dev_ModelDeployment"


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def documented_reasons() -> set[str]:
    """The first cell of every table row on the troubleshooting page, when it is one `Word`."""
    text = (DOCS / "troubleshooting.md").read_text()
    return set(re.findall(r"^\| `([A-Za-z0-9]+)` \|", text, flags=re.M))


# Reasons


def test_every_reason_the_operator_writes_is_explained_in_troubleshooting() -> None:
    # Every condition and Event reason is a `Reason` (mypy refuses any other at every place one is
    # written), so the list is the code's own.
    missing = [reason for reason in REASONS if reason not in documented_reasons()]
    assert not missing, f"reasons the code can write but docs/troubleshooting.md does not explain: {missing}"


def test_the_troubleshooting_page_explains_no_reason_the_code_cannot_write() -> None:
    stale = documented_reasons() - set(REASONS)
    assert not stale, f"docs/troubleshooting.md explains reasons the code no longer writes: {sorted(stale)}"


# Argo CD


def test_argocd_doc_snippet_is_the_shipped_health_check() -> None:
    configmaps = [
        doc
        for block in code_blocks((DOCS / "argocd.md").read_text(), "yaml")
        for doc in yaml.safe_load_all(block)
        if doc and doc.get("kind") == "ConfigMap"
    ]
    assert [cm["metadata"]["name"] for cm in configmaps] == ["argocd-cm"]
    assert configmaps[0]["data"][HEALTH_KEY] == HEALTH_LUA.read_text()


def test_argocd_application_example_syncs_a_path_of_a_git_repository() -> None:
    text = (ROOT / "examples" / "argocd-application.yaml").read_text()
    app = yaml.safe_load(text)
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert app["metadata"]["namespace"] == "argocd"
    source, destination = app["spec"]["source"], app["spec"]["destination"]
    assert source["repoURL"].endswith(".git") and source["path"] and source["targetRevision"]
    assert destination["namespace"] and destination["server"]
    assert app["spec"]["syncPolicy"]["automated"]["prune"] is False  # deleting a file must not take a model offline
    for mentioned in ("deploy/argocd/health.lua", "docs/argocd.md", "examples/vllm-single-region.yaml"):
        assert mentioned in text and (ROOT / mentioned).exists(), mentioned


# kubectl plugin

STATUS_EXAMPLE: dict[str, Any] = {
    "metadata": {"name": "llama-chat", "namespace": "ml", "generation": 7},
    "status": {
        "observedGeneration": 7,
        "phase": "Progressing",
        "stableRevision": "7c9f2a1b0e",
        "canaryRevision": "5d1e88f04a",
        "wave": 0,
        "step": 1,
        "canaryWeight": 10,
        "canaryShare": "20%",
        "message": "step 2/5 in us-east: analysis 3/20 measurements successful",
        "regionSummary": "0/2",
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
            {"name": "eu-west", "replicas": 2, "stableReady": 2, "canaryReady": 0, "weight": 0, "phase": "Pending"},
        ],
        "analysis": [
            {
                "metric": "p99-latency",
                "region": "us-east",
                "verdict": "Successful",
                "value": 1.82,
                "baseline": 1.74,
                "bound": "<= 1.5x stable",
                "at": "2026-11-20T10:04:30Z",
            },
            {
                "metric": "error-rate",
                "region": "us-east",
                "verdict": "Successful",
                "value": 0.0031,
                "bound": "<= 0.01",
                "at": "2026-11-20T10:04:30Z",
            },
            {
                "metric": "p99-latency",
                "region": "us-east",
                "verdict": "Successful",
                "value": 1.79,
                "baseline": 1.77,
                "bound": "<= 1.5x stable",
                "at": "2026-11-20T10:05:00Z",
            },
            {
                "metric": "error-rate",
                "region": "us-east",
                "verdict": "Inconclusive",
                "bound": "<= 0.01",
                "reason": "canary query failed: timeout",
                "at": "2026-11-20T10:05:00Z",
            },
        ],
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "reason": "AllRegionsServing",
                "message": "every region has its replicas ready",
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "RolloutInProgress",
                "message": "step 2/5 in us-east: analysis 3/20 measurements successful",
            },
            {"type": "Degraded", "status": "False", "reason": "Healthy", "message": ""},
        ],
    },
}


def test_kubectl_plugin_doc_shows_the_real_status_output() -> None:
    ModelDeploymentStatus.model_validate(STATUS_EXAMPLE["status"])
    text = (DOCS / "kubectl-plugin.md").read_text()
    expected = "$ kubectl bellwether status llama-chat -n ml\n" + render_status(STATUS_EXAMPLE) + "\n"
    assert expected in code_blocks(text, "console")


def test_kubectl_plugin_doc_covers_every_command_and_flag() -> None:
    text = (DOCS / "kubectl-plugin.md").read_text()
    parser = build_parser("kubectl bellwether", modules=("bellwether.cli.control",))
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {"status", *ACTIONS}
    for name, command in sub.choices.items():
        assert f"`kubectl bellwether {name} NAME" in text, name
        for action in command._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (name, flag)


# Multi-region

# What only the home cluster needs: the ModelDeployment itself and the ClusterAnalysisTemplates it
# names, Secrets, Events (posted on the ModelDeployment) and what kopf uses. Everything else the
# operator does in a remote region too.
HOME_ONLY = {
    "modeldeployments",
    "modeldeployments/status",
    "clusteranalysistemplates",
    "secrets",
    "events",
    "customresourcedefinitions",
    "namespaces",
    "kopfpeerings",
    "clusterkopfpeerings",
}


def test_multi_region_doc_grants_the_remote_identity_exactly_what_the_operator_uses() -> None:
    docs = [d for b in code_blocks((DOCS / "multi-region.md").read_text(), "yaml") for d in yaml.safe_load_all(b) if d]

    def granted(kind: str) -> set[tuple[str, str, str]]:
        [role] = [d for d in docs if d.get("kind") == kind]
        return {
            (g, r, v)
            for rule in role["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
        }

    used = {
        (g, r, v)
        for rule in RULES
        for g in rule["apiGroups"]
        for r in rule["resources"]
        if r not in HOME_ONLY
        for v in rule["verbs"]
    }
    # the Role in the serving namespace; the optional ClusterRole for the GPU count (nodes are
    # cluster-scoped, and the count reads the pods of every namespace)
    gpu_count = {("", "nodes", "list"), ("", "pods", "list")}
    assert granted("Role") == used - {("", "nodes", "list")}
    assert granted("ClusterRole") == gpu_count <= used
    assert {r for rule in RULES for r in rule["resources"]} >= HOME_ONLY  # every exclusion names a rule that exists


# Notifications


def test_the_notification_schema_in_the_docs_is_the_one_documents_are_checked_against() -> None:
    blocks = [json.loads(b) for b in code_blocks((DOCS / "notifications.md").read_text(), "json")]
    assert NOTIFICATION_SCHEMA in blocks
    example = next(b for b in blocks if b.get("kind") == "Notification")
    jsonschema.validate(example, NOTIFICATION_SCHEMA)
    status = ModelDeploymentStatus(stable_revision="7c9f2a1b3e")
    (notice,) = notices(
        "ml", "llama-chat", [Event("Warning", "RolledBack", "rolled back")], status, "2026-12-02T10:15:00Z"
    )
    assert set(document(notice)) == set(example)  # the example shows every field a document has
    assert set(slack(notice)) == {"text"}


# Links


@pytest.mark.parametrize("page", ["README.md", *sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))])
def test_relative_links_point_at_files_that_exist(page: str) -> None:
    path = ROOT / page
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{page} links to {target}"


def test_readme_starts_with_the_two_set_up_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[:5] == [
        "# Bellwether",
        "",
        "```bash",
        "pip install -e . && bellwether demo          # a full canary rollout and an automatic rollback, simulated",
        "bash .ci/run                                 # installs the test tools (prometheus, helm) and runs the suite",
    ]


def test_readme_timeline_is_real_demo_output(capsys: pytest.CaptureFixture[str]) -> None:
    block = code_blocks((ROOT / "README.md").read_text(), "text")[0]
    assert main(["demo", "--fast"]) == 0
    demo = capsys.readouterr().out.splitlines()
    for line in block.splitlines():
        if line == "…":
            continue
        shown = line.removesuffix("…").rstrip()
        assert any(d.startswith(shown) if line.endswith("…") else d == line for d in demo), line
