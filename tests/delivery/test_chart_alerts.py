"""Bellwether's alerts: the rules file is valid for the real `promtool`, every alert fires when its
condition holds for its `for` and not otherwise (`promtool test rules`), and the chart renders the same
rules into a PrometheusRule with its values (durations, the operator's scrape job), or not at all."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.chartkit import CHART, FULLNAME, RELEASE_NAMESPACE, Helm, render

RULES = CHART / "files" / "prometheus-rules.yaml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
DEFAULTS = {"pausedFor": 60, "degradedFor": 10, "inconclusiveFor": 30, "operatorDownFor": 5, "slowCyclesFor": 15}
CHANGED = {"pausedFor": 120, "degradedFor": 20, "inconclusiveFor": 45, "operatorDownFor": 10, "slowCyclesFor": 30}
MD = 'namespace="ml",name="llama"'
OTHER = 'namespace="ml",name="other"'


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.skip("Debian's promtool is not installed (apt-get install prometheus)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


def rendered_annotations(
    rules: dict[str, Any], alert: str, labels: dict[str, str], value: float = 0.0
) -> dict[str, str]:
    """What Prometheus renders from an alert's annotation templates, for the two forms they use."""
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]

    def fill(text: str) -> str:
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)
        return text.replace('{{ printf "%.0f" $value }}', f"{value:.0f}")

    return {k: fill(v) for k, v in rule["annotations"].items()}


def fires(rules: dict[str, Any], alert: str, labels: dict[str, str], value: float = 0.0) -> list[dict[str, Any]]:
    return [{"exp_labels": labels, "exp_annotations": rendered_annotations(rules, alert, labels, value)}]


def phase_case(rules: dict[str, Any], alert: str, phase: str, hold: int, severity: str = "warning") -> dict[str, Any]:
    """llama stays in `phase`; other is in it for less than `hold` minutes, then leaves it."""
    return {
        "interval": "1m",
        "input_series": [
            {"series": f'bellwether_rollout_phase{{{MD},phase="{phase}"}}', "values": f"0 0 1x{hold + 30}"},
            {"series": f'bellwether_rollout_phase{{{OTHER},phase="{phase}"}}', "values": f"1x{max(hold - 2, 0)} 0x40"},
        ],
        "alert_rule_test": [
            {"eval_time": f"{hold}m", "alertname": alert, "exp_alerts": []},
            {
                "eval_time": f"{hold + 3}m",
                "alertname": alert,
                "exp_alerts": fires(
                    rules, alert, {"severity": severity, "namespace": "ml", "name": "llama", "phase": phase}
                ),
            },
        ],
    }


def degraded_case(rules: dict[str, Any], hold: int) -> dict[str, Any]:
    """llama stays Degraded; other is Degraded because it was rolled back (an alert of its own); a
    third is Degraded for less than `hold` minutes."""
    degraded = 'bellwether_rollout_condition{%s,condition="Degraded",status="True"}'
    rolled_back = 'bellwether_rollout_phase{%s,phase="RolledBack"}'
    short = 'namespace="ml",name="short"'
    alert = "BellwetherDegraded"
    labels = {"severity": "warning", "namespace": "ml", "name": "llama", "condition": "Degraded", "status": "True"}
    return {
        "interval": "1m",
        "input_series": [
            {"series": degraded % MD, "values": f"0 0 1x{hold + 30}"},
            {"series": rolled_back % MD, "values": f"0x{hold + 30}"},
            {"series": degraded % OTHER, "values": f"1x{hold + 30}"},
            {"series": rolled_back % OTHER, "values": f"1x{hold + 30}"},
            {"series": degraded % short, "values": f"1x{hold - 2} 0x40"},
        ],
        "alert_rule_test": [
            {"eval_time": f"{hold}m", "alertname": alert, "exp_alerts": []},
            {"eval_time": f"{hold + 3}m", "alertname": alert, "exp_alerts": fires(rules, alert, labels)},
        ],
    }


