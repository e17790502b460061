"""kopf wiring only: an explicit registry, typed settings, and one rollout loop (a daemon) per object.

Create/update/resume handlers just wake the loop early; the loop is level-based, so a missed wake-up
only delays it until the next scheduled cycle. kopf's own bookkeeping lives in annotations under
`bellwether.dev/`, never in status (the status schema is ours and strict).

Deletion: kopf runs the delete handler (remote regions' cleanup) and removes the `bellwether.dev/cleanup`
finalizer. It does so only for objects it watches, and kopf does not watch a namespace that is already
Terminating when the operator starts (kopf's `revise_namespaces` skips a namespace marked for deletion
whose status has blocking conditions, and the ModelDeployment's own finalizer is one); kopf releases
before nolar/kopf#1225 (January 2026) also stopped watching a namespace the moment it was marked for
deletion (nolar/kopf#1088). Those ModelDeployments would keep their finalizer, and their namespace,
forever. So a sweep, at start and then every SWEEP_SECONDS, finishes the deletion of ModelDeployments
in Terminating namespaces that kopf has not finished within SWEEP_GRACE: the same cleanup, then the
finalizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import kopf

from bellwether.api import GROUP, PLURAL, VERSION
from bellwether.clusters import ApiError, Clusters, KubeClient
from bellwether.clusters.config import SECRET_TTL, home_credentials
from bellwether.cycle import wall_wait
from bellwether.handlers import metrics
from bellwether.handlers.reconcile import Context, cleanup, reconcile, secret_resolver
from bellwether.hooks import Notifier, Receiver

PREFIX = "bellwether.dev"
FINALIZER = f"{PREFIX}/cleanup"
log = logging.getLogger("bellwether")
# The sweep of deletions kopf cannot see: how often, how long kopf gets first (its delete handler is
# done within a second normally, within a minute while a remote region fails), and how many failed
# cleanups of one object it tries before removing the finalizer anyway (its namespace cannot go otherwise).
SWEEP_SECONDS = 30.0
SWEEP_GRACE = 30.0
SWEEP_ATTEMPTS = 3


@dataclass(frozen=True)
class Options:
    kubeconfig: str | None = None
    context: str | None = None
    interval: float = 30.0  # the longest wait between two cycles of one ModelDeployment
    # kopf's namespace patterns (`--namespace`, globs and `!` allowed); empty: every namespace. The sweep
    # looks in these only; where the operator may not list ModelDeployments (RBAC) it skips quietly.
    namespaces: tuple[str, ...] = ()
    # installation-wide notification receivers (`--notify-secret`), told of every ModelDeployment
    notify: tuple[Receiver, ...] = ()


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled state with the spec as a digest, not a copy.

    kopf keeps what it last handled in an annotation, to tell a change from a resync. A full copy of
    the spec there counts against the API server's 256 KiB of annotations (a large spec once made
    every write of the object fail); a digest tells a change just as well. Bellwether's handlers only
    wake the rollout loop and never read kopf's diff."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        essence = super().build(body=body, extra_fields=extra_fields)
        if "spec" in essence:
            text = json.dumps(essence["spec"], sort_keys=True, separators=(",", ":"))
            essence["spec"] = {"sha256": hashlib.sha256(text.encode()).hexdigest()}
        return essence


def settings() -> kopf.OperatorSettings:
    s = kopf.OperatorSettings()
    s.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    s.persistence.diffbase_storage = DigestDiffBaseStorage(prefix=PREFIX, key="last-handled-configuration")
    s.persistence.finalizer = FINALIZER
    s.posting.level = logging.WARNING  # Events are for users: phase changes and rollbacks, not debug logs
    s.watching.server_timeout = 300
    s.watching.client_timeout = 330
    return s


def _wake(memo: Any) -> asyncio.Event:
    if "wake" not in memo:
        memo["wake"] = asyncio.Event()
    event: asyncio.Event = memo["wake"]
    return event


async def _sleep(wake: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> None:
    """Until the next cycle is due, the object changes, or the daemon is asked to stop."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def watched(namespace: str, patterns: Sequence[str]) -> bool:
    """Whether kopf would serve `namespace` given its `--namespace` patterns (none: every namespace).

    kopf's own rules (`kopf._cogs.structs.references.match_namespace`, private, hence this copy): a
    pattern is comma-separated globs; `!` excludes; a leading exclusion implies a catch-all first; a later
    inclusion takes back only what the first glob took in."""
    return not patterns or any(_matches(namespace, pattern) for pattern in patterns)


