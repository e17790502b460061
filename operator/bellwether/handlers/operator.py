"""kopf wiring only: an explicit registry, typed settings, and one rollout loop (a daemon) per object.

Create/update/resume handlers just wake the loop early; the loop is level-based, so a missed wake-up
only delays it until the next scheduled cycle. kopf's own bookkeeping lives in annotations under
`bellwether.dev/`, never in status (the status schema is ours and strict).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import kopf

from bellwether.api import GROUP, PLURAL, VERSION
from bellwether.clusters import Clusters
from bellwether.clusters.config import SECRET_TTL, home_credentials
from bellwether.handlers import metrics
from bellwether.handlers.reconcile import Context, cleanup, reconcile

PREFIX = "bellwether.dev"
FINALIZER = f"{PREFIX}/cleanup"
log = logging.getLogger("bellwether")
# How long after its due time a cycle wakes: a timer firing a hair early would find the measurement not
# yet due and come back a second later.
LATE_BY = 0.05


@dataclass(frozen=True)
class Options:
    kubeconfig: str | None = None
    context: str | None = None
    interval: float = 30.0  # the longest wait between two cycles of one ModelDeployment


def settings() -> kopf.OperatorSettings:
    s = kopf.OperatorSettings()
    s.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    s.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key="last-handled-configuration")
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


def build_registry(options: Options) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resource = (GROUP, VERSION, PLURAL)

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
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        # A changed Secret is seen within one interval (and SECRET_TTL at most), as a spec change is.
        ttl = min(SECRET_TTL, options.interval)
        clusters = Clusters(session, options.kubeconfig, options.context, metrics.count_api_error, ttl)
        # Unlimited like a pool per cycle was, so queries never wait for one another; each has its timeout.
        prometheus = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        memo["sessions"] = (session, prometheus)
        memo["ctx"] = Context(clusters, max_requeue=options.interval, prometheus=prometheus)

    @kopf.on.cleanup(registry=registry)
    async def shutdown(memo: kopf.Memo, **_: Any) -> None:
        for session in memo["sessions"]:
            await session.close()

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
            started, delay = loop.time(), ctx.max_requeue
            try:
                outcome = await reconcile(ctx, namespace, name)
            except Exception:  # the home cluster failed us; the next cycle starts over from a fresh read
                log.exception("rollout cycle of %s/%s failed", namespace, name)
            else:
                delay = outcome.requeue_after
                for event in outcome.events:
                    kopf.event(body, type=event.type, reason=event.reason, message=event.message)
            # The wait counts from the cycle's start, as the decision's "due in N seconds" does: counted
            # from its end, each cycle would come later by the time the last one took, and objects slowed
            # by a busy moment would pile onto the ones due after them, making the next moment busier.
            await _sleep(wake, stopped, max(0.0, delay + LATE_BY - (loop.time() - started)))

    @kopf.on.delete(*resource, registry=registry, retries=10, backoff=5)
    async def delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        failed = await cleanup(memo["ctx"], dict(body))
        if failed:
            raise kopf.TemporaryError(f"could not clean up region(s) {', '.join(failed)} yet", delay=5)

    return registry