def inconclusive_case(rules: dict[str, Any], hold: int) -> dict[str, Any]:
    """llama's canary inconclusive while Progressing; other's inconclusive but promoted (Healthy); a
    third Progressing with a successful verdict."""
    verdict = 'bellwether_analysis_verdict{%s,metric="error-rate",region="us-east"}'
    alert = "BellwetherAnalysisInconclusive"
    labels = {"severity": "warning", "namespace": "ml", "name": "llama", "metric": "error-rate", "region": "us-east"}
    return {
        "interval": "1m",
        "input_series": [
            {"series": verdict % MD, "values": f"0x{hold + 30}"},
            {"series": f'bellwether_rollout_phase{{{MD},phase="Progressing"}}', "values": f"1x{hold + 30}"},
            {"series": verdict % OTHER, "values": f"0x{hold + 30}"},
            {"series": f'bellwether_rollout_phase{{{OTHER},phase="Progressing"}}', "values": f"0x{hold + 30}"},
            {"series": verdict % 'namespace="ml",name="fine"', "values": f"1x{hold + 30}"},
            {"series": 'bellwether_rollout_phase{namespace="ml",name="fine",phase="Progressing"}', "values": "1x90"},
        ],
        "alert_rule_test": [
            {"eval_time": f"{hold - 1}m", "alertname": alert, "exp_alerts": []},
            {"eval_time": f"{hold + 1}m", "alertname": alert, "exp_alerts": fires(rules, alert, labels)},
        ],
    }


def operator_down_case(rules: dict[str, Any], job: str, hold: int) -> dict[str, Any]:
    """The operator is up for 20 minutes, then its target is down; another job stays up throughout."""
    alert = "BellwetherOperatorDown"
    return {
        "interval": "1m",
        "input_series": [
            {"series": f'up{{job="{job}",instance="10.0.0.7:8080"}}', "values": f"1x20 0x{hold + 20}"},
            {"series": 'up{job="prometheus",instance="localhost:9090"}', "values": f"1x{hold + 40}"},
        ],
        "alert_rule_test": [
            {"eval_time": "19m", "alertname": alert, "exp_alerts": []},
            {"eval_time": f"{20 + hold - 1}m", "alertname": alert, "exp_alerts": []},
            {
                "eval_time": f"{20 + hold + 1}m",
                "alertname": alert,
                "exp_alerts": fires(rules, alert, {"severity": "critical"}),
            },
        ],
    }


def slow_cycles_case(rules: dict[str, Any], job: str, hold: int) -> dict[str, Any]:
    """Ten cycles a minute against a 30 s interval: half take 30-60 s (p90 54 s) on job, all under 10 s
    on another operator's job that says nothing about this one."""
    alert = "BellwetherCyclesSlowerThanInterval"
    bucket = 'bellwether_reconcile_duration_seconds_bucket{job="%s",le="%s"}'
    slow = {"10": 0, "30": 5, "60": 10, "+Inf": 10}
    steps = hold + 20
    series = [{"series": bucket % (job, le), "values": f"0+{n}x{steps}"} for le, n in slow.items()]
    series += [{"series": bucket % ("elsewhere", le), "values": f"0+10x{steps}"} for le in slow]
    series += [{"series": f'bellwether_cycle_interval_seconds{{job="{job}"}}', "values": f"30x{steps}"}]
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{hold - 1}m", "alertname": alert, "exp_alerts": []},
            {
                "eval_time": f"{hold + 5}m",
                "alertname": alert,
                "exp_alerts": fires(rules, alert, {"severity": "warning"}, value=54.0),
            },
        ],
    }