def _matches(namespace: str, pattern: str) -> bool:
    globs = [glob.strip() for glob in pattern.split(",")]
    if globs[0].startswith("!"):
        globs.insert(0, "*")
    matched = first = fnmatch.fnmatch(namespace, globs[0])
    for glob in globs[1:]:
        if glob.startswith("!"):
            matched = matched and not fnmatch.fnmatch(namespace, glob[1:])
        else:
            matched = matched or (first and fnmatch.fnmatch(namespace, glob))
    return matched


def _age(timestamp: str, now: datetime) -> float:
    """Seconds since an API server's RFC 3339 timestamp (`2026-12-02T08:51:34Z`)."""
    return (now - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()


async def _terminating(home: KubeClient, patterns: Sequence[str]) -> list[str]:
    """The watched namespaces being deleted: the only ones where kopf may leave a deletion unfinished."""
    found = await home.request("list", "/api/v1/namespaces") or {}
    return [
        ns["metadata"]["name"]
        for ns in found.get("items") or []
        if ns["metadata"].get("deletionTimestamp") and watched(ns["metadata"]["name"], patterns)
    ]


async def _stuck(home: KubeClient, namespace: str, grace: float) -> list[dict[str, Any]]:
    """ModelDeployments of `namespace` deleted at least `grace` seconds ago that still carry our finalizer."""
    try:
        objects = await home.list("ModelDeployment", namespace)
    except ApiError as e:
        if e.status in (403, 404):  # not ours to watch (RBAC), or the kind is gone with its CRD
            log.debug("sweep: cannot list ModelDeployments in %s: %s", namespace, e)
            return []
        raise
    now = datetime.now(UTC)
    return [
        obj
        for obj in objects
        if FINALIZER in (obj["metadata"].get("finalizers") or [])
        and obj["metadata"].get("deletionTimestamp")
        and _age(obj["metadata"]["deletionTimestamp"], now) >= grace
    ]


async def _finish(ctx: Context, home: KubeClient, obj: dict[str, Any], failures: dict[str, int]) -> bool:
    """Clean up and remove the finalizer, as the delete handler and kopf would; True once it is removed.

    A cleanup that fails is tried again by the next sweeps; after SWEEP_ATTEMPTS the finalizer goes
    anyway, with the regions to check by hand in the log: the namespace cannot be deleted otherwise."""
    meta = obj["metadata"]
    where = f"{meta['namespace']}/{meta['name']}"
    log.info("finishing the deletion of %s: its namespace is being deleted, which kopf may not watch", where)
    failed = await cleanup(ctx, obj)
    if failed:
        failures[meta["uid"]] = failures.get(meta["uid"], 0) + 1
        if failures[meta["uid"]] < SWEEP_ATTEMPTS:
            log.warning(
                "could not clean up region(s) %s of %s yet; the next sweep tries again", ", ".join(failed), where
            )
            return False
        log.warning(
            "giving up cleaning up region(s) %s of %s after %d attempts; check them for objects labelled "
            "bellwether.dev/deployment=%s",
            ", ".join(failed),
            where,
            SWEEP_ATTEMPTS,
            meta["name"],
        )
    remaining = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    # The resourceVersion read makes this a no-op if anyone changed the finalizers meanwhile (kopf too).
    await home.merge_patch(
        "ModelDeployment",
        meta["namespace"],
        meta["name"],
        {"metadata": {"finalizers": remaining or None}},
        resource_version=meta.get("resourceVersion"),
    )
    failures.pop(meta["uid"], None)
    log.info("%s is cleaned up; its finalizer is removed", where)
    return True


async def sweep(ctx: Context, patterns: Sequence[str], grace: float, failures: dict[str, int]) -> int:
    """One pass: finish every deletion kopf has left in a Terminating watched namespace for `grace`
    seconds or more. Returns how many were finished."""
    home = await ctx.clusters.home()
    finished = 0
    for namespace in await _terminating(home, patterns):
        for obj in await _stuck(home, namespace, grace):
            try:
                finished += await _finish(ctx, home, obj, failures)
            except ApiError as e:  # 409: changed meanwhile; anything else: the next sweep tries again
                log.warning("finishing the deletion of %s/%s failed: %s", namespace, obj["metadata"]["name"], e)
    return finished


async def sweeping(ctx: Context, patterns: Sequence[str]) -> None:
    """Sweep at start (no grace: an operator that was down could not see those deletions), then every
    SWEEP_SECONDS; a failed pass is logged and the next one tries again."""
    failures: dict[str, int] = {}
    grace = 0.0
    while True:
        try:
            await sweep(ctx, patterns, grace, failures)
        except Exception:
            log.exception("sweeping deletions in Terminating namespaces failed; trying again in %ss", SWEEP_SECONDS)
        grace = SWEEP_GRACE
        await asyncio.sleep(SWEEP_SECONDS)


def build_registry(options: Options) -> kopf.OperatorRegistry:
    """Every handler, in a registry of its own (never kopf's global one), so tests can build several."""
    registry = kopf.OperatorRegistry()
    _register_lifecycle(registry, options)
    _register_rollout(registry)
    return registry


def _register_lifecycle(registry: kopf.OperatorRegistry, options: Options) -> None:
    """The operator's own life: credentials for kopf, and what every cycle shares (sessions, the
    clusters, the sweep of deletions kopf cannot see), made at start and closed at exit."""

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        creds = await home_credentials(options.kubeconfig, options.context)
        scheme, _sep, token = (creds.authorization or "").partition(" ")
        return kopf.ConnectionInfo(
            server=creds.server,
            scheme=scheme or None,
            token=token or None,
            ca_path=creds.ca_file,
            insecure=creds.insecure,
            certificate_path=creds.cert_file,
            private_key_path=creds.key_file,
            default_namespace=creds.namespace,
        )

    @kopf.on.startup(registry=registry)
    async def startup(memo: kopf.Memo, **_: Any) -> None:
        # Each socket read and connect is bounded, the wait for a pooled connection is not: under load a
        # request waits its turn (a longer cycle) instead of failing on the client side.
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30))
        # A changed Secret is seen within one interval (and SECRET_TTL at most), as a spec change is.
        ttl = min(SECRET_TTL, options.interval)
        clusters = Clusters(session, options.kubeconfig, options.context, metrics.count_api_error, ttl)
        # Unlimited like a pool per cycle was, so queries never wait for one another; each has its timeout.
        prometheus = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        # Gates and notifications: each call has its own timeout.
        webhooks = aiohttp.ClientSession()
        notifier = Notifier(webhooks, secret_resolver(clusters), options.notify, count=metrics.count_notification)
        notifier.start()
        memo["sessions"] = (session, prometheus, webhooks)
        memo["notifier"] = notifier
        memo["ctx"] = Context(
            clusters, max_requeue=options.interval, prometheus=prometheus, webhooks=webhooks, notifier=notifier
        )
        metrics.CYCLE_INTERVAL.set(options.interval)
        memo["sweeping"] = asyncio.create_task(sweeping(memo["ctx"], options.namespaces), name="bellwether-sweep")

    @kopf.on.cleanup(registry=registry)
    async def shutdown(memo: kopf.Memo, **_: Any) -> None:
        memo["sweeping"].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await memo["sweeping"]
        await memo["notifier"].stop()
        for session in memo["sessions"]:
            await session.close()


