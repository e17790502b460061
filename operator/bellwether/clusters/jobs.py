"""A Job gate's Job: created once per attempt, then read until Kubernetes says how it ended."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bellwether.clusters.client import KubeClient
from bellwether.rollout.types import GateOutcome


def job_outcome(job: Mapping[str, Any]) -> tuple[GateOutcome, str]:
    """What the Job controller's conditions say: Complete (passed), Failed (DeadlineExceeded: a
    timeout), or neither yet (pending)."""
    meta, status = job["metadata"], job.get("status") or {}
    where = f"Job {meta['namespace']}/{meta['name']}"
    for c in status.get("conditions") or []:
        if c.get("status") != "True":
            continue
        if c.get("type") == "Complete":
            return "passed", f"{where} succeeded"
        if c.get("type") == "Failed":
            said = ": ".join(x for x in (c.get("reason"), c.get("message")) if x)
            outcome: GateOutcome = "timeout" if c.get("reason") == "DeadlineExceeded" else "failed"
            return outcome, f"{where} failed ({said}); kubectl logs -n {meta['namespace']} job/{meta['name']}"
    active = status.get("active") or 0
    return "pending", f"{where} running ({active} active pod(s))"


async def run_gate_job(client: KubeClient, job: Mapping[str, Any]) -> tuple[GateOutcome, str]:
    """Create the Job if it is not there (server-side apply, so a repeat changes nothing), then say
    where it is. Its spec is immutable once created: an existing one is read, never applied again."""
    meta = job["metadata"]
    found = await client.get("Job", meta["namespace"], meta["name"])
    if found is None:
        await client.apply(job)
        return "pending", f"Job {meta['namespace']}/{meta['name']} created"
    return job_outcome(found)
