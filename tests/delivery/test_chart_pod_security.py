"""The operator pod meets the `restricted` Pod Security Standard, so it runs in a namespace enforcing it.

The checks are the standard's, written out (baseline, then restricted's additions) as the API server's
pod-security admission applies them to a pod spec: https://kubernetes.io/docs/concepts/security/pod-security-standards/
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from support.chartkit import VALUES, Rendered

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """Every way `pod` (a PodSpec) breaks the restricted Pod Security Standard; empty when it meets it."""
    found: list[str] = []
    pod_sc = pod.get("securityContext", {})
    containers = [
        (kind, c) for kind in ("initContainers", "containers", "ephemeralContainers") for c in pod.get(kind, [])
    ]
    # --- baseline
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"{field}: true")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if "hostPath" in kinds:
            found.append(f"volume {volume['name']}: hostPath")
        elif not kinds <= ALLOWED_VOLUMES:  # restricted
            found.append(f"volume {volume['name']}: {sorted(kinds - ALLOWED_VOLUMES)}")
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl['name']}")
    contexts = [("pod", pod_sc)] + [(f"{kind} {c['name']}", c.get("securityContext", {})) for kind, c in containers]
    for where, sc in contexts:
        if sc.get("windowsOptions", {}).get("hostProcess"):
            found.append(f"{where}: windows hostProcess")
        selinux = sc.get("seLinuxOptions", {})
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            found.append(f"{where}: seLinuxOptions {selinux}")
        if sc.get("appArmorProfile", {}).get("type", "RuntimeDefault") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: appArmorProfile {sc['appArmorProfile']}")
        if sc.get("runAsUser") == 0:  # restricted
            found.append(f"{where}: runAsUser 0")
    for kind, c in containers:
        where, sc = f"{kind} {c['name']}", c.get("securityContext", {})
        if sc.get("privileged"):
            found.append(f"{where}: privileged")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            found.append(f"{where}: hostPort")
        if sc.get("procMount", "Default") != "Default":
            found.append(f"{where}: procMount {sc['procMount']}")
        # --- restricted
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            found.append(f"{where}: capabilities do not drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{where}: capabilities add {caps['add']}")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            found.append(f"{where}: runAsNonRoot is not true")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: seccompProfile {seccomp}")
    return found


@pytest.mark.parametrize("name", VALUES)
def test_the_operator_pod_meets_the_restricted_standard(rendered: dict[str, Rendered], name: str) -> None:
    assert restricted_violations(rendered[name].pod) == []


@pytest.mark.parametrize("name", VALUES)
def test_the_operator_runs_hardened_beyond_the_standard(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    sc = r.container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsUser"] == r.pod["securityContext"]["runAsUser"] == 65532  # the Dockerfile's USER
    assert r.pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # A read-only root needs a writable /tmp (kubeconfig certificates, tempfile), and nothing more.
    assert r.container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    resources = r.container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]


def allow_root(pod: dict[str, Any]) -> None:
    pod["securityContext"].pop("runAsNonRoot")
    for container in pod["containers"]:
        container["securityContext"].pop("runAsNonRoot")


def unconfine(pod: dict[str, Any]) -> None:
    pod["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    for container in pod["containers"]:
        container["securityContext"].pop("seccompProfile")


def container_sc(pod: dict[str, Any]) -> dict[str, Any]:
    sc: dict[str, Any] = pod["containers"][0]["securityContext"]
    return sc


BREACHES: list[tuple[Callable[[dict[str, Any]], object], str]] = [
    (lambda p: p.update(hostNetwork=True), "hostNetwork: true"),
    (lambda p: p["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run"}}), "hostPath"),
    (lambda p: p["volumes"].append({"name": "nfs", "nfs": {"server": "x", "path": "/"}}), "['nfs']"),
    (lambda p: container_sc(p).update(privileged=True), "privileged"),
    (lambda p: container_sc(p).pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    (lambda p: container_sc(p)["capabilities"].update(drop=["NET_RAW"]), "drop ALL"),
    (lambda p: container_sc(p)["capabilities"].update(add=["SYS_ADMIN"]), "add ['SYS_ADMIN']"),
    (allow_root, "runAsNonRoot is not true"),
    (lambda p: p["securityContext"].update(runAsUser=0), "runAsUser 0"),
    (unconfine, "seccompProfile Unconfined"),
    (lambda p: p["containers"][0]["ports"].append({"containerPort": 80, "hostPort": 80}), "hostPort"),
    (lambda p: p["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]), "kernel.msgmax"),
]


@pytest.mark.parametrize(("breach", "violation"), BREACHES)
def test_the_checks_catch_each_breach_of_the_standard(
    rendered: dict[str, Rendered], breach: Callable[[dict[str, Any]], object], violation: str
) -> None:
    pod = copy.deepcopy(rendered["default"].pod)
    breach(pod)
    assert any(violation in v for v in restricted_violations(pod)), restricted_violations(pod)