def _register_rollout(registry: kopf.OperatorRegistry) -> None:
    """Per ModelDeployment: one rollout loop, woken early by changes, and the cleanup on deletion."""
    resource = (GROUP, VERSION, PLURAL)

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, registry=registry)
    async def wake(memo: kopf.Memo, **_: Any) -> None:
        _wake(memo).set()

    @kopf.daemon(*resource, registry=registry, cancellation_timeout=5.0)
    async def rollout_loop(
        stopped: kopf.DaemonStopped, name: str, namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
    ) -> None:
        ctx: Context = memo["ctx"]
        wake = _wake(memo)
        assert namespace is not None  # ModelDeployments are namespaced
        loop = asyncio.get_running_loop()
        while not stopped:
            wake.clear()
            started, requeue = loop.time(), None
            try:
                outcome = await reconcile(ctx, namespace, name)
            except Exception:  # the home cluster failed us; the next cycle starts over from a fresh read
                log.exception("rollout cycle of %s/%s failed", namespace, name)
            else:
                requeue = outcome.requeue_after
                for event in outcome.events:
                    kopf.event(body, type=event.type, reason=event.reason, message=event.message)
            await _sleep(wake, stopped, wall_wait(requeue, loop.time() - started, ctx.max_requeue))
        log.info("rollout loop of %s/%s stopped (%s)", namespace, name, stopped.reason)

    @kopf.on.delete(*resource, registry=registry, retries=10, backoff=5)
    async def delete(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
        """Clean up what owner references cannot reach (other clusters, other namespaces); kopf then
        removes the finalizer. A region that fails is tried again every 5 s, 10 times: after that kopf
        gives up (and logs it) rather than keep the object, and its namespace, forever."""
        where = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
        log.info("deleting %s (attempt %d): cleaning up the regions owner references do not reach", where, retry + 1)
        failed = await cleanup(memo["ctx"], dict(body))
        if failed:
            raise kopf.TemporaryError(f"could not clean up region(s) {', '.join(failed)} yet", delay=5)
        log.info("%s is cleaned up; kopf removes its finalizer", where)
