"""Checks over everything an API server stand-in was asked to do, not just where it ended: the crash
and fault tests replay the recorded history of Deployments and ModelDeployment status with these."""

from __future__ import annotations

from apiserver import ApiServer

from bellwether.api import ModelDeploymentStatus


def check_capacity(server: ApiServer, name: str, region: str, replicas: int, until: int | None = None) -> None:
    """Replay every change to the region's Deployments (up to resourceVersion `until`): once the region
    first served all its replicas, ready replicas never fall below that; and no replayed step ever
    doubles pods (at most a full stable and a full canary: with `maxSurge` above 0, stable keeps its
    pods until the canary's are ready)."""
    deployments: dict[str, tuple[int, int]] = {}  # Deployment -> (replicas asked for, ready)
    full = False
    for rv, kind, obj in server.changes("deployments"):
        labels = obj["metadata"].get("labels") or {}
        if until is not None and rv > until:
            break
        if labels.get("bellwether.dev/deployment") != name or labels.get("bellwether.dev/region") != region:
            continue
        if kind == "DELETED":
            deployments.pop(obj["metadata"]["name"], None)
        else:
            asked = int(obj["spec"].get("replicas", 1))
            deployments[obj["metadata"]["name"]] = (asked, int((obj.get("status") or {}).get("readyReplicas") or 0))
        ready = sum(min(asked, ready) for asked, ready in deployments.values())
        asked_total = sum(asked for asked, _ in deployments.values())
        where = f"{name} in {region} at rv {rv}: {deployments}"
        assert asked_total <= 2 * replicas, f"{asked_total} pods asked for, {where}"
        if full:
            assert ready >= replicas, f"only {ready} ready replicas, {where}"
        full = full or ready >= replicas


def statuses(home: ApiServer, name: str) -> list[tuple[int, ModelDeploymentStatus]]:
    """Every status the ModelDeployment had, in order, with the resourceVersion that recorded it."""
    out: list[tuple[int, ModelDeploymentStatus]] = []
    for rv, _kind, obj in home.changes("modeldeployments"):
        if obj["metadata"]["name"] == name and obj.get("status"):
            status = ModelDeploymentStatus.model_validate(obj["status"])
            if not out or out[-1][1] != status:
                out.append((rv, status))
    return out


def check_status_history(home: ApiServer, name: str, old: str, new: str, promoted: bool) -> None:
    """Status moves forward only while `new` replaces `old` (or is rolled back): generations, waves
    and steps never go back, a failing revision is never promoted and a good one never rolled back, a
    rolled back revision is not retried by itself, and the promotion history only grows."""
    generation = 0
    position: tuple[int, int] = (0, 0)
    history: list[tuple[str, str]] = []
    rolled_back = False
    for rv, status in statuses(home, name):
        where = f"{name} at rv {rv}: {status.phase} {status.message}"
        assert (status.observed_generation or 0) >= generation, f"observedGeneration went back, {where}"
        generation = status.observed_generation or 0
        assert status.stable_revision in (None, old, new), where
        assert 0 <= status.canary_weight <= 100, where
        if promoted:
            assert status.phase != "RolledBack", f"a good revision was rolled back, {where}"
        else:
            assert status.stable_revision != new, f"a failing revision was promoted, {where}"
        if status.canary_revision == new:
            assert not rolled_back, f"{new} was retried by itself after its rollback, {where}"
            assert (status.wave, status.step) >= position, f"went back from wave/step {position}, {where}"
            position = (status.wave, status.step)
        rolled_back = rolled_back or (status.phase == "RolledBack" and status.canary_revision is None)
        entries = [(h.revision, h.promoted_at) for h in reversed(status.history)]  # oldest first
        assert entries[: len(history)] == history, f"promotion history rewritten, {where}"
        assert len(set(entries)) == len(entries), f"one promotion recorded twice, {where}"
        history = entries
