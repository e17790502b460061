"""`bellwether status|promote|abort|retry|pause|resume NAME`: read a rollout, or ask the operator to act.

Commands are an annotation the operator consumes exactly once (it records the command's id in
status), so running one twice by accident, or while the operator restarts, does not act twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Sequence
from typing import Any

ACTIONS = {
    "promote": "go to the next step now (--full: promote in every region, skipping the remaining steps)",
    "abort": "roll the canary back now; the stable revision keeps serving",
    "retry": "roll out again a revision that was rolled back",
    "pause": "hold the rollout at its current step",
    "resume": "continue a paused rollout",
}


EPILOG = (
    "Exit status: 0 on success; 1 when the ModelDeployment does not exist, the API server refused the request "
    "or no cluster is configured; 2 for a usage error."
)
COMMAND_DESCRIPTION = (
    "The operator acts on its next cycle (within its --interval) and exactly once, even if it restarts in "
    "between; what it did shows up as an Event on the ModelDeployment and in its status."
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser(
        "status",
        help="show a ModelDeployment's rollout: regions, weights, measurements",
        description="Show a ModelDeployment's rollout: phase, revisions, each region's readiness, weight and "
        "share as routed, the last measurement of every metric in every region, and the conditions.",
        epilog=EPILOG,
    )
    _common(status)
    status.set_defaults(func=_status)
    for action, help_text in ACTIONS.items():
        description = help_text[0].upper() + help_text[1:] + ". " + COMMAND_DESCRIPTION
        p = sub.add_parser(action, help=help_text, description=description, epilog=EPILOG)
        _common(p)
        if action == "promote":
            p.add_argument("--full", action="store_true", help="promote fully, in every region")
        p.set_defaults(func=_command, action=action)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the ModelDeployment")
    p.add_argument("-n", "--namespace", help="default: the kubeconfig context's namespace")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")


async def _with_client(args: argparse.Namespace, work: Any) -> int:
    import aiohttp

    from bellwether.clusters.client import KubeClient
    from bellwether.clusters.config import endpoint_of, home_credentials

    creds = await home_credentials(args.kubeconfig, args.context)
    namespace = args.namespace or creds.namespace or "default"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        client = KubeClient("home", endpoint_of(creds), session)
        code: int = await work(client, namespace)
        return code


def _run_with_client(args: argparse.Namespace, work: Any) -> int:
    """Run `work` against the home cluster; a missing or broken kubeconfig is one line, not a traceback."""
    from bellwether.cli.run import cluster_problem
    from bellwether.clusters.client import ApiError

    problem = cluster_problem(args.kubeconfig, args.context)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_with_client(args, work))
    except (ApiError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _command(args: argparse.Namespace) -> int:

    action = "promote-full" if args.action == "promote" and args.full else args.action
    command = {"action": action, "id": uuid.uuid4().hex[:12]}

    async def work(client: Any, namespace: str) -> int:
        patch = {"metadata": {"annotations": {"bellwether.dev/command": json.dumps(command)}}}
        found = await client.merge_patch("ModelDeployment", namespace, args.name, patch)
        if found is None:
            print(f"ModelDeployment {namespace}/{args.name} not found", file=sys.stderr)
            return 1
        print(
            f"{action} requested for {namespace}/{args.name} (id {command['id']}); the operator acts on its next cycle"
        )
        return 0

    return _run_with_client(args, work)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def _ready(ready: int | None, wanted: int | None) -> str:
    """Ready pods, against the wanted count where known; '?' for a region that cannot be seen."""
    shown = "?" if ready is None else str(ready)
    return f"{shown}/{wanted}" if wanted else shown


def render_status(obj: dict[str, Any]) -> str:
    """The human view of a ModelDeployment's status (also used by tests)."""
    meta, status = obj["metadata"], obj.get("status") or {}
    lines = [
        f"ModelDeployment {meta['namespace']}/{meta['name']}  phase: {status.get('phase', 'Pending')}",
        f"stable: {status.get('stableRevision') or '-'}  canary: {status.get('canaryRevision') or '-'}  "
        f"canary weight: {status.get('canaryWeight', 0)}%"
        + (f" (share as routed: {status['canaryShare']})" if status.get("canaryShare") else "")
        # counted from 1, as the status message counts them; only meaningful while a canary runs
        + (
            f"  wave: {status.get('wave', 0) + 1}  step: {status.get('step', 0) + 1}"
            if status.get("canaryRevision")
            else ""
        ),
    ]
    if status.get("message"):
        lines.append(f"message: {status['message']}")
    regions = status.get("regions") or []
    rows: list[tuple[object, ...]]
    if regions:
        lines += ["", "REGIONS"]
        rows = [
            (
                r["name"],
                r.get("phase"),
                _ready(r.get("stableReady"), r.get("replicas")),
                _ready(r.get("canaryReady"), None),
                f"{r.get('weight', 0)}%",
                f"{r.get('share', 0)}%",
                r.get("message"),
            )
            for r in regions
        ]
        headers = ["NAME", "PHASE", "STABLE READY", "CANARY READY", "WEIGHT", "SHARE", "MESSAGE"]
        lines.append(_table(headers, rows))
    lines += _measurements(status)
    gates = status.get("gates") or []
    if gates:
        lines += ["", "GATES"]
        rows = [
            (g["name"], g["type"], g["revision"], g.get("phase"), g.get("attempts", 0), g.get("message")) for g in gates
        ]
        lines.append(_table(["NAME", "TYPE", "REVISION", "PHASE", "ATTEMPTS", "LAST ANSWER"], rows))
    conditions = status.get("conditions") or []
    if conditions:
        lines += ["", "CONDITIONS"]
        rows = [(c["type"], c["status"], c.get("reason"), c.get("message")) for c in conditions]
        lines.append(_table(["TYPE", "STATUS", "REASON", "MESSAGE"], rows))
    return "\n".join(lines)


def _measurements(status: dict[str, Any]) -> list[str]:
    """The newest measurement of every metric in every region, as a table."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for m in status.get("analysis") or []:
        key = (m["region"], m["metric"])
        if key not in latest or m.get("at", "") >= latest[key].get("at", ""):
            latest[key] = m
    lines: list[str] = []
    if latest:
        lines += ["", "LAST MEASUREMENTS"]
        rows = [
            (
                m["region"],
                m["metric"],
                m["verdict"],
                _num(m.get("value")),
                _num(m.get("baseline")),
                m.get("bound"),
                m.get("at"),
                m.get("reason"),
            )
            for _, m in sorted(latest.items())
        ]
        lines.append(_table(["REGION", "METRIC", "VERDICT", "CANARY", "STABLE", "BOUND", "AT", "WHY"], rows))
    return lines


def _num(value: object) -> str | None:
    return None if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _status(args: argparse.Namespace) -> int:

    async def work(client: Any, namespace: str) -> int:
        obj = await client.get("ModelDeployment", namespace, args.name)
        if obj is None:
            print(f"ModelDeployment {namespace}/{args.name} not found", file=sys.stderr)
            return 1
        print(render_status(obj))
        return 0

    return _run_with_client(args, work)
