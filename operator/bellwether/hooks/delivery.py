"""Notifications delivered in the background: a cycle hands them over and never waits for a receiver.

One bounded queue per operator process, drained by a few workers. A delivery that fails for a
reason that may pass (5xx, 429, no answer, no connection) is tried again after a growing delay,
through the same queue; when the queue is full the oldest notification is dropped, counted and
logged. What went wrong for a ModelDeployment's own receivers (an unreadable Secret, a receiver
that kept refusing) is kept, a few lines per object, until its next cycle reports it as an Event.
Logs name the receiver, never its URL or headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import aiohttp

from bellwether.api import ModelDeploymentSpec
from bellwether.api.hooks import Notification
from bellwether.api.units import parse_duration
from bellwether.hooks.http import post
from bellwether.hooks.secrets import Resolve, SecretError, target
from bellwether.rollout.notices import Notice, body, receives

log = logging.getLogger("bellwether")

CAPACITY = 1000
WORKERS = 4
ATTEMPTS = 5
BACKOFF = 1.0  # seconds before the first retry; doubled each time
MAX_BACKOFF = 60.0
MAX_PROBLEMS = 5  # per ModelDeployment, until its next cycle


@dataclass(frozen=True)
class Receiver:
    """Where notifications go; `namespace` holds its Secrets. `installation`: configured for the
    operator, not by the ModelDeployment (its problems are logged, not reported on the object)."""

    notification: Notification
    namespace: str
    installation: bool = False


@dataclass(frozen=True)
class Delivery:
    receiver: Receiver
    notice: Notice
    attempt: int = 1


Count = Callable[[str], None]  # outcome: delivered, failed, retried, dropped


@dataclass
class Notifier:
    """The cycle's `notify` port; `start` in the operator's event loop, `stop` at exit."""

    session: aiohttp.ClientSession
    resolve: Resolve
    installation: Sequence[Receiver] = ()
    capacity: int = CAPACITY
    attempts: int = ATTEMPTS
    backoff: float = BACKOFF
    count: Count = lambda outcome: None
    problems: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _queue: asyncio.Queue[Delivery] | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _retries: set[asyncio.TimerHandle] = field(default_factory=set)

    def start(self, workers: int = WORKERS) -> None:
        """Start `workers` more workers (the queue is made once; it outlives no event loop)."""
        if self._queue is None:
            self._queue = asyncio.Queue(self.capacity)
        first = len(self._tasks)
        self._tasks += [
            asyncio.create_task(self._work(), name=f"bellwether-notify-{i}") for i in range(first, first + workers)
        ]

    async def stop(self) -> None:
        for handle in self._retries:
            handle.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __call__(
        self, namespace: str, name: str, spec: ModelDeploymentSpec | None, notices: Sequence[Notice]
    ) -> Sequence[str]:
        own = [Receiver(n, namespace) for n in (spec.notifications if spec is not None else [])]
        for notice in notices:
            for receiver in [*own, *self.installation]:
                if receives(receiver.notification, notice):
                    self._put(Delivery(receiver, notice))
        return self.problems.pop((namespace, name), [])

    def _put(self, delivery: Delivery) -> None:
        assert self._queue is not None, "Notifier.start() was not called"
        if self._queue.full():
            dropped = self._queue.get_nowait()
            self.count("dropped")
            log.warning(
                "notification queue full (%d): dropped the oldest, %s for %s/%s to %s",
                self.capacity,
                dropped.notice.event,
                dropped.notice.namespace,
                dropped.notice.name,
                dropped.receiver.notification.name,
            )
        self._queue.put_nowait(delivery)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            delivery = await self._queue.get()
            try:
                await self._deliver(delivery)
            except Exception:  # a bug must not stop delivery for everyone else
                log.exception("delivering a notification to %s failed", delivery.receiver.notification.name)
            finally:
                self._queue.task_done()

    async def drain(self, timeout: float) -> bool:
        """Wait until everything queued is delivered or given up (retries included), at most
        `timeout` seconds; True if so. For a process about to end (`bellwether simulate`)."""
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._queue._unfinished_tasks or self._retries:  # type: ignore[attr-defined]
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _deliver(self, d: Delivery) -> None:
        n, notice = d.receiver.notification, d.notice
        where = f"{notice.namespace}/{notice.name}"
        try:
            to = await target(n, d.receiver.namespace, self.resolve)
        except SecretError as e:
            self._problem(d, f"notification {n.name} not sent ({notice.event}): {e}")
            return
        timeout = parse_duration(n.timeout)
        answer = await post(self.session, to, body(n, notice), timeout)
        if answer.outcome == "ok":
            self.count("delivered")
            log.info("notified %s of %s for %s (HTTP %s)", n.name, notice.event, where, answer.code)
            return
        said = answer.describe(timeout)
        if answer.retryable and d.attempt < self.attempts:
            delay = min(MAX_BACKOFF, self.backoff * 2 ** (d.attempt - 1))
            self.count("retried")
            log.info("notifying %s of %s for %s: %s; again in %gs", n.name, notice.event, where, said, delay)
            self._later(delay, replace(d, attempt=d.attempt + 1))
            return
        self._problem(d, f"notification {n.name} not delivered ({notice.event}) after {d.attempt} attempt(s): {said}")

    def _later(self, delay: float, delivery: Delivery) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._retries.discard(handle)
            self._put(delivery)

        handle = loop.call_later(delay, fire)
        self._retries.add(handle)

    def _problem(self, d: Delivery, message: str) -> None:
        self.count("failed")
        log.warning("%s/%s: %s", d.notice.namespace, d.notice.name, message)
        if d.receiver.installation:
            return
        kept = self.problems.setdefault((d.notice.namespace, d.notice.name), [])
        if message not in kept and len(kept) < MAX_PROBLEMS:
            kept.append(message)
