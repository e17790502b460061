"""Running the real `helm` on the chart, and reading what it renders.

helm comes from `.ci/install` (a static binary in `.tools/bin`). Without it the chart tests skip, naming
the command that installs it; in CI (`CI` set) they fail instead, so a broken install cannot pass.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "bellwether"
CRD_FILE = ROOT / "crds" / "modeldeployments.bellwether.dev.yaml"
RELEASE = "bw"
RELEASE_NAMESPACE = "bellwether-system"
FULLNAME = "bw-bellwether"

# Each set is rendered by one `helm template` call, shared by every test that asks for it.
VALUES: dict[str, dict[str, Any]] = {
    "default": {},
    "cluster-wide-ha": {
        "replicas": 3,
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        "podDisruptionBudget": {"enabled": True},
    },
    "namespaced": {"watchNamespaces": ["ml", "prod"]},
    "namespaced-ha": {
        "watchNamespaces": ["ml", "prod"],
        "replicas": 2,
        "peering": {"name": "bellwether-peers"},
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"},
    },
    "no-crds": {"crds": {"install": False}},
    "custom": {
        "image": {"repository": "registry.example.com/ml/bellwether", "digest": "sha256:" + "ab" * 32},
        "crds": {"keep": False},
        "serviceAccount": {"name": "rollouts", "annotations": {"example.com/role": "rollouts"}},
        "logFormat": "text",
        "verbose": True,
        "interval": 10,
        "healthPort": 9091,
        "metrics": {"port": 9090},
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "podLabels": {"team": "ml-platform"},
        "priorityClassName": "system-cluster-critical",
        "notifications": {
            "enabled": True,
            "secretName": "bellwether-notifications",
            "authorizationKey": "token",
            "format": "slack",
            "events": ["RolledBack", "Failed"],
        },
    },
}


def helm_binary() -> str:
    found = ROOT / ".tools" / "bin" / "helm"
    if found.is_file() and os.access(found, os.X_OK):
        return str(found)
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    message = "helm is not installed: run `bash .ci/install` (it puts helm in .tools/bin)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class Helm:
    """`helm lint`, `helm template` and `helm install --dry-run` of the chart (the repository's by default)."""

    binary: str
    chart: Path = CHART

    def run(self, *args: str, values: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
        """helm with `values` in a file (as users pass them), its caches and config kept under `tmp`."""
        text = yaml.safe_dump(values)
        path = tmp / f"values-{hashlib.sha1(text.encode()).hexdigest()[:12]}.yaml"
        path.write_text(text)
        env = {**os.environ, **{f"HELM_{d}_HOME": str(tmp / "helm" / d.lower()) for d in ("CACHE", "CONFIG", "DATA")}}
        command = [self.binary, *args, "--values", str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)

    def template(self, values: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
        return self.run(
            "template",
            RELEASE,
            str(self.chart),
            "--namespace",
            RELEASE_NAMESPACE,
            "--include-crds",
            values=values,
            tmp=tmp,
        )

    def lint(self, values: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
        return self.run("lint", str(self.chart), "--strict", "--namespace", RELEASE_NAMESPACE, values=values, tmp=tmp)

    def install_against(self, kubeconfig: Path, values: dict[str, Any], tmp: Path) -> Install:
        """`helm install --dry-run=server` against the API server in `kubeconfig`: Helm renders with
        `lookup` answered by that server and runs every check a real install runs before it writes
        (the ownership check of objects that exist included), then writes nothing. Client-side OpenAPI
        validation is off: the chart's schema validity is checked by test_chart_render."""
        done = self.run(
            "install",
            RELEASE,
            str(self.chart),
            "--namespace",
            RELEASE_NAMESPACE,
            "--kubeconfig",
            str(kubeconfig),
            "--dry-run=server",
            "--disable-openapi-validation",
            values=values,
            tmp=tmp,
        )
        manifest, _found, notes = done.stdout.partition("\nNOTES:\n")
        objects = [o for o in yaml.safe_load_all(manifest.partition("\nMANIFEST:\n")[2]) if o]
        return Install(done.returncode, done.stderr, objects, notes)

    def notes(self, values: dict[str, Any], tmp: Path) -> str:
        done = self.run(
            "install",
            RELEASE,
            str(self.chart),
            "--namespace",
            RELEASE_NAMESPACE,
            "--dry-run=client",
            values=values,
            tmp=tmp,
        )
        assert done.returncode == 0, done.stderr
        _manifest, found, notes = done.stdout.partition("\nNOTES:\n")
        assert found, "helm printed no NOTES"
        return notes


@dataclass(frozen=True)
class Install:
    """What `helm install --dry-run=server` said: its exit code, errors, the objects and the NOTES."""

    returncode: int
    stderr: str
    objects: list[dict[str, Any]]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]


@dataclass(frozen=True)
class Rendered:
    """Every object one `helm template` produced, with lookups by kind."""

    values: dict[str, Any]
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        (found,) = self.of_kind(kind)
        return found

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod(self) -> dict[str, Any]:
        pod: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        return pod

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.pod["containers"]
        return container


def render(helm: Helm, values: dict[str, Any], tmp: Path) -> Rendered:
    done = helm.template(values, tmp)
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    return Rendered(values, objects)


def crd_from_crds_directory() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    return crd
