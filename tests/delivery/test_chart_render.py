"""What `helm template` renders is valid Kubernetes, runs the operator as the CLI expects, and ships `crds/`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bellwether.cli.main import build_parser
from bellwether.cli.run import installation_receivers
from support.chartkit import CHART, FULLNAME, RELEASE_NAMESPACE, ROOT, VALUES, Helm, Rendered, crd_from_crds_directory

K8S_VERSION = kubernetes_validate.latest_version()
# Kinds kubernetes_validate has no schema for: checked structurally below.
NOT_IN_OPENAPI = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("kopf.dev/v1", "ClusterKopfPeering"),
    ("kopf.dev/v1", "KopfPeering"),
}
CHART_METADATA = ("labels", "annotations")


def test_helm_lint_passes_strictly_with_default_and_non_default_values(helm: Helm, helm_tmp: Path) -> None:
    for values in (VALUES["default"], VALUES["namespaced-ha"], VALUES["custom"]):
        done = helm.lint(values, helm_tmp)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 chart(s) failed" in done.stdout


_VALID: set[str] = set()  # objects already validated: the CRDs render identically in most values sets


@pytest.mark.parametrize("name", VALUES)
def test_every_object_passes_the_kubernetes_openapi_schema(rendered: dict[str, Rendered], name: str) -> None:
    checked = 0
    for obj in rendered[name].objects:
        if (obj["apiVersion"], obj["kind"]) in NOT_IN_OPENAPI:
            continue
        key = json.dumps(obj, sort_keys=True)
        if key not in _VALID:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            _VALID.add(key)
        checked += 1
    assert checked >= 6  # ServiceAccount, ClusterRole and binding, Service, Deployment, kopf's CRDs at least


def test_the_schema_check_would_catch_a_misspelt_field(rendered: dict[str, Rendered]) -> None:
    deployment = yaml.safe_load(yaml.safe_dump(rendered["default"].deployment))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def without_chart_metadata(crd: dict[str, Any]) -> dict[str, Any]:
    return {**crd, "metadata": {k: v for k, v in crd["metadata"].items() if k not in CHART_METADATA}}


def model_crd(r: Rendered) -> dict[str, Any] | None:
    found = [c for c in r.of_kind("CustomResourceDefinition") if c["spec"]["names"]["kind"] == "ModelDeployment"]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize("name", ["default", "custom"])
def test_the_templated_crd_is_the_one_in_crds(rendered: dict[str, Rendered], name: str) -> None:
    crd = model_crd(rendered[name])
    assert crd is not None
    assert without_chart_metadata(crd) == crd_from_crds_directory()


def test_the_crd_is_kept_on_uninstall_unless_asked_not_to(rendered: dict[str, Rendered]) -> None:
    kept, dropped = model_crd(rendered["default"]), model_crd(rendered["custom"])
    assert kept is not None and dropped is not None
    assert kept["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert "annotations" not in dropped["metadata"]


def test_crds_install_false_leaves_the_crd_out(rendered: dict[str, Rendered]) -> None:
    assert model_crd(rendered["no-crds"]) is None
    assert rendered["no-crds"].deployment  # the operator itself is still installed


def test_the_chart_crds_directory_holds_only_kopfs_peering_crds() -> None:
    """Helm never upgrades crds/: ours must not be there, only kopf's stable ones the peering object needs."""
    crds = [d for f in sorted((CHART / "crds").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    assert {c["metadata"]["name"] for c in crds} == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}


def run_args(r: Rendered) -> Any:
    """The container's arguments as `bellwether run` parses them (the image's entrypoint is `bellwether run`)."""
    return build_parser().parse_args(["run", *r.container["args"]])


def port(r: Rendered, name: str) -> int:
    (found,) = [p["containerPort"] for p in r.container["ports"] if p["name"] == name]
    return int(found)


@pytest.mark.parametrize("name", VALUES)
def test_the_operator_runs_with_arguments_bellwether_run_accepts(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    args = run_args(r)
    watched = r.values.get("watchNamespaces", [])
    assert args.namespace == watched
    assert args.all_namespaces is (not watched)
    assert args.metrics_port == port(r, "metrics") == r.values.get("metrics", {}).get("port", 8080)
    assert args.health_port == port(r, "health") == r.values.get("healthPort", 8081)
    assert args.log_format == r.values.get("logFormat", "json")


@pytest.mark.parametrize("name", VALUES)
def test_one_replica_runs_standalone_and_several_share_a_peering(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    args = run_args(r)
    replicas = r.values.get("replicas", 1)
    assert r.deployment["spec"]["replicas"] == replicas
    peerings = r.of_kind("ClusterKopfPeering") + r.of_kind("KopfPeering")
    if replicas == 1:
        assert args.standalone and args.peering is None
        assert peerings == []
        assert r.deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two standalone operators at once
        return
    assert not args.standalone
    assert r.deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert {p["metadata"]["name"] for p in peerings} == {args.peering}
    assert r.values.get("peering", {}).get("name", FULLNAME) == args.peering
    watched = r.values.get("watchNamespaces", [])
    if watched:  # kopf looks for a KopfPeering in each namespace it serves
        assert [p["kind"] for p in peerings] == ["KopfPeering"] * len(watched)
        assert sorted(p["metadata"]["namespace"] for p in peerings) == sorted(watched)
    else:
        assert [p["kind"] for p in peerings] == ["ClusterKopfPeering"]
        assert "namespace" not in peerings[0]["metadata"]


@pytest.mark.parametrize("name", ["cluster-wide-ha", "namespaced-ha"])
def test_peering_objects_are_of_the_kinds_the_bundled_kopf_crds_define(
    rendered: dict[str, Rendered], name: str
) -> None:
    r = rendered[name]
    crds = {
        c["spec"]["names"]["kind"]: c for c in r.of_kind("CustomResourceDefinition") if c["spec"]["group"] == "kopf.dev"
    }
    for peering in r.of_kind("ClusterKopfPeering") + r.of_kind("KopfPeering"):
        crd = crds[peering["kind"]]
        group, version = peering["apiVersion"].split("/")
        assert group == crd["spec"]["group"]
        assert version in [v["name"] for v in crd["spec"]["versions"] if v["served"]]
        assert ("namespace" in peering["metadata"]) is (crd["spec"]["scope"] == "Namespaced")
        assert set(peering) <= {"apiVersion", "kind", "metadata"}  # kopf writes status itself


@pytest.mark.parametrize("name", VALUES)
def test_probes_check_the_health_endpoint_kopf_serves(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    for probe in ("livenessProbe", "readinessProbe"):
        get = r.container[probe]["httpGet"]
        assert get["path"] == "/healthz"  # kopf serves the liveness endpoint at the path given to --health-port's URL
        assert get["port"] == "health"
    assert run_args(r).health_port == port(r, "health")


def test_the_image_defaults_to_the_charts_app_version_and_a_digest_pins_it(rendered: dict[str, Rendered]) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert rendered["default"].container["image"] == f"bellwether:{chart['appVersion']}"
    assert rendered["custom"].container["image"] == "registry.example.com/ml/bellwether@sha256:" + "ab" * 32


def test_the_charts_app_version_is_the_packages_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = (ROOT / "pyproject.toml").read_text()
    (version,) = re.findall(r'^version = "([^"]+)"$', pyproject, flags=re.MULTILINE)
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == version


def metrics_service(r: Rendered) -> dict[str, Any]:
    (service,) = [s for s in r.of_kind("Service") if s["metadata"]["name"] == f"{FULLNAME}-metrics"]
    return service


@pytest.mark.parametrize("name", VALUES)
def test_the_metrics_service_reaches_the_operators_metrics_port(rendered: dict[str, Rendered], name: str) -> None:
    r = rendered[name]
    service = metrics_service(r)
    pod_labels = r.deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"] == r.deployment["spec"]["selector"]["matchLabels"]
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == "metrics"
    assert service_port["port"] == run_args(r).metrics_port


def test_the_service_monitor_scrapes_the_metrics_service(rendered: dict[str, Rendered]) -> None:
    assert rendered["default"].of_kind("ServiceMonitor") == []
    r = rendered["cluster-wide-ha"]
    monitor, service = r.one("ServiceMonitor"), metrics_service(r)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "prometheus"  # for a Prometheus selecting by label
    spec = monitor["spec"]
    assert set(spec) == {"selector", "namespaceSelector", "endpoints"}
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    for field in ("interval", "scrapeTimeout"):
        assert re.fullmatch(r"([0-9]+(ms|s|m|h))+", endpoint[field]), field


def test_the_disruption_budget_covers_the_operator_pods(rendered: dict[str, Rendered]) -> None:
    assert rendered["default"].of_kind("PodDisruptionBudget") == []
    for name, unavailable in (("cluster-wide-ha", 1), ("namespaced-ha", "50%")):
        r = rendered[name]
        pdb = r.one("PodDisruptionBudget")
        assert pdb["spec"]["selector"] == r.deployment["spec"]["selector"]
        assert pdb["spec"]["maxUnavailable"] == unavailable


def test_user_settings_reach_the_pod(rendered: dict[str, Rendered]) -> None:
    r = rendered["custom"]
    assert r.pod["serviceAccountName"] == "rollouts"
    assert r.one("ServiceAccount")["metadata"]["name"] == "rollouts"
    assert r.one("ServiceAccount")["metadata"]["annotations"] == {"example.com/role": "rollouts"}
    assert {"name": "TZ", "value": "UTC"} in r.container["env"]
    assert r.pod["tolerations"] == VALUES["custom"]["tolerations"]
    assert r.pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert r.pod["priorityClassName"] == "system-cluster-critical"
    assert r.deployment["spec"]["template"]["metadata"]["labels"]["team"] == "ml-platform"
    args = run_args(r)
    assert args.verbose and args.interval == 10


def test_every_namespaced_object_of_the_operator_lives_in_the_release_namespace(rendered: dict[str, Rendered]) -> None:
    r = rendered["namespaced-ha"]
    for obj in r.objects:
        if obj["kind"] in ("Role", "RoleBinding", "KopfPeering"):
            assert obj["metadata"]["namespace"] in ("ml", "prod")
        elif obj["kind"] in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"):
            assert obj["metadata"]["namespace"] == RELEASE_NAMESPACE


def test_notes_tell_the_user_what_to_do_next(helm: Helm, helm_tmp: Path) -> None:
    notes = helm.notes(VALUES["namespaced-ha"], helm_tmp)
    assert f"kubectl -n {RELEASE_NAMESPACE} rollout status deployment/{FULLNAME}" in notes
    assert "ml, prod" in notes
    assert "bellwether-peers" in notes
    assert "kubectl apply -f examples/" in notes
    assert "bellwether status" in notes
    assert "metrics.serviceMonitor.enabled=true" in notes
    assert (ROOT / "examples" / "vllm-single-region.yaml").is_file()  # the example the notes name exists


@pytest.mark.parametrize("name", VALUES)
def test_installation_wide_notifications_reach_the_operator_as_a_receiver(
    rendered: dict[str, Rendered], name: str
) -> None:
    r = rendered[name]
    receivers = installation_receivers(run_args(r))
    wanted = r.values.get("notifications", {})
    if not wanted.get("enabled"):
        assert receivers == ()
        return
    (receiver,) = receivers
    n = receiver.notification
    assert receiver.namespace == RELEASE_NAMESPACE and receiver.installation
    assert n.url_from is not None and n.url_from.secret_key_ref.name == wanted["secretName"]
    assert n.url_from.secret_key_ref.key == "url"
    assert n.authorization_from is not None and n.authorization_from.secret_key_ref.key == wanted["authorizationKey"]
    assert (n.format, n.events) == (wanted["format"], wanted["events"])
