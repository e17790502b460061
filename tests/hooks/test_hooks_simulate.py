"""`bellwether simulate --webhooks`: a spec's real receivers and gates, driven by the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import yaml

from support.hookkit import DEMO
from support.receiver import Answer, WebhookServer

ROOT = Path(__file__).resolve().parents[2]
STEPS = [{"setWeight": 50}, {"analysis": {"duration": "1m"}}]


async def simulate(path: Path, *flags: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    code = "import sys; from bellwether.cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "simulate", "-f", str(path), *flags, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def spec_file(tmp_path: Path, server: WebhookServer) -> Path:
    doc = yaml.safe_load(DEMO.read_text())
    doc["spec"]["regions"] = doc["spec"]["regions"][:2]
    doc["spec"]["rollout"].update({"waves": [["us-east"], ["eu-west"]], "steps": STEPS, "bakeTime": "0s"})
    doc["spec"]["notifications"] = [{"name": "ops", "url": server.url("/notify"), "events": ["Promoted"]}]
    doc["spec"]["rollout"]["gates"] = [
        {"name": "ok", "type": "confirmPromotion", "webhook": {"url": server.url("/gate")}},
        {"name": "evals", "type": "confirmPromotion", "job": {"image": "evals:1"}},  # in memory: no Jobs here
    ]
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_simulate_with_webhooks_asks_the_real_gates_and_sends_the_real_notifications(
    tmp_path: Path, server: WebhookServer
) -> None:
    server.answer(Answer(200, "go"))
    code, out, err = await simulate(
        spec_file(tmp_path, server), "--scenario", "healthy", "--webhooks", "--output", "json"
    )
    assert code == 0, err
    assert json.loads(out)["result"] == "promoted"
    gates = [r.body for r in server.received if r.path == "/gate"]
    assert [(g["type"], g["wave"]) for g in gates] == [("confirmPromotion", 0), ("confirmPromotion", 1)]
    sent = [r.body for r in server.received if r.path == "/notify"]
    assert [s["event"] for s in sent] == ["Promoted"]  # delivered before the command exited


async def test_simulate_without_webhooks_calls_nothing(tmp_path: Path, server: WebhookServer) -> None:
    code, out, err = await simulate(spec_file(tmp_path, server), "--scenario", "healthy", "--output", "json")
    assert code == 0, err
    assert json.loads(out)["result"] == "promoted"  # the gate, answered in memory, let it through
    assert server.received == []