def fast_cycles_case(job: str, hold: int) -> dict[str, Any]:
    bucket = 'bellwether_reconcile_duration_seconds_bucket{job="%s",le="%s"}'
    series = [{"series": bucket % (job, le), "values": f"0+10x{hold + 20}"} for le in ("10", "30", "60", "+Inf")]
    series += [{"series": f'bellwether_cycle_interval_seconds{{job="{job}"}}', "values": f"30x{hold + 20}"}]
    alert = "BellwetherCyclesSlowerThanInterval"
    return {"interval": "1m", "input_series": series, "alert_rule_test": [
        {"eval_time": f"{hold + 5}m", "alertname": alert, "exp_alerts": []}
    ]}  # fmt: skip


def unit_tests(rules_file: Path, job: str, minutes: dict[str, int], tmp: Path) -> subprocess.CompletedProcess[str]:
    rules = yaml.safe_load(rules_file.read_text())
    tests = [
        phase_case(rules, "BellwetherRolledBack", "RolledBack", 1),
        phase_case(rules, "BellwetherRolloutPausedTooLong", "Paused", minutes["pausedFor"]),
        degraded_case(rules, minutes["degradedFor"]),
        inconclusive_case(rules, minutes["inconclusiveFor"]),
        operator_down_case(rules, job, minutes["operatorDownFor"]),
        slow_cycles_case(rules, job, minutes["slowCyclesFor"]),
        fast_cycles_case(job, minutes["slowCyclesFor"]),
    ]
    path = tmp / "tests.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [str(rules_file)], "evaluation_interval": "1m", "tests": tests}))
    return promtool("test", "rules", str(path))


def test_the_rules_file_is_valid_for_promtool() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_every_alert_fires_after_its_for_and_not_before_nor_for_others(tmp_path: Path) -> None:
    done = unit_tests(RULES, "bellwether-metrics", DEFAULTS, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_rollback_of_one_minute_ago_is_already_an_alert(tmp_path: Path) -> None:
    """The unit tests would pass on rules that never fire if promtool ignored them: a wrong expectation fails."""
    rules = yaml.safe_load(RULES.read_text())
    case = phase_case(rules, "BellwetherRolledBack", "RolledBack", 1)
    case["alert_rule_test"][1]["exp_alerts"] = []
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [case]}))
    done = promtool("test", "rules", str(path))
    assert done.returncode != 0 and "BellwetherRolledBack" in done.stdout + done.stderr


def test_the_chart_renders_the_same_rules_with_its_values_and_omits_them_by_default(
    helm: Helm, helm_tmp: Path, tmp_path: Path
) -> None:
    assert render(helm, {}, helm_tmp).of_kind("PrometheusRule") == []
    values = {
        "metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}, **{
            k: f"{v // 60}h" if v % 60 == 0 else f"{v}m" for k, v in CHANGED.items()
        }}}
    }  # fmt: skip
    (rule,) = render(helm, values, helm_tmp).of_kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0 and "SUCCESS: 6 rules found" in checked.stdout, checked.stdout + checked.stderr
    # The same alerts as the file, each with the chart's duration, on the metrics Service's job.
    original = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert [r["alert"] for r in rule["spec"]["groups"][0]["rules"]] == [r["alert"] for r in original]
    done = unit_tests(path, f"{FULLNAME}-metrics", CHANGED, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # and the defaults' durations would not pass these: the values really reached the rules
    assert unit_tests(path, f"{FULLNAME}-metrics", DEFAULTS, tmp_path).returncode != 0


def test_the_operator_job_is_the_metrics_service_a_service_monitor_scrapes(helm: Helm, helm_tmp: Path) -> None:
    """The Prometheus Operator names a ServiceMonitor's job after the Service it scrapes."""
    values = {"metrics": {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}}}
    r = render(helm, values, helm_tmp)
    services = [s["metadata"]["name"] for s in r.of_kind("Service")]
    assert f"{FULLNAME}-metrics" in services
    (monitor,) = r.of_kind("ServiceMonitor")
    assert "jobLabel" not in monitor["spec"]
    expressions = [x["expr"] for x in r.one("PrometheusRule")["spec"]["groups"][0]["rules"]]
    assert any(f'up{{job="{FULLNAME}-metrics"}}' in e for e in expressions)
