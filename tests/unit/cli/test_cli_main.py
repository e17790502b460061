"""The command line a new user meets: `--version`, a description and an exit status for every command,
and `bellwether run` without a cluster says so in one line and exits, instead of a traceback and a
retry every minute."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bellwether.cli.main import EXIT_CODES, build_parser, main
from bellwether.cli.run import cluster_problem


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_version_comes_from_the_package_metadata(capsys: Any) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"bellwether {importlib.metadata.version('bellwether-operator')}\n"
    result = subprocess.run(["bellwether", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("bellwether 0.")


def test_every_subcommand_has_a_description_and_an_exit_status() -> None:
    commands = subcommands()
    assert {"crd", "docs", "validate", "demo", "simulate", "check", "run", "status", "promote"} <= set(commands)
    for name, parser in commands.items():
        assert parser.description and parser.description[0].isupper(), name
        assert parser.epilog and "xit status" in parser.epilog, name
    top = build_parser().format_help()
    for code in EXIT_CODES:
        assert f"\n  {code}  " in top


def test_every_subcommand_is_listed_with_a_help_line() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert all(choice.help for choice in sub._choices_actions)


def test_no_command_prints_the_help_and_is_a_usage_error(capsys: Any) -> None:
    assert main([]) == 2
    assert "exit status:" in capsys.readouterr().out


def without_cluster(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    return {**env, "KUBECONFIG": str(tmp_path / "missing" / "config"), "HOME": str(tmp_path)}


def test_run_without_a_kubeconfig_or_a_pod_exits_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bellwether", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        env=without_cluster(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("bellwether run: no cluster configured: kubeconfig ")
    assert "missing/config does not exist" in line and "--kubeconfig" in line


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: [\n", "cannot use kubeconfig"),
        ("apiVersion: v1\nkind: Config\nclusters: []\n", "current-context"),
    ],
)
def test_run_with_an_unusable_kubeconfig_says_what_is_wrong(tmp_path: Path, text: str, said: str) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    problem = cluster_problem(str(config), None)
    assert problem is not None and said in problem and str(config) in problem


def test_run_in_a_pod_without_a_service_account_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    problem = cluster_problem(None, None)
    assert problem is not None and problem.startswith("cannot use the in-cluster service account")


def test_a_usable_kubeconfig_passes_without_contacting_the_server(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    assert cluster_problem(str(config), None) is None
    assert "context" in (cluster_problem(str(config), "nope") or "")


def test_the_kubectl_commands_say_in_one_line_what_is_wrong_with_the_kubeconfig(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    for args in (["status", "chat"], ["pause", "chat"]):
        result = subprocess.run(
            ["bellwether", *args, "--kubeconfig", str(broken)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().startswith("error: cannot use kubeconfig") and "current-context" in result.stderr
