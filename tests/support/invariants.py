"""Checks over everything an API server stand-in was asked to do, not just where it ended: the crash,
fault and traffic tests replay the recorded history of pods, endpoints and ModelDeployment status with
these."""

from __future__ import annotations

from dataclasses import dataclass

from bellwether.api import ModelDeploymentStatus
from bellwether.render import names
from bellwether.sim.standins.apiserver import ApiServer
from bellwether.sim.standins.controllers import SERVICE_NAME, is_ready

DEPLOYMENT, REGION, REVISION = "bellwether.dev/deployment", "bellwether.dev/region", "bellwether.dev/revision"


@dataclass(frozen=True)
class PodEvent:
    """One change in a pod's life, as the API server saw it."""

    at: float  # time.monotonic
    rv: int
    kind: str  # ADDED, READY, TERMINATING or DELETED
    uid: str
    name: str
    revision: str | None


def pod_events(server: ApiServer, name: str, region: str, until: int | None = None) -> list[PodEvent]:
    """The recorded life of the region's pods: created, ready, terminating (deletionTimestamp set) and
    gone, each once per pod, in order (up to resourceVersion `until`)."""
    out: list[PodEvent] = []
    seen: dict[str, set[str]] = {}
    for at, rv, kind, pod in server.history("pods"):
        if until is not None and rv > until:
            break
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        if labels.get(DEPLOYMENT) != name or labels.get(REGION) != region:
            continue
        done = seen.setdefault(meta["uid"], set())
        happened = [kind] if kind in ("ADDED", "DELETED") else []
        if is_ready(pod) and kind != "DELETED":
            happened.append("READY")
        if meta.get("deletionTimestamp") and kind != "DELETED":
            happened.append("TERMINATING")
        for what in happened:
            if what not in done:
                done.add(what)
                out.append(PodEvent(at, rv, what, meta["uid"], meta["name"], labels.get(REVISION)))
    return out


def surge_of(max_surge: str | int, replicas: int) -> int:
    """maxSurge as a pod count: a percentage of replicas rounded up."""
    text = str(max_surge)
    return -(-replicas * int(text[:-1]) // 100) if text.endswith("%") else int(text)


def endpoint_timeline(
    server: ApiServer, namespace: str, service: str
) -> list[tuple[float, int, dict[str, str | None]]]:
    """After every change to the Service's EndpointSlices: (when, resourceVersion, {pod uid: revision})
    of its ready endpoints."""
    revisions: dict[str, str | None] = {}
    slices: dict[str, dict[str, str | None]] = {}
    out: list[tuple[float, int, dict[str, str | None]]] = []
    for at, rv, kind, obj in server.history("pods", "endpointslices"):
        meta = obj["metadata"]
        if obj["kind"] == "Pod":
            revisions.setdefault(meta["uid"], (meta.get("labels") or {}).get(REVISION))
            continue
        if meta.get("namespace") != namespace or (meta.get("labels") or {}).get(SERVICE_NAME) != service:
            continue
        if kind == "DELETED":
            slices.pop(meta["name"], None)
        else:
            ready = [e for e in obj.get("endpoints") or [] if (e.get("conditions") or {}).get("ready") is not False]
            uids = [(e.get("targetRef") or {}).get("uid", "") for e in ready]
            slices[meta["name"]] = {uid: revisions.get(uid) for uid in uids}
        out.append((at, rv, {uid: rev for piece in slices.values() for uid, rev in piece.items()}))
    return out


def holds(server: ApiServer, name: str) -> bool:
    """Whether the ModelDeployment `name` lives (or lived) in this cluster."""
    if not any(r.plural == "modeldeployments" for r in server.resources):
        return False
    return any(obj["metadata"]["name"] == name for _, _, obj in server.changes("modeldeployments"))


def rollback_times(home: ApiServer | None, name: str) -> list[float]:
    """When status first said RolledBack, for each rollback of the ModelDeployment (none if `home` does
    not hold it)."""
    if home is None or not holds(home, name):
        return []
    out: list[float] = []
    before = None
    for at, _, _, obj in home.history("modeldeployments"):
        if obj["metadata"]["name"] != name:
            continue
        phase = (obj.get("status") or {}).get("phase")
        if phase == "RolledBack" and before != "RolledBack":
            out.append(at)
        before = phase
    return out


def check_capacity(
    server: ApiServer,
    name: str,
    region: str,
    replicas: int,
    until: int | None = None,
    *,
    max_surge: str | int = "25%",
    home: ApiServer | None = None,
) -> None:
    """Replay every change to the region's pods and its serving Service's endpoints (up to
    resourceVersion `until`):

    - the region never has more pods (not terminating) than `replicas + maxSurge` (`max_surge` is the
      spec's, the fixtures' 25% by default; a percentage of replicas rounded up), at any moment;
    - with a surge above 0, once the serving Service first had `replicas` ready endpoints it never has
      fewer: stable keeps serving until ready canary pods take its place, promotion included. After a
      rollback decision (status RolledBack on `home`: by default the running stand-in that holds the
      ModelDeployment) the bad revision leaves at once and the region may be short while stable's pods
      warm up; the check holds again once it is back to `replicas`.
    """
    cap = replicas + surge_of(max_surge, replicas)
    service = names.serving_name(name, region)
    if home is None:
        home = next((s for s in [server, *ApiServer.running] if holds(s, name)), None)
    rollbacks = rollback_times(home, name)
    live: dict[str, str] = {}  # pod uid -> name
    revisions: dict[str, str | None] = {}
    slices: dict[str, set[str]] = {}
    full = False
    for at, rv, kind, obj in server.history("pods", "endpointslices"):
        if until is not None and rv > until:
            break
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        if obj["kind"] == "Pod":
            if labels.get(DEPLOYMENT) != name or labels.get(REGION) != region:
                continue
            revisions.setdefault(meta["uid"], labels.get(REVISION))
            if kind == "DELETED" or meta.get("deletionTimestamp"):
                live.pop(meta["uid"], None)
            else:
                live[meta["uid"]] = meta["name"]
            pods = sorted(f"{n} ({revisions[u]})" for u, n in live.items())
            assert len(live) <= cap, f"{len(live)} pods in {region} (at most {cap}) at rv {rv}: {pods}"
            continue
        if labels.get(SERVICE_NAME) != service:
            continue
        if kind == "DELETED":
            slices.pop(meta["name"], None)
        else:
            ready = [e for e in obj.get("endpoints") or [] if (e.get("conditions") or {}).get("ready") is not False]
            slices[meta["name"]] = {(e.get("targetRef") or {}).get("uid", "") for e in ready}
        serving = set().union(*slices.values()) if slices else set()
        while rollbacks and rollbacks[0] <= at:
            rollbacks.pop(0)
            full = False  # a rollback decision: the region may be short until stable is back
        if full and cap > replicas:
            shown = sorted(str(revisions.get(u)) for u in serving)
            assert len(serving) >= replicas, f"only {len(serving)} ready serving pods in {region} at rv {rv}: {shown}"
        full = full or len(serving) >= replicas


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
